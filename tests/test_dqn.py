"""DQNSampler: Optuna's sampler contract, the DQN updates (the learned policy's fine-tuning
and ``policy="table"``'s network), storage replay, no-torch import."""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    RelativeSamplerTestCase,
    SingleOnlySamplerTestCase,
)
from optuna.trial import Trial

from optuna_qlearn import QLearningSampler
from optuna_qlearn._core.agent import AgentConfig
from optuna_qlearn._core.dqn import (
    Batch,
    DQNAgent,
    DQNConfig,
    DQNLearner,
    FineTuneConfig,
    FineTunedPolicy,
    FineTunedPolicyAgent,
    NetworkQTable,
    QNetwork,
    ReplayMemory,
    StateEncoder,
    dqn_update,
    network_from_numpy,
    network_to_numpy,
    sync_target,
    td_target,
)
from optuna_qlearn._core.learned import PolicyConfig
from optuna_qlearn._core.policy import FEATURE_NAMES, N_FEATURES, PolicyEnsemble, PolicyNetwork
from optuna_qlearn._core.prior import JointGridPrior
from optuna_qlearn._core.qlearning import MoveSet
from optuna_qlearn._core.training import TrainingConfig
from optuna_qlearn._replay import KEY_DECISION
from optuna_qlearn.dqn import DEFAULT_EPISODE_LENGTH, DEFAULT_MAX_WALK, DQNSampler
from optuna_qlearn.sampler import default_policy_path

optuna.logging.set_verbosity(optuna.logging.WARNING)

#: ``policy="table"`` (the earlier design) with small settings, to keep its tests fast.
SMALL = {"policy": "table", "hidden_sizes": (16,), "batch_size": 8, "n_updates_per_step": 1}


class TestDQNSamplerConformance(
    BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase
):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: DQNSampler(seed=0)


class TestDQNSamplerTableConformance(
    BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase
):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: DQNSampler(seed=0, **SMALL)  # type: ignore[arg-type]


def five_params(trial: Trial) -> float:
    x = [trial.suggest_int(f"x{i}", 0, 12) for i in range(4)]
    c = trial.suggest_categorical("c", ["a", "b", "c"])
    return float(sum((xi - 8) ** 2 for xi in x) + 4 * (c != "b"))


def linear_net(weight: list[list[float]], bias: list[float]) -> QNetwork:
    """A QNetwork without hidden layers, ``Q = W x + b``, with the given weights."""
    w = torch.tensor(weight)
    net = QNetwork(w.shape[1], w.shape[0], hidden_sizes=())
    layer = net.net[0]
    assert isinstance(layer, torch.nn.Linear)
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(torch.tensor(bias))
    return net


def batch_of(
    s: list[list[float]],
    a: list[int],
    r: list[float],
    s2: list[list[float]],
    masks: list[list[bool]],
    done: list[bool],
) -> Batch:
    return Batch(
        torch.tensor(s, dtype=torch.float32),
        torch.tensor(a, dtype=torch.int64),
        torch.tensor(r, dtype=torch.float32),
        torch.tensor(s2, dtype=torch.float32),
        torch.tensor(masks, dtype=torch.bool),
        torch.tensor(done, dtype=torch.bool),
    )


# --------------------------------------------------------------------- pure DQN core
def test_state_encoder_scales_ordered_and_one_hots_categorical() -> None:
    enc = StateEncoder(shape=(5, 3, 1), categorical=(False, True, False))
    assert enc.n_features == 5
    np.testing.assert_array_equal(
        enc([(0, 2, 0), (4, 0, 0), (2, 1, 0)]),
        [[-1, 0, 0, 1, 0], [1, 1, 0, 0, 0], [0, 0, 1, 0, 0]],
    )
    with pytest.raises(ValueError, match="categorical flags"):
        StateEncoder((2, 2), (True,))


