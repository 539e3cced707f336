"""DGMM: reconstructing perceived digits from fMRI, re-implemented in PyTorch.

Du, Du, Huang & He (2018), "Reconstructing perceived images from human brain activities with
Bayesian deep multiview learning", IEEE TNNLS (reference Keras code: GitHub
``ChangdeDu/DGMM``, ``DGMM_Keras.py`` and ``calculateS.m``).

The model: an image ``x`` and its fMRI response ``y`` share a latent ``z`` (size ``K``).

- Image view: a convolutional VAE, ``q(z | x)`` and ``p(x | z)`` with Bernoulli pixels.
- fMRI view: ``y = z B + r H + noise`` with ``B`` (``K x D``) and ``H`` (``C x D``) Gaussian
  weights with Gamma-distributed precisions ``tau`` and ``eta``, ``r ~ N(0, I_C)`` per
  sample, and noise precision ``gamma``; these get closed-form (mean-field) Bayesian updates.

Training alternates, ``maxiter`` times, one VAE epoch with one round of the closed-form
updates. Test images are then predicted from fMRI alone: ``p(z | y)`` is Gaussian after
integrating out ``r``, combined with a k-nearest-neighbour prior that pulls ``z`` towards
the latents of training samples with similar fMRI; the reconstruction is the average of the
decoder over Monte-Carlo samples of ``z``.

Deviations from the Keras reference, all deliberate:

- The fMRI term of the ELBO, ``E_q[log p(y | z)]``, drives the encoder here (in the Keras
  code ``Y_mu`` is a fixed model input, so that term has no gradient); ``fmri_weight``
  scales it and ``fmri_weight=0`` recovers the reference's behaviour.
- The encoder's second output is used consistently as a log-variance (the reference uses it
  as a log-std when sampling and as a log-variance in the KL and the ``B`` update).
- The ELBO is the plain per-image sum (Bernoulli cross-entropy summed over pixels plus the
  KL), not the reference's ``10000 * mean`` weighting.
- Monte-Carlo samples of the test latent use one standard normal draw per dimension (the
  reference draws one scalar for all dimensions).
- The k-NN prior takes the ``k`` most similar training samples; ``calculateS.m`` skips the
  most similar one (an off-by-one: the test sample itself is already excluded there).
- The convolutional layers have ``filters=8`` channels (the reference: 64) so a trial
  takes seconds on one CPU thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from typing_extensions import Unpack

from optuna_qlearn.objectives._reconstruction import (
    ConvVAE,
    ReconstructionObjective,
    ReconstructionOptions,
    check_params,
    torch_generator,
)

__all__ = [
    "ConvVAE28",
    "DGMMReconstruction",
    "Digit69",
    "FMRIView",
    "load_digit69",
]

_MAT_KEYS = ("stimTrn", "stimTest", "fmriTrn", "fmriTest")


@dataclass(frozen=True)
class Digit69:
    """The "69" dataset: 28x28 digit stimuli and fMRI responses.

    Attributes:
        x_train: Stimuli ``(90, 28, 28)`` float32 in ``[0, 1]``, upright.
        y_train: fMRI ``(90, D)`` float64, min-max scaled per voxel on the training set.
        x_test: Test stimuli ``(10, 28, 28)``.
        y_test: Test fMRI, scaled with the training minima and ranges.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digit69(path: str | Path) -> Digit69:
    """Read ``digit69_28x28.mat`` (van Gerven et al. 2010, as shipped with DGMM).

    The MATLAB file stores images column-major; they are transposed to upright. fMRI voxels
    are min-max scaled to ``[0, 1]`` with the training set's statistics (as the reference
    code does with scikit-learn's ``MinMaxScaler``).

    Args:
        path: The ``.mat`` file.

    Returns:
        The dataset.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it lacks a key or the shapes do not fit.
    """
    from scipy.io import loadmat

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"digit69 dataset not found at {file} (expected digit69_28x28.mat from the DGMM "
            f"repository; it is not shipped with this package)"
        )
    mat = loadmat(file)
    missing = [k for k in _MAT_KEYS if k not in mat]
    if missing:
        raise ValueError(f"{file} lacks the keys {missing}; expected {list(_MAT_KEYS)}")
    stim_tr, stim_te = np.asarray(mat["stimTrn"]), np.asarray(mat["stimTest"])
    fmri_tr = np.asarray(mat["fmriTrn"], dtype=np.float64)
    fmri_te = np.asarray(mat["fmriTest"], dtype=np.float64)
    if stim_tr.ndim != 2 or stim_tr.shape[1] != 784 or stim_te.shape[1:] != (784,):
        raise ValueError(f"stimuli must be (N, 784), got {stim_tr.shape} and {stim_te.shape}")
    if fmri_tr.shape[0] != stim_tr.shape[0] or fmri_te.shape != (
        stim_te.shape[0],
        fmri_tr.shape[1],
    ):
        raise ValueError(
            f"fMRI shapes {fmri_tr.shape}, {fmri_te.shape} do not match the stimuli "
            f"{stim_tr.shape}, {stim_te.shape}"
        )
    scale = 255.0 if stim_tr.max() > 1 else 1.0

    def upright(stim: np.ndarray) -> np.ndarray:
        imgs = stim.astype(np.float32).reshape(-1, 28, 28).transpose(0, 2, 1) / scale
        return np.ascontiguousarray(imgs)

    lo = fmri_tr.min(axis=0)
    span = fmri_tr.max(axis=0) - lo
    span[span == 0] = 1.0
    return Digit69(
        x_train=upright(stim_tr),
        y_train=(fmri_tr - lo) / span,
        x_test=upright(stim_te),
        y_test=(fmri_te - lo) / span,
    )


