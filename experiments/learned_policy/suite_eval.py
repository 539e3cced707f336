"""Run policies straight on the suite's tables and rank them against Optuna baselines.

A fast screen (no Optuna in the loop; noise-free tables): every point is chosen by
``optuna_qlearn._core.policy`` exactly as the sampler chooses it, and the regret
curves are compared with curves written by ``baselines`` (same problems and seeds):

    python -m experiments.learned_policy.suite_eval --policies a.npz b.npz \
        --baselines /path/base200_tpe.json --seeds 0-9 --trials 100
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.learned_policy.common import parse_seeds, suite_problems
from experiments.learned_policy.stats import compare
from optuna_qlearn._core.policy import PolicyEnsemble, PolicyNetwork
from optuna_qlearn._core.training import Task, run_episode


def policy_curves(
    q: PolicyEnsemble, problems: Sequence[str], seeds: Sequence[int], trials: int, epsilon: float
) -> dict[str, dict[str, list[float]]]:
    """Best-so-far regret curves ``{problem: {seed: [...]}}`` of a policy on the suite."""
    from benchmarks.problems import get_problem

    out: dict[str, dict[str, list[float]]] = {}
    for name in problems:
        problem = get_problem(name)
        table, opt = problem.table, problem.optimum
        task = Task(table, tuple(a.kind == "cat" for a in problem.axes))
        for seed in seeds:
            order = run_episode(task, q, trials, epsilon, np.random.default_rng([seed, 7]))
            best = np.minimum.accumulate(np.array([table[p] for p in order]))
            out.setdefault(name, {})[str(seed)] = [max(0.0, float(v - opt)) for v in best]
    return out


def print_comparison(
    curves: dict[str, Any], families: dict[str, str], budget: int, ref: str
) -> dict[str, Any]:
    """Rank ``ref`` against every other method at ``budget``, print the mean ranks and the
    head-to-head pair mean ranks (with 95% intervals) on two lines, return the result."""
    res = compare(curves, families, budget, ref)
    ranks = "  ".join(f"{m} {v['mean']:.2f}" for m, v in res["mean_rank"].items())
    h2h = "  ".join(
        f"vs {m} {v['pair_mean_rank']:.3f} [{v['ci95'][0]:.3f},{v['ci95'][1]:.3f}]"
        for m, v in res["head_to_head"].items()
    )
    print(f"{ref} @{budget}: {ranks}\n    {h2h}", flush=True)
    return res


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", nargs="+", type=Path, required=True)
    parser.add_argument("--baselines", nargs="*", type=Path, default=[])
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--budgets", default="50,100")
    parser.add_argument("--epsilon", type=float, default=0.05)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    from benchmarks.problems import family_of

    problems = suite_problems()
    seeds = parse_seeds(args.seeds)
    curves: dict = {}
    for path in args.baselines:
        for name, per in json.loads(path.read_text())["curves"].items():
            curves[name] = {p: {str(s): per[p][str(s)] for s in seeds} for p in problems}
    for path in args.policies:
        q = (
            PolicyEnsemble.load(path)
            if path.suffix == ".npz"
            else PolicyEnsemble([PolicyNetwork.initial(0)])
        )
        curves[path.stem] = policy_curves(q, problems, seeds, args.trials, args.epsilon)
    families = {p: family_of(p) for p in problems}
    report = {}
    for budget in (int(b) for b in args.budgets.split(",")):
        for ref in [p.stem for p in args.policies]:
            report[f"{ref}@{budget}"] = print_comparison(curves, families, budget, ref)
    if args.out is not None:
        args.out.write_text(json.dumps({"report": report, "curves": curves}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
