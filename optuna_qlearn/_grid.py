"""Optuna distributions <-> grid axes and grid states.

A :class:`Grid` turns a search space (a ``dict`` of Optuna distributions) into a
finite lattice. Each parameter becomes an :class:`Axis` with an ordered list of
values; a *state* is a tuple holding one index per axis. :meth:`Grid.decode`
turns a state into parameters that always lie inside their distributions, and
:meth:`Grid.encode` maps any parameters (for example an enqueued trial's, which
need not lie on the grid) to the nearest state.

This module imports Optuna only for the distribution classes it reads.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from optuna_qlearn._core.qlearning import State


@dataclass(frozen=True)
class Axis:
    """One parameter of the grid.

    Args:
        name: The parameter name.
        values: The grid values in increasing order (choices, for categoricals).
        categorical: Whether the axis is unordered (a choice index).
        log: Whether the values are spaced geometrically.
    """

    name: str
    values: tuple[Any, ...]
    categorical: bool = False
    log: bool = False

    @property
    def size(self) -> int:
        """Number of grid points on this axis."""
        return len(self.values)

    def encode(self, value: Any) -> int:
        """Return the index of the grid value nearest to ``value``.

        Args:
            value: A parameter value (external representation).

        Returns:
            The index of the nearest grid value (exact match for categoricals).

        Raises:
            ValueError: If a categorical value is not one of the choices.
        """
        if self.categorical:
            for i, choice in enumerate(self.values):
                if choice == value or (
                    isinstance(choice, float)
                    and isinstance(value, float)
                    and math.isnan(choice)
                    and math.isnan(value)
                ):
                    return i
            raise ValueError(
                f"Value {value!r} of parameter {self.name!r} is not one of its choices "
                f"{list(self.values)!r}."
            )
        arr = np.asarray(self.values, dtype=float)
        x = float(value)
        if self.log and x > 0 and arr[0] > 0:
            return int(np.argmin(np.abs(np.log(arr) - math.log(x))))
        return int(np.argmin(np.abs(arr - x)))


def _subsample(n: int, max_points: int) -> np.ndarray:
    """Indices of ``max_points`` evenly spread points among ``n`` (both ends kept)."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(int))


def _step_value(dist: FloatDistribution, raw: float) -> float:
    """A stepped float grid value: ``raw`` (``low + k * step``) with float noise rounded
    away (0.30000000000000004 -> 0.3) where the rounding moves it by a negligible part
    of the step and Optuna's own check still accepts it; ``raw`` otherwise (tiny steps)."""
    assert dist.step is not None
    value = min(dist.high, max(dist.low, raw))
    if abs(value) < 1e290:  # np.round multiplies by 1e12: no overflow
        rounded = float(np.round(value, 12))
        if abs(rounded - value) <= 1e-9 * dist.step and dist._contains(rounded):
            return rounded
    return value


def _inside(dist: FloatDistribution, values: Sequence[float]) -> tuple[float, ...]:
    """The distinct values Optuna's own in-range check accepts, in order: a grid value
    it refused would be replaced by the independent sampler's, and the learned state
    would not be the evaluated point."""
    kept: list[float] = []
    for v in values:
        if dist._contains(v) and (not kept or v > kept[-1]):
            kept.append(v)
    return tuple(kept) or (float(dist.low),)


