"""Optuna samplers that delegate to optimizers outside Optuna: SMAC3 and HEBO.

:class:`SMACSampler` drives SMAC3's (``smac`` 2.4) ask/tell interface and
:class:`HEBOSampler` Huawei's HEBO (``hebo`` 0.3.6), so that both run in Optuna's
own loop (``study.optimize``) and in :mod:`benchmarks.run` beside Optuna's samplers.

Each sampler works on Optuna's *relative* search space (the intersection of the
distributions of the finished trials, as TPE and GP use it): every parameter is
translated to the peer's space (ConfigSpace hyperparameters for SMAC, a HEBO
``DesignSpace``), the peer is asked for one point in ``sample_relative``, and every
finished trial the peer has not been told yet is told first, read from the study's
storage. A trial enqueued by hand, run by another worker or by another sampler is
therefore learned like one the peer asked for, and a study resumed in a new process
is replayed into a fresh peer. Parameters outside the relative space (the first
trial's, and single-valued ones) are sampled by :class:`~optuna.samplers.RandomSampler`.

The translation is exact on Optuna's grids:

- a continuous float (``log`` or not) is a float in the peer;
- an ``int`` with step 1 is an integer (``log`` kept);
- a stepped float and an ``int`` with step > 1 become the ordinal index
  ``k`` of ``low + k * step``, an integer in ``[0, n - 1]``, so the peer never
  proposes a value off the grid;
- a categorical becomes a categorical over the choices' indices.

Both packages are optional (``pip install optuna-qlearn[peers]`` installs SMAC3);
HEBO 0.3.6 pins ``numpy<1.25`` and ``pymoo==0.6.0``, which clash with this
project's numpy 2, so it lives in an environment of its own (see
``docs/benchmarks.md``).

Example:

    .. code-block:: python

        import optuna

        from benchmarks.peers import SMACSampler


        def objective(trial: optuna.Trial) -> float:
            x = trial.suggest_float("x", -5.0, 5.0)
            n = trial.suggest_int("n", 1, 8)
            kind = trial.suggest_categorical("kind", ["a", "b"])
            return x**2 + n + (kind == "b")


        study = optuna.create_study(sampler=SMACSampler(seed=0))
        study.optimize(objective, n_trials=20)
"""

from __future__ import annotations

import importlib.util
import math
import random
import shutil
import tempfile
import weakref
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_qlearn._core.checks import check_int

__all__ = [
    "HEBOSampler",
    "SMACSampler",
    "hebo_available",
    "peers_available",
    "smac_available",
]

#: Kinds of a translated parameter (see the module docstring).
_Kind = Literal["float", "int", "index", "categorical"]


def smac_available() -> bool:
    """Whether SMAC3 (``smac``) and ConfigSpace can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("smac", "ConfigSpace"))


def hebo_available() -> bool:
    """Whether HEBO (``hebo``) can be imported."""
    return importlib.util.find_spec("hebo") is not None


def peers_available() -> dict[str, bool]:
    """Which peer optimizers this environment can run.

    Returns:
        ``{"smac": ..., "hebo": ...}``.
    """
    return {"smac": smac_available(), "hebo": hebo_available()}


@dataclass(frozen=True)
class _Axis:
    """One Optuna parameter as the peer sees it."""

    name: str
    kind: _Kind
    low: float
    high: float
    log: bool = False
    step: float | None = None  # the grid step of an ``index`` axis
    n: int = 0  # the number of values of an ``index`` or ``categorical`` axis
    choices: tuple[Any, ...] = ()

    @classmethod
    def of(cls, name: str, dist: BaseDistribution) -> _Axis:
        """The peer's view of ``dist``.

        Raises:
            ValueError: For a distribution other than Optuna's three.
        """
        if isinstance(dist, CategoricalDistribution):
            n = len(dist.choices)
            return cls(name, "categorical", 0, n - 1, n=n, choices=tuple(dist.choices))
        if isinstance(dist, IntDistribution):
            if dist.step == 1:
                return cls(name, "int", dist.low, dist.high, log=dist.log)
            n = (dist.high - dist.low) // dist.step + 1
            return cls(name, "index", dist.low, dist.high, step=dist.step, n=n)
        if isinstance(dist, FloatDistribution):
            if dist.step is None:
                return cls(name, "float", dist.low, dist.high, log=dist.log)
            n = math.floor((dist.high - dist.low) / dist.step + 1e-8) + 1
            return cls(name, "index", dist.low, dist.high, step=dist.step, n=n)
        raise ValueError(f"Parameter {name!r}: unsupported distribution {dist!r}.")

    def to_peer(self, value: Any) -> Any:
        """The peer's representation of an Optuna parameter value."""
        if self.kind == "categorical":
            return self.choices.index(value)
        if self.kind == "index":
            assert self.step is not None
            return int(min(self.n - 1, max(0, round((float(value) - self.low) / self.step))))
        if self.kind == "int":
            return int(value)
        return float(value)

    def from_peer(self, value: Any) -> Any:
        """The Optuna parameter value of a peer's point, clipped into the distribution."""
        if self.kind == "categorical":
            return self.choices[int(value)]
        if self.kind == "index":
            assert self.step is not None
            k = min(self.n - 1, max(0, round(float(value))))
            if isinstance(self.step, int) and isinstance(self.low, int):
                return int(self.low + k * self.step)
            return float(min(self.high, max(self.low, self.low + k * self.step)))
        if self.kind == "int":
            return int(min(self.high, max(self.low, round(float(value)))))
        return float(min(self.high, max(self.low, float(value))))


