"""The learned policy: the Q-function decides every proposal (issue 14, bar 1)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import optuna
import pytest

from optuna_qlearn import QLearningSampler
from optuna_qlearn._core.learned import Decision
from optuna_qlearn._core.policy import (
    ACTION_KINDS,
    FEATURE_NAMES,
    N_FEATURES,
    PolicyEnsemble,
    PolicyFileError,
    PolicyNetwork,
    SearchState,
    epsilon_greedy,
    improvement_reward,
)
from optuna_qlearn._core.training import Task, TrainingConfig, generate_task, run_episode, train
from optuna_qlearn._replay import KEY_DECISION
from optuna_qlearn.sampler import default_policy_path

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_int("x", 0, 20)
    y = trial.suggest_float("y", -2.0, 2.0, step=0.25)
    c = trial.suggest_categorical("c", ["a", "b", "c"])
    return (x - 13) ** 2 + y**2 + (0.0 if c == "b" else 3.0)


def _network_preferring(feature: str, weight: float = 10.0) -> PolicyNetwork:
    """A fixed network whose Q-value is ``weight * features[feature]`` (features >= 0)."""
    j = FEATURE_NAMES.index(feature)
    h = 4
    w1 = np.zeros((N_FEATURES, h))
    w1[j, 0] = 1.0
    w2 = np.zeros((h, h))
    w2[0, 0] = 1.0
    w3 = np.zeros((h, 1))
    w3[0, 0] = weight
    return PolicyNetwork([w1, np.zeros(h), w2, np.zeros(h), w3, np.zeros(1)])


def _decisions(study: optuna.Study) -> list[dict]:
    """The decisions of every trial but the first: before any trial has finished, the
    search space is unknown and Optuna asks the independent sampler (as for any
    relative sampler)."""
    assert KEY_DECISION not in study.trials[0].system_attrs
    return [t.system_attrs[KEY_DECISION] for t in study.trials[1:]]


@pytest.mark.parametrize("kind", ["random", "model", "restart-best"])
def test_greedy_proposals_take_the_action_the_q_function_prefers(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "prefers.npz"
    _network_preferring(f"kind_{kind}").save(path)
    sampler = QLearningSampler(policy=path, epsilon=0.0, alpha=0.0, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_objective, n_trials=25)
    decisions = _decisions(study)
    # restart-best exists once a point is evaluated; before that the others tie.
    expected = decisions[1:] if kind == "restart-best" else decisions
    assert all(d["label"] == kind and not d["explored"] for d in expected)
    for d in decisions:
        best = max(q for _, _, q in d["candidates"])
        assert d["q"] == pytest.approx(best, abs=1e-4)


def test_the_chosen_candidate_is_the_point_evaluated(tmp_path: Path) -> None:
    # Prefer moves up the first axis: the walk climbs x from wherever it starts.
    net = _network_preferring("move_size", weight=1.0)
    net.params[0][FEATURE_NAMES.index("dist_best"), 0] = -0.01  # break ties near the best
    path = tmp_path / "moves.npz"
    net.save(path)
    sampler = QLearningSampler(policy=path, epsilon=0.0, alpha=0.0, seed=1)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_objective, n_trials=12)
    names = list(sampler.agent(study)[0].names)
    for prev, trial in zip(study.trials[1:], study.trials[2:]):
        d = trial.system_attrs[KEY_DECISION]
        assert d["kind"] == "move-4" and d["label"][-2:] in ("+4", "-4")
        name, sign = d["label"][:-2], 1 if d["label"][-2] == "+" else -1
        state_prev, state = prev.user_attrs["qlearn:state"], trial.user_attrs["qlearn:state"]
        axis = names.index(name)
        diff = np.subtract(state, state_prev)
        assert diff[axis] == 4 * sign and np.count_nonzero(diff) == 1


def test_exploration_rate_is_the_only_other_way_to_choose(tmp_path: Path) -> None:
    path = tmp_path / "random.npz"
    _network_preferring("kind_random").save(path)
    sampler = QLearningSampler(policy=path, epsilon=0.4, alpha=0.0, seed=2)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_objective, n_trials=150)
    decisions = _decisions(study)
    explored = [d["explored"] for d in decisions]
    # Binomial(149, 0.4): mean 60, sd 6; a 5-sd band.
    assert 30 <= sum(explored) <= 90
    assert all(d["label"] == "random" for d in decisions if not d["explored"])
    assert any(d["label"] != "random" for d in decisions if d["explored"])


def test_every_default_proposal_is_an_argmax_or_an_exploration() -> None:
    sampler = QLearningSampler(seed=3)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_objective, n_trials=2)
    study.enqueue_trial({"x": 3, "y": 0.5, "c": "a"})
    study.optimize(_objective, n_trials=38)
    assert KEY_DECISION not in study.trials[2].system_attrs  # enqueued: no decision
    assert study.trials[2].params == {"x": 3, "y": 0.5, "c": "a"}
    for trial in [study.trials[1], *study.trials[3:]]:
        d = trial.system_attrs[KEY_DECISION]
        labels = [c[0] for c in d["candidates"]]
        assert d["label"] in labels
        if not d["explored"]:
            assert d["q"] == pytest.approx(max(c[2] for c in d["candidates"]), abs=1e-4)
        assert set(d["features"]) == set(FEATURE_NAMES)


def test_in_study_learning_is_rebuilt_from_storage(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    sampler = QLearningSampler(seed=4, alpha=0.1)
    study = optuna.create_study(sampler=sampler, storage=storage, study_name="s")
    study.optimize(_objective, n_trials=30)
    table = sampler.correction_table(study)
    # Trials 1-29 are decided (trial 0 is the independent sampler's): 28 consecutive pairs.
    assert sum(row["updates"] for row in table.values()) == 28
    assert any(row["q"] != 0.0 for row in table.values())
    fresh = QLearningSampler(seed=99, alpha=0.1)
    again = optuna.load_study(study_name="s", storage=storage, sampler=fresh)
    assert fresh.correction_table(again) == table
    frozen = QLearningSampler(seed=4, alpha=0.0)
    assert all(row["q"] == 0.0 for row in frozen.correction_table(again).values())


def test_in_study_learning_changes_the_choices() -> None:
    """With alpha > 0 the correction table feeds back into the argmax."""
    runs = []
    for alpha in (0.0, 0.5):
        study = optuna.create_study(sampler=QLearningSampler(seed=5, alpha=alpha))
        study.optimize(_objective, n_trials=40)
        runs.append([t.params for t in study.trials])
    assert runs[0][:2] == runs[1][:2]  # the same start (nothing learned yet)
    assert runs[0] != runs[1]


def test_untrained_and_default_policies_differ() -> None:
    assert QLearningSampler(policy=None).policy is None
    studies = []
    for policy in ("default", None):
        study = optuna.create_study(sampler=QLearningSampler(policy=policy, seed=6))
        study.optimize(_objective, n_trials=20)
        studies.append([t.params for t in study.trials])
    assert studies[0] != studies[1]


def test_the_shipped_policy_is_small_and_loads_without_pickle() -> None:
    path = default_policy_path()
    assert path.stat().st_size < 1_000_000
    with np.load(path, allow_pickle=False) as data:
        assert tuple(str(f) for f in data["features"]) == FEATURE_NAMES
    assert [m.hidden for m in PolicyEnsemble.load(path).members] == [32, 32]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.unlink(), "does not exist"),
        (lambda p: p.write_bytes(b"garbage"), "not a NumPy .npz"),
        (lambda p: np.savez(p, version=np.array(1)), "misses"),
        (lambda p: _rewrite(p, version=np.array(7)), "version"),
        (lambda p: _rewrite(p, features=np.array(["a", "b"])), "other features"),
        (lambda p: _rewrite(p, w2=np.full((32, 32), np.nan)), "NaN"),
        (lambda p: _rewrite(p, w0=np.zeros((N_FEATURES, 3))), "shape"),
    ],
)
def test_a_bad_policy_file_is_refused_by_name(tmp_path: Path, mutate, message: str) -> None:
    path = tmp_path / "policy.npz"
    PolicyNetwork.initial(0).save(path)
    mutate(path)
    with pytest.raises(PolicyFileError, match=message) as info:
        QLearningSampler(policy=path)
    assert str(path) in str(info.value)


def _rewrite(path: Path, **changes: np.ndarray) -> None:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update(changes)
    np.savez(path, **arrays)  # type: ignore[arg-type]


def test_object_arrays_are_never_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "pickled.npz"
    PolicyNetwork.initial(0).save(path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["w0"] = np.array([object()], dtype=object)
    np.savez(path, **arrays)  # type: ignore[arg-type]
    with pytest.raises(PolicyFileError, match=r"pickled\.npz"):
        QLearningSampler(policy=path)


def test_policy_argument_type_is_checked() -> None:
    with pytest.raises(TypeError, match="policy"):
        QLearningSampler(policy=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"walk_known.*policy='table'"):
        QLearningSampler(walk_known=True)


# ----------------------------------------------------------------------------- the core
def test_epsilon_greedy_breaks_ties_uniformly_and_explores() -> None:
    rng = np.random.default_rng(0)
    picks = [epsilon_greedy(np.array([1.0, 3.0, 3.0, 0.0]), 0.0, rng)[0] for _ in range(400)]
    assert set(picks) == {1, 2} and 150 < picks.count(1) < 250
    explored = [epsilon_greedy(np.array([1.0, 3.0]), 1.0, rng)[1] for _ in range(10)]
    assert all(explored)
    with pytest.raises(ValueError, match="no candidate"):
        epsilon_greedy(np.array([]), 0.1, rng)


def test_reward_is_the_improvement_over_the_spread() -> None:
    assert improvement_reward(math.inf, 1.0, 2.0) == 0.0
    assert improvement_reward(3.0, 2.0, 4.0) == 0.25
    assert improvement_reward(3.0, 3.0, 4.0) == 0.0
    assert improvement_reward(9.0, 0.0, 4.0) == 1.0  # clipped
    assert improvement_reward(3.0, 2.0, 0.0) == 0.0


@pytest.mark.parametrize("shape", [(2,), (41, 3), (5, 5, 5, 5, 5, 5, 5, 5, 5, 5)])
def test_features_do_not_depend_on_the_grid_size(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    cats = tuple(i % 3 == 2 for i in range(len(shape)))
    state = SearchState(shape, cats)
    for t in range(30):
        cands = state.candidates(rng)
        x = state.features(cands)
        assert x.shape == (len(cands), N_FEATURES) and np.isfinite(x).all()
        assert all(0 <= p[a] < n for p in cands.points for a, n in enumerate(shape))
        assert set(cands.kinds.tolist()) <= set(range(len(ACTION_KINDS)))
        state.record(cands.points[int(rng.integers(len(cands)))], float(t % 7))


def test_busy_points_are_not_candidates() -> None:
    rng = np.random.default_rng(2)
    state = SearchState((3, 3), (False, False))
    state.record((1, 1), 1.0)
    busy = {(0, 1), (2, 1), (1, 0), (1, 2)}
    cands = state.candidates(rng, busy)
    assert not busy & set(cands.points)


def test_failed_points_count_as_evaluated_without_a_value() -> None:
    state = SearchState((4,), (False,))
    state.record((2,), None)
    assert (2,) in state.values and state.best_point is None and state.spread() == 0.0
    state.record((1,), 5.0)
    state.record((1,), 3.0)  # the best value of a point is kept
    assert state.best_value == 3.0 and state.best_points(5) == [(1,)]


def test_training_is_deterministic_and_learns() -> None:
    config = TrainingConfig(episodes=40, budgets=(40,), sync_every=20)
    a, log = train(seed=3, config=config)
    b, _ = train(seed=3, config=config)
    assert all(np.array_equal(x, y) for x, y in zip(a.params, b.params))
    untrained = PolicyNetwork.initial(3)
    assert any(not np.array_equal(x, y) for x, y in zip(a.params, untrained.params))
    assert len(log.rows) == 40 and all(math.isfinite(r["return"]) for r in log.rows)


def test_tasks_are_validated() -> None:
    with pytest.raises(ValueError, match="categorical flags"):
        Task(np.zeros((3, 3)), (False,))
    with pytest.raises(ValueError, match="NaN"):
        Task(np.array([0.0, np.nan]), (False,))
    with pytest.raises(TypeError, match="must return a Task"):
        train(lambda rng: "nope", config=TrainingConfig(episodes=1))  # type: ignore[arg-type,return-value]
    task = generate_task(np.random.default_rng(0))
    order = run_episode(task, PolicyNetwork.initial(0), 10, 0.1, np.random.default_rng(0))
    assert len(order) == 10


def test_decision_attrs_round_trip_and_malformed_ones_are_ignored() -> None:
    study = optuna.create_study(sampler=QLearningSampler(seed=7))
    study.optimize(_objective, n_trials=3)
    attrs = study.trials[-1].system_attrs[KEY_DECISION]
    d = Decision.from_attrs(attrs)
    assert d is not None and d.kind == attrs["kind"] and d.kind_best == attrs["kind_best"]
    assert Decision.from_attrs({"kind": "teleport", "q_net": 1.0, "kind_best": {}}) is None
    assert Decision.from_attrs({"kind": "model"}) is None


def test_the_stored_decision_names_the_chosen_candidate() -> None:
    study = optuna.create_study(sampler=QLearningSampler(seed=8))
    study.optimize(_objective, n_trials=15)
    for d in _decisions(study):
        label, _, q = d["candidates"][d["chosen"]]
        assert label == d["label"] and q == pytest.approx(d["q"], abs=1e-4)


def _cheap(trial: optuna.Trial) -> float:
    depth = trial.suggest_int("depth", 1, 6)
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    act = trial.suggest_categorical("act", ["relu", "gelu"])
    return (depth - 4) ** 2 + abs(math.log10(lr) + 2.5) + (act != "gelu")


def test_a_user_trains_a_policy_from_a_cheap_objective(tmp_path: Path) -> None:
    from optuna_qlearn.policy import GridTask, train_policy

    task = GridTask.from_objective(_cheap, n_bins=5)
    assert sorted(task.shape) == [2, 5, 6] and task.categorical.count(True) == 1
    # The table holds the objective: its minimum is the best grid point's value.
    best = min(
        _cheap(optuna.trial.FixedTrial({"depth": d, "lr": lr, "act": a}))
        for d in range(1, 7)
        for lr in np.geomspace(1e-4, 1e-1, 5)
        for a in ("relu", "gelu")
    )
    assert task.table.min() == pytest.approx(best)
    path = tmp_path / "mine.npz"
    report = train_policy(path, tasks=[task], episodes=12, seed=0, budgets=(20,), members=2)
    assert report.path == str(path) and report.episodes == 12 and report.members == 2
    again = tmp_path / "again.npz"
    train_policy(again, tasks=[task], episodes=12, seed=0, budgets=(20,), members=2)
    assert path.read_bytes() == again.read_bytes()  # deterministic given the seed
    # Member k is the network trained alone from seed + k.
    one = tmp_path / "one.npz"
    train_policy(one, tasks=[task], episodes=12, seed=1, budgets=(20,), members=1)
    second = PolicyEnsemble.load(path).members[1]
    assert all(np.array_equal(a, b) for a, b in zip(second.params, PolicyNetwork.load(one).params))
    study = optuna.create_study(sampler=QLearningSampler(policy=path, seed=0))
    study.optimize(_cheap, n_trials=10)
    assert QLearningSampler(policy=path).parameters["policy"] == str(path)


def test_training_input_is_checked() -> None:
    from optuna_qlearn.policy import GridTask, train_policy

    with pytest.raises(ValueError, match="tasks must be a non-empty sequence"):
        train_policy("x.npz", tasks=[], episodes=1)
    with pytest.raises(ValueError, match="episodes"):
        train_policy("x.npz", episodes=0)
    with pytest.raises(ValueError, match="members"):
        train_policy("x.npz", episodes=1, members=0)
    with pytest.raises(ValueError, match="max_points"):
        GridTask.from_objective(_cheap, n_bins=50, max_bins=50, max_points=100)
    with pytest.raises(ValueError, match="returned nan"):
        GridTask.from_objective(lambda t: float("nan") * t.suggest_int("a", 0, 3))


def test_the_train_policy_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from optuna_qlearn import cli

    out = tmp_path / "cli.npz"
    argv = ["train-policy", str(out), "--episodes", "3", "--seed", "1", "--members", "2"]
    assert cli.main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    assert [m.hidden for m in PolicyEnsemble.load(out).members] == [32, 32]
    assert cli.main(["train-policy", str(out), "--members", "0"]) == 2
    assert "--members must be in [1, 64]" in capsys.readouterr().err
    assert cli.main(["train-policy", str(tmp_path / "p.json"), "--episodes", "1"]) == 2
    assert "must end in .npz" in capsys.readouterr().err
    assert cli.main(["train-policy", str(out), "--tasks", "no_such_module:x"]) == 2
    assert "cannot import" in capsys.readouterr().err
    assert cli.main(["train-policy", str(out), "--tasks", "nocolon"]) == 2


def test_an_ensemble_averages_its_members_and_round_trips_through_its_file(
    tmp_path: Path,
) -> None:
    members = [PolicyNetwork.initial(seed=s, hidden=h) for s, h in ((0, 8), (1, 4), (2, 8))]
    ensemble = PolicyEnsemble(members)
    x = np.random.default_rng(0).random((5, N_FEATURES))
    assert np.allclose(ensemble(x), np.mean([m(x) for m in members], axis=0))
    assert np.array_equal(PolicyEnsemble(members[:1])(x), members[0](x))  # one: itself
    path = tmp_path / "three.npz"
    ensemble.save(path)
    assert np.array_equal(PolicyEnsemble.load(path)(x), ensemble(x))
    with pytest.raises(PolicyFileError, match="holds 3 networks"):
        PolicyNetwork.load(path)
    single = tmp_path / "one.npz"
    members[1].save(single)
    assert [m.hidden for m in PolicyEnsemble.load(single).members] == [4]
    with pytest.raises(ValueError, match="at least one network"):
        PolicyEnsemble([])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"members": np.array(4)}, "misses ['m3_w0'"),
        ({"members": np.array(0)}, "members="),
        ({"members": np.array([3])}, "members="),
        ({"members": np.array(2.0)}, "members="),
        ({"m2_w1": np.zeros(3)}, "shape"),
    ],
)
def test_a_malformed_ensemble_file_is_refused_by_name(
    tmp_path: Path, changes: dict[str, np.ndarray], message: str
) -> None:
    path = tmp_path / "ens.npz"
    PolicyEnsemble([PolicyNetwork.initial(seed=s, hidden=4) for s in range(3)]).save(path)
    _rewrite(path, **changes)
    with pytest.raises(PolicyFileError, match=re.escape(message)) as info:
        QLearningSampler(policy=path)
    assert str(path) in str(info.value)
