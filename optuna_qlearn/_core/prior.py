"""A global model of where good grid points lie, shared by every state.

Tabular Q-values only generalize along the moves an agent has tried, so with a
budget of ~100 trials on grids of thousands of points they say little about
points far from the path. :class:`GridPrior` is a cheap, factorized density
ratio over grid indices in the spirit of TPE: per axis, a kernel-smoothed
histogram ``l`` of the best points (the top ``gamma`` fraction, at most
``max_good``) and one ``g`` of the rest; a state's score is
``sum_i log l_i(s_i) - log g_i(s_i)``. The agent uses it to score moves into
unvisited points (instead of ``q_init``) and to choose some episode restarts.

:class:`JointGridPrior` models the points jointly instead, as Optuna's
multivariate TPE does: each density is a mixture with one product kernel per
point, so it knows which settings are good *together*.

Smoothed counts are updated incrementally (``O(d * m)`` per evaluated point,
``m`` points per axis) and the model is refitted in ``O(d * m * max_good)`` at
most once per proposal, so its cost does not grow with the number of trials.

Pure NumPy; nothing here knows about Optuna.

Example:

    .. code-block:: python

        import numpy as np
        from optuna_qlearn._core.prior import GridPrior

        prior = GridPrior((5, 5))
        for state in [(0, 0), (4, 4), (0, 1), (3, 4)]:
            prior.add(state)
        prior.fit([(0, 0), (0, 1)])  # the best points, best first
        assert prior.score((0, 0)) > prior.score((4, 4))
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from optuna_qlearn._core.qlearning import State


def _axes(
    shape: Sequence[int], categorical: Sequence[bool] | None
) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """Points per axis and per-axis categorical flags (all ordered when ``None``).

    Raises:
        ValueError: If the flags do not match the axes.
    """
    dims = tuple(int(n) for n in shape)
    flags = tuple(bool(c) for c in categorical) if categorical is not None else (False,) * len(dims)
    if len(flags) != len(dims):
        raise ValueError(f"Got {len(flags)} categorical flags for {len(dims)} axes.")
    return dims, flags


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
        self.shape, cat = _axes(shape, categorical)
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

    def score_many(self, states: Sequence[State]) -> list[float]:
        """:meth:`score` of each state."""
        return [self.score(s) for s in states]

    def sample(self, rng: np.random.RandomState, k: int) -> list[State]:
        """``k`` states drawn from the good-point density ``l`` (axes independent)."""
        # Inverse CDF per axis, one uniform draw per coordinate.
        u = rng.random_sample((len(self.shape), k))
        cols = [
            np.minimum(np.searchsorted(np.cumsum(p), u[i], side="right"), n - 1).tolist()
            for i, (n, p) in enumerate(zip(self.shape, self._l))
        ]
        return list(zip(*cols))


class _Mixture(NamedTuple):
    """A mixture of product kernels over the grid: per axis, ``(components, points)``."""

    log_w: np.ndarray  # (components,) log weights
    log_k: list[np.ndarray]  # per axis, log kernel rows
    cum_w: np.ndarray | None  # cumulative weights, for sampling (None: never sampled)
    cdf: list[np.ndarray] | None  # per axis, cumulative kernel rows, for sampling

    def log_pdf(self, idx: np.ndarray) -> np.ndarray:
        """Log density of ``(states, axes)`` grid indices."""
        comp = self.log_w[:, None] + sum(lk[:, idx[:, d]] for d, lk in enumerate(self.log_k))
        top = comp.max(axis=0)
        return np.asarray(top + np.log(np.exp(comp - top).sum(axis=0)))


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF (erf of Abramowitz & Stegun 7.1.26, absolute error below
    1.5e-7: NumPy has no erf, and SciPy is not a dependency of the sampler)."""
    x = np.abs(z) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return np.asarray(0.5 * (1.0 + np.sign(z) * (1.0 - poly * np.exp(-x * x))))


