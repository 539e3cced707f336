"""Tests of the Q-learning LR controller (optuna_qlearn.lr)."""

from __future__ import annotations

import io
import itertools
import math
from typing import Any

import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LinearLR, SequentialLR

from experiments.lr_schedule.controller import (
    ExperimentLRObjective,
    ExperimentLRScheduler,
)
from optuna_qlearn.lr import (
    QLearningLRScheduler,
    WarmupCosine,
    parse_actions,
    warmup_cosine_scheduler,
)


def _sgd(lr: float = 0.1) -> tuple[torch.nn.Parameter, torch.optim.SGD]:
    p = torch.nn.Parameter(torch.zeros(3))
    return p, torch.optim.SGD([p], lr=lr)


def _roundtrip(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_chosen_lr_is_the_lr_of_the_next_optimizer_step() -> None:
    p, opt = _sgd(0.1)
    base = WarmupCosine(2, 40, 0.1)
    sched = QLearningLRScheduler(opt, base_lr_fn=base, epsilon=1.0, seed=3)  # explores a lot
    seen: list[float] = []
    opt.register_step_pre_hook(lambda o, args, kwargs: seen.append(o.param_groups[0]["lr"]))
    grad = torch.tensor([1.0, -2.0, 0.5])
    expected: list[float] = []
    multipliers = set()
    for it in range(1, 41):
        before = p.detach().clone()
        p.grad = grad.clone()
        opt.step()
        # Plain SGD: the update really used the scheduled LR.
        lr_used = seen[-1]
        torch.testing.assert_close(p.detach(), before - lr_used * grad)
        if it % 4 == 0:
            sched.step(val_loss=1.0 / it)
            # The agent's decision is on the optimizer before the next step...
            assert sched.history[-1]["multiplier"] == sched.multiplier
            multipliers.add(sched.multiplier)
        else:
            sched.step()
        want = 0.1 * base(sched.last_epoch) * sched.multiplier
        assert sched.get_last_lr() == [pytest.approx(want)]
        assert opt.param_groups[0]["lr"] == pytest.approx(want)
        expected.append(want)
    # ... and it is exactly what the following optimizer.step() used.
    assert seen[1:] == pytest.approx(expected[:-1])
    assert len(multipliers) > 2  # the agent did change the LR


def test_single_unit_action_reproduces_the_base_schedule() -> None:
    _, opt_a = _sgd(0.3)
    _, opt_b = _sgd(0.3)
    fn = WarmupCosine(5, 50, 0.1)
    q = QLearningLRScheduler(opt_a, base_lr_fn=fn, actions=(1.0,), seed=0)
    ref = LambdaLR(opt_b, fn)
    for it in range(60):
        opt_a.step()
        opt_b.step()
        q.step(2.0 - it * 0.01) if it % 5 == 0 else q.step()
        ref.step()
        assert q.get_last_lr() == ref.get_last_lr()


def test_warmup_cosine_matches_torch_sequential_lr() -> None:
    lr, warmup, decay, min_factor = 2e-3, 10, 100, 0.1
    _, opt = _sgd(lr)
    seq = SequentialLR(
        opt,
        [
            LinearLR(opt, start_factor=1 / (warmup + 1), end_factor=1.0, total_iters=warmup),
            CosineAnnealingLR(opt, T_max=decay - warmup, eta_min=min_factor * lr),
        ],
        milestones=[warmup],
    )
    fn = WarmupCosine(warmup, decay, min_factor)
    for step in range(decay + 1):
        assert opt.param_groups[0]["lr"] == pytest.approx(lr * fn(step), rel=1e-6), step
        opt.step()
        seq.step()
    assert fn(decay + 50) == min_factor
    _, opt2 = _sgd(lr)
    helper = warmup_cosine_scheduler(opt2, warmup, decay, min_factor)
    assert helper.get_last_lr() == [pytest.approx(lr / (warmup + 1))]


def test_q_update_is_one_step_q_learning() -> None:
    _, opt = _sgd(1.0)
    sched = QLearningLRScheduler(
        opt, alpha=0.5, gamma=0.9, epsilon=0.0, reward="improvement", reward_scale=100.0, seed=0
    )
    sched.q_table[:, 1] = 0.01  # greedy = x1 everywhere, so the multiplier stays 1
    opt.step()
    sched.step(2.0)
    s0, a0 = sched.prev_state, sched.prev_action
    assert s0 == (sched.n_trends - 1) * sched.n_lr_levels + sched.lr_level(1.0)  # start state
    assert a0 == 1 and sched.multiplier == 1.0
    assert sched.history[0]["reward"] is None  # nothing to learn from the first loss
    q_before = sched.q_table.clone()
    opt.step()
    sched.step(1.9)  # 5% improvement -> reward 5
    s1 = sched.prev_state
    assert s1 is not None and s0 is not None
    target = 5.0 + 0.9 * float(q_before[s1].max())
    expected = float(q_before[s0, 1]) + 0.5 * (target - float(q_before[s0, 1]))
    assert float(sched.q_table[s0, 1]) == pytest.approx(expected)
    changed = (sched.q_table != q_before).sum().item()
    assert changed == 1
    assert sched.history[1]["reward"] == pytest.approx(5.0)


def test_states_and_rewards() -> None:
    _, opt = _sgd(1.0)
    sched = QLearningLRScheduler(opt, trend_thresholds=(0.0, 0.01), n_lr_levels=7, seed=0)
    assert sched.n_trends == 4 and sched.n_states == 28
    assert sched.trend_bucket(1.0) == 3  # start
    sched.prev_loss = 2.0
    assert sched.trend_bucket(2.1) == 0  # worse
    assert sched.trend_bucket(1.99) == 1  # 0.5% better
    assert sched.trend_bucket(1.5) == 2  # 25% better
    assert sched.trend_bucket(math.inf) == 0
    assert [sched.lr_level(m) for m in (0.125, 0.25, 1.0, 8.0)] == [0, 1, 3, 6]
    assert sched.reward(1.9) == pytest.approx(5.0)
    assert sched.reward(0.1) == 10.0  # clipped
    assert sched.reward(math.inf) == -10.0
    _, opt2 = _sgd(1.0)
    neg = ExperimentLRScheduler(opt2, reward="neg_val_loss", seed=0)
    opt2.step()
    neg.step(4.0)
    assert neg.reward(2.0) == pytest.approx(-0.5)


def test_multiplier_is_bounded() -> None:
    p, opt = _sgd(0.1)
    sched = QLearningLRScheduler(
        opt, actions=(2.0,), min_multiplier=0.5, max_multiplier=4.0, seed=0
    )
    for i in range(10):
        opt.step()
        sched.step(1.0 + i)
    assert sched.multiplier == 4.0
    assert opt.param_groups[0]["lr"] == pytest.approx(0.4)
    assert p.grad is None


def test_epsilon_decays_linearly() -> None:
    _, opt = _sgd()
    sched = ExperimentLRScheduler(
        opt, epsilon=1.0, epsilon_end=0.1, epsilon_decay_decisions=9, seed=0
    )
    values = []
    for i in range(12):
        values.append(sched.current_epsilon)
        opt.step()
        sched.step(1.0 / (i + 1))
    assert values[0] == 1.0
    assert values[9] == pytest.approx(0.1)
    assert values[11] == pytest.approx(0.1)
    assert all(a >= b for a, b in itertools.pairwise(values))


def _drive(sched: QLearningLRScheduler, opt: torch.optim.Optimizer, losses: list[float]) -> list:
    lrs = []
    for i, loss in enumerate(losses):
        opt.step()
        sched.step(loss) if i % 3 == 0 else sched.step()
        lrs.append(sched.get_last_lr()[0])
    return lrs


def test_state_dict_resumes_exactly_with_weights_only_load() -> None:
    losses = [3.0 - 0.05 * i + 0.03 * ((i * 7) % 5) for i in range(60)]
    fn = WarmupCosine(3, 60, 0.1)
    kwargs: dict[str, Any] = {"epsilon": 0.5, "seed": 11}
    _, opt_full = _sgd()
    full = QLearningLRScheduler(opt_full, base_lr_fn=fn, **kwargs)
    lrs_full = _drive(full, opt_full, losses)

    _, opt_a = _sgd()
    first = QLearningLRScheduler(opt_a, base_lr_fn=fn, **kwargs)
    lrs_a = _drive(first, opt_a, losses[:31])
    saved = _roundtrip({"sched": first.state_dict(), "opt": opt_a.state_dict()})

    _, opt_b = _sgd()
    resumed = QLearningLRScheduler(opt_b, base_lr_fn=fn, seed=999)  # different seed: restored
    opt_b.load_state_dict(saved["opt"])
    resumed.load_state_dict(saved["sched"])
    lrs_b = []
    for i, loss in enumerate(losses[31:], start=31):
        opt_b.step()
        resumed.step(loss) if i % 3 == 0 else resumed.step()
        lrs_b.append(resumed.get_last_lr()[0])
    assert lrs_a + lrs_b == lrs_full
    assert torch.equal(resumed.q_table, full.q_table)
    assert resumed.history == full.history
    assert resumed.last_epoch == full.last_epoch


def test_warm_start_and_shape_checks() -> None:
    _, opt = _sgd()
    table = torch.zeros(5 * 7, 3)
    table[:, 2] = 1.0  # always x2
    sched = QLearningLRScheduler(opt, q_table=table, epsilon=0.0, seed=0)
    opt.step()
    sched.step(1.0)
    assert sched.multiplier == 2.0
    assert sched.greedy_policy() == [2.0] * 35
    with pytest.raises(ValueError, match="q_table has shape"):
        QLearningLRScheduler(opt, q_table=torch.zeros(4, 3))
    other = QLearningLRScheduler(opt, actions=(0.5, 2.0))
    with pytest.raises(ValueError, match=r"q_table in state_dict has shape \(35, 3\)"):
        other.load_state_dict({**sched.state_dict(), "actions": (0.5, 2.0)})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"actions": ()}, "empty"),
        ({"actions": (0.5, -1.0)}, "positive"),
        ({"actions": "a,b"}, "cannot parse"),
        ({"min_multiplier": 2.0}, "min_multiplier"),
        ({"alpha": 0.0}, "alpha"),
        ({"gamma": 1.5}, "gamma"),
        ({"epsilon": -0.1}, "epsilon"),
        ({"reward": "accuracy"}, "reward"),
        ({"reward": "improvement_vs_reference"}, "needs reference_losses"),
        ({"trend_thresholds": (0.1, 0.0)}, "ascending"),
        ({"n_lr_levels": 0}, "n_lr_levels"),
    ],
)
def test_invalid_arguments(kwargs: dict, match: str) -> None:
    _, opt = _sgd()
    with pytest.raises(ValueError, match=match):
        QLearningLRScheduler(opt, **kwargs)


