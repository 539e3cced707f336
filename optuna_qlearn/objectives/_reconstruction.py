"""Shared machinery of the image-reconstruction objectives (private).

One concept lives here: *an Optuna objective whose value is the Frechet distance between
a model's reconstructed images and the original stimuli*. Subclasses only say how to get
the stimuli and how to train a model for given parameters, yielding the reconstructions
after each iteration; this base class suggests the seed grid, reports the per-iteration
distance with ``trial.report`` (so pruners work), writes the final reconstructions and the
stimuli to PNG folders and scores them with :func:`optuna_qlearn.fid.calculate_fid`, exactly
as the seed script did.
"""

from __future__ import annotations

import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import optuna
import torch
from torch import nn

from optuna_qlearn.fid import (
    calculate_fid,
    extract_features,
    feature_statistics,
    frechet_distance,
    get_extractor,
)

#: The seed use case's search space: ``K`` (latent size), ``intermediate_dim`` (hidden
#: width), ``batch_size`` and ``maxiter`` (training iterations).
SEED_GRID: dict[str, list[int]] = {
    "K": list(range(2, 11)),
    "intermediate_dim": [64, 128, 256],
    "batch_size": [8, 16, 32],
    "maxiter": [10, 20, 40],
}


def suggest_seed_grid(trial: optuna.trial.BaseTrial) -> dict[str, int]:
    """Suggest the seed grid's four parameters on ``trial``.

    ``K`` is an integer in ``[2, 10]``; the other three are ordered categorical choices.

    Args:
        trial: The Optuna trial.

    Returns:
        ``{"K": ..., "intermediate_dim": ..., "batch_size": ..., "maxiter": ...}``.
    """
    return {
        "K": trial.suggest_int("K", SEED_GRID["K"][0], SEED_GRID["K"][-1]),
        "intermediate_dim": int(
            trial.suggest_categorical("intermediate_dim", SEED_GRID["intermediate_dim"])
        ),
        "batch_size": int(trial.suggest_categorical("batch_size", SEED_GRID["batch_size"])),
        "maxiter": int(trial.suggest_categorical("maxiter", SEED_GRID["maxiter"])),
    }


