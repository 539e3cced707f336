"""Measure the learned policy against its untrained self, QLearningSampler and TPE.

Runs the learned policy (``results/policy.npz``), the same policy untrained (the
network at its random initialization, the state training starts from) and with
``Q = 0`` (every candidate tied: a uniform choice among the actions) directly on
the tables of the suite's problems (``benchmarks.problems.SUITE``: 19 problems, all
offline, none reserved), seeds ``--seeds``, ``--trials`` trials each, exploration
``--epsilon``; reads the Optuna baselines written by ``baselines``; and reports, at
each budget, the mean rank (1 = best simple regret in a (problem, seed) cell) with
a bootstrap 95% interval over cells, per-family mean ranks and head-to-head
wins/ties/losses of the learned policy against each other method:

    nice -n 10 env OMP_NUM_THREADS=1 python -m experiments.learned_policy.evaluate

It also runs both policies on ``--generated`` fresh generated tasks (a seed range
training never drew from) and compares their normalized returns.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.learned_policy.common import RESULTS, parse_seeds, suite_problems
from experiments.learned_policy.policy import MLP, run_study
from experiments.learned_policy.tasks import generate_task

#: Regrets closer than this (relative to the larger) count as a tie.
TIE = 1e-9


class _Lookup:
    """``(flat index, rng) -> value`` of a noise-free table."""

    def __init__(self, flat_table: np.ndarray) -> None:
        self.flat_table = flat_table

    def __call__(self, flat: int, _: np.random.Generator) -> float:
        return float(self.flat_table[flat])


def policy_curves(
    q: MLP, problems: Sequence[str], seeds: Sequence[int], trials: int, epsilon: float
) -> dict[str, dict[str, list[float]]]:
    """Best-so-far regret curves ``{problem: {seed: [...]}}`` of a policy on the suite."""
    from benchmarks.problems import get_problem

    out: dict[str, dict[str, list[float]]] = {}
    for name in problems:
        problem = get_problem(name)
        table, opt = problem.table, problem.optimum
        cats = tuple(a.kind == "cat" for a in problem.axes)
        flat_table = table.ravel()
        observe = _Lookup(flat_table)
        for seed in seeds:
            order = run_study(problem.shape, cats, observe, q, trials, epsilon, seed)
            best = np.minimum.accumulate(flat_table[np.asarray(order)])
            out.setdefault(name, {})[str(seed)] = [
                round(max(0.0, float(v - opt)), 10) for v in best
            ]
    return out


def _ranks(row: np.ndarray) -> np.ndarray:
    """Average ranks (1 = smallest), ties within :data:`TIE` sharing a rank."""
    order = np.argsort(row, kind="stable")
    ranks = np.empty(len(row))
    i = 0
    while i < len(row):
        j = i
        while j + 1 < len(row) and _tied(row[order[j + 1]], row[order[i]]):
            j += 1
        ranks[order[i : j + 1]] = 0.5 * (i + j) + 1
        i = j + 1
    return ranks


def _tied(a: float, b: float) -> bool:
    return abs(a - b) <= TIE * max(abs(a), abs(b), 1e-300)


def _ci(values: np.ndarray, rng: np.random.Generator, n_boot: int = 2000) -> tuple[float, float]:
    """Bootstrap 95% interval of the mean (cells resampled)."""
    means = values[rng.integers(len(values), size=(n_boot, len(values)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def compare(
    curves: dict[str, dict[str, dict[str, list[float]]]],
    families: dict[str, str],
    budget: int,
    reference: str,
) -> dict[str, Any]:
    """Ranks at ``budget`` trials of every method and ``reference``'s head-to-heads."""
    methods = list(curves)
    cells = [(p, s) for p in curves[reference] for s in curves[reference][p]]
    regret = np.array([[curves[m][p][s][budget - 1] for m in methods] for p, s in cells])
    ranks = np.array([_ranks(r) for r in regret])
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"budget": budget, "n_cells": len(cells), "mean_rank": {}, "family": {}}
    for j, m in enumerate(methods):
        lo, hi = _ci(ranks[:, j], rng)
        out["mean_rank"][m] = {"mean": float(ranks[:, j].mean()), "ci95": [lo, hi]}
    fams = sorted(set(families.values()))
    for fam in fams:
        sel = np.array([families[p] == fam for p, _ in cells])
        out["family"][fam] = {m: float(ranks[sel, j].mean()) for j, m in enumerate(methods)}
    r = methods.index(reference)
    out["head_to_head"] = {}
    for j, m in enumerate(methods):
        if j == r:
            continue
        tie = np.array([_tied(a, b) for a, b in zip(regret[:, r], regret[:, j])])
        win = (regret[:, r] < regret[:, j]) & ~tie
        loss = (regret[:, r] > regret[:, j]) & ~tie
        pair_rank = 1.0 + loss + 0.5 * tie  # the reference's rank of 2
        lo, hi = _ci(pair_rank, rng)
        out["head_to_head"][m] = {
            "wins": int(win.sum()), "ties": int(tie.sum()), "losses": int(loss.sum()),
            "pair_mean_rank": float(pair_rank.mean()), "ci95": [lo, hi],
        }  # fmt: skip
    return out