class _PeerSampler(BaseSampler):
    """The Optuna side shared by the peers: search space, replay of finished trials."""

    def __init__(self, seed: int | None) -> None:
        if seed is not None:
            seed = check_int("seed", seed, 0, 2**31 - 1)
        self._seed = (
            seed if seed is not None else int(np.random.SeedSequence().generate_state(1)[0] % 2**31)
        )
        self._random = RandomSampler(seed=self._seed)
        self._search_space = IntersectionSearchSpace()
        self._space: dict[str, BaseDistribution] | None = None
        self._axes: list[_Axis] = []
        self._told: set[int] = set()

    # -- Optuna's interface ----------------------------------------------------------
    def reseed_rng(self) -> None:
        """Re-seed the independent sampler (the peer keeps its own seeded state)."""
        self._random.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """The intersection of the finished trials' distributions, without single values."""
        space = self._search_space.calculate(study)
        return {n: d for n, d in sorted(space.items()) if not d.single()}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """Tell the peer every finished trial it has not seen, then ask it for a point.

        Raises:
            ValueError: If the study has more than one objective.
        """
        if not search_space:
            return {}
        if len(study.directions) != 1:
            raise ValueError(f"{type(self).__name__} supports single-objective studies only.")
        if search_space != self._space:  # a new or shrunk space: start a fresh peer
            self._space = dict(search_space)
            self._axes = [_Axis.of(n, d) for n, d in search_space.items()]
            self._told = set()
            self._reset(self._axes)
        sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
        states = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
        for t in study.get_trials(deepcopy=False, states=states):
            if t.number in self._told or not self._fits(t):
                continue
            self._told.add(t.number)
            point = [a.to_peer(t.params[a.name]) for a in self._axes]
            value = None
            if t.state == TrialState.COMPLETE and t.values is not None:
                value = sign * float(t.values[0])
            self._tell(t.number, point, value)
        point = self._ask(trial.number)
        return {a.name: a.from_peer(v) for a, v in zip(self._axes, point, strict=True)}

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        """A random value, for parameters outside the relative search space."""
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    # -- helpers ---------------------------------------------------------------------
    def _fits(self, t: FrozenTrial) -> bool:
        """Whether ``t`` has every parameter of the space, from the same distribution."""
        assert self._space is not None
        return all(t.distributions.get(n) == d for n, d in self._space.items())

    def _derived_seed(self, *key: int) -> int:
        return int(np.random.SeedSequence([self._seed, *key]).generate_state(1)[0] % 2**31)

    # -- the peer --------------------------------------------------------------------
    @abstractmethod
    def _reset(self, axes: Sequence[_Axis]) -> None:
        """Start a fresh peer on ``axes``."""

    @abstractmethod
    def _tell(self, number: int, point: list[Any], value: float | None) -> None:
        """Tell trial ``number`` at ``point``: its value to minimize, or ``None`` if it
        failed or was pruned."""

    @abstractmethod
    def _ask(self, number: int) -> list[Any]:
        """The peer's next point for trial ``number``, one value per axis."""


