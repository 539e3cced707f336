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

import dataclasses
import hashlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.samplers import BaseSampler

if TYPE_CHECKING:
    from optuna_qlearn._core.agent import AgentConfig

#: Source files whose content defines a QLearningSampler result.
_QL_SOURCES = (
    "_grid.py", "_core/qlearning.py", "_core/rewards.py", "_core/agent.py", "_core/prior.py",
    "_replay.py", "sampler.py",
)  # fmt: skip
_DQN_SOURCES = (*_QL_SOURCES, "dqn.py", "_core/dqn.py")


#: The agent settings from before the global model, start-up trials and 5-trial
#: episodes: with them the defaults are the issue's prototype (walk_known, dyna,
#: best restarts, 1/2/4 steps, rank rewards), and ``preset="seed"`` the original
#: design (the features added after it default on, so the preset must pin them too).
PROTOTYPE_AGENT: dict[str, Any] = {
    "episode_length": 10,
    "n_startup": 0,
    "model_scores": False,
    "model_restart_prob": 0.0,
}


# ----------------------------------------------------------------------------- settings
#: Sampler arguments outside AgentConfig a variant may set, for both samplers, with
#: their defaults (whose types parse the variant's values).
SAMPLER_FIELDS: dict[str, Any] = {
    "moves": "axis",
    "step_sizes": (1, 2, 4),
    "n_bins": 16,
    "max_bins": 64,
}


def _dqn_fields() -> dict[str, Any]:
    """DQNSampler's network and training arguments (DQNConfig's fields) and defaults."""
    from optuna_qlearn._core.dqn import DQNConfig

    return {f.name: getattr(DQNConfig(), f.name) for f in dataclasses.fields(DQNConfig)}


def _convert(default: Any, value: str) -> Any:
    if isinstance(default, bool):
        return value == "True"
    if isinstance(default, tuple):  # "1x2x4" -> (1, 2, 4)
        return tuple(int(v) for v in value.split("x"))
    if default is None or isinstance(default, float):
        return None if value == "None" else float(value)
    return type(default)(value)


def split_variant(text: str, kind: str = "qlearn") -> tuple[dict[str, Any], dict[str, Any]]:
    """A variant's settings, split into AgentConfig fields and other sampler arguments.

    The grammar of ``python -m benchmarks.overhead --variant`` and of the
    ``experiments/agent_variants`` runs: ``"max_walk=8,step_sizes=1x3,learning_rate=0.003"``
    (the last for ``kind="dqn"`` only) -> ``({"max_walk": 8}, {"step_sizes": (1, 3),
    "learning_rate": 0.003})``; ``"default"`` -> ``({}, {})``. Tuples are written with ``x``.

    Args:
        text: The variant.
        kind: ``"qlearn"`` (QLearningSampler) or ``"dqn"`` (DQNSampler, whose network
            settings are accepted too).

    Returns:
        ``(agent fields, other sampler arguments)``.

    Raises:
        ValueError: For an unknown field or a malformed setting.
    """
    from optuna_qlearn._core.agent import AgentConfig

    if text == "default":
        return {}, {}
    base = AgentConfig()
    agent_defaults = {f.name: getattr(base, f.name) for f in dataclasses.fields(AgentConfig)}
    other_defaults = dict(SAMPLER_FIELDS, **(_dqn_fields() if kind == "dqn" else {}))
    other_defaults.pop("device", None)
    agent: dict[str, Any] = {}
    other: dict[str, Any] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if sep and name in agent_defaults:
            agent[name] = _convert(agent_defaults[name], value)
        elif sep and name in other_defaults:
            other[name] = _convert(other_defaults[name], value)
        else:
            raise ValueError(
                f"Bad variant {text!r}: expected field=value, a field of AgentConfig, "
                f"{', '.join(sorted(other_defaults))}."
            )
    return agent, other


def environment(kind: str, **changes: Any) -> AgentConfig:
    """QLearningSampler's (``kind="qlearn"``) or DQNSampler's (``"dqn"``) default
    :class:`~optuna_qlearn._core.agent.AgentConfig` with ``changes``."""
    from optuna_qlearn._core.agent import AgentConfig

    if kind == "dqn":
        from optuna_qlearn.dqn import DEFAULT_AGENT_CONFIG

        return dataclasses.replace(DEFAULT_AGENT_CONFIG, **changes)
    return AgentConfig(**changes)


def variant_sampler(kind: str, seed: int, text: str = "default", **kwargs: Any) -> BaseSampler:
    """``QLearningSampler`` (``kind="qlearn"``) or ``DQNSampler`` (``"dqn"``) with a variant.

    Args:
        kind: ``"qlearn"`` or ``"dqn"``.
        seed: The sampler's seed.
        text: The variant (see :func:`split_variant`); ``"default"`` builds exactly the
            sampler's defaults.
        kwargs: Further sampler arguments.

    Raises:
        ValueError: For another ``kind`` or a bad variant.
    """
    if kind not in ("qlearn", "dqn"):
        raise ValueError(f"Unknown sampler {kind!r}: expected 'qlearn' or 'dqn'.")
    fields, other = split_variant(text, kind)
    config = environment(kind, **fields)
    if kind == "qlearn":
        from optuna_qlearn import QLearningSampler

        return QLearningSampler(seed=seed, agent_config=config, **other, **kwargs)
    from optuna_qlearn import DQNSampler

    sampler: BaseSampler = DQNSampler(seed=seed, agent_config=config, **other, **kwargs)
    return sampler


# ----------------------------------------------------------------------------- registry
def _qlearn(agent: dict[str, Any] | None = None, **kwargs: Any) -> Callable[[int], BaseSampler]:
    """A QLearningSampler factory; ``agent`` overrides AgentConfig fields the
    constructor does not expose."""

    def make(seed: int) -> BaseSampler:
        from optuna_qlearn import QLearningSampler
        from optuna_qlearn._core.agent import AgentConfig

        config = AgentConfig(**(agent or {}))
        return QLearningSampler(
            seed=seed, warn_independent_sampling=False, agent_config=config, **kwargs
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
        _qlearn(PROTOTYPE_AGENT, preset="seed"),
        'QLearningSampler(preset="seed"): the original design',
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
    "gp": (
        _optuna("GPSampler", warn_independent_sampling=False),
        "GPSampler, defaults (10 random start-up trials; needs torch and scipy)",
    ),
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
        lambda seed: _dqn(seed, agent_config=environment("dqn", model_joint=False)),
        "DQNSampler, defaults with the factorized model (GridPrior), its default before",
    )
    SAMPLERS["dqn-untrained"] = (
        lambda seed: _dqn(seed, n_updates_per_step=0),
        "DQNSampler, defaults but the network never trained (n_updates_per_step=0)",
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
