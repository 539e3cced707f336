"""Issue 15: no input bricks a study, and learning stays true to what was evaluated."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution

from optuna_qlearn import QLearningSampler
from optuna_qlearn._core.agent import QLearningAgent
from optuna_qlearn._core.rewards import RewardModel
from optuna_qlearn._grid import Grid
from optuna_qlearn._replay import KEY_RECORD

#: The learned policy (the default) and the tabular agent: both keep these promises.
POLICIES = pytest.mark.parametrize("policy", ["default", "table"])


def _finite_table(sampler: QLearningSampler, study: optuna.Study) -> None:
    """What the sampler learned is finite: the Q-table of the tabular agent, the
    correction table of a learned policy, the rewards and the stored Q-values."""
    if sampler.policy == "table":
        rows = sampler.q_table(study)
        assert rows and all(math.isfinite(q) for row in rows for q in row["q"].values())
    else:
        table = sampler.correction_table(study)
        assert sum(row["updates"] for row in table.values()) > 0
        assert all(math.isfinite(row["q"]) for row in table.values())
    assert all(math.isfinite(r) for r in sampler.trial_rewards(study).values())
    assert sampler.trial_rewards(study)
    assert all(math.isfinite(t.user_attrs.get("qlearn:q") or 0.0) for t in study.trials)


@pytest.mark.parametrize(
    ("policy", "reward"),
    [("table", "value"), ("table", "improvement"), ("table", "rank"), ("default", None)],
)
def test_one_huge_value_does_not_brick_the_study(
    tmp_path: Path, policy: str, reward: str | None
) -> None:
    def objective(trial: optuna.Trial) -> float:
        trial.suggest_int("y", 0, 50)
        trial.suggest_int("z", 0, 50)
        return 1e200 if trial.number == 20 else 1.0

    storage = f"sqlite:///{tmp_path / 'huge.db'}"
    sampler = QLearningSampler(policy=policy, reward=reward, seed=0)
    study = optuna.create_study(study_name="s", storage=storage, sampler=sampler)
    study.optimize(objective, n_trials=40)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    _finite_table(sampler, study)
    # Every new sampler replays the same trials: a resume must work.
    again = QLearningSampler(policy=policy, reward=reward, seed=1)
    resumed = optuna.load_study(study_name="s", storage=storage, sampler=again)
    resumed.optimize(objective, n_trials=5)
    assert len(resumed.trials) == 45
    _finite_table(again, resumed)


def test_rewards_stay_finite_at_the_float_range() -> None:
    for mode in ("value", "improvement"):
        model = RewardModel(mode)
        for v in [1.0, 1.0, 1e308, -1e308, 1.7e308, -1.7e308, 1.0, 5e-324]:
            r = model.reward(v, previous=-1.7e308)
            assert math.isfinite(r) and abs(r) <= model.clip
            model.observe(v)
            assert math.isfinite(model.scale())
            assert math.isfinite(model.median())


@POLICIES
def test_tiny_steps_give_grid_values_optuna_accepts(policy: str) -> None:
    dist = FloatDistribution(0.0, 1.0, step=1e-9)
    grid = Grid({"a": dist})
    assert all(dist._contains(v) for v in grid.axes[0].values)

    def objective(trial: optuna.Trial) -> float:
        return (trial.suggest_float("a", 0.0, 1.0, step=1e-9) - 0.3) ** 2

    sampler = QLearningSampler(policy=policy, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=30)
    grid, _ = sampler.agent(study)
    checked = 0
    for t in study.trials:
        if KEY_RECORD in t.system_attrs:  # not the first, sampled before any finished
            state = t.system_attrs[KEY_RECORD]["state"]
            assert grid.decode(state) == t.params, t.number  # 12 of 30 differed before
            checked += 1
    assert checked >= 28


@POLICIES
def test_a_record_optuna_overrode_is_not_learned_as_its_grid_point(policy: str) -> None:
    """Whatever replaces a value (Optuna's checks, a user's fixed params after the
    proposal), the agent learns the evaluated params, never the record's point."""

    def objective(trial: optuna.Trial) -> float:
        return float(trial.suggest_int("x", 0, 20) + trial.suggest_int("y", 0, 20))

    sampler = QLearningSampler(policy=policy, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=12)
    # A trial whose record names another point than its params (as a replaced value does).
    trial = study.ask()
    trial.suggest_int("x", 0, 20)
    trial.suggest_int("y", 0, 20)
    record = dict(study._storage.get_trial(trial._trial_id).system_attrs[KEY_RECORD])
    true_state = (trial.params["x"], trial.params["y"])
    seen = {(t.params["x"], t.params["y"]) for t in study.trials if "y" in t.params}
    record["state"] = list(next((x, 20) for x in range(21) if (x, 20) not in seen))
    study._storage.set_trial_system_attr(trial._trial_id, KEY_RECORD, record)
    study.tell(trial, 5.0)
    fresh = QLearningSampler(policy=policy, seed=0)
    _, agent = fresh.agent(study)
    known = agent.known if isinstance(agent, QLearningAgent) else agent.search.values
    assert known[true_state] == 5.0
    assert tuple(record["state"]) not in known


@POLICIES
def test_stepped_floats_with_tiny_steps_do_not_collapse(policy: str) -> None:
    dist = FloatDistribution(0.0, 5e-12, step=1e-13)
    grid = Grid({"a": dist})
    assert grid.shape == (51,) and len(set(grid.axes[0].values)) == 51

    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("a", 0.0, 5e-12, step=1e-13)

    study = optuna.create_study(sampler=QLearningSampler(policy=policy, seed=0))
    study.optimize(objective, n_trials=40)
    values = [t.params["a"] for t in study.trials]
    assert all(dist._contains(v) for v in values)
    # Distinct grid points are distinct values, and each value is one grid point.
    placed = {(t.system_attrs[KEY_RECORD]["state"][0], t.params["a"]) for t in study.trials[1:]}
    assert len({s for s, _ in placed}) == len({v for _, v in placed}) == len(placed)
    if policy == "table":  # walk_known: never re-evaluates while points remain
        assert len(set(values)) == 40  # one point was evaluated 9 times before


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_extreme_float_ranges_give_distinct_accepted_values() -> None:
    for dist in (
        FloatDistribution(1e-300, 1e300, log=True),
        FloatDistribution(-1e308, 1e308),
        FloatDistribution(0.0, 1e-320),
        FloatDistribution(1.0, 1.0 + 1e-15),
        FloatDistribution(0.0, 1e300, step=1e298),
    ):
        values = Grid({"a": dist}).axes[0].values
        assert len(set(values)) == len(values) >= 1
        assert all(dist._contains(v) for v in values)
        assert list(values) == sorted(values)
