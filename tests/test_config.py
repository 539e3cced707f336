"""Every argument is checked where it enters, with an error that names it."""

from __future__ import annotations

import inspect
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from optuna_qlearn import QLearningSampler
from optuna_qlearn._core.agent import AgentConfig
from optuna_qlearn._core.learned import PolicyConfig
from optuna_qlearn._core.policy import FEATURE_NAMES, FILE_VERSION, PolicyNetwork

#: ``policy="table"``: the tabular agent, the only one that takes its own settings.
TABLE: dict[str, Any] = {"policy": "table"}


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        # Settings of both agents, checked with the default (learned) policy...
        ({"stale_after": 0}, ValueError, "stale_after"),
        ({"stale_after": -1}, ValueError, "stale_after"),
        ({"n_bins": 2.5}, TypeError, "n_bins"),
        ({"n_bins": 1}, ValueError, "n_bins"),
        ({"max_bins": True}, TypeError, "max_bins"),
        ({"alpha": "0.5"}, TypeError, "alpha"),
        ({"alpha": -0.1}, ValueError, "alpha"),
        ({"alpha": 1.5}, ValueError, "alpha"),
        ({"gamma": 1.5}, ValueError, "gamma"),
        ({"epsilon": math.nan}, ValueError, "epsilon"),
        ({"epsilon": 2.0}, ValueError, "epsilon"),
        ({"epsilon_min": -0.5}, ValueError, "epsilon_min"),
        ({"epsilon_decay": 0}, ValueError, "epsilon_decay"),
        ({"decision_timeout": -1}, ValueError, "decision_timeout"),
        ({"seed": -3}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"independent_sampler": "random"}, TypeError, "independent_sampler"),
        ({"warn_independent_sampling": "no"}, TypeError, "warn_independent_sampling"),
        # ... and with the tabular agent.
        ({**TABLE, "stale_after": 0}, ValueError, "stale_after"),
        ({**TABLE, "n_bins": 2.5}, TypeError, "n_bins"),
        ({**TABLE, "alpha": "0.5"}, TypeError, "alpha"),
        ({**TABLE, "alpha": 0.0}, ValueError, "alpha"),  # the learned policy's "no learning"
        ({**TABLE, "gamma": 1.5}, ValueError, "gamma"),
        ({**TABLE, "epsilon": math.nan}, ValueError, "epsilon"),
        ({**TABLE, "epsilon_decay": 0}, ValueError, "epsilon_decay"),
        ({**TABLE, "seed": -3}, ValueError, "seed"),
        # Settings of the tabular agent only.
        ({**TABLE, "q_init": math.nan}, ValueError, "q_init"),
        ({**TABLE, "q_init": math.inf}, ValueError, "q_init"),
        ({**TABLE, "restart_top_k": math.inf}, TypeError, "restart_top_k"),
        ({**TABLE, "episode_length": 0}, ValueError, "episode_length"),
        ({**TABLE, "reward": "loss"}, ValueError, "reward"),
        ({**TABLE, "moves": "diagonal"}, ValueError, "moves"),
        ({**TABLE, "step_sizes": (1, 0)}, ValueError, r"step_sizes\[1\]"),
        ({**TABLE, "step_sizes": "124"}, TypeError, "step_sizes"),
        ({**TABLE, "step_sizes": ()}, ValueError, "step_sizes"),
        ({**TABLE, "walk_known": 1}, TypeError, "walk_known"),
        ({**TABLE, "n_startup": -1}, ValueError, "n_startup"),
        ({**TABLE, "model_gamma": 0.0}, ValueError, "model_gamma"),
        ({**TABLE, "model_scale": -1.0}, ValueError, "model_scale"),
    ],
)
def test_bad_arguments_are_refused_at_construction(
    kwargs: dict[str, Any], error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=name):
        QLearningSampler(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"walk_known": False, "max_walk": 8}, "max_walk"),
        ({"model_joint": True, "model_bandwidth": 0.2}, "model_bandwidth"),
        ({"restart_best_prob": 0.0, "restart_top_k": 3}, "restart_top_k"),
        ({"model_restart_prob": 0.0, "model_candidates": 10}, "model_candidates"),
        ({"model_scores": False, "model_scale": 1.0}, "model_scale"),
        ({"model_scores": False, "model_restart_prob": 0.0, "model_gamma": 0.2}, "model_gamma"),
        ({"model_scores": False, "model_restart_prob": 0.0, "model_joint": True}, "model_joint"),
        ({"moves": "joint", "step_sizes": (1, 2)}, "step_sizes"),
    ],
)
def test_an_argument_the_other_settings_leave_unused_is_refused(
    kwargs: dict[str, Any], name: str
) -> None:
    with pytest.raises(ValueError, match=f"{name}=.* is unused: it needs"):
        QLearningSampler(**TABLE, **kwargs)