class SMACSampler(_PeerSampler):
    """SMAC3 (``smac`` 2.4) as an Optuna sampler, through its ask/tell interface.

    The default is SMAC's ``HyperparameterOptimizationFacade`` (a random forest
    surrogate, log-EI, local and random search over the acquisition, a Sobol initial
    design); ``facade="blackbox"`` selects ``BlackBoxFacade`` (a Gaussian process,
    meant for few continuous parameters). The scenario is deterministic (each
    configuration is evaluated once). Failed and pruned trials are told as crashed
    with the worst value told so far (SMAC's default crash cost, infinity, turns its
    forest's targets into NaN); one finishing before any value is held until the
    first. SMAC writes its run files to a temporary directory removed
    with the sampler.

    Args:
        seed:
            Seed of SMAC's scenario and of the random sampler used outside the relative
            search space; ``None`` draws one. The same seed on the same study gives
            the same trials.
        facade:
            ``"hpo"`` (default) or ``"blackbox"``.
        n_trials:
            The budget SMAC's scenario plans for; it sizes the initial design (SMAC's
            default 100: at most a quarter of it, 10 per parameter). The sampler keeps
            proposing beyond it.

    Raises:
        ImportError: If ``smac`` is not installed (``pip install optuna-qlearn[peers]``).
        TypeError: If ``seed`` or ``n_trials`` is not an ``int``.
        ValueError: If ``seed`` is outside ``[0, 2**31)``, ``facade`` is unknown or
            ``n_trials`` is below 1.

    Example:

        .. code-block:: python

            study = optuna.create_study(sampler=SMACSampler(seed=0))
            study.optimize(objective, n_trials=30)
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        facade: Literal["hpo", "blackbox"] = "hpo",
        n_trials: int = 100,
    ) -> None:
        if facade not in ("hpo", "blackbox"):
            raise ValueError(f"facade must be 'hpo' or 'blackbox', got {facade!r}.")
        n_trials = check_int("n_trials", n_trials, 1)
        if not smac_available():
            raise ImportError("SMACSampler needs smac (SMAC3): pip install 'optuna-qlearn[peers]'.")
        super().__init__(seed)
        self._facade = facade
        self._n_trials = n_trials
        self._dir = Path(tempfile.mkdtemp(prefix="optuna-smac-"))
        weakref.finalize(self, shutil.rmtree, self._dir, True)
        self._smac: Any = None
        self._infos: dict[int, Any] = {}
        self._resets = 0

    def _reset(self, axes: Sequence[_Axis]) -> None:
        from ConfigSpace import Categorical, ConfigurationSpace, Float, Integer
        from smac import BlackBoxFacade, HyperparameterOptimizationFacade, Scenario

        self._resets += 1
        cs = ConfigurationSpace(seed=self._seed)
        for a in axes:
            if a.kind == "categorical":
                cs.add(Categorical(a.name, list(range(a.n))))
            elif a.kind == "index":
                cs.add(Integer(a.name, (0, a.n - 1)))
            elif a.kind == "int":
                cs.add(Integer(a.name, (int(a.low), int(a.high)), log=a.log))
            else:
                cs.add(Float(a.name, (float(a.low), float(a.high)), log=a.log))
        scenario = Scenario(
            cs,
            name=f"space{self._resets}",
            output_directory=self._dir,
            deterministic=True,
            n_trials=self._n_trials,
            seed=self._seed,
        )
        facade = HyperparameterOptimizationFacade if self._facade == "hpo" else BlackBoxFacade
        self._smac = facade(
            scenario,
            _never_called,
            overwrite=True,
            logging_level=False,
        )
        self._infos = {}
        self._tf_seed: int | None = None
        self._worst: float | None = None
        self._crashed: list[Any] = []

    def _tell(self, number: int, point: list[Any], value: float | None) -> None:
        from ConfigSpace import Configuration
        from smac.runhistory import StatusType, TrialInfo, TrialValue

        info = self._infos.pop(number, None)
        if info is None or [info.config[a.name] for a in self._axes] != point:
            values = {a.name: v for a, v in zip(self._axes, point, strict=True)}
            config = Configuration(self._smac.scenario.configspace, values=values)
            # The deterministic scenario runs every configuration with one seed: the
            # first asked trial's, or (told before any ask) one the intensifier adopts.
            if self._tf_seed is None:
                self._tf_seed = self._seed
            info = TrialInfo(config=config, seed=self._tf_seed)
        if value is None or not math.isfinite(value):
            self._crashed.append(info)
        else:
            self._worst = value if self._worst is None else max(self._worst, value)
            self._smac.tell(info, TrialValue(cost=value), save=False)
        if self._worst is not None:
            for crashed in self._crashed:
                tv = TrialValue(cost=self._worst, status=StatusType.CRASHED)
                self._smac.tell(crashed, tv, save=False)
            self._crashed = []

    def _ask(self, number: int) -> list[Any]:
        info = self._smac.ask()
        if self._tf_seed is None:
            self._tf_seed = info.seed
        self._infos[number] = info
        return [info.config[a.name] for a in self._axes]


def _never_called(config: Any, seed: int = 0) -> float:
    """SMAC's facades require a target function; the ask/tell loop never calls it."""
    raise RuntimeError("SMACSampler evaluates trials through Optuna, not through SMAC.")


