"""Which actions a policy chooses on the suite, by phase of the study.

Counts, for the learned and the untrained policy, the type of the chosen action
(``move`` by step size, ``restart-best``, ``model``, ``random``) over trials 1-25,
26-50 and 51-100 of every suite study, and how often the chosen point had been
evaluated before (a wasted trial on these noise-free problems):

    nice -n 10 env OMP_NUM_THREADS=1 python -m experiments.learned_policy.actions
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from experiments.learned_policy.common import RESULTS, parse_seeds, suite_problems
from experiments.learned_policy.policy import (
    ACTION_TYPES,
    FEATURE_NAMES,
    MLP,
    StudyState,
    run_study,
)

_TYPE0 = FEATURE_NAMES.index("type_move")
_STEP = FEATURE_NAMES.index("move_size")
_EVALUATED = FEATURE_NAMES.index("evaluated")
#: Phases reported: (first trial, last trial), 1-based.
PHASES = ((1, 25), (26, 50), (51, 100))


class _Counter:
    """``run_study`` hook counting chosen action kinds per phase."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = {f"{a}-{b}": Counter() for a, b in PHASES}

    def __call__(self, x: np.ndarray, i: int, state: StudyState) -> None:
        t = len(state.order)
        kind = ACTION_TYPES[int(np.argmax(x[i, _TYPE0 : _TYPE0 + len(ACTION_TYPES)]))]
        if kind == "move":
            kind = f"move{round(x[i, _STEP] * 4)}"
        for a, b in PHASES:
            if a <= t <= b:
                self.counts[f"{a}-{b}"][kind] += 1
                self.counts[f"{a}-{b}"]["re-evaluated"] += int(x[i, _EVALUATED] > 0)


def count(q: MLP, seeds: Sequence[int], trials: int, epsilon: float) -> dict[str, dict[str, float]]:
    """Fractions of chosen action kinds per phase over the suite's studies."""
    from benchmarks.problems import get_problem

    hook = _Counter()
    for name in suite_problems():
        problem = get_problem(name)
        flat_table = problem.table.ravel()
        cats = tuple(a.kind == "cat" for a in problem.axes)
        for seed in seeds:
            run_study(problem.shape, cats, lambda f, _: float(flat_table[f]), q, trials,  # noqa: B023
                      epsilon, seed, hook)  # fmt: skip
    out: dict[str, dict[str, float]] = {}
    for phase, c in hook.counts.items():
        n = sum(v for k, v in c.items() if k != "re-evaluated")
        out[phase] = {k: round(v / max(n, 1), 3) for k, v in sorted(c.items())}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, default=RESULTS / "policy.npz")
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--epsilon", type=float, default=0.05)
    parser.add_argument("--init-seed", type=int, default=0, help="train.py's --seed")
    parser.add_argument("--out", type=Path, default=RESULTS / "actions.json")
    args = parser.parse_args(argv)
    if not args.policy.is_file():
        parser.error(f"--policy {args.policy} does not exist (run train first).")
    q = MLP.load(str(args.policy))
    untrained = MLP(np.random.default_rng([args.init_seed, 1]), hidden=q.params[0].shape[1])
    seeds = parse_seeds(args.seeds)
    report = {
        "learned": count(q, seeds, args.trials, args.epsilon),
        "untrained": count(untrained, seeds, args.trials, args.epsilon),
    }
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