class ConvVAE28(ConvVAE):
    """Convolutional VAE for 1x28x28 images (the DGMM image view).

    Encoder: conv 3x3 stride 2 (1 -> ``filters``, 14x14) -> conv 3x3 -> dense
    ``intermediate_dim`` -> mean and log-variance of ``z``. Decoder: dense
    ``intermediate_dim`` -> dense ``filters x 14 x 14`` -> transposed conv to 28x28 -> conv to
    1x28x28 Bernoulli logits.

    Args:
        latent_dim: ``K``.
        intermediate_dim: Width of the dense hidden layers.
        filters: Channels of the convolutional layers.
    """

    def __init__(self, latent_dim: int, intermediate_dim: int, filters: int = 8) -> None:
        super().__init__(latent_dim, intermediate_dim, 28, (filters, filters), True)


class FMRIView:
    """The fMRI side of DGMM: ``y = z B + r H + noise`` with closed-form Bayesian updates.

    Holds the posterior means of ``B`` (``K x D``), ``H`` (``C x D``), ``R`` (``N x C``),
    their shared row covariances ``sigma_b``, ``sigma_h``, ``sigma_r``, and the posterior
    means of the precisions ``tau`` (of ``B``), ``eta`` (of ``H``) and ``gamma`` (noise),
    with ``Gamma(alpha, beta)`` priors. Initialised as in the reference code (uniform
    ``[0, 1)`` means, identity covariances, unit precisions).

    Args:
        y: Training fMRI ``(N, D)``.
        latent_dim: ``K``.
        n_components: ``C``, the size of the sample-specific latent ``r``.
        rng: NumPy generator for the initialisation.
        alpha: Shape of the three Gamma priors.
        beta: Rate of the three Gamma priors.
    """

    def __init__(
        self,
        y: np.ndarray,
        latent_dim: int,
        n_components: int,
        rng: np.random.Generator,
        alpha: float = 1.0,
        beta: float = 1.0,
    ) -> None:
        self.y = np.asarray(y, dtype=np.float64)
        n, d = self.y.shape
        k, c = latent_dim, n_components
        self.alpha, self.beta = alpha, beta
        self.B = rng.random((k, d))
        self.R = rng.random((n, c))
        self.H = rng.random((c, d))
        self.sigma_b = np.eye(k)
        self.sigma_r = np.eye(c)
        self.sigma_h = np.eye(c)
        self.tau = alpha / beta
        self.eta = alpha / beta
        self.gamma = alpha / beta

    def update(self, z_mu: np.ndarray, z_var: np.ndarray) -> None:
        """One round of the closed-form updates given ``q(z)`` of the training samples.

        Args:
            z_mu: Posterior means ``(N, K)`` from the encoder.
            z_var: Posterior variances ``(N, K)``.
        """
        y, a, b = self.y, self.alpha, self.beta
        n, d = y.shape
        k, c = z_mu.shape[1], self.H.shape[0]
        # B | Z, R, H
        ztz = z_mu.T @ z_mu + np.diag(z_var.sum(axis=0))
        self.sigma_b = np.linalg.inv(self.gamma * ztz + self.tau * np.eye(k))
        self.B = self.sigma_b @ (self.gamma * z_mu.T @ (y - self.R @ self.H))
        # H | Z, B, R
        rtr = self.R.T @ self.R + n * self.sigma_r
        self.sigma_h = np.linalg.inv(self.eta * np.eye(c) + self.gamma * rtr)
        resid_z = y - z_mu @ self.B
        self.H = self.sigma_h @ (self.gamma * self.R.T @ resid_z)
        # R | Z, B, H
        hht = self.H @ self.H.T + d * self.sigma_h
        self.sigma_r = np.linalg.inv(np.eye(c) + self.gamma * hht)
        self.R = (self.sigma_r @ (self.gamma * self.H @ resid_z.T)).T
        # precisions
        self.tau = (a + 0.5 * k * d) / (b + 0.5 * (np.sum(self.B**2) + d * np.trace(self.sigma_b)))
        self.eta = (a + 0.5 * c * d) / (b + 0.5 * (np.sum(self.H**2) + d * np.trace(self.sigma_h)))
        resid = y - z_mu @ self.B - self.R @ self.H
        self.gamma = (a + 0.5 * n * d) / (b + 0.5 * np.sum(resid**2))

    def offset(self) -> np.ndarray:
        """``R H``, the sample-specific part of the fMRI mean, ``(N, D)``."""
        out: np.ndarray = self.R @ self.H
        return out

    def latent_posterior(
        self, y_new: np.ndarray, z_train: np.ndarray, similarity: np.ndarray, rho: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gaussian ``p(z | y_new)`` with ``r`` integrated out and the k-NN prior.

        ``Cov(y | z) = H^T H + I / gamma`` has inverse ``T = gamma I - gamma^2 H^T (I +
        gamma H H^T)^-1 H`` (Woodbury; never formed, it is ``D x D``). With ``s`` the
        similarities of ``y_new`` to the training fMRI, the prior precision is
        ``(1 + rho sum(s)) I`` and the prior mean contribution ``rho Z^T s``:
        ``Sigma = (B T B^T + (1 + rho sum(s)) I)^-1`` and
        ``mu = Sigma (B T y_new + rho Z^T s)``.

        Args:
            y_new: fMRI of one sample, ``(D,)``.
            z_train: Training latents ``(N, K)``.
            similarity: ``s``, ``(N,)``.
            rho: Weight of the k-NN prior.

        Returns:
            ``(mu, Sigma)`` with shapes ``(K,)`` and ``(K, K)``.
        """
        g, B, H = self.gamma, self.B, self.H
        c, k = H.shape[0], B.shape[0]
        hht = H @ H.T + H.shape[1] * self.sigma_h
        m_inv = np.linalg.inv(np.eye(c) + g * hht)
        bh = B @ H.T
        btb = g * (B @ B.T) - g**2 * (bh @ m_inv @ bh.T)
        bty = g * (B @ y_new) - g**2 * (bh @ (m_inv @ (H @ y_new)))
        precision = btb + (1.0 + rho * similarity.sum()) * np.eye(k)
        sigma = np.linalg.inv(0.5 * (precision + precision.T))
        mu = sigma @ (bty + rho * z_train.T @ similarity)
        return mu, sigma


def knn_similarity(y_train: np.ndarray, y_new: np.ndarray, k: int, t: float) -> np.ndarray:
    """Heat-kernel similarities ``exp(-||y_i - y_new||^2 / (2 t^2))`` to the ``k`` nearest.

    Args:
        y_train: ``(N, D)``.
        y_new: ``(D,)``.
        k: Number of neighbours kept (the rest are zero).
        t: Kernel width.

    Returns:
        ``(N,)`` similarities.
    """
    d2 = np.sum((y_train - y_new) ** 2, axis=1)
    w = np.exp(-d2 / (2.0 * t * t))
    s = np.zeros_like(w)
    nearest = np.argsort(d2, kind="stable")[: min(k, len(d2))]
    s[nearest] = w[nearest]
    return s


class DGMMReconstruction(ReconstructionObjective):
    """Tune DGMM on the "69" fMRI dataset; the value is the FD of fMRI-predicted test images.

    Each trial suggests the seed grid (``K`` latent size, ``intermediate_dim`` hidden width,
    ``batch_size``, ``maxiter`` outer iterations), trains DGMM on the 90 training pairs
    (each iteration: one VAE epoch, then one round of closed-form fMRI-side updates),
    reconstructs the 10 test stimuli from their fMRI alone, writes them and the stimuli as PNG
    folders and returns ``calculate_fid(stimulus_folder, reconstructed_folder)``, the seed
    script's workflow. Every ``report_every`` iterations the same distance of the current
    test reconstructions is passed to ``trial.report``.

    Ten images in 64-d features (the default extractor) give a singular covariance; the
    value is then strongly biased (a :class:`optuna_qlearn.fid.FIDSampleSizeWarning` says so)
    but still a fixed, comparable statistic for ranking configurations on this dataset.

    Example:

        .. code-block:: python

            import optuna
            from optuna_qlearn.objectives import DGMMReconstruction

            objective = DGMMReconstruction("../shared/data/digit69/digit69_28x28.mat")
            study = optuna.create_study(direction="minimize")
            study.optimize(objective, n_trials=30)

    Args:
        data: Path of ``digit69_28x28.mat`` (never copied; not shipped).
        extractor: Feature extractor (see :func:`optuna_qlearn.fid.get_extractor`).
        seed: Seed of initialisation, training noise and Monte-Carlo samples.
        filters: Channels of the VAE's convolutions.
        n_components: ``C``, size of the fMRI view's sample-specific latent.
        fmri_weight: Weight of the fMRI term in the encoder's ELBO (``0``: as the Keras code).
        rho: Weight of the k-NN prior on test latents.
        n_neighbors: ``k`` of the k-NN prior.
        kernel_width: ``t`` of the heat kernel.
        mc_samples: Monte-Carlo latent samples averaged per test reconstruction.
        lr: Adam learning rate.
        image_dir: Where the PNG folders go (temporary when ``None``).
        cache: Replay results of repeated parameter sets.
        weights: Weights file for an Inception extractor.
        sha256: Expected sha256 of ``weights``.
        report_every: Report every this many iterations (and at the last one).
        blas_threads: Limit of NumPy's BLAS threads during a trial (``None``: no limit).
    """

    def __init__(
        self,
        data: str | Path,
        *,
        extractor: str | Callable[[np.ndarray], np.ndarray] = "random",
        seed: int = 0,
        filters: int = 8,
        n_components: int = 5,
        fmri_weight: float = 1.0,
        rho: float = 0.1,
        n_neighbors: int = 10,
        kernel_width: float = 10.0,
        mc_samples: int = 50,
        lr: float = 1e-3,
        **common: Unpack[ReconstructionOptions],
    ) -> None:
        super().__init__(extractor=extractor, seed=seed, **common)
        for name, value in (
            ("filters", filters),
            ("n_components", n_components),
            ("n_neighbors", n_neighbors),
            ("mc_samples", mc_samples),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if fmri_weight < 0 or rho < 0 or kernel_width <= 0 or lr <= 0:
            raise ValueError(
                "fmri_weight and rho must be >= 0, kernel_width and lr > 0; got "
                f"{fmri_weight}, {rho}, {kernel_width}, {lr}"
            )
        self.data = load_digit69(data)
        self.filters = filters
        self.n_components = n_components
        self.fmri_weight = fmri_weight
        self.rho = rho
        self.mc_samples = mc_samples
        self.lr = lr
        self.x_train = torch.from_numpy(self.data.x_train[:, None])
        self.y_train = torch.from_numpy(self.data.y_train)
        self._similarity = np.stack(
            [
                knn_similarity(self.data.y_train, y, n_neighbors, kernel_width)
                for y in self.data.y_test
            ]
        )

    def stimuli(self) -> np.ndarray:
        """The 10 test stimuli, ``(10, 28, 28)``."""
        return self.data.x_test

    @torch.no_grad()
    def _encode_all(self, model: ConvVAE28) -> tuple[np.ndarray, np.ndarray]:
        mu, logvar = model.encode(self.x_train)
        return mu.double().numpy(), logvar.exp().double().numpy()

    @torch.no_grad()
    def _reconstruct_test(self, model: ConvVAE28, view: FMRIView) -> np.ndarray:
        z_train, _ = self._encode_all(model)
        rng = np.random.default_rng(self.seed)
        samples = []
        for y, s in zip(self.data.y_test, self._similarity, strict=True):
            mu, sigma = view.latent_posterior(y, z_train, s, self.rho)
            eps = rng.standard_normal((self.mc_samples, mu.shape[0]))
            samples.append(mu + np.sqrt(np.clip(np.diag(sigma), 0.0, None)) * eps)
        z = torch.from_numpy(np.concatenate(samples).astype(np.float32))
        images = torch.sigmoid(model.decode_logits(z))[:, 0]
        return images.reshape(len(samples), self.mc_samples, 28, 28).mean(dim=1).numpy()

    def iterate(self, params: Mapping[str, int]) -> Iterator[Callable[[], np.ndarray]]:
        """Alternate a VAE epoch and the fMRI updates ``maxiter`` times.

        After each iteration, yields a getter of the test images reconstructed from fMRI.
        """
        p = check_params(params)
        torch.manual_seed(self.seed)
        gen = torch_generator(self.seed)
        model = ConvVAE28(p["K"], p["intermediate_dim"], self.filters)
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        view = FMRIView(
            self.data.y_train, p["K"], self.n_components, np.random.default_rng(self.seed)
        )
        view.update(*self._encode_all(model))
        n = self.x_train.shape[0]
        for _ in range(p["maxiter"]):
            model.train()
            b_t = torch.from_numpy(view.B).float()
            target = (self.y_train - torch.from_numpy(view.offset())).float()
            gamma = float(view.gamma)
            for idx in torch.randperm(n, generator=gen).split(p["batch_size"]):
                x = self.x_train[idx]
                mu, logvar = model.encode(x)
                z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen)
                rec = F.binary_cross_entropy_with_logits(model.decode_logits(z), x, reduction="sum")
                kl = -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp())
                loss = rec + kl
                if self.fmri_weight > 0:
                    fmri = 0.5 * gamma * torch.sum((target[idx] - z @ b_t) ** 2)
                    loss = loss + self.fmri_weight * fmri
                opt.zero_grad()
                (loss / x.shape[0]).backward()
                opt.step()
            model.eval()
            view.update(*self._encode_all(model))
            yield lambda: self._reconstruct_test(model, view)