class HEBOSampler(_PeerSampler):
    """HEBO (``hebo`` 0.3.6, Huawei's NeurIPS 2020 black-box challenge winner) as an
    Optuna sampler.

    HEBO fits a Gaussian process on power-transformed values (input warping for
    numeric parameters, embeddings for categoricals) and optimizes the MACE
    acquisition ensemble with NSGA-II; its first ``1 + d`` points are scrambled
    Sobol. HEBO draws from NumPy's and PyTorch's global generators; every ask runs
    with both (and :mod:`random`) seeded from ``(seed, trial number)`` and restores
    them afterwards, so it is deterministic and leaves the caller's generators alone.
    Failed and pruned trials are not told (HEBO drops non-finite values).

    Args:
        seed:
            Seed of HEBO's Sobol design and of every ask; ``None`` draws one. The same
            seed on the same study gives the same trials.
        model_name:
            HEBO's surrogate: ``"gp"`` (default), ``"rf"`` or ``"gpy"``.

    Raises:
        ImportError: If ``hebo`` is not installed (see ``docs/benchmarks.md``: it needs
            an environment with ``numpy<1.25``).
        TypeError: If ``seed`` is not an ``int``.
        ValueError: If ``seed`` is outside ``[0, 2**31)`` or ``model_name`` is unknown.

    Example:

        .. code-block:: python

            study = optuna.create_study(sampler=HEBOSampler(seed=0))
            study.optimize(objective, n_trials=30)
    """

    def __init__(
        self, *, seed: int | None = None, model_name: Literal["gp", "rf", "gpy"] = "gp"
    ) -> None:
        if model_name not in ("gp", "rf", "gpy"):
            raise ValueError(f"model_name must be 'gp', 'rf' or 'gpy', got {model_name!r}.")
        if not hebo_available():
            raise ImportError(
                "HEBOSampler needs hebo 0.3.6, which pins numpy<1.25: install it in an "
                "environment of its own (docs/benchmarks.md, 'Peers outside Optuna')."
            )
        super().__init__(seed)
        self._model_name = model_name
        self._hebo: Any = None

    def _reset(self, axes: Sequence[_Axis]) -> None:
        from hebo.design_space.design_space import DesignSpace
        from hebo.optimizers.hebo import HEBO
        from pymoo.config import Config

        # pymoo 0.6.0 (HEBO's pin) has no wheel for recent Pythons; its source build
        # runs uncompiled and says so on stdout at every import.
        Config.warnings["not_compiled"] = False

        rec: list[dict[str, Any]] = []
        for a in axes:
            if a.kind == "categorical":
                rec.append({"name": a.name, "type": "cat", "categories": list(range(a.n))})
            elif a.kind == "index":
                rec.append({"name": a.name, "type": "int", "lb": 0, "ub": a.n - 1})
            elif a.kind == "int":
                kind = "pow_int" if a.log else "int"
                rec.append({"name": a.name, "type": kind, "lb": int(a.low), "ub": int(a.high)})
            else:
                kind = "pow" if a.log else "num"
                rec.append({"name": a.name, "type": kind, "lb": a.low, "ub": a.high})
        with self._seeded(0):
            self._hebo = HEBO(
                DesignSpace().parse(rec), model_name=self._model_name, scramble_seed=self._seed
            )

    def _tell(self, number: int, point: list[Any], value: float | None) -> None:
        import pandas as pd

        if value is None or not math.isfinite(value):
            return
        x = pd.DataFrame([point], columns=[a.name for a in self._axes])
        self._hebo.observe(x, np.array([[value]], dtype=float))

    def _ask(self, number: int) -> list[Any]:
        with self._seeded(number + 1):
            rec = self._hebo.suggest(n_suggestions=1)
        row = rec.iloc[0]
        return [row[a.name] for a in self._axes]

    def _seeded(self, key: int) -> _GlobalRNGs:
        return _GlobalRNGs(self._derived_seed(key))


class _GlobalRNGs:
    """Seed :mod:`random`, NumPy's and PyTorch's global generators; restore them after."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._saved: tuple[Any, Any, Any] | None = None

    def __enter__(self) -> None:
        import torch

        self._saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        random.seed(self._seed)
        np.random.seed(self._seed)
        torch.manual_seed(self._seed)

    def __exit__(self, *exc: object) -> None:
        import torch

        assert self._saved is not None
        random.setstate(self._saved[0])
        np.random.set_state(self._saved[1])
        torch.set_rng_state(self._saved[2])
