"""Ray Tune: ``OptunaSearch(sampler=QLearningSampler(...))`` with two trials in flight.

A local Ray instance (2 CPUs, no dashboard, loopback) runs 12 trials through
``ConcurrencyLimiter(OptunaSearch(...), 2)``, with the study kept in a journal file (the
``storage=`` of ``OptunaSearch``) so that it can be read back. Checked: every Ray trial
reported, the study has the same 12 completed trials with the values Ray saw, trials
really overlapped, the agent proposed the trials after its start-up ones, no two trials in
flight together evaluated the same grid point (``test_distributed.find_conflicts``), and
the Q-table rebuilt from the journal has learned from all of them.

Needs ``ray[tune]`` (``pip install 'optuna-qlearn[ray]'``); missing, it skips locally and
fails in CI.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import require
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from test_distributed import find_conflicts

from optuna_qlearn import QLearningSampler
from optuna_qlearn._replay import parse_record

N_SAMPLES = 12
N_STARTUP = 2
SPACE = {
    "x": FloatDistribution(-3.0, 3.0),
    "k": IntDistribution(0, 9),
    "c": CategoricalDistribution(["a", "b", "c"]),
}


def loss_of(config: dict[str, Any]) -> float:
    return (config["x"] - 1.0) ** 2 + 0.2 * (config["k"] - 4) ** 2 + "abc".index(config["c"])


def trainable(config: dict[str, Any]) -> None:
    from ray import tune

    time.sleep(0.5)  # long enough for the two slots to overlap
    tune.report({"loss": loss_of(config)})


@pytest.fixture(scope="module")
def ray_local() -> Any:
    require(
        importlib.util.find_spec("ray") is not None
        and importlib.util.find_spec("ray.tune") is not None,
        "ray[tune] is not installed (pip install 'optuna-qlearn[ray]')",
    )
    import ray
    from ray import cloudpickle

    # Ray's workers do not have tests/ on their path: ship this module's functions by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _node_ip_address="127.0.0.1",
    )
    yield ray
    ray.shutdown()


def test_optuna_search_with_qlearning_sampler(ray_local: Any, tmp_path: Path) -> None:
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    journal = tmp_path / "study.journal"
    sampler_args: dict[str, Any] = {"policy": "table", "n_startup": N_STARTUP, "seed": 0}
    search = OptunaSearch(
        SPACE,
        metric="loss",
        mode="min",
        sampler=QLearningSampler(**sampler_args),
        study_name="ray-qlearn",
        storage=JournalStorage(JournalFileBackend(str(journal))),
    )
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(search, max_concurrent=2),
            num_samples=N_SAMPLES,
            reuse_actors=True,  # two worker processes in all, not one per trial
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), name="qlearn", verbose=0),
    )
    results = tuner.fit()
    assert results.num_errors == 0
    ray_losses = sorted(r.metrics["loss"] for r in results)
    assert len(ray_losses) == N_SAMPLES
    best = results.get_best_result(metric="loss", mode="min")
    assert best.metrics["loss"] == pytest.approx(loss_of(best.config))

    study = optuna.load_study(
        study_name="ray-qlearn", storage=JournalStorage(JournalFileBackend(str(journal)))
    )
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == N_SAMPLES
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert sorted(t.value for t in trials) == pytest.approx(ray_losses)
    for t in trials:
        assert t.value == pytest.approx(loss_of(t.params))

    sampler = QLearningSampler(**sampler_args)
    grid, agent = sampler.agent(study)
    n_agent = sum(parse_record(t, grid) is not None for t in trials)
    assert n_agent >= N_SAMPLES - N_STARTUP - 2, f"the agent proposed only {n_agent} trials"
    assert agent.n_steps == N_SAMPLES
    assert len(sampler.q_table(study)) > 0
    conflicts, n_overlapping = find_conflicts(study, sampler)
    print(f"\n[ray] agent-proposed trials: {n_agent}, overlapping pairs: {n_overlapping}")
    assert n_overlapping >= N_SAMPLES // 2, "the two slots never ran trials together"
    assert conflicts == []
