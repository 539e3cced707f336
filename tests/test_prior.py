"""The global model (GridPrior) and how the agent uses it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from optuna_qlearn._core.agent import AgentConfig, QLearningAgent, Step
from optuna_qlearn._core.prior import GridPrior, JointGridPrior, n_good
from optuna_qlearn._core.qlearning import MoveSet, State


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
    _, _, scores, _ = agent._candidates((1, 1))
    assert scores and all(-1.0 <= x <= 1.0 for x in scores)


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


def _fitted_joint(
    shape: tuple[int, ...],
    categorical: list[bool],
    points: Sequence[State],
    good: Sequence[State],
) -> JointGridPrior:
    prior = JointGridPrior(shape, categorical)
    for s in points:
        prior.add(s)
    prior.fit(good)
    return prior


def test_joint_densities_are_optuna_multivariate_tpe_parzen_estimators() -> None:
    """l and g of JointGridPrior equal the densities of Optuna's own TPE Parzen
    estimators (multivariate, default settings) built on the same good and other
    points, on every point of a mixed ordered / categorical grid."""
    from optuna.distributions import CategoricalDistribution, IntDistribution
    from optuna.samplers._tpe.parzen_estimator import (
        _ParzenEstimator,
        _ParzenEstimatorParameters,
    )
    from optuna.samplers._tpe.sampler import default_weights

    shape, categorical = (7, 3, 12), [False, True, False]
    rng = np.random.RandomState(0)
    points = [tuple(int(rng.randint(n)) for n in shape) for _ in range(40)]
    good = [points[3], points[17], points[21], (6, 0, 4), (1, 1, 4), (1, 1, 4)]
    points += [(6, 0, 4), (1, 1, 4), (1, 1, 4)]  # a duplicate too
    rest = list(points)
    for s in good:
        rest.remove(s)  # the first occurrence, as the model does
    prior = _fitted_joint(shape, categorical, points, good)
    grid = list(np.ndindex(*shape))
    space = {
        "a": IntDistribution(0, 6),
        "b": CategoricalDistribution([0, 1, 2]),
        "c": IntDistribution(0, 11),
    }
    params = _ParzenEstimatorParameters(
        prior_weight=1.0,
        consider_magic_clip=True,
        consider_endpoints=False,
        weights=default_weights,
        multivariate=True,
    )

    def optuna_log_pdf(observed: list[State]) -> np.ndarray:
        obs = {k: np.array([float(s[i]) for s in observed]) for i, k in enumerate(space)}
        at = {k: np.array([float(s[i]) for s in grid]) for i, k in enumerate(space)}
        return _ParzenEstimator(obs, space, params).log_pdf(at)

    log_l, log_g = prior.log_densities(grid)
    assert len(rest) >= 25  # TPE's older-points ramp applies to g
    np.testing.assert_allclose(log_l, optuna_log_pdf(good), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(log_g, optuna_log_pdf(rest), rtol=1e-5, atol=1e-5)
    assert np.exp(log_l).sum() == pytest.approx(1.0)
    assert prior.score_many(grid[:5]) == pytest.approx((log_l - log_g)[:5].tolist())


def test_joint_prior_sees_which_settings_are_good_together() -> None:
    """Good points on the diagonal: the factorized model scores (0, 8) like (0, 0)
    (the marginals are the same); the joint model does not."""
    shape = (10, 10)
    good = [(0, 0), (1, 1), (9, 9), (8, 8)]
    rest = [(0, 9), (9, 0), (1, 8), (8, 1), (4, 5), (5, 4)]
    joint = _fitted_joint(shape, [False, False], good + rest, good)
    factorized = GridPrior(shape)
    for s in good + rest:
        factorized.add(s)
    factorized.fit(good)
    assert joint.score((0, 0)) - joint.score((0, 8)) > 1.0
    assert abs(factorized.score((0, 0)) - factorized.score((0, 8))) < 0.5
    draws = joint.sample(np.random.RandomState(0), 400)
    on_diagonal = np.mean([abs(a - b) <= 2 for a, b in draws])
    assert on_diagonal > 0.6
    assert all(0 <= a < 10 and 0 <= b < 10 for a, b in draws)
    # score and score_many agree; an unfitted model scores 0.
    assert joint.score_many([(0, 0), (3, 7)]) == [joint.score((0, 0)), joint.score((3, 7))]
    assert JointGridPrior(shape).score((2, 2)) == 0.0


def test_agent_with_the_joint_model_walks_and_restarts() -> None:
    moves = MoveSet((8, 8, 3), names=("a", "b", "c"), step_sizes=(1, 2), allow_stay=False)
    config = AgentConfig(n_startup=3, model_restart_prob=1.0, episode_length=4, model_joint=True)
    agent = QLearningAgent(moves, config, categorical=[False, False, True])
    assert isinstance(agent.prior, JointGridPrior)
    rng = np.random.RandomState(0)
    start: list[State] = [(0, 0, 0), (7, 7, 1), (1, 1, 2), (6, 2, 0)]
    for n, s in enumerate(start):
        agent.learn(Step(n, s, float(n)))
    p = agent.propose(rng, head=None)
    assert p.reason == "restart-model" and p.state not in agent.known
    p = agent.propose(rng, head=(2, (1, 1, 2), 0))
    assert p.reason == "move" and p.state not in agent.known
    # Untried moves into unvisited points carry the joint model's prediction.
    _, targets, scores, best_new = agent._candidates((1, 1, 2))
    for s, x in zip(targets, scores):
        if s not in agent.known:
            assert x == pytest.approx(np.tanh(config.model_scale * agent.prior.score(s)))
    assert scores[best_new] == max(x for s, x in zip(targets, scores) if s not in agent.known)


def test_joint_prior_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="categorical flags"):
        JointGridPrior((3, 3), categorical=[True])
    with pytest.raises(ValueError, match="prior_weight"):
        JointGridPrior((3,), prior_weight=0.0)


def test_joint_prior_with_a_cap_fits_the_latest_points() -> None:
    rng = np.random.default_rng(5)
    points = [tuple(int(v) for v in rng.integers(0, 4, 2)) for _ in range(80)]
    uncapped, huge, capped, tail = (
        JointGridPrior((4, 4), max_rest=m) for m in (None, 10**6, 20, None)
    )
    for p in points:
        for prior in (uncapped, huge, capped):
            prior.add(p)
    good = sorted(set(points))[:3]
    for prior in (uncapped, huge, capped):
        prior.fit(good)
    grid = [(i, j) for i in range(4) for j in range(4)]
    assert np.allclose(uncapped.score_many(grid), huge.score_many(grid))
    # The capped g is the uncapped one of the good points plus the latest 20 others.
    rest = []
    drop = dict.fromkeys(good, 1)
    for p in points:
        if drop.get(p, 0):
            drop[p] -= 1
        else:
            rest.append(p)
    for p in [*good, *rest[-20:]]:
        tail.add(p)
    tail.fit(good)
    assert np.allclose(capped.score_many(grid), tail.score_many(grid))
    with pytest.raises(ValueError, match="max_rest"):
        JointGridPrior((3,), max_rest=0)
