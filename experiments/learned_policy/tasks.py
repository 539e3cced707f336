"""Procedurally generated training tasks: random functions on random grids.

A task is a finite grid (1-10 axes, 2-40 values each, some axes categorical) with a
table of true values and an optional observation noise. The generator mixes, with
random weights: a rotated (non-separable) or axis-aligned quadratic bowl, a mixture
of Gaussian wells (multimodal, non-separable), a Rastrigin-like rugged term,
per-value effects on categorical axes, pairwise categorical interactions, and
optionally quantizes the result into plateaus. Nothing here reads a benchmark
problem: the suite's problems are never trained on.

Example:

    .. code-block:: python

        import numpy as np
        from experiments.learned_policy.tasks import generate_task

        task = generate_task(np.random.default_rng(0))
        print(task.shape, task.kinds, task.table.min())
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Largest number of grid points of a generated task (keeps tables cheap).
MAX_POINTS = 50_000


@dataclass(frozen=True)
class Task:
    """A grid, its true values and its observation noise.

    Args:
        shape: Points per axis.
        categorical: Per axis, whether it is unordered.
        table: True values, shape ``shape`` (minimized).
        noise: Standard deviation of the Gaussian noise added to each observation.
        kinds: The ingredients the function was built from (for logging).
    """

    shape: tuple[int, ...]
    categorical: tuple[bool, ...]
    table: np.ndarray
    noise: float
    kinds: tuple[str, ...]

    def observe(self, flat: int, rng: np.random.Generator) -> float:
        """The value an evaluation of flat grid index ``flat`` returns."""
        value = float(self.table.flat[flat])
        return value + float(rng.normal(0.0, self.noise)) if self.noise > 0 else value


def _shape(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """Random axis sizes and categorical flags, at most :data:`MAX_POINTS` points."""
    d = int(rng.integers(1, 11))
    sizes: list[int] = []
    cats: list[bool] = []
    for _ in range(d):
        is_cat = bool(rng.random() < 0.25)
        size = (
            int(rng.integers(2, 7))
            if is_cat
            else int(rng.choice([2, 3, 4, 5, 6, 8, 10, 16, 21, 41]))
        )
        sizes.append(size)
        cats.append(is_cat)
    while np.prod(sizes) > MAX_POINTS:  # shrink the largest axis until it fits
        i = int(np.argmax(sizes))
        sizes[i] = max(2, sizes[i] // 2)
    return tuple(sizes), tuple(cats)


def generate_task(rng: np.random.Generator) -> Task:
    """One random task.

    Args:
        rng: The generator (the task is a deterministic function of its state).

    Returns:
        The task.
    """
    shape, cats = _shape(rng)
    d = len(shape)
    grids = np.meshgrid(*[np.linspace(0.0, 1.0, n) for n in shape], indexing="ij")
    x = np.stack([g.ravel() for g in grids], axis=1)  # (N, d) in [0, 1]
    ordered = np.array([not c for c in cats])
    f = np.zeros(len(x))
    kinds: list[str] = []
    if ordered.any():
        xo = x[:, ordered]
        do = xo.shape[1]
        center = rng.uniform(0.0, 1.0, do)
        if rng.random() < 0.7:
            if rng.random() < 0.5 and do > 1:  # rotated, anisotropic: not separable
                q, _ = np.linalg.qr(rng.normal(size=(do, do)))
                scales = np.exp(rng.uniform(-1.5, 1.5, do))
                z = (xo - center) @ q * scales
                kinds.append("rotated-bowl")
            else:
                z = (xo - center) * np.exp(rng.uniform(-1.5, 1.5, do))
                kinds.append("bowl")
            f += rng.uniform(0.5, 2.0) * np.sum(z**2, axis=1)
        if rng.random() < 0.5:  # Gaussian wells: multimodal
            k = int(rng.integers(2, 9))
            for _ in range(k):
                mu = rng.uniform(0.0, 1.0, do)
                width = rng.uniform(0.05, 0.3)
                f -= rng.uniform(0.3, 1.5) * np.exp(
                    -0.5 * np.sum((xo - mu) ** 2, axis=1) / width**2
                )
            kinds.append(f"wells{k}")
        if rng.random() < 0.35:  # rugged
            freq = rng.uniform(3.0, 12.0)
            f += (
                rng.uniform(0.05, 0.5)
                * np.sum(np.cos(2 * np.pi * freq * (xo - center)), axis=1)
                / do
            )
            kinds.append("rugged")
    if not ordered.all():
        idx = np.stack(np.unravel_index(np.arange(len(x)), shape), axis=1)
        cat_axes = [i for i in range(d) if cats[i]]
        for i in cat_axes:
            f += rng.uniform(0.0, 1.0) * rng.normal(size=shape[i])[idx[:, i]]
        if len(cat_axes) >= 2 and rng.random() < 0.5:
            a, b = rng.choice(cat_axes, size=2, replace=False)
            f += rng.uniform(0.2, 1.0) * rng.normal(size=(shape[a], shape[b]))[idx[:, a], idx[:, b]]
            kinds.append("cat-interaction")
        kinds.append(f"cat{len(cat_axes)}")
    if not kinds or np.ptp(f) == 0:
        f += rng.normal(size=len(f))  # nothing to learn from: a random table
        kinds.append("random")
    if rng.random() < 0.2:  # plateaus
        levels = int(rng.integers(5, 30))
        lo, hi = f.min(), f.max()
        f = np.floor((f - lo) / (hi - lo + 1e-12) * levels)
        kinds.append(f"plateaus{levels}")
    f = (f - f.mean()) / (f.std() + 1e-12)
    noise = float(rng.choice([0.0, 0.0, 0.0, 0.02, 0.1]))
    if noise:
        kinds.append(f"noise{noise}")
    return Task(shape, cats, f.reshape(shape), noise, tuple(kinds))
