"""Pre-train the policy on generated tasks and the suite's training problems.

Issue 14 allows training on generated tasks and on the problems of
``benchmarks/problems.py`` (never on the reserved datasets: ``common.suite_problems``
refuses them). Half the training studies run on a generated task
(``optuna_qlearn._core.training.generate_task``), half on one of the suite's problem
tables (noise-free; the noisy variants share their table with the plain ones). With
``--exclude FAMILY`` the family's problems are left out: that policy is the one
reported on that family (leave-one-family-out). Deterministic given ``--seed``:

    python -m experiments.learned_policy.train_suite --seed 0 --out policy.npz
    python -m experiments.learned_policy.train_suite --seed 0 --exclude hpobench --out lofo.npz
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from experiments.learned_policy.common import suite_problems
from optuna_qlearn._core.training import Task, TrainingConfig, TrainingLog, generate_task, train

#: Share of training studies run on a suite problem (the rest on generated tasks).
SUITE_SHARE = 0.5


def family(name: str) -> str:
    """A problem's family without the noise suffix (``hpobench-noisy`` -> ``hpobench``)."""
    from benchmarks.problems import family_of

    return family_of(name).removesuffix("-noisy")


def suite_tasks(exclude: str | None = None) -> list[tuple[str, Task]]:
    """``(name, task)`` of every distinct suite table, without ``exclude``'s family."""
    from benchmarks.problems import get_problem

    out: list[tuple[str, Task]] = []
    for name in suite_problems():
        if name.endswith("-noisy") or (exclude is not None and family(name) == exclude):
            continue
        problem = get_problem(name)
        table = np.asarray(problem.table, dtype=float)
        scale = float(table.std()) or 1.0
        cats = tuple(a.kind == "cat" for a in problem.axes)
        out.append((name, Task((table - table.mean()) / scale, cats, 0.0, (name,))))
    return out


class MixedTasks:
    """Draws a suite task with probability :data:`SUITE_SHARE`, else a generated one."""

    def __init__(self, tasks: Sequence[tuple[str, Task]]) -> None:
        self.tasks = list(tasks)

    def __call__(self, rng: np.random.Generator) -> Task:
        if self.tasks and rng.random() < SUITE_SHARE:
            return self.tasks[int(rng.integers(len(self.tasks)))][1]
        return generate_task(rng)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exclude", default=None, help="a family to leave out")
    parser.add_argument("--reward", default="quantile", choices=("quantile", "improvement"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    tasks = suite_tasks(args.exclude)
    if args.exclude is not None and len(tasks) == len(suite_tasks()):
        parser.error(f"--exclude {args.exclude!r} is not a family of the suite.")
    config = TrainingConfig(episodes=args.episodes, reward=args.reward)

    def progress(episode: int, log: TrainingLog) -> None:
        if (episode + 1) % 200 == 0:
            print(f"episode {episode + 1}: {log.mean_return(slice(-200, None)):.3f}", flush=True)

    q, log = train(MixedTasks(tasks), seed=args.seed, config=config, progress=progress)
    q.save(args.out)
    summary = {
        "episodes": args.episodes,
        "seed": args.seed,
        "exclude": args.exclude,
        "reward": args.reward,
        "wall_s": round(log.wall_s, 1),
        "trained_on": [n for n, _ in tasks],
        "log": log.rows,
    }
    args.out.with_suffix(".json").write_text(json.dumps(summary))
    print(f"wrote {args.out} in {log.wall_s:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
