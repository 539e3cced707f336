"""The samplers compared by the benchmark, by name.

Every entry builds a fresh sampler from a seed. ``qlearn`` is
:class:`~optuna_qlearn.QLearningSampler` with its defaults: the learned policy (a
pre-trained Q-network plus a per-study correction table, ``policy="default"``);
``qlearn-untrained`` is the same with the network at its initialization
(``policy=None``) and ``qlearn-frozen`` with in-study learning off (``alpha=0``).
``qlearn-rule`` is the tabular agent with its defaults (``policy="table"``), the frozen
hand-set decision rule the learned policy is measured against (issue 14);
``qlearn-seed`` is the original design (``QLearningSampler.seed_design_parameters()``),
and the ``qlearn-prototype`` / ``qlearn-no-*`` / ``qlearn-*`` entries are ablations of
the tabular agent, each switching one of its improvements off. ``dqn`` is
:class:`~optuna_qlearn.DQNSampler` with its defaults (the learned policy, its networks
fine-tuned in the study), ``dqn-untrained`` the same from one network at its
initialization (``policy=None``), ``dqn-table`` the earlier design (``policy="table"``)
and ``dqn-table-*`` its ablations; they are registered only when
``optuna_qlearn.DQNSampler`` can be imported.

A sampler's *version* identifies the code that produced a stored study: Optuna's
version for Optuna's samplers, plus a hash of the sampler's source files for
optuna-qlearn's (and of the shipped policy's weights for the entries that load them),
so studies run with older code are re-run instead of reused.
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

#: The shipped policy's weights (``policy="default"``), hashed byte for byte.
_POLICY_WEIGHTS = ("policies/default.npz",)
#: Source files (and the weights) whose content defines a QLearningSampler result.
_QL_SOURCES = (
    "_grid.py", "_core/qlearning.py", "_core/rewards.py", "_core/agent.py", "_core/prior.py",
    "_replay.py", "sampler.py", "_core/policy.py", "_core/learned.py", *_POLICY_WEIGHTS,
)  # fmt: skip
#: Source files (and the weights) whose content defines a DQNSampler result; with
#: ``policy="table"`` or ``None`` the shipped weights are not read (see :func:`_sources`).
_DQN_SOURCES = (*_QL_SOURCES, "_core/training.py", "dqn.py", "_core/dqn.py")


#: The agent settings from before the global model, start-up trials and 5-trial
#: episodes: with them the defaults are the issue's prototype (walk_known, dyna,
#: best restarts, 1/2/4 steps, rank rewards).
PROTOTYPE_AGENT: dict[str, Any] = {
    "episode_length": 10,
    "n_startup": 0,
    "model_scores": False,
    "model_restart_prob": 0.0,
}


# ----------------------------------------------------------------------------- settings
#: Constructor arguments that are not a sampler's settings (a variant cannot set them).
_NOT_SETTINGS = frozenset(
    {"self", "seed", "warm_start", "independent_sampler", "warn_independent_sampling",
     "device", "environment"}
)  # fmt: skip
#: The agent a ``kind="qlearn"`` variant starts from: the tabular agent, whose settings
#: the variants change (``policy=default`` in a variant selects the learned policy).
VARIANT_POLICY = "table"


def _fields(kind: str) -> dict[str, str]:
    """Setting name -> its annotation, from the sampler's own constructor."""
    import inspect

    from optuna_qlearn import QLearningSampler

    classes: list[type] = [QLearningSampler]
    if kind == "dqn":
        from optuna_qlearn import DQNSampler

        classes.append(DQNSampler)  # the network's arguments; the environment's are above
    out: dict[str, str] = {}
    for cls in classes:
        for name, param in inspect.signature(cls).parameters.items():
            if name not in _NOT_SETTINGS:
                out[name] = str(param.annotation)
    return out


def _convert(annotation: str, value: str) -> Any:
    """``value`` as the type ``annotation`` names (``"None"`` is ``None``)."""
    if value == "None":
        return None
    if annotation.startswith(("bool", "Optional[bool")):
        if value not in ("True", "False"):
            raise ValueError(f"expected True or False, got {value!r}")
        return value == "True"
    if annotation.startswith(("Sequence", "tuple")):  # "1x2x4" -> (1, 2, 4)
        return tuple(int(v) for v in value.split("x"))
    if annotation.startswith("int"):
        return int(value)
    if annotation.startswith("float"):
        return float(value)
    return value


