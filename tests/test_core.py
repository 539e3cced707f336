"""The pure Q-learning core, tested without Optuna studies."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from optuna_qlearn._core.agent import AgentConfig, QLearningAgent, Step
from optuna_qlearn._core.qlearning import (
    MAX_JOINT_DIMS,
    MoveSet,
    QTable,
    SavedTable,
    bellman_target,
    epsilon_at,
    epsilon_greedy,
    load_table,
    save_table,
)
from optuna_qlearn._core.rewards import RewardModel
from optuna_qlearn._grid import Grid


# ------------------------------------------------------------------ Bellman update
def test_bellman_update_hand_computed() -> None:
    table = QTable(n_actions=3)
    mask = np.ones(3, dtype=bool)
    # Q(s1, .) = [0, 2, 1] so max_a' Q(s1, a') = 2.
    table.set((1,), np.array([0.0, 2.0, 1.0]))
    td = table.update((0,), 2, reward=1.0, next_state=(1,), next_mask=mask, alpha=0.5,
                      gamma=0.9, done=False)  # fmt: skip
    # target = 1 + 0.9 * 2 = 2.8; Q = 0 + 0.5 * 2.8 = 1.4
    assert td == pytest.approx(2.8)
    assert table.get((0,))[2] == pytest.approx(1.4)
    # A second update moves half-way again: 1.4 + 0.5 * (2.8 - 1.4) = 2.1
    table.update((0,), 2, 1.0, (1,), mask, 0.5, 0.9, False)
    assert table.get((0,))[2] == pytest.approx(2.1)
    assert table.visits[(0,)][2] == 2


def test_bellman_terminal_and_masked_max() -> None:
    table = QTable(n_actions=3)
    table.set((1,), np.array([5.0, -1.0, 0.5]))
    # done: no bootstrap
    table.update((0,), 0, -1.0, (1,), np.ones(3, bool), 1.0, 0.9, done=True)
    assert table.get((0,))[0] == pytest.approx(-1.0)
    # the max runs over valid actions only: action 0 (Q=5) masked out -> max is 0.5
    table.update((0,), 1, 0.0, (1,), np.array([False, True, True]), 1.0, 1.0, done=False)
    assert table.get((0,))[1] == pytest.approx(0.5)
    assert bellman_target(1.0, 0.5, np.array([4.0]), done=False) == pytest.approx(3.0)
    assert bellman_target(1.0, 0.5, np.array([4.0]), done=True) == pytest.approx(1.0)


def test_unvisited_state_uses_q_init() -> None:
    table = QTable(n_actions=4, q_init=0.25)
    assert table.get((3, 3)).tolist() == [0.25] * 4
    assert len(table) == 0  # reading does not create rows


# ------------------------------------------------------------------ epsilon
def test_epsilon_schedule() -> None:
    assert epsilon_at(0, 0.5, 0.05, 0.9) == pytest.approx(0.5)
    assert epsilon_at(2, 0.5, 0.05, 0.9) == pytest.approx(0.5 * 0.81)
    assert epsilon_at(1000, 0.5, 0.05, 0.9) == pytest.approx(0.05)
    vals = [epsilon_at(n, 1.0, 0.1, 0.95) for n in range(200)]
    assert all(a >= b for a, b in itertools.pairwise(vals))


def test_epsilon_greedy_respects_mask_and_epsilon() -> None:
    rng = np.random.RandomState(0)
    q = np.array([10.0, 1.0, 2.0, 3.0])
    mask = np.array([False, True, True, True])
    greedy = [epsilon_greedy(q, mask, 0.0, rng) for _ in range(50)]
    assert {a for a, _ in greedy} == {3} and not any(e for _, e in greedy)
    explore = [epsilon_greedy(q, mask, 1.0, rng)[0] for _ in range(300)]
    assert set(explore) == {1, 2, 3}  # never the masked action 0
    with pytest.raises(ValueError, match="No valid action"):
        epsilon_greedy(q, np.zeros(4, bool), 0.1, rng)


# ------------------------------------------------------------------ moves
def test_axis_moves_and_edge_masking() -> None:
    moves = MoveSet((3, 4), names=("a", "b"))
    assert moves.n_actions == 5
    assert moves.labels() == ["stay", "a-1", "a+1", "b-1", "b+1"]
    assert moves.valid_mask((0, 0)).tolist() == [True, False, True, False, True]
    assert moves.valid_mask((2, 3)).tolist() == [True, True, False, True, False]
    assert moves.apply((1, 1), 4) == (1, 2)
    multi = MoveSet((10,), step_sizes=(1, 2, 4), names=("k",))
    assert multi.labels() == ["stay", "k-1", "k+1", "k-2", "k+2", "k-4", "k+4"]
    assert multi.valid_mask((1,)).tolist() == [True, True, True, False, True, False, True]
    assert not MoveSet((3,), allow_stay=False).valid_mask((1,))[0]


def test_joint_moves_three_to_the_d() -> None:
    for d in (1, 2, 3, 4):
        moves = MoveSet((3,) * d, moves="joint")
        assert moves.n_actions == 3**d
        assert not moves.deltas[0].any()  # action 0 is "stay"
        assert len({tuple(r) for r in moves.deltas}) == 3**d
    corner = MoveSet((3, 3), moves="joint").valid_mask((0, 0))
    assert corner.sum() == 4  # stay, (+1,0), (0,+1), (+1,+1)
    with pytest.raises(ValueError, match="3\\*\\*d"):
        MoveSet((2,) * (MAX_JOINT_DIMS + 1), moves="joint")
    with pytest.raises(ValueError, match="moves must be"):
        MoveSet((2,), moves="diagonal")


# ------------------------------------------------------------------ grid
def test_grid_axes_cover_distributions() -> None:
    grid = Grid(
        {
            "i": IntDistribution(2, 10),
            "il": IntDistribution(1, 1000, log=True),
            "f": FloatDistribution(0.0, 1.0),
            "fl": FloatDistribution(1e-5, 1e-1, log=True),
            "fs": FloatDistribution(-1.0, 1.0, step=0.25),
            "c": CategoricalDistribution([64, 128, 256]),
        },
        n_bins=5,
        max_bins=20,
    )
    by = {a.name: a for a in grid.axes}
    assert by["i"].values == tuple(range(2, 11))
    assert by["fs"].values == (-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0)
    assert by["f"].values == pytest.approx((0.0, 0.25, 0.5, 0.75, 1.0))
    assert by["fl"].values == pytest.approx((1e-5, 1e-4, 1e-3, 1e-2, 1e-1))
    assert len(by["il"].values) <= 20 and by["il"].values[0] == 1 and by["il"].values[-1] == 1000
    assert by["c"].categorical
    for state in [tuple(0 for _ in grid.shape), tuple(n - 1 for n in grid.shape)]:
        params = grid.decode(state)
        for name, value in params.items():
            dist = grid.distributions[name]
            assert dist._contains(dist.to_internal_repr(value))
        assert grid.encode(params) == state
    assert isinstance(grid.decode((0,) * 6)["i"], int)


def test_grid_encode_nearest_and_errors() -> None:
    grid = Grid({"x": FloatDistribution(0, 1), "c": CategoricalDistribution(["a", "b"])}, n_bins=3)
    assert grid.encode({"x": 0.3, "c": "b"}) == (1, 1)
    with pytest.raises(ValueError, match="not one of its choices"):
        grid.encode({"x": 0.3, "c": "z"})
    with pytest.raises(KeyError, match="missing"):
        grid.encode({"x": 0.3})
    with pytest.raises(ValueError, match="n_bins"):
        Grid({}, n_bins=1)
    assert (
        Grid({"x": IntDistribution(0, 10)}).signature
        != Grid({"x": IntDistribution(0, 9)}).signature
    )


# ------------------------------------------------------------------ rewards
def test_rewards_scale_and_direction() -> None:
    for scale in (1.0, 200.0):
        rm = RewardModel("improvement", minimize=True)
        for v in np.linspace(0, 4, 9) * scale:
            rm.observe(float(v))
        # improving by one IQR gives reward 1 whatever the scale
        assert rm.reward(1.0 * scale, previous=3.0 * scale) == pytest.approx(1.0)
    rmax = RewardModel("improvement", minimize=False)
    for v in (0.0, 1.0, 2.0, 3.0, 4.0):
        rmax.observe(v)
    assert rmax.reward(3.0, previous=1.0) > 0
    rank = RewardModel("rank")
    assert rank.reward(5.0) == 0.0
    for v in (1.0, 2.0, 3.0):
        rank.observe(v)
    assert rank.reward(0.5) == pytest.approx(1.0)
    assert rank.reward(10.0) == pytest.approx(-1.0)
    value = RewardModel("value", clip=3.0)
    for v in (1.0, 2.0, 3.0, 4.0, 5.0):
        value.observe(v)
    assert value.reward(1e9) == -3.0  # clipped
    assert value.reward(3.0) == pytest.approx(0.0)  # median is neutral
    with pytest.raises(ValueError, match="reward must be"):
        RewardModel("loss")
    value.observe(math.nan)  # ignored
    assert value.n == 5


# ------------------------------------------------------------------ agent
def test_agent_learns_path_through_known_points() -> None:
    moves = MoveSet((5,), names=("x",))
    agent = QLearningAgent(moves, AgentConfig(alpha=1.0, gamma=0.0, reward="rank"))
    agent.learn(Step(0, (0,), 4.0))
    agent.learn(Step(1, (1,), 3.0, path=[((0,), 2)], step=1))
    # the move x+1 from (0,) reached a better point than all seen before: reward +1
    assert agent.table.get((0,))[2] == pytest.approx(1.0)
    # a walk (0)->(1) [known] ->(2): both transitions are learned
    agent.learn(Step(2, (2,), 5.0, path=[((0,), 2), ((1,), 2)], step=2))
    assert agent.table.visits[(0,)][2] == 2
    assert agent.table.get((1,))[2] == pytest.approx(-1.0)  # 5.0 is worse than 4 and 3


def test_agent_never_proposes_known_or_busy_points() -> None:
    moves = MoveSet((4, 4), names=("a", "b"), allow_stay=False)
    agent = QLearningAgent(moves, AgentConfig(epsilon=1.0, restart_best_prob=1.0))
    rng = np.random.RandomState(0)
    for n, s in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        agent.learn(Step(n, s, float(n)))
    for _ in range(50):
        p = agent.propose(rng, head=(3, (1, 1), 0), busy=[(2, 1)])
        assert p.state not in agent.known and p.state != (2, 1)
        assert len(p.path) >= 1 and moves.apply(p.path[-1][0], p.path[-1][1]) == p.state


def test_walk_through_known_points_is_bounded() -> None:
    # Known points along the row y=1, better to the right; moves into unknown
    # points score q_init=-1 except (1,1) -> (1,2), whose learned Q is -0.5.
    moves = MoveSet((8, 3), names=("x", "y"), allow_stay=False)
    cfg = AgentConfig(epsilon=0.0, epsilon_min=0.0, q_init=-1.0, model_scores=False, max_walk=3)

    def agent_with(max_walk: int) -> QLearningAgent:
        agent = QLearningAgent(moves, dataclasses.replace(cfg, max_walk=max_walk))
        for x in range(7):
            agent.learn(Step(x, (x, 1), float(6 - x)))
        row = np.full(moves.n_actions, -1.0)
        row[4] = -0.5  # y+1
        agent.table.set((1, 1), row)
        return agent

    p = agent_with(3).propose(np.random.RandomState(0), head=(0, (0, 1), 0))
    # The walk passed 3 known points, then took the best move into an unvisited
    # point seen on the way, with the path that reaches it.
    assert p.state == (1, 2)
    assert p.path == [((0, 1), 2), ((1, 1), 4)]
    assert p.q_value == pytest.approx(-0.5) and not p.explored
    # Unbounded, the same walk goes on along the row to its better end.
    q = agent_with(64).propose(np.random.RandomState(0), head=(0, (0, 1), 0))
    assert len(q.path) == 7 and q.path[-1][0] == (6, 1)


def test_seed_design_can_stay() -> None:
    moves = MoveSet((3,), moves="joint", names=("x",))
    cfg = AgentConfig(walk_known=False, dyna=False, restart_best_prob=0.0, epsilon=0.0)
    agent = QLearningAgent(moves, cfg)
    agent.table.set((1,), np.array([1.0, 0.0, 0.0]))  # "stay" is greedy
    agent.learn(Step(0, (1,), 1.0))
    p = agent.propose(np.random.RandomState(0), head=(0, (1,), 0))
    assert p.state == (1,) and p.path == [((1,), 0)]


def test_agent_config_validation() -> None:
    with pytest.raises(ValueError, match="alpha"):
        AgentConfig(alpha=0.0)
    with pytest.raises(ValueError, match="episode_length"):
        AgentConfig(episode_length=0)
    with pytest.raises(ValueError, match="reward must be"):
        AgentConfig(reward="nope")


# ------------------------------------------------------------------ persistence
@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_table_roundtrip(tmp_path, suffix: str) -> None:  # type: ignore[no-untyped-def]
    table = QTable(n_actions=3)
    table.update((0, 1), 1, 1.0, (0, 2), np.ones(3, bool), 0.5, 0.9, False)
    table.update((2, 2), 2, -1.0, (2, 1), np.ones(3, bool), 0.5, 0.9, True)
    axes = [{"name": "a", "values": [1, 2, 3], "categorical": False},
            {"name": "b", "values": ["x", "y", "z"], "categorical": True}]  # fmt: skip
    path = str(tmp_path / f"q{suffix}")
    save_table(path, SavedTable.from_table(table, ["stay", "a-1", "a+1"], axes))
    loaded = load_table(path)
    assert loaded.actions == ["stay", "a-1", "a+1"]
    assert loaded.states.tolist() == [[0, 1], [2, 2]]
    np.testing.assert_allclose(loaded.q, [table.q[(0, 1)], table.q[(2, 2)]])
    assert loaded.visits.sum() == 2


def test_load_table_rejects_foreign_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not an optuna-qlearn Q-table"):
        load_table(str(bad))
    with pytest.raises(ValueError, match=r"\.json or \.npz"):
        load_table(str(tmp_path / "x.pkl"))
    # an object array would need pickle: np.load(allow_pickle=False) refuses it
    obj = tmp_path / "evil.npz"
    np.savez(obj, header=np.array([{"a": 1}], dtype=object), states=np.zeros(0),
             q=np.zeros(0), visits=np.zeros(0))  # fmt: skip
    with pytest.raises(ValueError):
        load_table(str(obj))