def _axis_kernels(n: int, categorical: bool, column: np.ndarray, prior_weight: float) -> np.ndarray:
    """``(k + 1, n)`` kernel rows, one per point index in ``column`` and the prior last.

    TPE's kernels (Optuna's ``_ParzenEstimator`` with its defaults): on an ordered
    axis, the mass of each grid cell ``[i - 1/2, i + 1/2]`` under a normal centred on
    the point's index, as wide as the larger gap to its neighbouring indices (the
    outermost take their inner gap), clipped to ``[m / min(100, k + 2), m]`` for ``m``
    points; the prior is centred with width ``m``. On a categorical axis, weight 1 on
    the point's choice plus ``prior_weight / (k + 1)`` on every choice; the prior is
    uniform.
    """
    k = len(column)
    if categorical:
        rows = np.full((k + 1, n), prior_weight / (k + 1))
        rows[np.arange(k), column] += 1.0
        rows[k] = 1.0
    else:
        low, high = -0.5, n - 0.5
        mus = column.astype(float)
        order = np.argsort(mus)  # as Optuna sorts (ties matter when weights differ)
        ends = np.concatenate([[low], mus[order], [high]])
        sorted_sigmas = np.maximum(ends[1:-1] - ends[:-2], ends[2:] - ends[1:-1])
        if k >= 2:  # the outermost points ignore the axis ends
            sorted_sigmas[0] = ends[2] - ends[1]
            sorted_sigmas[-1] = ends[-2] - ends[-3]
        sigmas = np.empty(k)
        sigmas[order] = sorted_sigmas
        span = high - low
        sigmas = np.append(np.clip(sigmas, span / min(100.0, k + 2.0), span), span)
        mus = np.append(mus, 0.5 * (low + high))
        edges = np.arange(n + 1, dtype=float) - 0.5
        cdf = _normal_cdf((edges[None, :] - mus[:, None]) / sigmas[:, None])
        rows = np.maximum(np.diff(cdf, axis=1), 1e-300)
    return rows / rows.sum(axis=1, keepdims=True)


def tpe_weights(n: int) -> np.ndarray:
    """TPE's weights of ``n`` points in trial order: 1 for the latest 25, a ramp from
    ``1/n`` to 1 for the older ones (Optuna's ``default_weights``)."""
    if n < 25:
        return np.ones(n)
    return np.concatenate([np.linspace(1.0 / n, 1.0, num=n - 25), np.ones(25)])