def parse_variant(text: str, kind: str = "qlearn") -> dict[str, Any]:
    """A variant's settings: keyword arguments of QLearningSampler or DQNSampler.

    The grammar of ``python -m benchmarks.overhead --variant`` and of the
    ``experiments/agent_variants`` runs: ``"max_walk=8,step_sizes=1x3,learning_rate=0.003"``
    (the last for ``kind="dqn"`` only) -> ``{"max_walk": 8, "step_sizes": (1, 3),
    "learning_rate": 0.003}``; ``"default"`` -> ``{}``. Values take the type the
    constructor declares; tuples are written with ``x``, ``None`` as ``None``. Whether the
    settings go together is the sampler's to say (see :func:`variant_sampler`).
    ``policy`` is a setting of ``kind="qlearn"`` only (``"policy=default"``: the learned
    policy, ``"policy=None"``: its untrained network).

    Args:
        text: The variant.
        kind: ``"qlearn"`` (QLearningSampler) or ``"dqn"`` (DQNSampler, whose network
            settings are accepted too).

    Returns:
        The keyword arguments.

    Raises:
        ValueError: For an unknown ``kind``, an unknown setting or a malformed value.
    """
    if kind not in ("qlearn", "dqn"):
        raise ValueError(f"Unknown sampler {kind!r}: expected 'qlearn' or 'dqn'.")
    if text == "default":
        return {}
    fields = _fields(kind)
    out: dict[str, Any] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or name not in fields:
            raise ValueError(
                f"Bad variant {text!r}: expected setting=value with a setting of "
                f"{'DQNSampler' if kind == 'dqn' else 'QLearningSampler'}: "
                f"{', '.join(sorted(fields))}."
            )
        try:
            out[name] = _convert(fields[name], value)
        except ValueError as err:
            raise ValueError(f"Bad variant {text!r}: {name}: {err}.") from None
    return out


def variant_sampler(kind: str, seed: int, text: str = "default", **kwargs: Any) -> BaseSampler:
    """``QLearningSampler`` (``kind="qlearn"``) or ``DQNSampler`` (``"dqn"``) with a variant.

    The variants are the tabular agent's (``policy="table"``, see :data:`VARIANT_POLICY`:
    QLearningSampler's table, or DQNSampler's network over grid points) unless they
    name another ``policy``.

    Args:
        kind: ``"qlearn"`` or ``"dqn"``.
        seed: The sampler's seed.
        text: The variant (see :func:`parse_variant`); ``"default"`` builds exactly the
            defaults of ``QLearningSampler(policy="table")`` or of
            ``DQNSampler(policy="table")``.
        kwargs: Further sampler arguments.

    Raises:
        ValueError: For another ``kind``, a bad variant, or settings the sampler refuses
            (such as ``max_walk`` with ``walk_known=False``).
    """
    settings = {"policy": VARIANT_POLICY, **parse_variant(text, kind), **kwargs}
    if kind == "qlearn":
        from optuna_qlearn import QLearningSampler

        return QLearningSampler(seed=seed, **settings)
    from optuna_qlearn import DQNSampler

    sampler: BaseSampler = DQNSampler(seed=seed, **settings)
    return sampler


# ----------------------------------------------------------------------------- registry
def _qlearn(agent: dict[str, Any] | None = None, **kwargs: Any) -> Callable[[int], BaseSampler]:
    """A QLearningSampler factory: ``agent`` and ``kwargs`` are its keyword arguments."""

    def make(seed: int) -> BaseSampler:
        from optuna_qlearn import QLearningSampler

        return QLearningSampler(
            seed=seed, warn_independent_sampling=False, **(agent or {}), **kwargs
        )

    return make


def _seed_design(seed: int) -> BaseSampler:
    from optuna_qlearn import QLearningSampler

    return QLearningSampler(
        **QLearningSampler.seed_design_parameters(), seed=seed, warn_independent_sampling=False
    )


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


#: The tabular agent (``policy="table"``): the ablations below start from its defaults.
TABLE: dict[str, Any] = {"policy": "table"}

