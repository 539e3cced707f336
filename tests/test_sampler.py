"""QLearningSampler against Optuna's sampler contract and its own promises."""

from __future__ import annotations

import itertools
import json
import math
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    RelativeSamplerTestCase,
    SingleOnlySamplerTestCase,
)
from optuna.trial import Trial, TrialState

from optuna_qlearn import QLearningSampler
from optuna_qlearn._core.agent import QLearningAgent
from optuna_qlearn._core.learned import PolicyAgent
from optuna_qlearn._core.policy import CORRECTION_KINDS, FEATURE_NAMES
from optuna_qlearn._replay import KEY_DECISION, KEY_RECORD, trial_value

optuna.logging.set_verbosity(optuna.logging.WARNING)


class TestQLearningSamplerConformance(
    BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase
):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: QLearningSampler(seed=0)


class TestTablePolicyConformance(
    BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase
):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: QLearningSampler(policy="table", seed=0)


class TestSeedPresetConformance(BasicSamplerTestCase, RelativeSamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: QLearningSampler(**QLearningSampler.seed_design_parameters(), seed=0)


def seed_grid_objective(trial: Trial) -> float:
    k = trial.suggest_int("K", 2, 10)
    dim = trial.suggest_categorical("intermediate_dim", [64, 128, 256])
    bs = trial.suggest_categorical("batch_size", [8, 16, 32])
    it = trial.suggest_categorical("maxiter", [10, 20, 40])
    return (k - 7) ** 2 + abs(math.log2(dim / 128)) + abs(math.log2(bs / 16)) + it / 40


def test_never_repeats_and_beats_random_search() -> None:
    def best(sampler: BaseSampler) -> float:
        study = optuna.create_study(sampler=sampler)
        study.optimize(seed_grid_objective, n_trials=40)
        params = [tuple(sorted(t.params.items())) for t in study.trials]
        if isinstance(sampler, QLearningSampler):
            assert len(set(params)) == len(params), "walk_known must never re-evaluate a point"
        return study.best_value

    q = [best(QLearningSampler(policy="table", seed=s)) for s in range(10)]
    rand = [best(optuna.samplers.RandomSampler(seed=s)) for s in range(10)]
    # 243-point grid, optimum 0.25: the learned walk beats random search on average.
    assert np.mean(q) < np.mean(rand)
    assert min(q) == pytest.approx(0.25)


#: The learned policy (the default) and the tabular agent: both keep the sampler's promises.
POLICIES = pytest.mark.parametrize("policy", ["default", "table"])


@POLICIES
def test_deterministic_with_seed_and_picklable(policy: str) -> None:
    def run(sampler: QLearningSampler) -> list[dict[str, object]]:
        study = optuna.create_study(sampler=sampler)
        study.optimize(seed_grid_objective, n_trials=25)
        return [t.params for t in study.trials]

    assert run(QLearningSampler(policy=policy, seed=3)) == run(
        QLearningSampler(policy=policy, seed=3)
    )
    assert run(QLearningSampler(policy=policy, seed=3)) != run(
        QLearningSampler(policy=policy, seed=4)
    )
    clone = pickle.loads(pickle.dumps(QLearningSampler(policy=policy, seed=3)))
    assert clone.policy == policy
    assert run(clone) == run(QLearningSampler(policy=policy, seed=3))
    s = QLearningSampler(policy=policy, seed=3)
    s.reseed_rng()
    assert len(run(s)) == 25


@POLICIES
def test_attributes_written_on_running_trial(policy: str) -> None:
    study = optuna.create_study(sampler=QLearningSampler(policy=policy, seed=0))
    study.optimize(seed_grid_objective, n_trials=12)
    t = study.trials[-1]
    rec = t.system_attrs[KEY_RECORD]
    assert set(rec) == {"grid", "state", "episode", "step", "parent", "path"}
    for key in ("state", "action", "epsilon", "q", "episode", "step"):
        assert f"qlearn:{key}" in t.user_attrs
    assert 0.0 <= t.user_attrs["qlearn:epsilon"] <= 1.0
    # Trial 0 has no search space yet (Optuna samples it independently); all later ones do.
    assert KEY_RECORD not in study.trials[0].system_attrs
    assert all(KEY_RECORD in u.system_attrs for u in study.trials[1:])
    records = [u.system_attrs[KEY_RECORD] for u in study.trials[1:]]
    if policy == "table":
        assert all(KEY_DECISION not in u.system_attrs for u in study.trials)
        moved = [r for r in records if r["parent"] is not None]
        assert moved, "episodes must continue from their parent trial"
        # Moves of the epsilon branch are marked as such, greedy ones are not.
        for eps, marked in ((1.0, True), (0.0, False)):
            sampler = QLearningSampler(
                policy="table", epsilon=eps, epsilon_min=eps, n_startup=0, seed=0
            )
            other = optuna.create_study(sampler=sampler)
            other.optimize(seed_grid_objective, n_trials=12)
            moves = [u for u in other.trials[1:] if u.system_attrs[KEY_RECORD]["path"]]
            assert moves
            assert all(u.user_attrs["qlearn:action"].endswith(" (random)") == marked for u in moves)
        return
    # The learned policy: every proposal carries its decision, and the user attributes
    # say the same as the decision.
    for u in study.trials[1:]:
        check_decision(u)
    # Choices of the epsilon branch are marked as such, greedy ones are not.
    for eps, marked in ((1.0, True), (0.0, False)):
        other = optuna.create_study(sampler=QLearningSampler(epsilon=eps, epsilon_min=eps, seed=0))
        other.optimize(seed_grid_objective, n_trials=12)
        for u in other.trials[1:]:
            decision = check_decision(u)
            assert decision["explored"] is marked and decision["epsilon"] == eps
            assert u.user_attrs["qlearn:action"].endswith(" (random)") == marked
            if not marked:  # greedy: the best total value among the candidates
                best = max(c[2] for c in decision["candidates"])
                assert decision["q"] == pytest.approx(best, abs=1e-4)


def check_decision(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The learned policy's decision stored on ``trial``, checked against its attributes."""
    decision: dict[str, Any] = trial.system_attrs[KEY_DECISION]
    assert set(decision) == {"kind", "label", "q_net", "q", "kind_best", "explored",
                             "epsilon", "candidates", "features", "chosen"}  # fmt: skip
    assert decision["kind"] in CORRECTION_KINDS
    assert set(decision["kind_best"]) <= set(CORRECTION_KINDS)
    assert decision["kind"] in decision["kind_best"]
    assert decision["q_net"] <= decision["kind_best"][decision["kind"]] + 1e-6
    assert list(decision["features"]) == list(FEATURE_NAMES)
    labels = [c[0] for c in decision["candidates"]]
    assert decision["label"] in labels
    assert all(math.isfinite(v) for c in decision["candidates"] for v in c[1:])
    assert all(math.isfinite(v) for v in decision["features"].values())
    user = trial.user_attrs
    assert user["qlearn:action"] == decision["label"] + (" (random)" * decision["explored"])
    assert user["qlearn:q"] == pytest.approx(decision["q"], abs=1e-6)
    assert user["qlearn:epsilon"] == pytest.approx(decision["epsilon"], abs=1e-6)
    assert user["qlearn:state"] == trial.system_attrs[KEY_RECORD]["state"]
    return decision


def test_policy_views_and_q_table_save_load(tmp_path: Path) -> None:
    sampler = QLearningSampler(policy="table", seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(seed_grid_objective, n_trials=40)
    rows = sampler.q_table(study)
    assert rows and all(set(r) == {"params", "state", "q", "visits"} for r in rows)
    assert sum(sum(r["visits"].values()) for r in rows) >= 39
    policy = sampler.greedy_policy(study)
    assert len(policy) == len(rows)
    for p in policy:
        assert p["action"] in next(r["q"] for r in rows if r["params"] == p["params"])
    for suffix in (".json", ".npz"):
        path = str(tmp_path / f"table{suffix}")
        sampler.save_q_table(study, path)
        warm = QLearningSampler(policy="table", seed=0, warm_start=path)
        study2 = optuna.create_study(sampler=warm)
        study2.enqueue_trial(study.trials[0].params)
        study2.optimize(seed_grid_objective, n_trials=1)
        _, agent = warm.agent(study2)
        assert isinstance(agent, QLearningAgent)
        for r in rows:
            state = tuple(r["state"])
            np.testing.assert_allclose(
                [agent.table.get(state)[agent.moves.labels().index(k)] for k in r["q"]],
                list(r["q"].values()),
                atol=1.0,  # one trial of learning on top of the warm start
            )
    with pytest.raises(ValueError, match=r"\.json or \.npz"):
        sampler.save_q_table(study, str(tmp_path / "table.pkl"))
    assert sampler.trial_rewards(study)
    with pytest.raises(ValueError, match="policy='table' has no correction table"):
        sampler.correction_table(study)


@pytest.mark.parametrize("policy", ["default", None])
def test_learned_policy_views(tmp_path: Path, policy: str | None) -> None:
    sampler = QLearningSampler(policy=policy, seed=0)
    assert sampler.policy == policy
    study = optuna.create_study(sampler=sampler)
    study.optimize(seed_grid_objective, n_trials=30)
    grid, agent = sampler.agent(study)
    assert isinstance(agent, PolicyAgent) and grid.names == tuple(sorted(grid.names))
    table = sampler.correction_table(study)
    assert list(table) == list(CORRECTION_KINDS)
    assert all(set(row) == {"q", "updates"} and math.isfinite(row["q"]) for row in table.values())
    # Every decision but the last is updated by the next one's value (29 decisions).
    assert sum(row["updates"] for row in table.values()) == 28
    assert all(row["q"] == 0.0 for row in table.values() if row["updates"] == 0)
    kinds = [t.system_attrs[KEY_DECISION]["kind"] for t in study.trials[1:]]
    assert {k for k, row in table.items() if row["updates"]} <= set(kinds)
    rewards = sampler.trial_rewards(study)
    assert sorted(rewards) == list(range(1, 30))  # trial 0 was Optuna's independent one
    assert all(0.0 <= r <= 1.0 for r in rewards.values())
    assert any(r > 0 for r in rewards.values())  # the best value improved at some point
    # The views of the tabular agent say what to use instead.
    for view in (sampler.q_table, sampler.greedy_policy):
        with pytest.raises(ValueError, match=r"policy='table'.*correction_table\(study\)"):
            view(study)
    with pytest.raises(ValueError, match=r"correction_table\(study\)"):
        sampler.save_q_table(study, tmp_path / "q.json")
    assert not (tmp_path / "q.json").exists()
    # With alpha=0 nothing is learned in the study: the network alone decides.
    frozen = QLearningSampler(policy=policy, alpha=0.0, seed=0)
    study = optuna.create_study(sampler=frozen)
    study.optimize(seed_grid_objective, n_trials=15)
    table = frozen.correction_table(study)
    assert all(row["q"] == 0.0 for row in table.values())
    assert sum(row["updates"] for row in table.values()) == 13


@POLICIES
def test_failed_nan_pruned_and_enqueued_trials(policy: str) -> None:
    sampler = QLearningSampler(policy=policy, seed=0)
    study = optuna.create_study(sampler=sampler, pruner=optuna.pruners.NopPruner())
    study.enqueue_trial({"K": 7, "intermediate_dim": 128, "batch_size": 16, "maxiter": 10})

    def objective(trial: Trial) -> float:
        v = seed_grid_objective(trial)
        if trial.number % 7 == 3:
            raise RuntimeError("boom")
        if trial.number % 7 == 4:
            return float("nan")
        if trial.number % 7 == 5:
            trial.report(v, 0)
            raise optuna.TrialPruned()
        return v

    study.optimize(objective, n_trials=35, catch=(RuntimeError,))
    states = [t.state for t in study.trials]
    assert states.count(TrialState.FAIL) == 10 and states.count(TrialState.PRUNED) == 5
    assert study.trials[0].params == {"K": 7, "intermediate_dim": 128, "batch_size": 16,
                                      "maxiter": 10}  # fmt: skip
    _, agent = sampler.agent(study)
    assert agent.n_steps == 35
    failed = {
        tuple(t.system_attrs[KEY_RECORD]["state"])
        for t in study.trials
        if t.state == TrialState.FAIL and KEY_RECORD in t.system_attrs
    }
    assert failed
    assert all(math.isfinite(r) for r in sampler.trial_rewards(study).values())
    if isinstance(agent, QLearningAgent):
        assert agent.failed  # failed points are remembered, never proposed again
        assert all(math.isfinite(v) for row in agent.table.q.values() for v in row)
        return
    assert isinstance(agent, PolicyAgent)
    # Failed points are remembered as evaluated, with no value unless another trial
    # there had one.
    valued = {  # complete trials, and pruned ones with a reported value
        tuple(t.system_attrs[KEY_RECORD]["state"])
        for t in study.trials
        if trial_value(t) is not None and KEY_RECORD in t.system_attrs
    }
    assert all(p in agent.search.values for p in failed)
    assert all(agent.search.values[p] == math.inf for p in failed - valued)
    assert math.isfinite(agent.search.best_value)
    assert all(math.isfinite(row["q"]) for row in sampler.correction_table(study).values())
    assert all(math.isfinite(t.user_attrs["qlearn:q"]) for t in study.trials[1:])


@POLICIES
def test_conditional_space_falls_back_with_warning(
    caplog: pytest.LogCaptureFixture, policy: str
) -> None:
    def objective(trial: Trial) -> float:
        kind = trial.suggest_categorical("kind", ["a", "b"])
        x = trial.suggest_float(f"x_{kind}", -1, 1)
        return x**2

    study = optuna.create_study(sampler=QLearningSampler(policy=policy, seed=0))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.logging.enable_propagation()
    try:
        with caplog.at_level("WARNING"):
            study.optimize(objective, n_trials=10)
    finally:
        optuna.logging.disable_propagation()
    assert len(study.trials) == 10
    assert any("sampled independently" in r.getMessage() for r in caplog.records)
    caplog.clear()
    quiet = QLearningSampler(policy=policy, seed=0, warn_independent_sampling=False)
    optuna.logging.enable_propagation()
    try:
        with caplog.at_level("WARNING"):
            optuna.create_study(sampler=quiet).optimize(objective, n_trials=10)
    finally:
        optuna.logging.disable_propagation()
    assert not any("sampled independently" in r.getMessage() for r in caplog.records)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="moves"):
        QLearningSampler(policy="table", moves="diag")
    with pytest.raises(ValueError, match="moves='joint' is a setting of the tabular agent"):
        QLearningSampler(moves="joint")
    for policy in ("default", "table"):
        with pytest.raises(ValueError, match="epsilon"):
            QLearningSampler(policy=policy, epsilon=2.0)
    with pytest.raises(ValueError, match="3\\*\\*d"):
        study = optuna.create_study(sampler=QLearningSampler(policy="table", moves="joint"))
        study.optimize(lambda t: sum(t.suggest_int(f"p{i}", 0, 2) for i in range(9)), n_trials=2)
    for policy in ("default", "table"):
        multi = optuna.create_study(
            directions=["minimize", "minimize"], sampler=QLearningSampler(policy=policy)
        )
        with pytest.raises(ValueError, match="multi-objective"):
            multi.ask({"x": optuna.distributions.FloatDistribution(0, 1)})


@POLICIES
def test_maximize_direction(policy: str) -> None:
    sampler = QLearningSampler(policy=policy, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda t: -seed_grid_objective(t), n_trials=50)
    assert study.best_value >= -0.75


def learned_state(sampler: QLearningSampler, study: optuna.Study) -> object:
    """What the sampler learned from the study: its Q-table (the tabular agent), or the
    correction table (a learned policy), with the reward of every trial."""
    if sampler.policy == "table":
        return sampler.q_table(study), sampler.trial_rewards(study)
    return sampler.correction_table(study), sampler.trial_rewards(study)


@POLICIES
def test_parallel_threads_n_jobs(policy: str) -> None:
    sampler = QLearningSampler(policy=policy, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(seed_grid_objective, n_trials=40, n_jobs=4)
    assert len(study.trials) == 40
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    fresh = QLearningSampler(policy=policy, seed=0)
    assert learned_state(fresh, study) == learned_state(sampler, study)
    if policy != "table":
        # A decision's correction is updated when the next trial (in number order) was
        # also chosen by the policy. Which of the first trials started before any
        # finished (and so had no search space and no decision) depends on the threads.
        decided = [KEY_DECISION in t.system_attrs for t in study.trials]
        expected = sum(a and b for a, b in itertools.pairwise(decided))
        assert expected >= 30
        assert sum(r["updates"] for r in fresh.correction_table(study).values()) == expected


_RESUME_SCRIPT = textwrap.dedent(
    """
    import json, math, sys
    import optuna
    from optuna_qlearn import QLearningSampler
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        k = trial.suggest_int("K", 2, 10)
        dim = trial.suggest_categorical("intermediate_dim", [64, 128, 256])
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        return (k - 7) ** 2 + abs(math.log2(dim / 128)) + (math.log10(lr) + 2.5) ** 2

    url, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sampler = QLearningSampler(policy=sys.argv[5], seed=int(sys.argv[4]))
    study = optuna.create_study(storage=url, study_name="resume", sampler=sampler,
                                load_if_exists=True)
    study.optimize(objective, n_trials=n)
    table = sampler.q_table(study) if sys.argv[5] == "table" else sampler.correction_table(study)
    json.dump(table, open(out, "w"))
    """
)


@POLICIES
def test_resume_in_new_process_gives_same_q_table(tmp_path: Path, policy: str) -> None:
    script = tmp_path / "run.py"
    script.write_text(_RESUME_SCRIPT)
    url = f"sqlite:///{tmp_path / 'study.db'}"

    def run(n: int, out: str, seed: int) -> Any:
        subprocess.run(
            [sys.executable, str(script), url, str(n), out, str(seed), policy], check=True
        )
        return json.loads(Path(out).read_text())

    def table(sampler: QLearningSampler, study: optuna.Study) -> Any:
        view = sampler.q_table if policy == "table" else sampler.correction_table
        return json.loads(json.dumps(view(study)))

    def n_updates(table: Any) -> int:
        if policy == "table":
            return sum(sum(r["visits"].values()) for r in table)
        return sum(r["updates"] for r in table.values())

    first = run(40, str(tmp_path / "a.json"), 0)
    # A new process with a new sampler rebuilds the same table from storage alone...
    sampler = QLearningSampler(policy=policy, seed=123)
    study = optuna.load_study(study_name="resume", storage=url, sampler=sampler)
    assert table(sampler, study) == first
    # ...and continues learning from it.
    second = run(10, str(tmp_path / "b.json"), 1)
    study = optuna.load_study(study_name="resume", storage=url)
    assert len(study.trials) == 50
    assert n_updates(second) > n_updates(first)
    assert table(QLearningSampler(policy=policy, seed=7), study) == second


@POLICIES
def test_own_batch_asks_are_not_awaited_as_other_workers(tmp_path: Path, policy: str) -> None:
    # Decisions wait for *other* workers' earlier trials; trials this process created
    # with study.ask() and has not sampled yet must not count as such.
    sampler = QLearningSampler(policy=policy, seed=0)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'b.db'}", sampler=sampler)
    for _ in range(3):
        t = study.ask()
        study.tell(t, t.suggest_int("x", 0, 20) + t.suggest_int("y", 0, 20))
    batch = [study.ask() for _ in range(5)]
    waited: list[list[int]] = []
    replay_cls = type(next(iter(next(iter(sampler._views.values())).replays.values())))
    original = replay_cls.undecided_before

    def spy(self: object, number: int, timeout: float) -> list[int]:
        out = original(self, number, timeout)  # type: ignore[arg-type]
        waited.append(out)
        return out

    replay_cls.undecided_before = spy  # type: ignore[method-assign]
    try:
        for t in reversed(batch):
            study.tell(t, t.suggest_int("x", 0, 20) + t.suggest_int("y", 0, 20))
    finally:
        replay_cls.undecided_before = original  # type: ignore[method-assign]
    assert waited and all(w == [] for w in waited)
    # Trials in flight together never share a point; walk_known never repeats one.
    assert len({tuple(sorted(t.params.items())) for t in study.trials[3:]}) == 5
    if policy == "table":
        assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 8