def generated_check(q: MLP, untrained: MLP, n_tasks: int, trials: int, epsilon: float) -> dict:
    """Normalized return (see ``train``) of both policies on fresh generated tasks."""
    rng = np.random.default_rng(10_000_019)  # never a training seed's stream
    rows = []
    for _ in range(n_tasks):
        task = generate_task(rng)
        sorted_table = np.sort(task.table.ravel())
        log_n = math.log(max(2, len(sorted_table)))
        seed = int(rng.integers(2**31))
        row = []
        for policy in (q, untrained):
            order = run_study(
                task.shape, task.categorical, task.observe, policy, trials, epsilon, seed
            )
            noise_rng = np.random.default_rng([seed, 1])
            observed = [task.observe(f, noise_rng) for f in order]
            incumbent = order[int(np.argmin(observed))]
            u = np.searchsorted(sorted_table, task.table.flat[incumbent], side="right") / len(
                sorted_table
            )
            row.append(-math.log(u) / log_n)
        rows.append(row)
    arr = np.array(rows)
    diff = arr[:, 0] - arr[:, 1]
    return {
        "n_tasks": n_tasks, "learned_mean_return": float(arr[:, 0].mean()),
        "untrained_mean_return": float(arr[:, 1].mean()),
        "learned_better": int((diff > 1e-12).sum()), "equal": int((np.abs(diff) <= 1e-12).sum()),
        "untrained_better": int((diff < -1e-12).sum()),
    }  # fmt: skip


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Learned policy vs baselines ({report['trials']} trials, seeds {report['seeds']})",
        "",
    ]
    for comp in report["comparisons"]:
        lines += [f"## Budget {comp['budget']} ({comp['n_cells']} problem x seed cells)", "",
                  "| method | mean rank | 95% CI |", "|---|---|---|"]  # fmt: skip
        for m, v in sorted(comp["mean_rank"].items(), key=lambda kv: kv[1]["mean"]):
            lines.append(f"| {m} | {v['mean']:.2f} | [{v['ci95'][0]:.2f}, {v['ci95'][1]:.2f}] |")
        lines += [
            "",
            f"Head to head, {report['reference']} against each (pair mean rank: 1 = always "
            "better, 1.5 = even, 2 = always worse):",
            "",
            "| vs | wins | ties | losses | pair mean rank | 95% CI |",
            "|---|---|---|---|---|---|",
        ]
        for m, v in comp["head_to_head"].items():
            lo, hi = v["ci95"]
            lines.append(
                f"| {m} | {v['wins']} | {v['ties']} | {v['losses']} | "
                f"{v['pair_mean_rank']:.3f} | [{lo:.3f}, {hi:.3f}] |"
            )
        methods = list(comp["mean_rank"])
        lines += ["", "Mean rank per family:", "", "| family | " + " | ".join(methods) + " |",
                  "|---" * (len(methods) + 1) + "|"]  # fmt: skip
        for fam, v in comp["family"].items():
            lines.append(f"| {fam} | " + " | ".join(f"{v[m]:.2f}" for m in methods) + " |")
        lines.append("")
    g = report.get("generated")
    if g:
        lines += [
            "## Fresh generated tasks",
            "",
            f"{g['n_tasks']} tasks: mean normalized return learned "
            f"{g['learned_mean_return']:.3f}, untrained {g['untrained_mean_return']:.3f}; "
            f"learned better on {g['learned_better']}, equal on {g['equal']}, "
            f"untrained better on {g['untrained_better']}.",
            "",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, default=RESULTS / "policy.npz")
    parser.add_argument("--baselines", type=Path, default=RESULTS / "baselines.json")
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--epsilon", type=float, default=0.05)
    parser.add_argument("--init-seed", type=int, default=0, help="train.py's --seed")
    parser.add_argument("--generated", type=int, default=40)
    parser.add_argument("--out", type=Path, default=RESULTS / "evaluation")
    args = parser.parse_args(argv)
    if not args.policy.is_file():
        parser.error(f"--policy {args.policy} does not exist (run train first).")
    if not args.baselines.is_file():
        parser.error(f"--baselines {args.baselines} does not exist (run baselines first).")
    if not 0 <= args.epsilon <= 1:
        parser.error(f"--epsilon must be in [0, 1], got {args.epsilon}.")
    from benchmarks.problems import family_of

    seeds = parse_seeds(args.seeds)
    problems = suite_problems()
    q = MLP.load(str(args.policy))
    untrained = MLP(np.random.default_rng([args.init_seed, 1]), hidden=q.params[0].shape[1])
    base = json.loads(args.baselines.read_text())
    if base["trials"] < args.trials:
        parser.error(f"--baselines has {base['trials']} trials, fewer than --trials {args.trials}.")
    t0 = time.perf_counter()
    zero = MLP(np.random.default_rng(0), hidden=q.params[0].shape[1])
    zero.params = [np.zeros_like(p) for p in zero.params]  # Q = 0: ties, a uniform choice
    curves: dict[str, dict[str, dict[str, list[float]]]] = {
        "learned": policy_curves(q, problems, seeds, args.trials, args.epsilon),
        "untrained": policy_curves(untrained, problems, seeds, args.trials, args.epsilon),
        "Q=0": policy_curves(zero, problems, seeds, args.trials, args.epsilon),
    }
    for name, by_problem in base["curves"].items():
        curves[{"qlearn": "QLearningSampler", "tpe": "TPE"}.get(name, name)] = {
            p: {s: by_problem[p][s] for s in map(str, seeds)} for p in problems
        }
    families = {p: family_of(p) for p in problems}
    budgets = sorted({b for b in (25, 50, args.trials) if b <= args.trials})
    report: dict[str, Any] = {
        "trials": args.trials, "seeds": args.seeds, "epsilon": args.epsilon, "reference": "learned",
        "comparisons": [compare(curves, families, b, "learned") for b in budgets],
    }  # fmt: skip
    if args.generated > 0:
        report["generated"] = generated_check(
            q, untrained, args.generated, args.trials, args.epsilon
        )
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({**report, "curves": curves}))
    args.out.with_suffix(".md").write_text(_markdown(report))
    print(_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
