"""A global model of where good grid points lie, shared by every state.

Tabular Q-values only generalize along the moves an agent has tried, so with a
budget of ~100 trials on grids of thousands of points they say little about
points far from the path. :class:`GridPrior` is a cheap, factorized density
ratio over grid indices in the spirit of TPE: per axis, a kernel-smoothed
histogram ``l`` of the best points (the top ``gamma`` fraction, at most
``max_good``) and one ``g`` of the rest; a state's score is
``sum_i log l_i(s_i) - log g_i(s_i)``. The agent uses it to score moves into
unvisited points (instead of ``q_init``) and to choose some episode restarts.

Smoothed counts are updated incrementally (``O(d * m)`` per evaluated point,
``m`` points per axis) and the model is refitted in ``O(d * m * max_good)`` at
most once per proposal, so its cost does not grow with the number of trials.

Pure NumPy; nothing here knows about Optuna.

Example:

    .. code-block:: python

        import numpy as np
        from optuna_qlearn.prior import GridPrior

        prior = GridPrior((5, 5))
        for state in [(0, 0), (4, 4), (0, 1), (3, 4)]:
            prior.add(state)
        prior.fit([(0, 0), (0, 1)])  # the best points, best first
        assert prior.score((0, 0)) > prior.score((4, 4))
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

State = tuple[int, ...]


class GridPrior:
    """Factorized good-vs-rest density ratio over grid indices.

    Args:
        shape: Points per axis.
        categorical: Per axis, whether it is unordered (no smoothing across values).
        bandwidth: Kernel width of ordered axes, as a fraction of the axis length
            (at least one grid step).
        prior_weight: Weight of the uniform prior mixed into both densities.
    """

    def __init__(
        self,
        shape: Sequence[int],
        categorical: Sequence[bool] | None = None,
        bandwidth: float = 0.1,
        prior_weight: float = 1.0,
    ) -> None:
        self.shape = tuple(int(n) for n in shape)
        cat = list(categorical) if categorical is not None else [False] * len(self.shape)
        if len(cat) != len(self.shape):
            raise ValueError(f"Got {len(cat)} categorical flags for {len(self.shape)} axes.")
        if not bandwidth > 0:
            raise ValueError(f"bandwidth must be positive, got {bandwidth}.")
        self.prior_weight = float(prior_weight)
        self._kernels: list[np.ndarray] = []
        for n, is_cat in zip(self.shape, cat):
            idx = np.arange(n)
            if is_cat:
                k = np.eye(n)
            else:
                h = max(1.0, bandwidth * n)
                k = np.exp(-0.5 * ((idx[:, None] - idx[None, :]) / h) ** 2)
            self._kernels.append(k / k.sum(axis=1, keepdims=True))
        # Per axis, the kernel-smoothed counts of every point (updated by ``add``).
        self._smoothed = [np.zeros(n) for n in self.shape]
        self.n = 0
        #: Per axis, ``log l - log g`` at every index (after :meth:`fit`).
        self.log_ratio: list[np.ndarray] = [np.zeros(n) for n in self.shape]
        self._ratio_lists: list[list[float]] = [r.tolist() for r in self.log_ratio]
        self._l: list[np.ndarray] = [np.full(n, 1.0 / n) for n in self.shape]
        self.fitted = False

    def add(self, state: Sequence[int]) -> None:
        """Count one evaluated point."""
        for smoothed, kernel, i in zip(self._smoothed, self._kernels, state):
            smoothed += kernel[int(i)]
        self.n += 1

    def fit(self, good: Sequence[State]) -> None:
        """Refit ``l`` on the ``good`` points and ``g`` on every other counted point."""
        self.fitted = True
        columns = np.array(good, dtype=np.intp).reshape(len(good), len(self.shape)).T
        for axis, (n, kernel, smoothed, column) in enumerate(
            zip(self.shape, self._kernels, self._smoothed, columns)
        ):
            # Kernel rows of the good points, and the rest as all minus good (the
            # good points are counted points): no n x n product per fit.
            good_smoothed = kernel[column].sum(axis=0)
            uniform = self.prior_weight / n
            lo = good_smoothed + uniform
            hi = np.maximum(smoothed - good_smoothed, 0.0) + uniform
            lo /= lo.sum()
            hi /= hi.sum()
            self._l[axis] = lo
            self.log_ratio[axis] = np.log(lo) - np.log(hi)
        self._ratio_lists = [r.tolist() for r in self.log_ratio]

    @property
    def ratios(self) -> list[list[float]]:
        """Per axis, ``log l - log g`` at every index, as plain lists (do not mutate)."""
        return self._ratio_lists

    def score(self, state: Sequence[int]) -> float:
        """``log l(state) - log g(state)`` (0 before the first :meth:`fit`)."""
        # Plain lists: called for every neighbour of every state a walk visits.
        return float(sum(r[i] for r, i in zip(self._ratio_lists, state)))

    def sample(self, rng: np.random.RandomState, k: int) -> list[State]:
        """``k`` states drawn from the good-point density ``l`` (axes independent)."""
        # Inverse CDF per axis, one uniform draw per coordinate.
        u = rng.random_sample((len(self.shape), k))
        cols = [
            np.minimum(np.searchsorted(np.cumsum(p), u[i], side="right"), n - 1).tolist()
            for i, (n, p) in enumerate(zip(self.shape, self._l))
        ]
        return list(zip(*cols))


def n_good(n: int, gamma: float, max_good: int) -> int:
    """How many of ``n`` points count as good: ``ceil(gamma * n)``, in ``[1, max_good]``."""
    return max(1, min(max_good, math.ceil(gamma * n)))