def test_parse_actions() -> None:
    assert parse_actions("0.5, 1,2") == (0.5, 1.0, 2.0)
    assert parse_actions([1, 3]) == (1.0, 3.0)


def test_agent_learns_the_best_lr_level_in_a_toy_problem() -> None:
    """The loss falls 4x faster at multiplier 2; the agent must learn to steer there."""
    _, opt = _sgd(1.0)
    sched = QLearningLRScheduler(
        opt,
        min_multiplier=0.25,
        max_multiplier=8.0,
        n_lr_levels=6,
        trend_thresholds=(0.0,),
        epsilon=0.2,
        alpha=0.3,
        gamma=0.8,
        q_init=20.0,  # optimistic: every action gets tried
        seed=0,
    )
    loss = 10.0
    for _ in range(800):
        loss *= 0.98 if sched.multiplier == 2.0 else 0.995
        if loss < 1.0:
            loss = 10.0  # a new episode; the table carries over
            sched.prev_loss, sched.prev_state, sched.prev_action = None, None, None
        opt.step()
        sched.step(loss)
    policy = sched.greedy_policy()
    improving = 1  # trend bucket "better" (0 = worse, 2 = start)

    def action_at(m: float) -> float:
        return policy[improving * sched.n_lr_levels + sched.lr_level(m)]

    assert action_at(1.0) == 2.0  # below the best level: go up
    assert action_at(2.0) == 1.0  # at it: stay
    assert action_at(4.0) == 0.5  # above it: go down
    late = [h["multiplier"] for h in sched.history[400:]]
    assert late.count(2.0) / len(late) > 0.6