def build_axis(name: str, dist: BaseDistribution, n_bins: int, max_bins: int) -> Axis:
    """Discretize one Optuna distribution into an :class:`Axis`.

    Args:
        name: The parameter name.
        dist: ``IntDistribution``, ``FloatDistribution`` or ``CategoricalDistribution``.
        n_bins: Number of points for a continuous ``FloatDistribution`` (no ``step``),
            spaced geometrically when ``log=True``.
        max_bins: Upper bound on points for int and stepped-float axes; larger axes
            are binned to this many evenly spread points (geometrically when ``log``).

    Returns:
        The axis; every value lies inside ``dist``.

    Raises:
        TypeError: For an unsupported distribution type.
    """
    if isinstance(dist, CategoricalDistribution):
        return Axis(name, tuple(dist.choices), categorical=True)
    if isinstance(dist, IntDistribution):
        low, high, step = dist.low, dist.high, dist.step
        if dist.log:
            n = high - low + 1
            if n <= max_bins:
                ints = list(range(low, high + 1))
            else:
                geo = np.geomspace(low, high, max_bins)
                ints = sorted({min(high, max(low, round(float(v)))) for v in geo})
            return Axis(name, tuple(int(v) for v in ints), log=True)
        n = (high - low) // step + 1
        idx = _subsample(n, max_bins)
        return Axis(name, tuple(int(low + int(i) * step) for i in idx))
    if isinstance(dist, FloatDistribution):
        flo, fhi = float(dist.low), float(dist.high)
        if flo == fhi:
            return Axis(name, (flo,), log=dist.log)
        if dist.step is not None:
            fstep = float(dist.step)
            count = math.floor((fhi - flo) / fstep + 1e-8) + 1
            fvals = [_step_value(dist, flo + int(i) * fstep) for i in _subsample(count, max_bins)]
            return Axis(name, _inside(dist, fvals))
        if dist.log:
            points = np.geomspace(flo, fhi, n_bins)
        elif math.isfinite(fhi - flo):
            points = np.linspace(flo, fhi, n_bins)
        else:  # a range wider than the largest float: interpolate without the difference
            t = np.linspace(0.0, 1.0, n_bins)
            points = flo * (1.0 - t) + fhi * t
        fvals = [min(fhi, max(flo, float(v))) for v in points]
        fvals[0], fvals[-1] = flo, fhi
        return Axis(name, _inside(dist, fvals), log=dist.log)
    raise TypeError(
        f"Parameter {name!r} has an unsupported distribution {type(dist).__name__}; "
        "QLearningSampler supports Int-, Float- and CategoricalDistribution."
    )


class Grid:
    """A discretized search space.

    Args:
        search_space: Parameter name -> Optuna distribution.
        n_bins: Points per continuous float axis.
        max_bins: Upper bound on points per int / stepped-float axis.

    Example:

        .. code-block:: python

            from optuna.distributions import FloatDistribution, IntDistribution
            from optuna_qlearn._grid import Grid

            grid = Grid({"x": IntDistribution(0, 4), "lr": FloatDistribution(1e-4, 1e-1, log=True)},
                        n_bins=4)
            assert grid.shape == (5, 4)
            params = grid.decode((2, 0))  # {"x": 2, "lr": 0.0001}
            assert grid.encode(params) == (2, 0)
    """

    def __init__(
        self,
        search_space: Mapping[str, BaseDistribution],
        n_bins: int = 16,
        max_bins: int = 64,
    ) -> None:
        if n_bins < 2:
            raise ValueError(f"n_bins must be at least 2, got {n_bins}.")
        if max_bins < 2:
            raise ValueError(f"max_bins must be at least 2, got {max_bins}.")
        self.names: tuple[str, ...] = tuple(sorted(search_space))
        self.distributions = {name: search_space[name] for name in self.names}
        self.axes: tuple[Axis, ...] = tuple(
            build_axis(name, search_space[name], n_bins, max_bins) for name in self.names
        )
        self.shape: tuple[int, ...] = tuple(a.size for a in self.axes)
        self.categorical = np.array([a.categorical for a in self.axes], dtype=bool)
        self.signature = self._signature()

    @property
    def ndim(self) -> int:
        """Number of axes."""
        return len(self.axes)

    @property
    def n_states(self) -> int:
        """Number of grid points."""
        return int(np.prod(self.shape, dtype=np.float64)) if self.axes else 1

    def _signature(self) -> str:
        payload = [[a.name, [repr(v) for v in a.values], a.categorical] for a in self.axes]
        return hashlib.sha1(json.dumps(payload).encode()).hexdigest()[:12]

    def decode(self, state: Sequence[int]) -> dict[str, Any]:
        """Turn a state into parameters in Optuna's external representation.

        Args:
            state: One index per axis.

        Returns:
            Parameter name -> value; ints are ``int``, floats ``float``.
        """
        params: dict[str, Any] = {}
        for axis, i in zip(self.axes, state):
            v = axis.values[int(i)]
            dist = self.distributions[axis.name]
            if isinstance(dist, IntDistribution):
                v = int(v)
            elif isinstance(dist, FloatDistribution):
                v = float(v)
            params[axis.name] = v
        return params

    def encode(self, params: Mapping[str, Any]) -> State:
        """Map parameters to the nearest grid state.

        Args:
            params: Must contain every axis name.

        Returns:
            The state.

        Raises:
            KeyError: If a parameter of the grid is missing.
        """
        missing = [n for n in self.names if n not in params]
        if missing:
            raise KeyError(f"Parameters {missing} of the grid are missing from {dict(params)!r}.")
        return tuple(axis.encode(params[axis.name]) for axis in self.axes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the axes (used in saved Q-tables)."""
        return {
            "signature": self.signature,
            "axes": [
                {"name": a.name, "values": list(a.values), "categorical": a.categorical}
                for a in self.axes
            ],
        }
