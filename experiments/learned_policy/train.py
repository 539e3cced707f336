"""Train the Q-function by Q-learning over whole-study episodes on generated tasks.

Deep Q-learning with a target network, a replay buffer, the Huber loss and double
Q-learning targets; ``gamma > 0`` so that a move which pays off later is credited.
The reward of a trial is the improvement of the incumbent (the best observed
value's point) on a normalized scale: ``u`` is the fraction of the grid at least as
good as the incumbent's true value, and the reward is
``(log u_before - log u_after) / log(n_points)`` (``u_before = 1`` at the first
trial), so a study's return is at most 1 on any grid. Deterministic given
``--seed``. Only generated tasks are trained on (never a benchmark problem):

    nice -n 10 env OMP_NUM_THREADS=1 python -m experiments.learned_policy.train \
        --episodes 600 --seed 0
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from experiments.learned_policy.common import RESULTS
from experiments.learned_policy.policy import MAX_CANDIDATES, MLP, N_FEATURES, StudyState, run_study
from experiments.learned_policy.tasks import Task, generate_task


class Replay:
    """Fixed-size ring buffer of transitions with padded next-candidate features.

    Args:
        capacity: Transitions kept.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}.")
        self.x = np.zeros((capacity, N_FEATURES), dtype=np.float32)
        self.r = np.zeros(capacity, dtype=np.float32)
        self.nx = np.zeros((capacity, MAX_CANDIDATES, N_FEATURES), dtype=np.float32)
        self.mask = np.zeros((capacity, MAX_CANDIDATES), dtype=bool)
        self.done = np.zeros(capacity, dtype=np.float32)
        self.capacity, self.size, self._next = capacity, 0, 0

    def add(self, x: np.ndarray, r: float, nx: np.ndarray | None) -> None:
        """Store one transition (``nx=None``: terminal)."""
        i = self._next
        self.x[i], self.r[i] = x, r
        self.mask[i] = False
        if nx is None:
            self.done[i] = 1.0
        else:
            self.done[i] = 0.0
            self.nx[i, : len(nx)] = nx
            self.mask[i, : len(nx)] = True
        self._next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)


class _Episode:
    """One training study's bookkeeping: rewards, pending transition, gradient steps."""

    def __init__(
        self,
        task: Task,
        q: MLP,
        target: MLP,
        replay: Replay,
        rng: np.random.Generator,
        gamma: float,
        batch: int,
        update_every: int,
        sync_every: int,
        n_updates: int,
    ) -> None:
        self.task, self.q, self.target, self.replay, self.rng = task, q, target, replay, rng
        self.gamma, self.batch, self.update_every, self.sync_every = (
            gamma, batch, update_every, sync_every
        )  # fmt: skip
        self.n_updates = n_updates
        self.sorted_table = np.sort(task.table.ravel())
        self.log_n = math.log(max(2, len(self.sorted_table)))
        self.pending: tuple[np.ndarray, float] | None = None
        self.u_prev = 1.0
        self.ret = 0.0
        self.loss = 0.0

    def on_step(self, x: np.ndarray, i: int, state: StudyState) -> None:
        """``run_study``'s hook: store the previous transition, reward this trial, learn."""
        if self.pending is not None:
            self.replay.add(self.pending[0], self.pending[1], x)
        assert state.best_flat is not None
        true_best = float(self.task.table.flat[state.best_flat])
        u = np.searchsorted(self.sorted_table, true_best, side="right") / len(self.sorted_table)
        r = (math.log(self.u_prev) - math.log(max(u, 1e-300))) / self.log_n
        self.u_prev = u
        self.ret += r
        self.pending = (x[i], r)
        if self.replay.size >= self.batch and len(state.order) % self.update_every == 0:
            self._update()

    def _update(self) -> None:
        """One double-Q-learning step on a replay batch."""
        replay, batch = self.replay, self.batch
        idx = self.rng.integers(replay.size, size=batch)
        nx, mask = replay.nx[idx], replay.mask[idx]
        done = replay.done[idx]
        best = np.argmax(np.where(mask, self.q(nx), -np.inf), axis=1)
        tq = np.where(done > 0, 0.0, self.target(nx)[np.arange(batch), best])
        y = replay.r[idx] + self.gamma * tq
        self.loss = self.q.train_step(replay.x[idx].astype(float), y.astype(float))
        self.n_updates += 1
        if self.n_updates % self.sync_every == 0:
            self.target.copy_from(self.q)

    def finish(self) -> None:
        """Store the last transition as terminal."""
        if self.pending is not None:
            self.replay.add(self.pending[0], self.pending[1], None)
            self.pending = None