def test_improvement_delta_reward() -> None:
    _, opt = _sgd(1.0)
    sched = ExperimentLRScheduler(opt, reward="improvement_delta", epsilon=0.0, seed=0)
    for loss in (4.0, 3.0):  # no improvement seen before the second loss: nothing learned
        opt.step()
        sched.step(loss)
    assert [h["reward"] for h in sched.history] == [None, None]
    assert torch.count_nonzero(sched.q_table) == 0
    opt.step()
    sched.step(2.7)  # improvement 25% -> 10%: the last action slowed progress by 15 points
    assert sched.history[-1]["reward"] == pytest.approx(-10.0)  # clipped from -15
    opt.step()
    sched.step(2.43 * 0.96)  # 10% -> 13.6%: faster
    assert sched.history[-1]["reward"] == pytest.approx(100 * (1 - 2.43 * 0.96 / 2.7) - 10.0)
    assert torch.count_nonzero(sched.q_table) == 2


def test_ties_between_symmetric_actions_are_unbiased() -> None:
    # |log(2/3)| and |log(1.5)| differ in the last bit; both must count as "most neutral".
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = QLearningLRScheduler(opt, actions=(2 / 3, 1.5), epsilon=0.0, seed=0)
    picks = [sched._greedy(0) for _ in range(200)]
    assert set(picks) == {0, 1}
    assert 60 < picks.count(0) < 140
    # An action really nearer to x1 still wins the tie.
    near = QLearningLRScheduler(opt, actions=(0.67, 1.5), epsilon=0.0, seed=0)
    assert {near._greedy(0) for _ in range(50)} == {0}