#: name -> (factory(seed), description)
SAMPLERS: dict[str, tuple[Callable[[int], BaseSampler], str]] = {
    "qlearn": (
        _qlearn(),
        'QLearningSampler, defaults: the learned policy (policy="default", a pre-trained '
        "Q-network plus a per-study correction table)",
    ),
    "qlearn-rule": (
        _qlearn(TABLE),
        'QLearningSampler(policy="table"), its defaults: the tabular agent, the frozen '
        "hand-set decision rule baseline of issue 14",
    ),
    "qlearn-untrained": (
        _qlearn(policy=None),
        "the learned policy with its network at initialization (policy=None; ablation)",
    ),
    "qlearn-frozen": (
        _qlearn(alpha=0.0),
        "the learned policy without in-study learning (alpha=0: the network alone)",
    ),
    "qlearn-seed": (
        _seed_design,
        "QLearningSampler(**QLearningSampler.seed_design_parameters()): the original design "
        '(tabular, policy="table")',
    ),
    "qlearn-prototype": (
        _qlearn({**TABLE, **PROTOTYPE_AGENT}),
        "the issue's prototype: the tabular agent's defaults without the global model, "
        "start-up trials and 5-trial episodes",
    ),
    "qlearn-no-model": (
        _qlearn({**TABLE, "model_scores": False, "model_restart_prob": 0.0}),
        "tabular defaults without the global model",
    ),
    "qlearn-no-walk": (_qlearn(TABLE, walk_known=False), "tabular defaults, walk_known=False"),
    "qlearn-no-dyna": (_qlearn(TABLE, dyna=False), "tabular defaults, dyna=False"),
    "qlearn-no-restart": (
        _qlearn(TABLE, restart_best_prob=0.0),
        "tabular defaults, restart_best_prob=0",
    ),
    "qlearn-step1": (_qlearn(TABLE, step_sizes=(1,)), "tabular defaults, step_sizes=(1,)"),
    "qlearn-improvement": (
        _qlearn(TABLE, reward="improvement"),
        'tabular defaults, reward="improvement"',
    ),
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
    SAMPLERS["dqn"] = (
        _dqn,
        "DQNSampler, defaults: the learned policy, its networks fine-tuned in the study",
    )
    SAMPLERS["dqn-untrained"] = (
        lambda seed: _dqn(seed, policy=None),
        "DQNSampler from one network at initialization (policy=None), trained in the study "
        "alone (ablation)",
    )
    SAMPLERS["dqn-table"] = (
        lambda seed: _dqn(seed, **TABLE),
        'DQNSampler(policy="table"): the earlier design, a network over grid points in the '
        "tabular agent's environment",
    )
    SAMPLERS["dqn-table-episodes5"] = (
        lambda seed: _dqn(seed, **TABLE, episode_length=5),
        'DQNSampler(policy="table") with 5-trial episodes',
    )
    SAMPLERS["dqn-table-factorized"] = (
        lambda seed: _dqn(seed, **TABLE, model_joint=False),
        'DQNSampler(policy="table") with the factorized model (GridPrior), its default before',
    )
    SAMPLERS["dqn-table-untrained"] = (
        lambda seed: _dqn(seed, **TABLE, n_updates_per_step=0),
        'DQNSampler(policy="table") with the network never trained (n_updates_per_step=0)',
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
_MAIN_ORDER = (
    "qlearn", "qlearn-rule", "qlearn-prototype", "qlearn-seed", "tpe", "random", "cmaes", "gp",
    "qmc",
)  # fmt: skip
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


def _sources(name: str) -> tuple[str, ...]:
    """The files whose content defines the results of sampler ``name``."""
    files = _DQN_SOURCES if name == "dqn" or name.startswith("dqn-") else _QL_SOURCES
    if getattr(make_sampler(name, 0), "policy", None) == "default":
        return files
    # The tabular agent and the untrained network never read the shipped weights.
    return tuple(f for f in files if f not in _POLICY_WEIGHTS)


def sampler_version(name: str) -> str:
    """The code version of a sampler's results (see the module docstring).

    Raises:
        FileNotFoundError: If a source file of an optuna-qlearn sampler is missing (a
            version that silently skipped it would not change with it).
    """
    version = f"optuna-{optuna.__version__}"
    if name.startswith(("qlearn", "dqn")):
        spec = importlib.util.find_spec("optuna_qlearn")
        assert spec is not None and spec.origin is not None
        root = Path(spec.origin).parent
        digest = hashlib.sha1()
        for fname in _sources(name):
            path = root / fname
            if not path.is_file():
                raise FileNotFoundError(f"{path} (a source of sampler {name!r}) is missing.")
            digest.update(path.read_bytes())
        version += "+ql-" + digest.hexdigest()[:10]
    return version