class JointGridPrior:
    """Good-vs-rest density ratio of mixtures of product kernels (multivariate TPE).

    :class:`GridPrior` models each axis on its own, so it cannot tell that two
    settings are good *together*. Here both densities are, as in Optuna's
    multivariate TPE (``TPESampler``'s default for single-objective studies),
    mixtures with one component per point, the product over axes of a discrete
    kernel centred on the point's index (see :func:`_axis_kernels` for TPE's
    bandwidth rule), plus one broad prior component: ``l`` over the good points
    (weight 1 each), ``g`` over the rest (TPE's weights: older points count less
    past 25). A state's score is ``log l(s) - log g(s)``; model restarts draw from
    ``l``. The interface is :class:`GridPrior`'s.

    Costs: :meth:`fit` is ``O(n * d * m)`` and a score ``O(n * d)`` for ``n``
    evaluated points, ``d`` axes, ``m`` points per axis, against ``O(d)`` for
    :class:`GridPrior`, so this is for samplers whose other costs dwarf it (the DQN).

    Args:
        shape: Points per axis.
        categorical: Per axis, whether it is unordered.
        prior_weight: Weight of each density's prior component (each point has 1).
        max_rest: Most points ``g`` is fitted on (the latest; ``None``: all, as TPE).
            With it, the cost of a fit stops growing with the trials.

    Example:

        .. code-block:: python

            from optuna_qlearn._core.prior import JointGridPrior

            prior = JointGridPrior((5, 5))
            for state in [(0, 0), (4, 4), (0, 4), (4, 0), (1, 1)]:
                prior.add(state)
            prior.fit([(0, 0), (1, 1)])  # good together: both indices small
            assert prior.score((0, 1)) > prior.score((0, 4))
    """

    def __init__(
        self,
        shape: Sequence[int],
        categorical: Sequence[bool] | None = None,
        prior_weight: float = 1.0,
        max_rest: int | None = None,
    ) -> None:
        self.shape, self.categorical = _axes(shape, categorical)
        if not prior_weight > 0:
            raise ValueError(f"prior_weight must be positive, got {prior_weight}.")
        if max_rest is not None and max_rest < 1:
            raise ValueError(f"max_rest must be at least 1, got {max_rest}.")
        self.prior_weight = float(prior_weight)
        self.max_rest = max_rest
        self._points: list[State] = []
        self._counts: collections.Counter[State] = collections.Counter()
        self.fitted = False
        self._l = self._mixture([], np.ones(0), sampled=True)
        self._g = self._l

    @property
    def n(self) -> int:
        """Number of evaluated points counted."""
        return len(self._points)

    def _mixture(self, points: Sequence[State], weights: np.ndarray, sampled: bool) -> _Mixture:
        cols = np.array(points, dtype=np.intp).reshape(len(points), len(self.shape)).T
        rows = [
            _axis_kernels(n, cat, col, self.prior_weight)
            for n, cat, col in zip(self.shape, self.categorical, cols)
        ]
        w = np.append(weights, self.prior_weight)
        w /= w.sum()
        if not sampled:  # the rest density is only scored: no CDFs to build
            return _Mixture(np.log(w), [np.log(r) for r in rows], None, None)
        return _Mixture(
            np.log(w), [np.log(r) for r in rows], np.cumsum(w), [r.cumsum(1) for r in rows]
        )

    def add(self, state: Sequence[int]) -> None:
        """Count one evaluated point (in trial order)."""
        point = tuple(int(i) for i in state)
        self._points.append(point)
        self._counts[point] += 1

    def fit(self, good: Sequence[State]) -> None:
        """Refit ``l`` on the ``good`` points and ``g`` on every other counted point."""
        self.fitted = True
        left = collections.Counter(tuple(s) for s in good)
        rest = []
        if self.max_rest is None:
            for p in self._points:
                if left[p] > 0:
                    left[p] -= 1
                else:
                    rest.append(p)
        else:  # the latest max_rest others (the oldest carry the least weight anyway)
            seen: collections.Counter[State] = collections.Counter()
            for p in reversed(self._points):
                seen[p] += 1
                if self._counts[p] - seen[p] < left[p]:
                    continue  # one of p's earliest occurrences, which the good points take
                rest.append(p)
                if len(rest) == self.max_rest:
                    break
            rest.reverse()
        self._l = self._mixture(good, np.ones(len(good)), sampled=True)
        self._g = self._mixture(rest, tpe_weights(len(rest)), sampled=False)

    def _idx(self, states: Sequence[Sequence[int]]) -> np.ndarray:
        return np.asarray(states, dtype=np.intp).reshape(len(states), len(self.shape))

    def log_densities(self, states: Sequence[State]) -> tuple[np.ndarray, np.ndarray]:
        """``(log l, log g)`` of each state (after :meth:`fit`)."""
        idx = self._idx(states)
        return self._l.log_pdf(idx), self._g.log_pdf(idx)

    def score_many(self, states: Sequence[State]) -> list[float]:
        """``log l(s) - log g(s)`` of each state (0 before the first :meth:`fit`)."""
        if not self.fitted:
            return [0.0] * len(states)
        log_l, log_g = self.log_densities(states)
        return (log_l - log_g).tolist()

    def score(self, state: Sequence[int]) -> float:
        """``log l(state) - log g(state)`` (0 before the first :meth:`fit`)."""
        return self.score_many([tuple(state)])[0]

    def sample(self, rng: np.random.RandomState, k: int) -> list[State]:
        """``k`` states drawn from ``l``: a component by weight, then each axis from it."""
        cum_w, cdfs = self._l.cum_w, self._l.cdf
        assert cum_w is not None and cdfs is not None  # l is always built for sampling
        comp = np.minimum(
            np.searchsorted(cum_w, rng.random_sample(k), side="right"), len(cum_w) - 1
        )
        u = rng.random_sample((len(self.shape), k))
        cols = [
            np.minimum((cdf[comp] < u[d][:, None]).sum(axis=1), n - 1).tolist()
            for d, (n, cdf) in enumerate(zip(self.shape, cdfs))
        ]
        return list(zip(*cols))


def n_good(n: int, gamma: float, max_good: int) -> int:
    """How many of ``n`` points count as good: ``ceil(gamma * n)``, in ``[1, max_good]``."""
    return max(1, min(max_good, math.ceil(gamma * n)))