def test_improvement_ema_reward() -> None:
    _, opt = _sgd(1.0)
    sched = ExperimentLRScheduler(
        opt, reward="improvement_ema", ema_decay=0.5, epsilon=0.0, reward_clip=100.0, seed=0
    )
    for loss in (4.0, 3.0):  # no average before the second improvement: nothing learned
        opt.step()
        sched.step(loss)
    assert [h["reward"] for h in sched.history] == [None, None]
    assert sched.improvement_ema == pytest.approx(0.25)
    opt.step()
    sched.step(2.7)  # improvement 10% against an average of 25%
    assert sched.history[-1]["reward"] == pytest.approx(100 * (0.10 - 0.25))
    assert sched.improvement_ema == pytest.approx(0.5 * 0.25 + 0.5 * 0.10)
    opt.step()
    sched.step(2.7 * 0.9)  # 10% again, against an average of 17.5%
    assert sched.history[-1]["reward"] == pytest.approx(100 * (0.10 - 0.175))
    # The average is part of the saved state; a bad decay is refused.
    assert _roundtrip(sched.state_dict())["improvement_ema"] == pytest.approx(0.1375)
    with pytest.raises(ValueError, match=r"ema_decay must be in \[0, 1\)"):
        ExperimentLRScheduler(opt, reward="improvement_ema", ema_decay=1.0)
    # The experiment's state round-trips through its own class, not the library's.
    _, opt_b = _sgd(1.0)
    again = ExperimentLRScheduler(opt_b, reward="improvement_ema", ema_decay=0.5, seed=1)
    again.load_state_dict(_roundtrip(sched.state_dict()))
    assert again.improvement_ema == pytest.approx(0.1375)
    with pytest.raises(ValueError, match="does not have"):
        QLearningLRScheduler(opt_b, seed=0).load_state_dict(sched.state_dict())


def test_library_keeps_only_the_documented_rewards_and_options() -> None:
    _, opt = _sgd()
    for mode in ("neg_val_loss", "improvement_delta", "improvement_ema"):
        with pytest.raises(ValueError, match="reward must be one of"):
            QLearningLRScheduler(opt, reward=mode)
        ExperimentLRScheduler(opt, reward=mode)  # the experiment still has them
    for option in ("epsilon_end", "epsilon_decay_decisions", "ema_decay"):
        with pytest.raises(TypeError, match=option):
            QLearningLRScheduler(opt, **{option: 0.5})
    with pytest.raises(ValueError, match="epsilon_decay_decisions must be an integer"):
        ExperimentLRScheduler(opt, epsilon_end=0.1, epsilon_decay_decisions=0)
    assert ExperimentLRObjective.REWARD_CHOICES == ("improvement", "neg_val_loss",
                                                    "improvement_delta")  # fmt: skip
    assert ExperimentLRObjective.SCHEDULER is ExperimentLRScheduler


def test_n_step_q_learning_and_end_of_episode() -> None:
    _, opt = _sgd(1.0)
    sched = QLearningLRScheduler(
        opt, alpha=0.5, gamma=0.9, epsilon=0.0, reward="improvement", n_step=3, seed=0
    )
    sched.q_table[:, 1] = 0.01  # greedy = x1 everywhere: the state only follows the trend
    expected = sched.q_table.clone()
    losses = (2.0, 1.9, 1.8, 1.75, 1.7)
    rewards = [100 * (a - b) / a for a, b in itertools.pairwise(losses)]
    s = []
    for loss in losses:
        opt.step()
        sched.step(loss)
        assert sched.prev_state is not None and sched.prev_action == 1
        s.append(sched.prev_state)

    def update(i: int, bootstrap_state: int | None) -> None:
        # Decision i's return: its (up to 3) rewards, then gamma^3 max Q (if not at the end).
        g = sum(0.9**j * r for j, r in enumerate(rewards[i : i + 3]))
        if bootstrap_state is not None:
            g += 0.9**3 * float(expected[bootstrap_state].max())
        expected[s[i], 1] += 0.5 * (g - expected[s[i], 1])

    # The third reward completes decision 0's target; the fourth, decision 1's.
    update(0, s[3])
    update(1, s[4])
    torch.testing.assert_close(sched.q_table, expected)
    assert len(sched.pending) == 2
    assert len(_roundtrip(sched.state_dict())["pending"]) == 2
    sched.end_episode()  # the waiting transitions get their returns, without bootstrapping
    update(2, None)
    update(3, None)
    torch.testing.assert_close(sched.q_table, expected)
    assert sched.pending == [] and sched.prev_state is None and sched.n_decisions == 0
    opt.step()
    sched.step(1.6)  # a new episode: no transition from the old one's last decision
    assert sched.history[-1]["reward"] is None