def test_td_target_masked_max_done_and_double() -> None:
    # Q_target(s') = W s' with s' = e0 -> column 0 of W = (1, 5, 3).
    target = linear_net([[1, 0], [5, 0], [3, 0]], [0, 0, 0])
    policy = linear_net([[0, 0], [0, 0], [9, 0]], [0, 0, 0])  # prefers action 2
    batch = batch_of(
        s=[[0, 1]] * 4,
        a=[0, 0, 0, 0],
        r=[1.0, 1.0, 1.0, 1.0],
        s2=[[1, 0]] * 4,
        masks=[[True] * 3, [True, False, True], [True] * 3, [False] * 3],
        done=[False, False, True, False],
    )
    y = td_target(policy, target, batch, gamma=0.5)
    # max over valid: 5; action 1 masked: 3; done: r; no valid action: r.
    np.testing.assert_allclose(y.numpy(), [1 + 0.5 * 5, 1 + 0.5 * 3, 1.0, 1.0])
    y2 = td_target(policy, target, batch, gamma=0.5, double_dqn=True)
    # Double DQN: the policy picks action 2, the target values it at 3.
    np.testing.assert_allclose(y2.numpy(), [1 + 0.5 * 3, 1 + 0.5 * 3, 1.0, 1.0])


@pytest.mark.parametrize("reward", [0.7, 6.0])  # quadratic and linear part of the Huber loss
def test_one_step_moves_q_toward_huber_target(reward: float) -> None:
    x = [0.5, -1.0]
    policy = linear_net([[0.2, 0.1], [0.3, -0.4]], [0.0, 0.1])
    target = linear_net([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    batch = batch_of([x], [1], [reward], [[2.0, 1.0]], [[True, True]], [False])
    gamma, lr = 0.9, 0.01
    q0 = policy(torch.tensor([x]))[0].detach().numpy().copy()
    y = reward + gamma * 2.0  # max_a' Q_target(s') = max(2, 1)
    delta = q0[1] - y
    target_before = [p.detach().clone() for p in target.parameters()]

    opt = torch.optim.SGD(policy.parameters(), lr=lr)
    loss = dqn_update(policy, target, opt, batch, gamma, max_grad_norm=None)

    huber = 0.5 * delta**2 if abs(delta) < 1 else abs(delta) - 0.5
    assert loss == pytest.approx(huber, rel=1e-5)
    # dL/dQ = delta (clipped to ±1); Q = w.x + b, so one SGD step moves Q by
    # -lr * dL/dQ * (|x|^2 + 1).
    grad = float(np.clip(delta, -1.0, 1.0))
    q1 = policy(torch.tensor([x]))[0].detach().numpy()
    assert q1[1] == pytest.approx(q0[1] - lr * grad * (np.dot(x, x) + 1.0), rel=1e-5)
    assert abs(q1[1] - y) < abs(q0[1] - y)
    assert q1[0] == pytest.approx(q0[0])  # other actions' outputs get no gradient
    for before, after in zip(target_before, target.parameters()):
        assert torch.equal(before, after), "the update must not touch the target network"


def test_gradient_clipping_bounds_the_step() -> None:
    x = [3.0, 4.0]
    batch = batch_of([x], [0], [1000.0], [[0.0, 0.0]], [[True]], [True])
    target = linear_net([[0.0, 0.0]], [0.0])
    steps = []
    for clip in (None, 0.1):
        policy = linear_net([[0.0, 0.0]], [0.0])
        opt = torch.optim.SGD(policy.parameters(), lr=1.0)
        dqn_update(policy, target, opt, batch, 0.9, max_grad_norm=clip)
        steps.append(float(torch.cat([p.detach().flatten() for p in policy.parameters()]).norm()))
    assert steps[0] == pytest.approx(math.sqrt(9 + 16 + 1))  # Huber gradient: -1 * (x, 1)
    assert steps[1] == pytest.approx(0.1)


def test_target_network_frozen_between_syncs_and_soft_update() -> None:
    config = DQNConfig(hidden_sizes=(8,), batch_size=4, target_update=5, learning_rate=0.05)
    learner = DQNLearner(2, 3, config, gamma=0.9, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(10):
        learner.memory.push(rng.normal(size=2), int(rng.integers(3)), 1.0, rng.normal(size=2),
                     np.ones(3, bool), False)  # fmt: skip

    def params(net: torch.nn.Module) -> torch.Tensor:
        return torch.cat([p.detach().flatten() for p in net.parameters()]).clone()

    start = params(learner.target)
    assert torch.equal(start, params(learner.policy))
    learner.train(4)
    assert torch.equal(params(learner.target), start), "target moved between syncs"
    assert not torch.equal(params(learner.policy), start)
    learner.train(1)  # the 5th optimization step syncs
    assert torch.equal(params(learner.target), params(learner.policy))

    a, b = linear_net([[1.0, 2.0]], [3.0]), linear_net([[3.0, 6.0]], [-1.0])
    sync_target(a, b, tau=0.25)
    np.testing.assert_allclose(params(a).numpy(), [1.5, 3.0, 2.0])
    sync_target(a, b, tau=1.0)
    assert torch.equal(params(a), params(b))


def test_replay_memory_ring_buffer_and_seeded_sampling() -> None:
    mem = ReplayMemory(capacity=3, n_features=1, n_actions=2)
    with pytest.raises(ValueError, match="empty"):
        mem.sample(1, np.random.default_rng(0))
    for i in range(5):
        mem.push(np.array([i]), i % 2, float(i), np.array([i + 1]), np.array([True, i > 2]),
                 i == 4)  # fmt: skip
    assert len(mem) == 3 and mem.n_pushed == 5
    contents = mem.contents()
    np.testing.assert_array_equal(contents["rewards"], [2.0, 3.0, 4.0])  # oldest first
    np.testing.assert_array_equal(contents["dones"], [False, False, True])
    b1 = mem.sample(16, np.random.default_rng(7))
    b2 = mem.sample(16, np.random.default_rng(7))
    assert torch.equal(b1.rewards, b2.rewards) and b1.rewards.shape == (16,)
    assert set(b1.rewards.tolist()) <= {2.0, 3.0, 4.0}
    assert torch.equal(b1.states[:, 0], b1.rewards)  # rows stay aligned


def test_config_validation_names_the_argument() -> None:
    bad_args: list[dict[str, object]] = [
        {"batch_size": 0}, {"tau": 0.0}, {"tau": 1.5}, {"target_update": 0},
        {"learning_rate": -1.0}, {"hidden_sizes": (0,)}, {"replay_capacity": 0},
    ]  # fmt: skip
    for bad in bad_args:
        name = next(iter(bad))
        with pytest.raises(ValueError, match=name):
            DQNSampler(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="device"):
        DQNSampler(device="tpu")
    if torch.cuda.is_available():
        study = optuna.create_study(sampler=DQNSampler(device="cuda", seed=0, **SMALL))  # type: ignore[arg-type]
        study.optimize(five_params, n_trials=5)
    else:
        with pytest.raises(ValueError, match="CUDA is not available"):
            DQNSampler(device="cuda")


# --------------------------------------------------------------------- sampler
def test_online_mode_capacity_one_learns() -> None:
    """Replay capacity 1, batch 1, target_update 1: plain online Q-learning with a net."""
    config = DQNConfig(replay_capacity=1, batch_size=1, target_update=1, learning_rate=0.01)
    learner = DQNLearner(2, 2, config, gamma=0.9, seed=0)
    s = np.array([0.5, -0.5])
    for _ in range(300):
        learner.memory.push(s, 1, 1.0, s, np.ones(2, bool), done=True)
        learner.train(1)
    assert len(learner.memory) == 1
    assert learner.q_values(s[None])[0, 1] == pytest.approx(1.0, abs=0.05)

    sampler = DQNSampler(policy="table", replay_capacity=1, batch_size=1, target_update=1,
                         n_updates_per_step=1, seed=0)  # fmt: skip
    study = optuna.create_study(sampler=sampler)
    study.optimize(five_params, n_trials=60)
    _, agent = sampler.agent(study)
    assert isinstance(agent, DQNAgent)
    assert len(agent.learner.memory) == 1
    assert agent.learner.n_optim_steps >= 50
    assert math.isfinite(agent.learner.last_loss)
    # The memory holds the latest move only; training on it fits its reward.
    memory = agent.learner.memory.contents()
    s, a, r = memory["states"], int(memory["actions"][0]), float(memory["rewards"][0])
    agent.learner.train(300)
    assert agent.learner.q_values(s)[0, a] == pytest.approx(r, abs=0.05)


def test_never_repeats_and_policy_views(tmp_path: Path) -> None:
    sampler = DQNSampler(seed=1, **SMALL)  # type: ignore[arg-type]
    study = optuna.create_study(sampler=sampler)
    study.optimize(five_params, n_trials=80)
    params = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(params)) == len(params), "walk_known must never re-evaluate a point"

    _, agent = sampler.agent(study)
    assert isinstance(agent, DQNAgent) and isinstance(agent.table, NetworkQTable)
    rows = sampler.q_table(study)
    assert len(rows) == len(agent.table) > 0
    for row in rows[:5]:  # Q-values are the network's
        q = agent.learner.q_values(agent.encoder([tuple(row["state"])]))[0]
        labels = agent.moves.labels()
        for label, value in row["q"].items():
            assert value == pytest.approx(q[labels.index(label)], abs=1e-6)
    assert len(sampler.greedy_policy(study)) == len(rows)
    # The network's values at visited states can seed a tabular sampler.
    path = str(tmp_path / "dqn.json")
    sampler.save_q_table(study, path)
    warm = QLearningSampler(policy="table", seed=0, warm_start=path)
    study2 = optuna.create_study(sampler=warm)
    study2.optimize(five_params, n_trials=3)
    assert len(json.loads(Path(path).read_text())["states"]) == len(rows)


def test_global_model_does_not_smooth_across_categorical_choices() -> None:
    # One ordered axis (5 points) and one categorical axis (3 choices), as the
    # tabular agent sees them: a good point at choice 0 says nothing about the order
    # of choices 1 and 2, while on the ordered axis index 1 is closer than index 2.
    encoder = StateEncoder((5, 3), (False, True))
    agent = DQNAgent(MoveSet((5, 3)), AgentConfig(), encoder, DQNConfig(hidden_sizes=(16,)))
    for state in [(0, 0), (1, 1), (2, 2), (3, 1), (4, 2)]:
        agent.prior.add(state)
    agent.prior.fit([(0, 0)])
    assert agent.prior.score((0, 1)) == pytest.approx(agent.prior.score((0, 2)))
    assert agent.prior.score((1, 0)) > agent.prior.score((2, 0))
    # DQNSampler's default joint model gets the same flags.
    config = DQNSampler(policy="table").config
    assert isinstance(config, AgentConfig)
    joint = DQNAgent(MoveSet((5, 3)), config, encoder, DQNConfig(hidden_sizes=(16,)))
    assert isinstance(joint.prior, JointGridPrior) and joint.prior.categorical == (False, True)


def test_dqn_table_defaults_and_environment_arguments() -> None:
    base = DQNSampler(policy="table", seed=0).config
    assert isinstance(base, AgentConfig)  # the tabular environment
    assert base.max_walk == DEFAULT_MAX_WALK == 8  # not QLearningSampler's 4
    assert base.episode_length == DEFAULT_EPISODE_LENGTH == 1  # not QLearningSampler's 5
    assert base.gamma == 0.0 and base.model_joint is True  # the table's: 0.9, False
    assert DQNSampler(policy="table").parameters["policy"] == "table"
    assert isinstance(DQNSampler(policy="table").dqn_config, DQNConfig)
    # Every environment argument of QLearningSampler (but alpha) is accepted and wins.
    sampler = DQNSampler(policy="table", seed=0, max_walk=2, gamma=0.9, episode_length=7,
                         model_joint=False)  # fmt: skip
    assert isinstance(sampler.config, AgentConfig)
    assert (sampler.config.max_walk, sampler.config.gamma) == (2, 0.9)
    assert sampler.config.episode_length == 7 and sampler.config.model_joint is False
    assert DQNSampler(**sampler.parameters).config == sampler.config
    assert DQNSampler(**sampler.parameters).dqn_config == sampler.dqn_config
    with pytest.raises(TypeError, match="alpha"):
        DQNSampler(alpha=0.5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="walk_lenght"):
        DQNSampler(walk_lenght=3)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="max_walk=3 is unused"):
        DQNSampler(policy="table", walk_known=False, max_walk=3)
    with pytest.raises(TypeError, match="batch_size"):
        DQNSampler(batch_size=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tau"):
        DQNSampler(tau=float("nan"))


def test_deterministic_with_seed_and_picklable() -> None:
    def run(sampler: DQNSampler) -> list[dict[str, object]]:
        study = optuna.create_study(sampler=sampler)
        study.optimize(five_params, n_trials=25)
        return [t.params for t in study.trials]

    first = run(DQNSampler(seed=3, **SMALL))  # type: ignore[arg-type]
    assert run(DQNSampler(seed=3, **SMALL)) == first  # type: ignore[arg-type]
    assert run(DQNSampler(seed=4, **SMALL)) != first  # type: ignore[arg-type]
    clone = pickle.loads(pickle.dumps(DQNSampler(seed=3, **SMALL)))  # type: ignore[arg-type]
    assert run(clone) == first


def test_parallel_threads_share_one_network() -> None:
    sampler = DQNSampler(seed=0, **SMALL)  # type: ignore[arg-type]
    study = optuna.create_study(sampler=sampler)
    study.optimize(five_params, n_trials=24, n_jobs=2)
    assert len(study.trials) == 24
    _, agent = sampler.agent(study)
    assert agent.n_steps == 24


_RESUME_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np, optuna, torch
    torch.set_num_threads(1)
    from optuna_qlearn import DQNSampler
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        x = [trial.suggest_int(f"x{i}", 0, 12) for i in range(4)]
        c = trial.suggest_categorical("c", ["a", "b", "c"])
        return float(sum((xi - 8) ** 2 for xi in x) + 4 * (c != "b"))

    url, out = sys.argv[1], sys.argv[2]
    sampler = DQNSampler(policy="table", seed=5, hidden_sizes=(16,), batch_size=8)
    study = optuna.create_study(storage=url, study_name="resume", sampler=sampler)
    study.optimize(objective, n_trials=30)
    _, agent = sampler.agent(study)
    weights = {f"w{i}": p.detach().numpy() for i, p in enumerate(agent.learner.policy.parameters())}
    np.savez(out, **agent.learner.memory.contents(), **weights)
    """
)


def test_resume_in_new_process_rebuilds_replay_memory_and_network(tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(_RESUME_SCRIPT)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    out = tmp_path / "first.npz"
    subprocess.run([sys.executable, str(script), url, str(out)], check=True)

    sampler = DQNSampler(policy="table", seed=5, hidden_sizes=(16,), batch_size=8)
    study = optuna.load_study(study_name="resume", storage=url, sampler=sampler)
    _, agent = sampler.agent(study)
    assert isinstance(agent, DQNAgent)
    saved = np.load(out, allow_pickle=False)
    contents = agent.learner.memory.contents()
    assert len(contents["actions"]) >= 5
    for key, value in contents.items():
        np.testing.assert_array_equal(value, saved[key], err_msg=key)
    for i, p in enumerate(agent.learner.policy.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), saved[f"w{i}"])
    # ...and it continues from there, training incrementally.
    steps = agent.learner.n_optim_steps
    study.optimize(five_params, n_trials=5)
    sampler.agent(study)  # learns the last trial too
    assert agent.learner.n_optim_steps == steps + 5 * sampler.dqn_config.n_updates_per_step
    assert len(agent.learner.memory) > len(contents["actions"])


def test_import_without_torch_names_the_extra() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["torch"] = None  # as if PyTorch were not installed
        import optuna
        import optuna_qlearn
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(sampler=optuna_qlearn.QLearningSampler(seed=0))
        study.optimize(lambda t: t.suggest_int("x", 0, 9) ** 2, n_trials=5)
        try:
            optuna_qlearn.DQNSampler
        except ImportError as exc:
            print("ERROR:", exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "ERROR: DQNSampler needs PyTorch: pip install 'optuna-qlearn[torch]'" in result.stdout


# --------------------------------------------------------------------- the learned policy
def test_the_default_is_the_learned_policy_fine_tuned() -> None:
    sampler = DQNSampler(seed=0)
    assert sampler.policy == "default" and isinstance(sampler.config, PolicyConfig)
    assert isinstance(sampler.dqn_config, FineTuneConfig)
    assert sampler.config.gamma == TrainingConfig.gamma  # Q stays in pre-training's currency
    assert sampler.config.alpha == 0.0  # no correction table: the networks learn
    clone = DQNSampler(**sampler.parameters)
    assert clone.config == sampler.config and clone.dqn_config == sampler.dqn_config
    with pytest.raises(ValueError, match=r"hidden_sizes=\(8,\) is a setting of policy='table'"):
        DQNSampler(hidden_sizes=(8,))
    with pytest.raises(ValueError, match="double_dqn"):
        DQNSampler(double_dqn=True)
    with pytest.raises(ValueError, match="warmup=3 is a setting of a learned policy"):
        DQNSampler(policy="table", warmup=3)
    with pytest.raises(ValueError, match="warmup"):
        DQNSampler(warmup=-1)
    with pytest.raises(ValueError, match="episode_length"):
        DQNSampler(episode_length=3)  # a setting of the tabular environment


def test_every_proposal_is_an_argmax_of_the_fine_tuned_q_or_an_exploration() -> None:
    sampler = DQNSampler(seed=3)
    study = optuna.create_study(sampler=sampler)
    study.optimize(five_params, n_trials=40)
    _, agent = sampler.agent(study)
    assert isinstance(agent, FineTunedPolicyAgent)
    explored = 0
    for trial in study.trials[1:]:
        d = trial.system_attrs[KEY_DECISION]
        if d["explored"]:
            explored += 1
        else:
            assert d["q"] == pytest.approx(max(c[2] for c in d["candidates"]), abs=1e-4)
        assert d["q"] == pytest.approx(d["q_net"], abs=1e-6)  # no correction table
    assert explored <= 10  # epsilon 0.05 over 39 decisions


def test_fine_tuning_starts_after_the_warmup_and_moves_the_networks() -> None:
    config = FineTuneConfig(warmup=10, learning_starts=1, n_updates_per_step=3)
    pre = PolicyEnsemble.load(default_policy_path())
    tuner = FineTunedPolicy(pre, config, gamma=0.97)
    agent = FineTunedPolicyAgent(tuner, PolicyConfig(), (9, 9, 3), (False, False, True),
                                 ("a", "b", "c"))  # fmt: skip
    rng = np.random.RandomState(0)
    x = np.random.default_rng(1).uniform(0, 1, (6, len(FEATURE_NAMES)))
    np.testing.assert_allclose(tuner(x), pre(x), atol=1e-5)  # starts as the shipped networks
    for number in range(25):
        proposal = agent.propose(rng)
        value = float(sum((i - 4) ** 2 for i in proposal.state))
        agent.learn(number, proposal.state, value, proposal.decision)
        steps = max(0, number + 1 - config.warmup) * config.n_updates_per_step
        assert tuner.n_optim_steps == steps
    assert len(tuner) == 15 and math.isfinite(tuner.last_loss)
    assert np.abs(tuner(x) - pre(x)).max() > 1e-4  # learned...
    for before, after in zip(pre.members, PolicyEnsemble.load(default_policy_path()).members):
        for p, q in zip(before.params, after.params):
            np.testing.assert_array_equal(p, q)  # ...on a copy: the shipped weights are intact


def test_a_fine_tuning_step_moves_q_toward_the_bellman_target() -> None:
    net = PolicyNetwork.initial(seed=0, hidden=8)
    config = FineTuneConfig(batch_size=1, learning_starts=1, n_updates_per_step=0,
                            learning_rate=1e-2, target_update=1000)  # fmt: skip
    tuner = FineTunedPolicy(PolicyEnsemble([net]), config, gamma=0.5)
    rng = np.random.default_rng(0)
    x, nx = rng.uniform(0, 1, N_FEATURES), rng.uniform(0, 1, (3, N_FEATURES))
    tuner.push(x, 2.0, nx)
    y = 2.0 + 0.5 * float(net(nx[int(np.argmax(net(nx)))][None])[0])  # double DQN, target = net
    target_before = network_to_numpy(tuner.targets[0]).params
    for _ in range(5):
        gap = abs(float(tuner(x[None])[0]) - y)
        tuner.train(1)
        assert abs(float(tuner(x[None])[0]) - y) < gap
    for p, q in zip(target_before, network_to_numpy(tuner.targets[0]).params):
        np.testing.assert_array_equal(p, q)  # the target network waits for its sync


def test_numpy_and_torch_networks_are_the_same_function() -> None:
    net = PolicyNetwork.initial(seed=4, hidden=16)
    x = np.random.default_rng(0).normal(size=(7, N_FEATURES))
    module = network_from_numpy(net)
    with torch.no_grad():
        out = module(torch.from_numpy(x).float())[:, 0].numpy()
    np.testing.assert_allclose(out, net(x), atol=1e-5)
    back = network_to_numpy(module)
    np.testing.assert_allclose(back(x), net(x), atol=1e-5)


def test_fine_tuned_networks_are_rebuilt_from_storage_and_saved(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    sampler = DQNSampler(seed=5)
    study = optuna.create_study(storage=url, study_name="ft", sampler=sampler)
    study.optimize(five_params, n_trials=30)
    tuned = sampler.fine_tuned_policy(study)
    # A fresh process (here: a fresh sampler) replays the trials to the same networks.
    fresh = DQNSampler(seed=5)
    again = fresh.fine_tuned_policy(optuna.load_study(study_name="ft", storage=url, sampler=fresh))
    for a, b in zip(tuned.members, again.members):
        for p, q in zip(a.params, b.params):
            np.testing.assert_array_equal(p, q)
    # What one study learned starts the next one.
    path = tmp_path / "tuned.npz"
    tuned.save(path)
    warm = optuna.create_study(sampler=QLearningSampler(policy=path, seed=0))
    warm.optimize(five_params, n_trials=5)
    assert len(warm.trials) == 5
    with pytest.raises(ValueError, match="policy='table'"):
        DQNSampler(policy="table", seed=0).fine_tuned_policy(study)


def test_learned_policy_threads_share_one_network() -> None:
    sampler = DQNSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(five_params, n_trials=24, n_jobs=2)
    assert len(study.trials) == 24
    _, agent = sampler.agent(study)
    assert agent.n_steps == 24


def test_untrained_policy_learns_in_the_study_alone() -> None:
    sampler = DQNSampler(policy=None, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(five_params, n_trials=30)
    _, agent = sampler.agent(study)
    assert isinstance(agent, FineTunedPolicyAgent) and agent.tuner.n_optim_steps > 0


@pytest.mark.parametrize("kind", ["random", "model"])
def test_with_learning_off_a_fixed_q_function_decides(tmp_path: Path, kind: str) -> None:
    # Bar 1 for DQNSampler: a fixed Q-function (no gradient steps) preferring one action
    # kind gets that kind at every greedy decision.
    j = FEATURE_NAMES.index(f"kind_{kind}")
    w1 = np.zeros((N_FEATURES, 2))
    w1[j, 0] = 1.0
    w2, w3 = np.eye(2), np.array([[10.0], [0.0]])
    path = tmp_path / "prefers.npz"
    PolicyNetwork([w1, np.zeros(2), w2, np.zeros(2), w3, np.zeros(1)]).save(path)
    sampler = DQNSampler(policy=path, epsilon=0.0, n_updates_per_step=0, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(five_params, n_trials=20)
    decisions = [t.system_attrs[KEY_DECISION] for t in study.trials[1:]]
    assert all(d["label"] == kind and not d["explored"] for d in decisions)
