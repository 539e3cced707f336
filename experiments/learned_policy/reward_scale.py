"""How the reward a study can observe compares with the pre-training reward, by trial.

Asked for DQNSampler's fine-tuning (issue 14, step 3): the networks were pre-trained on the
fall of the incumbent's quantile over a task's whole grid, which a study cannot know; the
study observes the improvement of its best value over the spread of the values seen
(``improvement_reward``). Are the two on one scale? The shipped policy runs 100-trial
studies on generated tasks (never a suite problem) and both rewards are recorded per trial:

    python -m experiments.learned_policy.reward_scale --tasks 120

Found (120 tasks): over trials 1-9 the observable reward averages 0.131 against 0.032 for
the pre-training one (about 4x); from trial 10 on the ratio of their sums is 0.81-0.93 per
stretch of trials, so DQNSampler skips the first 10 trials (``warmup``) and learns from the
observable reward unscaled after them.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

import numpy as np

from optuna_qlearn._core.policy import (
    PolicyEnsemble,
    SearchState,
    epsilon_greedy,
    improvement_reward,
)
from optuna_qlearn._core.training import generate_task
from optuna_qlearn.sampler import default_policy_path


def rewards(n_tasks: int, trials: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(trial index, pre-training reward, observable reward)`` of every trial."""
    q = PolicyEnsemble.load(default_policy_path())
    rng = np.random.default_rng(seed)
    index, quantile, observed = [], [], []
    for episode in range(n_tasks):
        task = generate_task(rng)
        state = SearchState(task.shape, task.categorical)
        oracle = np.sort(task.table.ravel())
        log_n = math.log(max(2, task.table.size))
        u_before = 1.0
        study_rng = np.random.default_rng(episode)
        for t in range(trials):
            cands = state.candidates(study_rng)
            i, _ = epsilon_greedy(q(state.features(cands)), 0.05, study_rng)
            point = cands.points[i]
            before = state.best_value
            state.record(point, task.observe(point, study_rng))
            assert state.best_point is not None
            rank = np.searchsorted(oracle, float(task.table[state.best_point]), side="right")
            u = max(float(rank) / oracle.size, 1e-300)
            index.append(t)
            quantile.append((math.log(u_before) - math.log(u)) / log_n)
            observed.append(improvement_reward(before, state.best_value, state.spread()))
            u_before = u
    return np.array(index), np.array(quantile), np.array(observed)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=120)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args(argv)
    t, rq, ri = rewards(args.tasks, args.trials, args.seed)
    print("trials  pre-training mean  observable mean  ratio of sums (pre / observable)")
    for lo, hi in ((1, 10), (10, 50), (50, args.trials)):
        m = (t >= lo) & (t < hi)
        ratio = rq[m].sum() / max(ri[m].sum(), 1e-12)
        print(f"{lo:>3}-{hi - 1:<3}  {rq[m].mean():17.4f}  {ri[m].mean():15.4f}  {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