def test_n_step_one_is_one_step_q_learning() -> None:
    tables = []
    for n in (None, 1):
        _, opt = _sgd(1.0)
        kwargs: dict[str, Any] = {} if n is None else {"n_step": n}
        sched = QLearningLRScheduler(opt, epsilon=0.5, seed=4, reward="improvement", **kwargs)
        for it in range(30):
            opt.step()
            sched.step(3.0 / (1 + it) + 0.1 * math.sin(it))
        sched.end_episode()  # nothing waits with one-step targets
        tables.append(sched.q_table)
        # The table is the hand-written one-step update replayed over the decisions.
        q = torch.zeros_like(sched.q_table)
        h = sched.history
        for prev, cur in itertools.pairwise(h):
            if cur["reward"] is None:
                continue
            s, a, s2 = int(prev["state"]), int(prev["action"]), int(cur["state"])
            target = float(cur["reward"]) + sched.gamma * float(q[s2].max())
            q[s, a] += sched.alpha * (target - q[s, a])
        torch.testing.assert_close(sched.q_table, q)
    torch.testing.assert_close(tables[0], tables[1])
    with pytest.raises(ValueError, match="n_step must be"):
        QLearningLRScheduler(opt, n_step=0)


def test_improvement_vs_reference_reward() -> None:
    _, opt = _sgd(1.0)
    ref = [4.0, 3.0, 2.7]
    sched = QLearningLRScheduler(
        opt, reward="improvement_vs_reference", reference_losses=ref, epsilon=0.0, seed=0
    )
    for loss in (4.0, 3.2, 2.72, 2.6):
        opt.step()
        sched.step(loss)
    got = [h["reward"] for h in sched.history]
    assert got[0] is None
    assert got[1] == pytest.approx(100 * (0.2 - 0.25))  # 20% against the reference's 25%
    assert got[2] == pytest.approx(100 * (0.15 - 0.10))
    assert got[3] == pytest.approx(100 * (1 - 2.6 / 2.72))  # past the reference: against 0
    with pytest.raises(ValueError, match="needs reference_losses"):
        QLearningLRScheduler(opt, reward="improvement_vs_reference")
    with pytest.raises(ValueError, match="positive and finite"):
        QLearningLRScheduler(opt, reward="improvement_vs_reference", reference_losses=[1.0, 0.0])


def _phased(opt: torch.optim.Optimizer, **kwargs: Any) -> QLearningLRScheduler:
    settings: dict[str, Any] = {
        "n_phases": 4,
        "total_steps": 160,
        "trend_thresholds": (),
        "actions": (2 / 3, 1.0, 1.5),
        "min_multiplier": 1.0,
        "max_multiplier": 2.0,
        "n_lr_levels": 3,
        "seed": 0,
    }
    return QLearningLRScheduler(opt, **{**settings, **kwargs})


