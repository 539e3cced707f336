"""Tables (Markdown) and a plot (PNG) from regret-curve files of ``baselines`` and
``harness_eval``.

Mean rank (1 = lowest simple regret in a (problem, seed) cell, ties shared) with a
bootstrap 95% interval over cells, at each budget, among ``--methods``; per-family
mean ranks; and head-to-head pair mean ranks of ``--reference`` against the others
(1.5 is even; issue 14's bar is an interval below 1.5). Cells are restricted to the
seeds every method ran (GPSampler runs seeds 0-4 only):

    python -m experiments.learned_policy.report --curves a.json b.json \
        --methods learned tpe gp cmaes qmc random dqn --reference learned \
        --budgets 50,100,200 --out results/suite_report
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.learned_policy.stats import compare
from experiments.learned_policy.train_suite import family


def load(paths: Sequence[Path]) -> dict[str, dict[str, dict[str, list[float]]]]:
    """Merge curve files (``.json`` or ``.json.gz``):
    ``{method: {problem: {seed: [regret per trial]}}}``."""
    curves: dict[str, dict[str, dict[str, list[float]]]] = {}
    for path in paths:
        if path.suffix == ".gz":
            with gzip.open(path, "rt") as f:
                text = f.read()
        else:
            text = path.read_text()
        for method, per in json.loads(text)["curves"].items():
            curves.setdefault(method, {}).update(per)
    return curves


def restrict(
    curves: dict[str, dict[str, dict[str, list[float]]]], methods: Sequence[str]
) -> dict[str, dict[str, dict[str, list[float]]]]:
    """The methods' curves on the (problem, seed) cells all of them ran."""
    missing = [m for m in methods if m not in curves]
    if missing:
        raise ValueError(f"No curves for {missing}; have {sorted(curves)}.")
    problems = set.intersection(*(set(curves[m]) for m in methods))
    out: dict[str, dict[str, dict[str, list[float]]]] = {m: {} for m in methods}
    for p in sorted(problems):
        seeds = set.intersection(*(set(curves[m][p]) for m in methods))
        for m in methods:
            out[m][p] = {s: curves[m][p][s] for s in sorted(seeds, key=int)}
    return out


def markdown(results: dict[int, Any], reference: str) -> str:
    """The tables of :func:`compare`'s results, one budget after another."""
    lines: list[str] = []
    for budget, res in results.items():
        lines += [f"### {budget} trials ({res['n_cells']} cells)", ""]
        lines += ["| method | mean rank [95% CI] |", "|---|---|"]
        ranked = sorted(res["mean_rank"].items(), key=lambda kv: kv[1]["mean"])
        for m, v in ranked:
            lines.append(f"| {m} | {v['mean']:.2f} [{v['ci95'][0]:.2f}, {v['ci95'][1]:.2f}] |")
        fams = sorted(res["family"])
        lines += ["", "| family | " + " | ".join(m for m, _ in ranked) + " |"]
        lines.append("|---" * (len(ranked) + 1) + "|")
        for fam in fams:
            row = res["family"][fam]
            lines.append(f"| {fam} | " + " | ".join(f"{row[m]:.2f}" for m, _ in ranked) + " |")
        lines += ["", f"| {reference} vs | W / T / L | pair mean rank [95% CI] |", "|---|---|---|"]
        for m, v in res["head_to_head"].items():
            lines.append(
                f"| {m} | {v['wins']} / {v['ties']} / {v['losses']} | "
                f"{v['pair_mean_rank']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}] |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(
    curves: dict[str, dict[str, dict[str, list[float]]]], budgets: Sequence[int], path: Path
) -> None:
    """Mean rank of each method after every trial (up to the largest budget)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from experiments.learned_policy.stats import ranks

    methods = list(curves)
    cells = [(p, s) for p in curves[methods[0]] for s in curves[methods[0]][p]]
    horizon = max(budgets)
    ts = np.arange(5, horizon + 1, 5)
    mean_ranks = np.zeros((len(ts), len(methods)))
    for i, t in enumerate(ts):
        reg = np.array([[curves[m][p][s][t - 1] for m in methods] for p, s in cells])
        mean_ranks[i] = np.array([ranks(r) for r in reg]).mean(axis=0)
    fig, ax = plt.subplots(figsize=(7, 4))
    for j, m in enumerate(methods):
        ax.plot(ts, mean_ranks[:, j], label=m, lw=2.5 if j == 0 else 1.2)
    ax.set_xlabel("trials")
    ax.set_ylabel(f"mean rank among {len(methods)} (lower is better)")
    ax.set_title(f"Suite: {len(cells)} (problem, seed) cells")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", nargs="+", type=Path, required=True)
    parser.add_argument("--methods", nargs="+", required=True)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--budgets", default="50,100,200")
    parser.add_argument("--title", default="")
    parser.add_argument("--out", type=Path, required=True, help="path without suffix")
    args = parser.parse_args(argv)
    budgets = [int(b) for b in args.budgets.split(",")]
    curves = restrict(load(args.curves), args.methods)
    problems = list(curves[args.reference])
    families = {p: family(p) for p in problems}
    results = {b: compare(curves, families, b, args.reference) for b in budgets}
    text = (f"## {args.title}\n\n" if args.title else "") + markdown(results, args.reference)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    plot(curves, budgets, args.out.with_suffix(".png"))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
