"""Run the Optuna baselines (QLearningSampler defaults, TPESampler) on the suite.

Each study runs in memory through the harness's own ``benchmarks.run.run_task`` (the
same objective, seeding and regret bookkeeping as ``python -m benchmarks.run``), and
the best-so-far regret curve is written to a JSON file that ``evaluate`` reads:

    nice -n 10 env OMP_NUM_THREADS=1 python -m experiments.learned_policy.baselines \
        --samplers qlearn tpe --seeds 0-9 --trials 100
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from experiments.learned_policy.common import (
    RESULTS,
    harness_curves,
    parse_seeds,
    suite_problems,
    write_curves,
)


def run(
    samplers: Sequence[str], problems: Sequence[str], seeds: Sequence[int], trials: int
) -> dict:
    """Regret curves ``{sampler: {problem: {seed: [regret per trial]}}}``.

    Args:
        samplers: Names in ``benchmarks.samplers.SAMPLERS``.
        problems: Names in ``benchmarks.problems.PROBLEMS``.
        seeds: Study seeds.
        trials: Trials per study.

    Raises:
        RuntimeError: If a study fails.
    """
    return {s: harness_curves(s, problems, seeds, trials) for s in samplers}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samplers", nargs="+", default=["qlearn", "tpe"])
    parser.add_argument("--seeds", default="0-9", help="e.g. 0-9 or 0,3,5")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument(
        "--problems", default=None, help="a comma list of suite problems (default: all 19)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "baselines.json")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error(f"--trials must be at least 1, got {args.trials}.")
    problems = suite_problems()
    if args.problems:
        wanted = args.problems.split(",")
        unknown = sorted(set(wanted) - set(problems))
        if unknown:
            parser.error(f"--problems: not suite problems: {unknown}")
        problems = [p for p in problems if p in wanted]
    curves = run(args.samplers, problems, parse_seeds(args.seeds), args.trials)
    write_curves(args.out, args.trials, curves)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
