"""A convolutional VAE on scikit-learn's bundled 8x8 digits, scored by Frechet distance.

The embedded default objective of the FID workload: no download, no data files (the
digits ship inside scikit-learn), a few seconds per trial on one CPU thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from optuna_qlearn.objectives._reconstruction import (
    ConvVAE,
    ReconstructionObjective,
    ReconstructionOptions,
    check_params,
    torch_generator,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["ConvVAE8", "VAEReconstruction", "load_digits_split"]


def load_digits_split(
    test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 1797 8x8 digits, split stratified into train and test.

    Args:
        test_fraction: Fraction of images in the test split.
        seed: Seed of the split.

    Returns:
        ``(x_train, y_train, x_test, y_test)``; images are float32 ``(N, 8, 8)`` in
        ``[0, 1]`` (the original 0..16 grey levels divided by 16).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, digits.target, test_size=test_fraction, random_state=seed, stratify=digits.target
    )
    return x_tr, y_tr, x_te, y_te


class ConvVAE8(ConvVAE):
    """Convolutional VAE for 1x8x8 images.

    Encoder: conv 3x3 (1 -> 16) -> conv 3x3 stride 2 (16 -> 32, 4x4) -> dense
    ``intermediate_dim`` -> mean and log-variance of a ``latent_dim`` Gaussian. The decoder
    mirrors it (dense, dense to 32x4x4, transposed conv to 16x8x8, conv to 1x8x8 logits).

    Args:
        latent_dim: Latent size ``K``.
        intermediate_dim: Width of the dense hidden layers.
    """

    def __init__(self, latent_dim: int, intermediate_dim: int) -> None:
        super().__init__(latent_dim, intermediate_dim, 8, (16, 32), False)

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Negative ELBO per image (Bernoulli pixels, standard normal prior), batch mean."""
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator)
        z = mu + torch.exp(0.5 * logvar) * eps
        rec = F.binary_cross_entropy_with_logits(self.decode_logits(z), x, reduction="sum")
        kl = -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp())
        return (rec + kl) / x.shape[0]

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean: ``sigmoid(decoder(E[z | x]))``."""
        mu, _ = self.encode(x)
        return torch.sigmoid(self.decode_logits(mu))


class VAEReconstruction(ReconstructionObjective):
    """Tune a convolutional VAE on 8x8 digits; the value is the FD of its test reconstructions.

    Each trial suggests the seed grid (``K`` in 2..10, ``intermediate_dim`` in {64, 128, 256},
    ``batch_size`` in {8, 16, 32}, ``maxiter`` in {10, 20, 40}), trains a :class:`ConvVAE8`
    with latent size ``K`` and hidden width ``intermediate_dim`` for ``maxiter`` epochs
    (Adam, learning rate ``lr``) over the training images, reports every ``report_every`` epochs the
    Frechet distance between the test-set reconstructions and the test images
    (``trial.report``, so pruners work), then writes both sets as PNG folders and returns
    :func:`optuna_qlearn.fid.calculate_fid` of the two folders.

    With the default ``extractor="random"`` the value is the Frechet distance in the features
    of :class:`optuna_qlearn.fid.RandomConvFeatures`, not FID comparable to published numbers.

    To keep a trial to a few seconds on one CPU thread, an epoch runs over a fixed stratified
    subset of ``train_images`` training images (the seed grid's values are kept; the subset
    sets what an epoch costs). The test set is the 20% stratified split (360 images), more
    than the 64 feature dimensions of the default extractor.

    Example:

        .. code-block:: python

            import optuna
            from optuna_qlearn.objectives import VAEReconstruction

            study = optuna.create_study(direction="minimize")
            study.optimize(VAEReconstruction(), n_trials=30)
            print(study.best_params)

    Args:
        extractor: Feature extractor (``"random"``, ``"inception"`` with ``weights``, or a
            callable).
        seed: Seed of the data subset, the initialisation and the training noise.
        train_images: Training images per epoch (``None``: all 1437).
        lr: Adam learning rate.
        image_dir: Where the PNG folders go (temporary when ``None``).
        cache: Replay results of repeated parameter sets (see the base class).
        weights: Weights file for an Inception extractor.
        sha256: Expected sha256 of ``weights``.
        report_every: Report the distance every this many epochs (and at the last one).
        blas_threads: Limit of NumPy's BLAS threads during a trial (``None``: no limit).
    """

    def __init__(
        self,
        *,
        extractor: str | Callable[[np.ndarray], np.ndarray] = "random",
        seed: int = 0,
        train_images: int | None = 128,
        lr: float = 1e-3,
        **common: Unpack[ReconstructionOptions],
    ) -> None:
        super().__init__(extractor=extractor, seed=seed, **common)
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        x_tr, y_tr, x_te, _ = load_digits_split(seed=0)
        if train_images is not None:
            if not 2 <= train_images <= len(x_tr):
                raise ValueError(f"train_images must be in [2, {len(x_tr)}], got {train_images}")
            if train_images < len(x_tr):
                from sklearn.model_selection import train_test_split

                x_tr, _, _, _ = train_test_split(
                    x_tr,
                    y_tr,
                    train_size=train_images,
                    random_state=self.seed,
                    stratify=y_tr if train_images >= 10 else None,
                )
        self.lr = lr
        self.x_train = torch.from_numpy(np.ascontiguousarray(x_tr[:, None]))
        self.x_test = torch.from_numpy(np.ascontiguousarray(x_te[:, None]))

    def stimuli(self) -> np.ndarray:
        """The 360 test images, ``(360, 8, 8)`` in ``[0, 1]``."""
        return self.x_test[:, 0].numpy()

    def iterate(self, params: Mapping[str, int]) -> Iterator[Callable[[], np.ndarray]]:
        """Train for ``maxiter`` epochs; after each, yield a getter of the test reconstructions."""
        p = check_params(params)
        torch.manual_seed(self.seed)
        model = ConvVAE8(p["K"], p["intermediate_dim"])
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        gen = torch_generator(self.seed)
        n = self.x_train.shape[0]
        for _ in range(p["maxiter"]):
            model.train()
            order = torch.randperm(n, generator=gen)
            for start in range(0, n, p["batch_size"]):
                batch = self.x_train[order[start : start + p["batch_size"]]]
                opt.zero_grad()
                loss = model.loss(batch, gen)
                loss.backward()
                opt.step()
            model.eval()
            yield lambda: model.reconstruct(self.x_test)[:, 0].numpy()