#: Every setting of the tabular agent only, with a value it accepts (its default).
TABLE_ONLY: dict[str, Any] = {
    "episode_length": 5,
    "reward": "rank",
    "moves": "axis",
    "step_sizes": (1, 2, 4),
    "q_init": 0.0,
    "walk_known": True,
    "max_walk": 4,
    "dyna": True,
    "restart_best_prob": 0.8,
    "restart_top_k": 5,
    "n_startup": 10,
    "model_scores": True,
    "model_restart_prob": 0.5,
    "model_joint": False,
    "model_candidates": 24,
    "model_gamma": 0.15,
    "model_max_good": 25,
    "model_scale": 0.5,
    "model_bandwidth": 0.1,
    "warm_start": "q.json",
}
#: The settings a learned policy uses (issue 14); every other argument is TABLE_ONLY's.
LEARNED_SETTINGS = frozenset(
    {"policy", "alpha", "gamma", "epsilon", "epsilon_min", "epsilon_decay", "n_bins",
     "max_bins", "independent_sampler", "warn_independent_sampling", "stale_after",
     "decision_timeout", "seed"}
)  # fmt: skip


def test_every_argument_is_a_learned_setting_or_a_tabular_one() -> None:
    arguments = set(inspect.signature(QLearningSampler.__init__).parameters) - {"self"}
    assert arguments == LEARNED_SETTINGS | set(TABLE_ONLY)
    assert not LEARNED_SETTINGS & set(TABLE_ONLY)


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "mine.npz"
    PolicyNetwork.initial(seed=1).save(path)
    return path


@pytest.mark.parametrize("policy", ["default", None, "file"])
@pytest.mark.parametrize("name", sorted(TABLE_ONLY))
def test_a_tabular_setting_with_a_learned_policy_is_refused_by_name(
    name: str, policy: str | None, policy_file: Path
) -> None:
    chosen = policy_file if policy == "file" else policy
    with pytest.raises(ValueError, match=rf"^{name}=.* needs policy='table'"):
        QLearningSampler(policy=chosen, **{name: TABLE_ONLY[name]})
    # The same value is the tabular agent's to take (warm_start: once the file exists).
    if name != "warm_start":
        sampler = QLearningSampler(policy="table", **{name: TABLE_ONLY[name]})
        assert sampler.policy == "table"


@pytest.mark.parametrize("policy", [3, 1.0, True, b"default.npz", ["default"], {"policy": 1}])
def test_a_policy_of_the_wrong_type_is_refused(policy: object) -> None:
    with pytest.raises(TypeError, match="policy must be 'default', 'table', None or the path"):
        QLearningSampler(policy=policy)  # type: ignore[arg-type]


def _policy_arrays(**changes: Any) -> dict[str, Any]:
    """The arrays of a valid policy file, with ``changes`` (``None`` deletes an entry)."""
    net = PolicyNetwork.initial(seed=0, hidden=4)
    arrays: dict[str, Any] = {
        "version": np.array(FILE_VERSION),
        "features": np.array(FEATURE_NAMES),
        **{f"w{i}": p for i, p in enumerate(net.params)},
    }
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


#: A valid policy file cut short (as a download that broke off leaves it).
_TRUNCATED = "truncated"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        (b"", "not a NumPy .npz archive"),
        (b"not a zip at all", "not a NumPy .npz archive"),
        (b"PK\x03\x04 truncated", "not a NumPy .npz archive"),
        (_TRUNCATED, "not a NumPy .npz archive"),
        (_policy_arrays(w3=None), "misses"),
        (_policy_arrays(version=np.array(99)), "version"),
        (_policy_arrays(features=np.array(FEATURE_NAMES[:-1])), "other features"),
        (_policy_arrays(w0=np.zeros((len(FEATURE_NAMES), 3))), "shape"),
        (_policy_arrays(w5=np.array([math.nan])), "NaN or infinite"),
    ],
)
@pytest.mark.parametrize("as_path", [False, True])
def test_a_missing_or_broken_policy_file_is_refused_naming_it(
    tmp_path: Path, content: bytes | str | dict[str, Any] | None, message: str, as_path: bool
) -> None:
    path = tmp_path / "policy.npz"
    if content == _TRUNCATED:
        PolicyNetwork.initial(seed=0).save(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict):
        np.savez(path, **content)
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        QLearningSampler(policy=path if as_path else str(path))
    assert str(path) in str(info.value)


def test_a_policy_name_that_is_no_file_is_refused_naming_it() -> None:
    """A misspelt name is read as a path: the error names it, at construction."""
    with pytest.raises(ValueError, match="Policy file 'tabel' does not exist"):
        QLearningSampler(policy="tabel")


def test_conditional_settings_are_used_when_needed() -> None:
    default = QLearningSampler(policy="table")
    assert isinstance(default.config, AgentConfig)
    assert default.config.max_walk == 4 and default.config.model_bandwidth == 0.1
    assert "model_bandwidth" in default.parameters
    joint = QLearningSampler(policy="table", model_joint=True, max_walk=2, model_candidates=5)
    assert isinstance(joint.config, AgentConfig)
    assert (joint.config.model_joint, joint.config.max_walk) == (True, 2)
    assert "model_bandwidth" not in joint.parameters  # unused by the joint model
    assert joint.config.model_candidates == 5


