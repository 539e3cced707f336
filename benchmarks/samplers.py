"""The samplers compared by the benchmark, by name.

Every entry builds a fresh sampler from a seed. ``qlearn`` is
:class:`~optuna_qlearn.QLearningSampler` with its defaults, ``qlearn-seed`` the
original design (``preset="seed"``), and the ``qlearn-no-*`` / ``qlearn-*``
entries switch one improvement off (ablations). ``dqn`` is registered only when
``optuna_qlearn.DQNSampler`` can be imported.

A sampler's *version* identifies the code that produced a stored study: Optuna's
version for Optuna's samplers, plus a hash of the sampler's source files for
optuna-qlearn's, so studies run with older code are re-run instead of reused.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.samplers import BaseSampler

from benchmarks import peers

#: Source files whose content defines a QLearningSampler result.
_QL_SOURCES = (
    "_grid.py", "_core/qlearning.py", "_core/rewards.py", "_core/agent.py", "_core/prior.py",
    "_replay.py", "sampler.py",
)  # fmt: skip
_DQN_SOURCES = (*_QL_SOURCES, "dqn.py", "_core/dqn.py")


#: Agent settings of the original design that ``preset="seed"`` must also pin
#: (the features added after it default on); applied here until the sampler's
#: ``SEED_PRESET`` carries them.
SEED_AGENT: dict[str, Any] = {
    "moves": "joint",
    "reward": "value",
    "walk_known": False,
    "dyna": False,
    "restart_best_prob": 0.0,
    "episode_length": 10,
    "n_startup": 0,
    "model_scores": False,
    "model_restart_prob": 0.0,
}
#: The issue's prototype (walk_known, dyna, best restarts, 1/2/4 steps, rank
#: rewards) without the global model, start-up trials or shorter episodes.
PROTOTYPE_AGENT: dict[str, Any] = {
    "episode_length": 10,
    "n_startup": 0,
    "model_scores": False,
    "model_restart_prob": 0.0,
}


def _qlearn(agent: dict[str, Any] | None = None, **kwargs: Any) -> Callable[[int], BaseSampler]:
    """A QLearningSampler factory; ``agent`` overrides AgentConfig fields the
    constructor does not expose."""

    def make(seed: int) -> BaseSampler:
        from optuna_qlearn import QLearningSampler

        return QLearningSampler(
            seed=seed, warn_independent_sampling=False, **(agent or {}), **kwargs
        )

    return make


def _optuna(cls_name: str, **kwargs: Any) -> Callable[[int], BaseSampler]:
    def make(seed: int) -> BaseSampler:
        sampler: BaseSampler = getattr(optuna.samplers, cls_name)(seed=seed, **kwargs)
        return sampler

    return make


def _dqn(seed: int, **kwargs: Any) -> BaseSampler:
    import optuna_qlearn

    sampler: BaseSampler = optuna_qlearn.DQNSampler(
        seed=seed, warn_independent_sampling=False, **kwargs
    )
    return sampler


def dqn_available() -> bool:
    """Whether ``optuna_qlearn.DQNSampler`` exists (it needs torch)."""
    if importlib.util.find_spec("torch") is None:
        return False
    try:
        import optuna_qlearn
    except ImportError:
        return False
    try:
        return hasattr(optuna_qlearn, "DQNSampler")
    except Exception:  # a lazy attribute whose import fails
        return False


#: name -> (factory(seed), description)
SAMPLERS: dict[str, tuple[Callable[[int], BaseSampler], str]] = {
    "qlearn": (_qlearn(), "QLearningSampler, defaults"),
    "qlearn-seed": (
        _qlearn(SEED_AGENT),
        "QLearningSampler(**QLearningSampler.seed_design_parameters()): the original design",
    ),
    "qlearn-prototype": (
        _qlearn(PROTOTYPE_AGENT),
        "the issue's prototype: defaults without the global model, start-up trials "
        "and 5-trial episodes",
    ),
    "qlearn-no-model": (
        _qlearn({"model_scores": False, "model_restart_prob": 0.0}),
        "defaults without the global model",
    ),
    "qlearn-no-walk": (_qlearn(walk_known=False), "defaults, walk_known=False"),
    "qlearn-no-dyna": (_qlearn(dyna=False), "defaults, dyna=False"),
    "qlearn-no-restart": (_qlearn(restart_best_prob=0.0), "defaults, restart_best_prob=0"),
    "qlearn-step1": (_qlearn(step_sizes=(1,)), "defaults, step_sizes=(1,)"),
    "qlearn-improvement": (_qlearn(reward="improvement"), 'defaults, reward="improvement"'),
    "tpe": (_optuna("TPESampler"), "TPESampler, Optuna defaults"),
    "random": (_optuna("RandomSampler"), "RandomSampler"),
    "cmaes": (
        _optuna("CmaEsSampler", warn_independent_sampling=False),
        "CmaEsSampler, defaults (categoricals sampled at random)",
    ),
    "gp": (_optuna("GPSampler"), "GPSampler, defaults"),
    "qmc": (
        _optuna("QMCSampler", scramble=True),
        "QMCSampler, Sobol, scramble=True (the unscrambled default ignores the seed)",
    ),
}
if dqn_available():
    SAMPLERS["dqn"] = (_dqn, "DQNSampler, defaults")
    SAMPLERS["dqn-episodes5"] = (
        lambda seed: _dqn(seed, episode_length=5),
        "DQNSampler, defaults with 5-trial episodes",
    )
    SAMPLERS["dqn-factorized"] = (
        lambda seed: _dqn(seed, model_joint=False),
        "DQNSampler, defaults with the factorized model (GridPrior), its default before",
    )
    SAMPLERS["dqn-untrained"] = (
        lambda seed: _dqn(seed, n_updates_per_step=0),
        "DQNSampler, defaults but the network never trained (n_updates_per_step=0)",
    )

if peers.smac_available():
    SAMPLERS["smac"] = (
        lambda seed: peers.SMACSampler(seed=seed),
        "SMAC3 2.4 HyperparameterOptimizationFacade (random forest), benchmarks.peers",
    )
if peers.hebo_available():
    SAMPLERS["hebo"] = (
        lambda seed: peers.HEBOSampler(seed=seed),
        "HEBO 0.3.6 (GP + MACE), benchmarks.peers; needs its own environment",
    )

#: Compared in the main tables (ablations are reported separately).
_MAIN_ORDER = ("qlearn", "qlearn-prototype", "qlearn-seed", "tpe", "random", "cmaes", "gp", "qmc")
MAIN: tuple[str, ...] = tuple(s for s in (*_MAIN_ORDER, "dqn") if s in SAMPLERS)
#: QLearningSampler and DQNSampler variants, for the ablation table.
ABLATIONS: tuple[str, ...] = tuple(
    s for s in SAMPLERS if s.startswith("qlearn") or s.startswith("dqn-")
)


def make_sampler(name: str, seed: int) -> BaseSampler:
    """A fresh sampler.

    Raises:
        ValueError: For an unknown name.
    """
    if name not in SAMPLERS:
        raise ValueError(f"Unknown sampler {name!r}. Available: {', '.join(SAMPLERS)}.")
    return SAMPLERS[name][0](seed)


def sampler_version(name: str) -> str:
    """The code version of a sampler's results (see the module docstring)."""
    version = f"optuna-{optuna.__version__}"
    dqn = name == "dqn" or name.startswith("dqn-")
    if name.startswith("qlearn") or dqn:
        spec = importlib.util.find_spec("optuna_qlearn")
        assert spec is not None and spec.origin is not None
        root = Path(spec.origin).parent
        digest = hashlib.sha1()
        for fname in _DQN_SOURCES if dqn else _QL_SOURCES:
            path = root / fname
            if path.exists():
                digest.update(path.read_bytes())
        version += "+ql-" + digest.hexdigest()[:10]
    return version