def check_params(params: Mapping[str, Any]) -> dict[str, int]:
    """Validate a parameter dict of the seed grid's four (positive integer) parameters.

    Args:
        params: Must hold ``K``, ``intermediate_dim``, ``batch_size`` and ``maxiter``.

    Returns:
        The four values as ``int``.

    Raises:
        ValueError: If one is missing or not a positive integer.
    """
    out: dict[str, int] = {}
    for name in SEED_GRID:
        if name not in params:
            raise ValueError(f"missing parameter {name!r}; expected {sorted(SEED_GRID)}")
        value = params[name]
        if isinstance(value, bool) or int(value) != value or int(value) < 1:
            raise ValueError(f"parameter {name!r} must be a positive integer, got {value!r}")
        out[name] = int(value)
    return out


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Quantize ``[0, 1]`` images to ``uint8`` as a PNG file would store them."""
    return np.round(np.clip(np.asarray(images, dtype=np.float64), 0.0, 1.0) * 255.0).astype(
        np.uint8
    )


def write_png_folder(folder: str | Path, images: np.ndarray) -> Path:
    """Write grey images ``(N, H, W)`` in ``[0, 1]`` as ``00000.png``, ``00001.png``, ...

    Args:
        folder: Created if missing; existing PNG files there are replaced.
        images: Array of shape ``(N, H, W)``.

    Returns:
        The folder path.
    """
    from PIL import Image

    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.png"):
        old.unlink()
    for i, img in enumerate(to_uint8(images)):
        Image.fromarray(img, mode="L").save(path / f"{i:05d}.png")
    return path


class ConvVAE(nn.Module):
    """Convolutional VAE for square 1-channel images, the base of both objectives' models.

    Encoder: two 3x3 convolutions (1 -> ``channels[0]`` -> ``channels[1]``), one of them
    of stride 2 (the first when ``downsample_first``), then a dense ``intermediate_dim``
    layer -> mean and log-variance of a ``latent_dim`` Gaussian. The decoder mirrors it:
    dense, dense to ``channels[1] x side/2 x side/2``, a transposed convolution back to
    ``channels[0] x side x side``, a 3x3 convolution to Bernoulli logits.

    Args:
        latent_dim: Latent size ``K``.
        intermediate_dim: Width of the dense hidden layers.
        side: Image height and width (even).
        channels: Channels of the two convolutions.
        downsample_first: Whether the first convolution (else the second) has stride 2.
    """

    def __init__(
        self,
        latent_dim: int,
        intermediate_dim: int,
        side: int,
        channels: tuple[int, int],
        downsample_first: bool,
    ) -> None:
        super().__init__()
        c1, c2 = channels
        half = side // 2
        s1, s2 = (2, 1) if downsample_first else (1, 2)
        self.side = side
        self.enc = nn.Sequential(
            nn.Conv2d(1, c1, 3, stride=s1, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=s2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(c2 * half * half, intermediate_dim),
            nn.ReLU(),
        )
        self.mu = nn.Linear(intermediate_dim, latent_dim)
        self.logvar = nn.Linear(intermediate_dim, latent_dim)
        self.dec = nn.Sequential(
            nn.Linear(latent_dim, intermediate_dim),
            nn.ReLU(),
            nn.Linear(intermediate_dim, c2 * half * half),
            nn.ReLU(),
            nn.Unflatten(1, (c2, half, half)),
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, 1, 3, padding=1),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of ``q(z | x)`` for ``x`` of shape ``(N, 1, side, side)``."""
        h = self.enc(x)
        return self.mu(h), self.logvar(h)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits ``(N, 1, side, side)`` of ``p(x | z)``."""
        out: torch.Tensor = self.dec(z)
        return out


class ReconstructionOptions(TypedDict, total=False):
    """The keyword arguments every :class:`ReconstructionObjective` takes besides
    ``extractor`` and ``seed`` (see its ``Args``)."""

    image_dir: str | Path | None
    cache: bool
    weights: str | Path | None
    sha256: str | None
    report_every: int
    blas_threads: int | None


class ReconstructionObjective(ABC):
    """Base class: an Optuna objective scoring reconstructions by Frechet distance.

    Args:
        extractor: Feature extractor for the distance (see
            :func:`optuna_qlearn.fid.get_extractor`); ``"random"`` is the offline default.
        seed: Seed of model initialisation and training; the value is a deterministic
            function of the parameters for a given seed (on CPU with one thread).
        image_dir: Where to write ``stimuli/`` and ``trial_<number>/`` PNG folders; a
            temporary folder (deleted after scoring) when ``None``.
        cache: Remember the value and intermediate curve per parameter set and replay them
            when a trial repeats a parameter set (same seed, so the same result); useful
            for samplers that revisit grid points.
        weights: Weights file for an Inception extractor.
        sha256: Expected sha256 of ``weights``.
        report_every: Score and ``trial.report`` the reconstructions after every
            ``report_every``-th iteration (steps are the 1-based iteration numbers, so all
            trials report at the same steps and pruners compare like with like).
        blas_threads: Limit of NumPy's BLAS threads while a trial runs (``None``: no limit).
            PyTorch's thread count is left to the caller (``torch.set_num_threads``).
    """

    def __init__(
        self,
        *,
        extractor: str | Callable[[np.ndarray], np.ndarray] = "random",
        seed: int = 0,
        image_dir: str | Path | None = None,
        cache: bool = True,
        weights: str | Path | None = None,
        sha256: str | None = None,
        report_every: int = 5,
        blas_threads: int | None = 1,
    ) -> None:
        if report_every < 1:
            raise ValueError(f"report_every must be >= 1, got {report_every}")
        self.report_every = int(report_every)
        self.blas_threads = blas_threads
        self.extractor = get_extractor(extractor, weights=weights, sha256=sha256)
        self.seed = int(seed)
        self.image_dir = None if image_dir is None else Path(image_dir)
        self.cache = cache
        # parameters -> ([(step, intermediate value), ...], final value)
        self._cache: dict[tuple[tuple[str, int], ...], tuple[list[tuple[int, float]], float]] = {}
        self._stimulus_stats: tuple[np.ndarray, np.ndarray] | None = None

    # -- what subclasses provide ----------------------------------------------------------

    @abstractmethod
    def stimuli(self) -> np.ndarray:
        """The reference images ``(N, H, W)`` in ``[0, 1]``, the target of the distance."""

    @abstractmethod
    def iterate(self, params: Mapping[str, int]) -> Iterator[Callable[[], np.ndarray]]:
        """Train for ``params["maxiter"]`` iterations, yielding after each one.

        Each yielded item is a function returning the current reconstructions (shape of
        :meth:`stimuli`, values in ``[0, 1]``); it is called only when they are scored, and
        before the generator is resumed.
        """

    # -- scoring ----------------------------------------------------------------------------

    def _distance_in_memory(self, recon: np.ndarray) -> float:
        if self._stimulus_stats is None:
            stim = to_uint8(self.stimuli()).astype(np.float32) / 255.0
            self._stimulus_stats = feature_statistics(extract_features(stim, self.extractor))
        feats = extract_features(to_uint8(recon).astype(np.float32) / 255.0, self.extractor)
        return frechet_distance(*self._stimulus_stats, *feature_statistics(feats))

    def _distance_via_folders(self, recon: np.ndarray, name: str) -> float:
        if self.image_dir is None:
            with tempfile.TemporaryDirectory(prefix="optuna_qlearn_fid_") as tmp:
                return self._score_in(Path(tmp), recon, name)
        return self._score_in(self.image_dir, recon, name)

    def _score_in(self, root: Path, recon: np.ndarray, name: str) -> float:
        stimulus_folder = root / "stimuli"
        if not stimulus_folder.is_dir() or not any(stimulus_folder.glob("*.png")):
            write_png_folder(stimulus_folder, self.stimuli())
        reconstructed_folder = write_png_folder(root / name, recon)
        return calculate_fid(stimulus_folder, reconstructed_folder, extractor=self.extractor)

    # -- running ----------------------------------------------------------------------------

    def run(
        self,
        params: Mapping[str, Any],
        report: Callable[[float, int], bool] | None = None,
        name: str = "reconstructed",
    ) -> float:
        """Train with ``params`` and return the final distance (no Optuna trial needed).

        Args:
            params: ``K``, ``intermediate_dim``, ``batch_size``, ``maxiter``.
            report: Called as ``report(value, step)`` after each iteration with the distance
                of the current reconstructions; return ``True`` to stop (prune).
            name: Name of the reconstruction folder under ``image_dir``.

        Returns:
            The Frechet distance between the stimulus folder and the final reconstruction
            folder.

        Raises:
            optuna.TrialPruned: If ``report`` asked to stop.
        """
        from threadpoolctl import threadpool_limits

        p = check_params(params)
        # Small matrices: threaded BLAS only adds contention (10x slower under load).
        with threadpool_limits(limits=self.blas_threads):
            return self._run(p, report, name)

    def _run(
        self, p: dict[str, int], report: Callable[[float, int], bool] | None, name: str
    ) -> float:
        key = tuple(sorted(p.items()))
        cached = self._cache.get(key) if self.cache else None
        if cached is not None:
            cached_curve, cached_final = cached
            for step, value in cached_curve:
                if report is not None and report(value, step):
                    raise optuna.TrialPruned(f"pruned at iteration {step}")
            if report is not None:
                report(cached_final, p["maxiter"])
            return cached_final
        curve: list[tuple[int, float]] = []
        recon: np.ndarray | None = None
        for step, get_recon in enumerate(self.iterate(p), start=1):
            if step == p["maxiter"]:
                recon = get_recon()
            elif step % self.report_every == 0:
                value = self._distance_in_memory(get_recon())
                curve.append((step, value))
                if report is not None and report(value, step):
                    raise optuna.TrialPruned(f"pruned at iteration {step}")
        if recon is None:
            raise RuntimeError(f"the model yielded fewer than maxiter={p['maxiter']} iterations")
        final = self._distance_via_folders(recon, name)
        if report is not None:
            report(final, p["maxiter"])
        if self.cache:
            self._cache[key] = (curve, final)
        return final

    def __call__(self, trial: optuna.trial.Trial) -> float:
        """Suggest the seed grid on ``trial``, train, report per iteration, return the distance.

        Args:
            trial: The Optuna trial.

        Returns:
            The Frechet distance of the final reconstructions to the stimuli.

        Raises:
            optuna.TrialPruned: When the study's pruner stops the trial.
        """
        params = suggest_seed_grid(trial)

        def report(value: float, step: int) -> bool:
            trial.report(value, step)
            return trial.should_prune()

        return self.run(params, report, name=f"trial_{trial.number:05d}")


def torch_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed``."""
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


__all__ = [
    "SEED_GRID",
    "ReconstructionObjective",
    "check_params",
    "suggest_seed_grid",
    "to_uint8",
    "torch_generator",
    "write_png_folder",
]
