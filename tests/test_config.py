"""Every argument is checked where it enters, with an error that names it."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import optuna
import pytest

from optuna_qlearn import QLearningSampler


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"q_init": math.nan}, ValueError, "q_init"),
        ({"q_init": math.inf}, ValueError, "q_init"),
        ({"stale_after": 0}, ValueError, "stale_after"),
        ({"stale_after": -1}, ValueError, "stale_after"),
        ({"n_bins": 2.5}, TypeError, "n_bins"),
        ({"n_bins": 1}, ValueError, "n_bins"),
        ({"max_bins": True}, TypeError, "max_bins"),
        ({"restart_top_k": math.inf}, TypeError, "restart_top_k"),
        ({"alpha": "0.5"}, TypeError, "alpha"),
        ({"alpha": 0.0}, ValueError, "alpha"),
        ({"gamma": 1.5}, ValueError, "gamma"),
        ({"epsilon": math.nan}, ValueError, "epsilon"),
        ({"epsilon_decay": 0}, ValueError, "epsilon_decay"),
        ({"episode_length": 0}, ValueError, "episode_length"),
        ({"reward": "loss"}, ValueError, "reward"),
        ({"moves": "diagonal"}, ValueError, "moves"),
        ({"step_sizes": (1, 0)}, ValueError, r"step_sizes\[1\]"),
        ({"step_sizes": "124"}, TypeError, "step_sizes"),
        ({"step_sizes": ()}, ValueError, "step_sizes"),
        ({"walk_known": 1}, TypeError, "walk_known"),
        ({"n_startup": -1}, ValueError, "n_startup"),
        ({"model_gamma": 0.0}, ValueError, "model_gamma"),
        ({"model_scale": -1.0}, ValueError, "model_scale"),
        ({"decision_timeout": -1}, ValueError, "decision_timeout"),
        ({"seed": -3}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"independent_sampler": "random"}, TypeError, "independent_sampler"),
        ({"warn_independent_sampling": "no"}, TypeError, "warn_independent_sampling"),
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
        QLearningSampler(**kwargs)


def test_conditional_settings_are_used_when_needed() -> None:
    default = QLearningSampler()
    assert default.config.max_walk == 4 and default.config.model_bandwidth == 0.1
    assert "model_bandwidth" in default.parameters
    joint = QLearningSampler(model_joint=True, max_walk=2, model_candidates=5)
    assert (joint.config.model_joint, joint.config.max_walk) == (True, 2)
    assert "model_bandwidth" not in joint.parameters  # unused by the joint model
    assert joint.config.model_candidates == 5


def test_parameters_rebuild_an_equivalent_sampler() -> None:
    for sampler in (
        QLearningSampler(alpha=0.25, step_sizes=(1, 3), n_bins=7, max_walk=6),
        QLearningSampler(**QLearningSampler.seed_design_parameters()),
    ):
        params = sampler.parameters
        json.dumps(params)
        clone = QLearningSampler(**params)
        assert clone.parameters == params and clone.config == sampler.config
        assert (clone.moves, clone.step_sizes) == (sampler.moves, sampler.step_sizes)


def test_seed_design_parameters_is_a_fresh_plain_dict() -> None:
    params = QLearningSampler.seed_design_parameters()
    params["reward"] = "rank"
    assert QLearningSampler.seed_design_parameters()["reward"] == "value"
    sampler = QLearningSampler(**params)
    assert sampler.moves == "joint" and not sampler.config.walk_known


def test_numpy_scalars_are_accepted_and_stored_as_python_values() -> None:
    sampler = QLearningSampler(alpha=np.float32(0.25), n_bins=np.int64(8), walk_known=np.True_)
    assert type(sampler.config.alpha) is float and sampler.n_bins == 8
    assert type(sampler.n_bins) is int and sampler.config.walk_known is True


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