def test_the_learned_policy_is_the_default_with_its_own_defaults() -> None:
    sampler = QLearningSampler()
    assert sampler.policy == "default" and isinstance(sampler.config, PolicyConfig)
    assert sampler.parameters == {
        "policy": "default",
        "alpha": 0.0,
        "gamma": 0.9,
        "epsilon": 0.05,
        "epsilon_min": 0.0,
        "epsilon_decay": 1.0,
        "n_bins": 16,
        "max_bins": 64,
        "stale_after": 64,
        "decision_timeout": 2.0,
    }
    # alpha > 0 turns the per-study correction table on.
    assert QLearningSampler(alpha=0.1).config.alpha == 0.1
    assert QLearningSampler(policy=None).policy is None
    table = QLearningSampler(policy="table")
    assert table.policy == "table" and isinstance(table.config, AgentConfig)
    assert table.config == AgentConfig() and table.parameters["alpha"] == 0.5


def _trials(sampler: QLearningSampler) -> list[dict[str, Any]]:
    study = optuna.create_study(sampler=sampler)
    study.optimize(
        lambda t: (t.suggest_int("x", 0, 9) - 3) ** 2 + t.suggest_float("y", 0, 1), n_trials=12
    )
    return [t.params for t in study.trials]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"policy": None},
        {"policy": "file"},
        {"alpha": 0.0, "epsilon": 0.2, "epsilon_min": 0.1, "epsilon_decay": 0.9, "n_bins": 7},
        {"policy": "table"},
        {"policy": "table", "alpha": 0.25, "step_sizes": (1, 3), "n_bins": 7, "max_walk": 6},
        QLearningSampler.seed_design_parameters(),
    ],
    ids=["default", "untrained", "file", "learned-settings", "table", "table-settings", "seed"],
)
def test_parameters_rebuild_an_equivalent_sampler(
    kwargs: dict[str, Any], policy_file: Path
) -> None:
    expected = kwargs.get("policy", "default")
    if expected == "file":
        kwargs = {**kwargs, "policy": policy_file}
        expected = str(policy_file)  # a path is reported as a string
    sampler = QLearningSampler(**kwargs)
    params = sampler.parameters
    json.dumps(params)
    assert params["policy"] == sampler.policy == expected
    clone = QLearningSampler(**params)
    assert clone.parameters == params and clone.config == sampler.config
    assert clone.policy == sampler.policy
    assert (clone.moves, clone.step_sizes) == (sampler.moves, sampler.step_sizes)
    # ... that proposes the same trials, given the same seed.
    again = QLearningSampler(**params, seed=3)
    assert _trials(again) == _trials(QLearningSampler(**kwargs, seed=3))


def test_seed_design_parameters_is_a_fresh_plain_dict() -> None:
    params = QLearningSampler.seed_design_parameters()
    assert params["policy"] == "table"  # the design is the tabular agent's
    params["reward"] = "rank"
    assert QLearningSampler.seed_design_parameters()["reward"] == "value"
    sampler = QLearningSampler(**params)
    assert isinstance(sampler.config, AgentConfig)
    assert sampler.moves == "joint" and not sampler.config.walk_known


def test_numpy_scalars_are_accepted_and_stored_as_python_values() -> None:
    sampler = QLearningSampler(
        policy="table", alpha=np.float32(0.25), n_bins=np.int64(8), walk_known=np.True_
    )
    assert isinstance(sampler.config, AgentConfig)
    assert type(sampler.config.alpha) is float and sampler.n_bins == 8
    assert type(sampler.n_bins) is int and sampler.config.walk_known is True
    learned = QLearningSampler(alpha=np.float32(0.25), epsilon=np.float64(0.5), n_bins=np.int64(8))
    assert type(learned.config.alpha) is float and type(learned.config.epsilon) is float
    assert type(learned.n_bins) is int and learned.parameters["alpha"] == 0.25


def test_the_sampler_logs_under_optunas_logger(caplog: pytest.LogCaptureFixture) -> None:
    """optuna.logging.set_verbosity(ERROR) silences the sampler's fallback warning too."""

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_int("x", 0, 5)
        if trial.number >= 3:  # a conditional parameter: sampled independently
            trial.suggest_int(f"y{trial.number}", 0, 5)
        return float(x)

    optuna.logging.enable_propagation()
    try:
        before = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        try:
            with caplog.at_level("WARNING"):
                study = optuna.create_study(sampler=QLearningSampler(seed=0))
                study.optimize(objective, n_trials=6)
            assert not [r for r in caplog.records if "qlearn" in r.name]
        finally:
            optuna.logging.set_verbosity(before)
        caplog.clear()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            with caplog.at_level("WARNING"):
                study.optimize(objective, n_trials=2)
        finally:
            optuna.logging.set_verbosity(before)
        assert any(
            r.name.startswith("optuna.") and "independent" in r.getMessage() for r in caplog.records
        )
    finally:
        optuna.logging.disable_propagation()