def train(
    episodes: int,
    seed: int,
    budget: int = 100,
    gamma: float = 0.9,
    batch: int = 64,
    update_every: int = 2,
    sync_every: int = 200,
    eps_start: float = 1.0,
    eps_end: float = 0.05,
    capacity: int = 30_000,
    hidden: int = 32,
    lr: float = 1e-3,
    episodes_per_task: int = 2,
) -> tuple[MLP, list[dict[str, float]]]:
    """Q-learning over ``episodes`` whole studies.

    Args:
        episodes: Number of training studies.
        seed: Seeds tasks, initialization, exploration and replay sampling.
        budget: Trials per study.
        gamma: Discount factor (positive).
        batch: Replay batch size.
        update_every: Trials between gradient steps.
        sync_every: Gradient steps between target-network syncs.
        eps_start: Exploration rate at the first episode.
        eps_end: Exploration rate from 60% of the episodes on.
        capacity: Replay size.
        hidden: Hidden units per layer.
        lr: Adam's learning rate.
        episodes_per_task: Studies run on each generated task (with other seeds).

    Returns:
        The trained network and one log row per episode.

    Raises:
        ValueError: For a non-positive ``episodes`` or a ``gamma`` outside ``(0, 1)``.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}.")
    if not 0 < gamma < 1:
        raise ValueError(f"gamma must be in (0, 1), got {gamma}.")
    rng = np.random.default_rng(seed)
    q = MLP(np.random.default_rng([seed, 1]), hidden=hidden, lr=lr)
    target = MLP(np.random.default_rng([seed, 1]), hidden=hidden, lr=lr)
    target.copy_from(q)
    replay = Replay(capacity)
    log: list[dict[str, float]] = []
    n_updates = 0
    task: Task | None = None
    for episode in range(episodes):
        if episode % episodes_per_task == 0:
            task = generate_task(rng)
        assert task is not None
        eps = max(eps_end, eps_start - (eps_start - eps_end) * episode / (0.6 * episodes))
        episode_state = _Episode(task, q, target, replay, rng, gamma, batch, update_every,
                                 sync_every, n_updates)  # fmt: skip
        study_seed = int(rng.integers(2**31))
        run_study(task.shape, task.categorical, task.observe, q, budget, eps, study_seed,
                  episode_state.on_step)  # fmt: skip
        episode_state.finish()
        n_updates = episode_state.n_updates
        log.append({"episode": episode, "epsilon": round(eps, 4),
                    "return": round(episode_state.ret, 5), "loss": round(episode_state.loss, 6),
                    "n_params": len(task.shape)})  # fmt: skip
        if (episode + 1) % 100 == 0:
            recent = np.mean([row["return"] for row in log[-100:]])
            print(f"episode {episode + 1}: eps {eps:.2f}, mean return (last 100) {recent:.3f}",
                  flush=True)  # fmt: skip
    return q, log


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gamma", type=float, default=0.9)
    parser.add_argument("--out", type=Path, default=RESULTS / "policy.npz")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        q, log = train(args.episodes, args.seed, gamma=args.gamma)
    except ValueError as err:
        parser.error(str(err))
    wall = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    q.save(str(args.out))
    rets = np.array([row["return"] for row in log])
    k = max(1, len(rets) // 5)
    summary = {
        "episodes": args.episodes, "seed": args.seed, "gamma": args.gamma,
        "wall_s": round(wall, 1), "first_fifth_mean_return": float(rets[:k].mean()),
        "last_fifth_mean_return": float(rets[-k:].mean()), "log": log,
    }  # fmt: skip
    args.out.with_name(args.out.stem + "_train.json").write_text(json.dumps(summary))
    first, last = summary["first_fifth_mean_return"], summary["last_fifth_mean_return"]
    print(f"{args.episodes} episodes in {wall:.0f}s; mean return first fifth {first:.3f}, "
          f"last fifth {last:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
