"""The global model (GridPrior) and how the agent uses it."""

from __future__ import annotations

import numpy as np
import pytest

from optuna_qlearn.agent import AgentConfig, QLearningAgent, Step
from optuna_qlearn.prior import GridPrior, n_good
from optuna_qlearn.qlearning import MoveSet


def test_prior_prefers_the_region_of_the_good_points() -> None:
    prior = GridPrior((10, 10))
    states = [(i, j) for i in range(10) for j in range(0, 10, 3)]
    for s in states:
        prior.add(s)
    good = [s for s in states if s[0] <= 1]  # the good points have a small first index
    prior.fit(good)
    assert prior.score((0, 5)) > prior.score((9, 5))
    draws = prior.sample(np.random.RandomState(0), 200)
    assert np.mean([s[0] for s in draws]) < 3.0
    assert all(0 <= s[0] < 10 and 0 <= s[1] < 10 for s in draws)


def test_categorical_axes_are_not_smoothed() -> None:
    prior = GridPrior((5,), categorical=[True])
    for s in [(0,), (1,), (2,), (3,), (4,)]:
        prior.add(s)
    prior.fit([(2,)])
    assert prior.score((1,)) == pytest.approx(prior.score((3,)))
    assert prior.score((2,)) > prior.score((1,))
    ordered = GridPrior((5,))
    for s in [(0,), (1,), (2,), (3,), (4,)]:
        ordered.add(s)
    ordered.fit([(2,)])
    assert ordered.score((1,)) > ordered.score((0,))


def test_prior_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="categorical flags"):
        GridPrior((3, 3), categorical=[True])
    with pytest.raises(ValueError, match="bandwidth"):
        GridPrior((3,), bandwidth=0.0)
    assert n_good(100, 0.15, 25) == 15 and n_good(1000, 0.15, 25) == 25 and n_good(1, 0.1, 5) == 1


def test_agent_starts_with_random_one_step_episodes_then_uses_the_model() -> None:
    moves = MoveSet((8, 8), names=("a", "b"), step_sizes=(1, 2), allow_stay=False)
    config = AgentConfig(n_startup=3, model_restart_prob=1.0, episode_length=4)
    agent = QLearningAgent(moves, config)
    rng = np.random.RandomState(0)
    p = agent.propose(rng, head=None)
    assert p.reason == "startup" and p.path == [] and p.step == config.episode_length - 1
    for n, s in enumerate([(0, 0), (7, 7), (1, 1)]):
        agent.learn(Step(n, s, float(n)))
    p = agent.propose(rng, head=None)
    assert p.reason == "restart-model" and p.state not in agent.known
    # Within an episode the agent walks, scoring unvisited neighbours by the model.
    p = agent.propose(rng, head=(2, (1, 1), 0))
    assert p.reason == "move" and len(p.path) >= 1
    scores = agent._scores((1, 1))
    assert all(-1.0 <= x <= 1.0 for x in scores)


def test_model_does_not_change_learning() -> None:
    """Learning depends only on the trials; the model only changes decisions."""
    moves = MoveSet((6, 6), names=("a", "b"))
    steps = [Step(0, (0, 0), 3.0), Step(1, (1, 0), 2.0, path=[((0, 0), 2)], step=1)]
    tables = []
    for config in (AgentConfig(), AgentConfig(model_scores=False, model_restart_prob=0.0)):
        agent = QLearningAgent(moves, config)
        for step in steps:
            agent.learn(step)
        tables.append(agent.table)
    assert tables[0] == tables[1]