def test_phase_index_and_state_layout() -> None:
    _, opt = _sgd()
    sched = _phased(opt)
    # One trend bucket besides "start": the state is (phase, start?, level).
    assert sched.n_trends == 2 and sched.n_states == 4 * 2 * 3
    steps = (0, 1, 39, 40, 79, 80, 119, 120, 159, 160, 1000)
    assert [sched.phase(t) for t in steps] == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 3]
    # In a run, a decision after `it` optimizer steps is in phase 4 * it // 160.
    seen = []
    for it in range(1, 161):
        opt.step()
        if it % 16 == 0:
            sched.step(3.0 - it / 100)
            state = int(sched.history[-1]["state"])  # type: ignore[arg-type]
            seen.append((state // (sched.n_trends * sched.n_lr_levels), state))
            assert seen[-1][0] == min(3, 4 * it // 160) == sched.phase(it)
        else:
            sched.step()
    assert [p for p, _ in seen] == [0, 0, 1, 1, 2, 2, 2, 3, 3, 3]
    # The first decision is the "start" trend at the initial level (1 -> level 0).
    assert seen[0][1] == (0 * 2 + 1) * 3 + 0
    # Every later one is trend 0 (the single bucket) in its phase.
    level = sched.lr_level(float(sched.history[0]["multiplier"]))  # type: ignore[arg-type]
    assert seen[1][1] == (0 * 2 + 0) * 3 + level
    # One phase (the default) keeps the old layout whatever the step.
    _, opt1 = _sgd()
    flat = QLearningLRScheduler(opt1, seed=0)
    assert flat.n_states == 5 * 7 and flat.phase(10_000) == 0


def test_phase_decides_the_greedy_action() -> None:
    _, opt = _sgd()
    table = torch.zeros(4 * 2 * 3, 3)
    per_phase = 2 * 3
    table[:per_phase, 2] = 1.0  # phase 0: raise (x1.5)
    table[per_phase : 3 * per_phase, 1] = 1.0  # phases 1-2: hold
    table[3 * per_phase :, 0] = 1.0  # phase 3: lower (x2/3)
    sched = _phased(opt, q_table=table, epsilon=0.0)
    multipliers = []
    for it in range(1, 161):
        opt.step()
        if it % 16 == 0:
            sched.step(2.0)
            multipliers.append(sched.multiplier)
        else:
            sched.step()
    assert multipliers[:2] == [1.5, 2.0]  # raised twice, capped at 2
    assert multipliers[2:7] == [2.0] * 5  # held in phases 1-2
    assert multipliers[7:] == pytest.approx([4 / 3, 1.0, 1.0])  # lowered, floored at 1


def test_phases_round_trip_and_warm_start() -> None:
    losses = [3.0 - 0.01 * i + 0.03 * ((i * 7) % 5) for i in range(160)]
    kwargs: dict[str, Any] = {"epsilon": 0.5, "reward": "improvement", "sample_average": True}

    def drive(sched: QLearningLRScheduler, opt: torch.optim.Optimizer, its: range) -> list:
        lrs = []
        for it in its:
            opt.step()
            sched.step(losses[it - 1]) if it % 8 == 0 else sched.step()
            lrs.append(sched.get_last_lr()[0])
        return lrs

    _, opt_full = _sgd()
    full = _phased(opt_full, **kwargs)
    lrs_full = drive(full, opt_full, range(1, 161))
    _, opt_a = _sgd()
    first = _phased(opt_a, **kwargs)
    lrs_a = drive(first, opt_a, range(1, 77))
    saved = _roundtrip({"sched": first.state_dict(), "opt": opt_a.state_dict()})
    assert saved["sched"]["n_phases"] == 4 and saved["sched"]["total_steps"] == 160
    assert tuple(saved["sched"]["q_visits"].shape) == (24, 3)
    # A scheduler of the same layout (other learning settings, seed) resumes exactly.
    _, opt_b = _sgd()
    resumed = _phased(opt_b, seed=5)
    opt_b.load_state_dict(saved["opt"])
    resumed.load_state_dict(saved["sched"])
    assert resumed.n_phases == 4 and resumed.n_states == 24
    lrs_b = drive(resumed, opt_b, range(77, 161))
    assert lrs_a + lrs_b == lrs_full
    assert torch.equal(resumed.q_table, full.q_table)
    assert torch.equal(resumed.q_visits, full.q_visits)
    assert resumed.history == full.history
    # Warm start: a new run with the learned table and counts continues them.
    full.end_episode()
    _, opt_c = _sgd()
    warm = _phased(opt_c, q_table=full.q_table, q_visits=full.q_visits, **kwargs)
    assert torch.equal(warm.q_table, full.q_table) and torch.equal(warm.q_visits, full.q_visits)
    assert float(full.q_visits.sum()) == len(full.history) - 1  # one update per transition


def test_phase_shape_errors_and_old_state_dicts() -> None:
    _, opt = _sgd()
    with pytest.raises(ValueError, match="needs total_steps"):
        QLearningLRScheduler(opt, n_phases=4)
    with pytest.raises(ValueError, match="n_phases must be"):
        QLearningLRScheduler(opt, n_phases=0, total_steps=10)
    with pytest.raises(ValueError, match="total_steps must be"):
        QLearningLRScheduler(opt, n_phases=2, total_steps=0)
    # A one-phase table (5 x 7 states) cannot warm-start a four-phase scheduler.
    with pytest.raises(
        ValueError, match=r"q_table has shape \(35, 3\), expected \(140, 3\).*4 phases"
    ):
        QLearningLRScheduler(opt, n_phases=4, total_steps=100, q_table=torch.zeros(35, 3))
    with pytest.raises(ValueError, match="q_visits has shape"):
        QLearningLRScheduler(opt, n_phases=4, total_steps=100, q_visits=torch.zeros(35, 3))
    phased = _phased(opt)
    state = phased.state_dict()
    with pytest.raises(
        ValueError, match=r"saved with n_phases=2, but this scheduler has n_phases=4"
    ):
        _phased(opt).load_state_dict({**state, "n_phases": 2})
    with pytest.raises(ValueError, match=r"q_visits in state_dict has shape \(2, 3\)"):
        _phased(opt).load_state_dict({**state, "q_visits": torch.zeros(2, 3)})
    # A state dict saved before phases and counts existed loads as one phase, counts 0...
    flat = QLearningLRScheduler(opt, seed=0)
    old = flat.state_dict()
    for key in ("n_phases", "total_steps", "q_visits", "sample_average"):
        old.pop(key)
    again = QLearningLRScheduler(opt, seed=1)
    again.load_state_dict(old)
    assert again.n_phases == 1 and again.total_steps is None and again.n_states == 35
    assert torch.equal(again.q_visits, torch.zeros(35, 3))
    assert again.phase(10_000) == 0
    # ... but not into a scheduler with phases: its table has another layout.
    with pytest.raises(ValueError, match="saved with n_phases=1"):
        QLearningLRScheduler(opt, n_phases=4, total_steps=100).load_state_dict(old)


def test_sample_average_step_size() -> None:
    _, opt = _sgd(1.0)
    sched = QLearningLRScheduler(
        opt, alpha=0.25, gamma=0.0, epsilon=0.0, reward="improvement", sample_average=True,
        trend_thresholds=(), n_lr_levels=1, actions=(1.0,), seed=0,
    )  # fmt: skip
    losses = [2.0, 1.9, 1.9, 1.71, 1.71, 1.71, 1.71]
    for loss in losses:
        opt.step()
        sched.step(loss)
    rewards = [r for r in (h["reward"] for h in sched.history) if r is not None]
    # One state besides "start": its entry saw rewards 2..5; the start entry saw reward 1.
    assert float(sched.q_table[1, 0]) == pytest.approx(rewards[0])
    later = rewards[1:]
    q = later[0]
    for n, r in enumerate(later[1:], start=2):
        q += max(0.25, 1 / n) * (r - q)
    assert float(sched.q_table[0, 0]) == pytest.approx(q)
    # The first 1/alpha = 4 updates give the plain mean.
    assert float(sched.q_table[0, 0]) == pytest.approx(
        sum(later[:4]) / 4 + 0.25 * (later[4] - sum(later[:4]) / 4)
    )
    assert sched.q_visits.tolist() == [[5.0], [1.0]]


# ---------------------------------------------------------------- issue 15, defect 6


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        # Before: reward_clip=nan failed at the first step (min() arg is an empty sequence)
        # and reward_scale=nan silently made every reward the clip.
        ({"reward_clip": math.nan}, ValueError, "reward_clip must be finite"),
        ({"reward_clip": math.inf}, ValueError, "reward_clip must be finite"),
        ({"reward_clip": 0.0}, ValueError, "reward_clip must be > 0"),
        ({"reward_scale": math.nan}, ValueError, "reward_scale must be finite"),
        ({"reward_scale": -1.0}, ValueError, "reward_scale must be > 0"),
        ({"alpha": "0.5"}, TypeError, "alpha must be a real number"),
        ({"alpha": math.nan}, ValueError, "alpha must be finite"),
        ({"gamma": math.nan}, ValueError, "gamma must be finite"),
        ({"epsilon": math.nan}, ValueError, "epsilon must be finite"),
        ({"q_init": math.nan}, ValueError, "q_init must be finite"),
        ({"n_lr_levels": 2.5}, TypeError, "n_lr_levels must be an integer"),
        ({"n_lr_levels": True}, TypeError, "n_lr_levels must be an integer"),
        ({"n_step": 0}, ValueError, "n_step must be >= 1"),
        ({"seed": -1}, ValueError, "seed must be >= 0"),
        ({"seed": "0"}, TypeError, "seed must be an integer"),
        ({"min_multiplier": math.nan}, ValueError, "min_multiplier must be finite"),
        ({"max_multiplier": math.inf}, ValueError, "max_multiplier must be finite"),
        ({"initial_multiplier": 0.0}, ValueError, "initial_multiplier must be > 0"),
        ({"trend_thresholds": (0.0, 0.0)}, ValueError, "strictly ascending"),
        ({"trend_thresholds": (0.0, math.nan)}, ValueError, "trend_thresholds must be finite"),
        ({"trend_thresholds": "0,1"}, TypeError, "trend_thresholds must be a sequence"),
        ({"actions": (1.0, 1.0)}, ValueError, "actions must not repeat"),
        ({"actions": 2.0}, TypeError, "actions must be a string or a sequence"),
        ({"actions": (1.0, math.nan)}, ValueError, "actions must be finite"),
        ({"total_steps": 100}, ValueError, "total_steps=100 is used only with n_phases > 1"),
        ({"n_phases": 2, "total_steps": 1.5}, TypeError, "total_steps must be an integer"),
        ({"sample_average": 1}, TypeError, "sample_average must be a bool"),
        ({"base_lr_fn": 0.5}, TypeError, "base_lr_fn must be a callable"),
        ({"q_table": torch.full((35, 3), math.nan)}, ValueError, "q_table holds non-finite"),
        ({"q_visits": -torch.ones(35, 3)}, ValueError, "q_visits holds negative"),
        ({"q_table": "table"}, TypeError, "q_table must be a tensor of numbers"),
        ({"reward": "improvement_vs_reference", "reference_losses": (1.0, -2.0)}, ValueError,
         "reference_losses must be positive"),
    ],
)  # fmt: skip
def test_every_constructor_argument_is_validated(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    _, opt = _sgd()
    with pytest.raises(error, match=match):
        QLearningLRScheduler(opt, **kwargs)


def test_optimizer_and_base_schedule_are_validated() -> None:
    with pytest.raises(TypeError, match=r"optimizer must be a torch\.optim\.Optimizer"):
        QLearningLRScheduler(object())  # type: ignore[arg-type]
    _, opt = _sgd()
    with pytest.raises(ValueError, match=r"base_lr_fn\(0\) must return a finite factor"):
        QLearningLRScheduler(opt, base_lr_fn=lambda step: math.nan)


def test_state_of_a_one_group_optimizer_is_refused_by_a_two_group_one() -> None:
    """Before: it loaded, and the next ``step()`` failed with a zip error."""
    _, one = _sgd()
    saved = _roundtrip(QLearningLRScheduler(one, seed=0).state_dict())
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    groups: list[dict[str, Any]] = [{"params": [a]}, {"params": [b], "lr": 0.01}]
    two = torch.optim.SGD(groups, lr=0.1)
    sched = QLearningLRScheduler(two, seed=0)
    with pytest.raises(ValueError, match=r"1 parameter group\(s\), but this .* has 2"):
        sched.load_state_dict(saved)
    two.step()
    sched.step(1.0)  # the scheduler is untouched and still works
    assert sched.get_last_lr() == [pytest.approx(0.1 * sched.multiplier),
                                   pytest.approx(0.01 * sched.multiplier)]  # fmt: skip


@pytest.mark.parametrize(
    ("saved_kwargs", "key"),
    [
        ({"actions": (0.5, 1.0)}, "actions"),
        ({"n_lr_levels": 5}, "n_lr_levels"),
        ({"trend_thresholds": (0.0,)}, "trend_thresholds"),
        ({"min_multiplier": 0.5}, "min_multiplier"),
        ({"max_multiplier": 4.0}, "max_multiplier"),
        ({"n_phases": 2, "total_steps": 50}, "n_phases"),
    ],
)
def test_state_of_another_layout_is_refused(saved_kwargs: dict[str, Any], key: str) -> None:
    """Before: a state of another table shape silently replaced the actions and levels."""
    _, opt_a = _sgd()
    saved = _roundtrip(QLearningLRScheduler(opt_a, seed=0, **saved_kwargs).state_dict())
    _, opt_b = _sgd()
    sched = QLearningLRScheduler(opt_b, seed=0)
    with pytest.raises(ValueError, match=f"state_dict was saved with {key}="):
        sched.load_state_dict(saved)
    assert sched.actions == (0.5, 1.0, 2.0) and sched.n_lr_levels == 7
    assert sched.trend_thresholds == (0.0, 0.005, 0.02) and sched.n_phases == 1


def test_state_dict_contents_are_validated() -> None:
    _, opt = _sgd()
    sched = QLearningLRScheduler(opt, seed=0)
    opt.step()
    sched.step(1.0)
    good = sched.state_dict()
    bad_cases: list[tuple[Any, type[Exception], str]] = [
        ([1, 2], TypeError, "state_dict must be a mapping"),
        ({**good, "surprise": 1}, ValueError, r"does not have: \['surprise'\]"),
        ({k: v for k, v in good.items() if k != "alpha"}, ValueError, "lacks the keys"),
        ({**good, "q_table": torch.full((35, 3), math.inf)}, ValueError, "non-finite"),
        ({**good, "alpha": math.nan}, ValueError, r"alpha \(in state_dict\) must be finite"),
        ({**good, "reward_mode": "accuracy"}, ValueError, "reward_mode"),
        ({**good, "multiplier": 100.0}, ValueError, "multiplier"),
        ({**good, "prev_state": 35}, ValueError, "prev_state in state_dict"),
        ({**good, "pending": [[0, 7, 1.0]]}, ValueError, "pending in state_dict"),
    ]
    for bad, error, match in bad_cases:
        with pytest.raises(error, match=match):
            sched.load_state_dict(bad)
    sched.load_state_dict(good)  # still loads after every refusal
    assert torch.equal(sched.q_table, good["q_table"])


def test_the_experiments_stored_report_reproduces_from_its_json() -> None:
    """experiments/lr_schedule: the committed tables are what its code makes of its JSON."""
    import json

    from experiments.lr_schedule import run

    data = json.loads((run.RESULTS / "lr_runs_shakespeare_char.json").read_text())
    report = (run.RESULTS / "lr_schedule.md").read_text()
    table = run.summarize(data, "shakespeare_char", 5)
    assert len(table) > 10_000 and table in report
