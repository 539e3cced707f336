"""Tables, plots and JSON from the studies stored by :mod:`benchmarks.run`.

Usage::

    python -m benchmarks.report [--storage journal:build/bench/bench.journal] [--out DIR]
    python -m benchmarks.report --canonical   # rewrite the committed benchmarks/results/suite

Without ``--out`` the report goes to ``build/bench/report``; only ``--canonical``
rewrites the committed report in ``benchmarks/results/suite`` (the two options
exclude each other).

For each budget ``B`` (default 50, 100 and 200 trials, the prefixes of the
stored studies), ``results_B.md`` holds:

* mean rank of each sampler over (problem, seed) cells, ties averaged, with a
  bootstrap 95% interval (problems resampled, then seeds within each problem);
  mean rank per problem family; median over problems of the regret normalized
  to RandomSampler's; median unique configurations; sampler CPU ms per trial;
* per problem: median simple regret and interquartile range over seeds, and the
  regret normalized to RandomSampler (ratio of medians);
* the same rank table restricted to the problems with :data:`MANY_PARAMS` or more
  parameters, and head-to-head mean ranks of the pairs in :data:`HEAD_TO_HEAD`
  (the DQNSampler issue's targets: ``dqn`` against ``qlearn`` on those problems,
  ``dqn`` against ``tpe`` over the suite);
* the same rank table for the QLearningSampler ablations.

``README.md`` summarizes the largest budget with 10+ seeds, ``plots/*.png`` show
the median and IQR of best-so-far regret per problem family, and
``results.json`` holds every number (per-study regret curves included).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Bootstrap resamples of the rank intervals.
N_BOOT = 1000
#: Problems with at least this many parameters get their own rank table.
MANY_PARAMS = 5
#: Pairs compared head to head (two-sampler mean ranks), when both were run.
HEAD_TO_HEAD: tuple[tuple[str, str], ...] = (("dqn", "qlearn"), ("dqn", "tpe"), ("qlearn", "tpe"))


def n_params_of(problem: str) -> int | None:
    """Number of parameters of a benchmark problem (``None`` for an unknown name)."""
    from benchmarks.problems import PROBLEMS, get_problem

    if problem not in PROBLEMS:
        return None
    return len(get_problem(problem).axes)


def _snap(summary: dict[str, Any]) -> dict[str, Any]:
    """Regrets within float rounding of 0 (ties of averaged table values) become 0."""
    tol = 1e-9 * max(1.0, abs(float(summary.get("optimum", 1.0))))
    regret = [0.0 if 0.0 <= r < tol else r for r in summary["regret"]]
    return {**summary, "regret": regret}


class Results:
    """Stored study summaries, indexed by problem, sampler and seed.

    Args:
        summaries: ``bench`` user attributes of the studies (see :mod:`benchmarks.run`).
        problems: Problems to keep (all when ``None``), in report order.
        samplers: Samplers to keep (all when ``None``), in report order.
        seeds: Seeds to keep (all when ``None``).
    """

    def __init__(
        self,
        summaries: Sequence[dict[str, Any]],
        problems: Sequence[str] | None = None,
        samplers: Sequence[str] | None = None,
        seeds: Sequence[int] | None = None,
    ) -> None:
        keep = [
            s
            for s in summaries
            if (problems is None or s["problem"] in problems)
            and (samplers is None or s["sampler"] in samplers)
            and (seeds is None or s["seed"] in seeds)
        ]
        self.runs: dict[tuple[str, str, int], dict[str, Any]] = {
            (s["problem"], s["sampler"], int(s["seed"])): _snap(s) for s in keep
        }
        found_p = {s["problem"] for s in keep}
        found_s = {s["sampler"] for s in keep}
        self.problems = [p for p in (problems or sorted(found_p)) if p in found_p]
        self.samplers = [s for s in (samplers or sorted(found_s)) if s in found_s]
        self.family = {s["problem"]: s["family"] for s in keep}
        self.families = list(dict.fromkeys(self.family[p] for p in self.problems))
        #: Problem -> number of parameters (``None`` when unknown).
        self.n_params: dict[str, int | None] = {}
        for s in keep:
            if s["problem"] not in self.n_params:
                n = s.get("n_params")
                self.n_params[s["problem"]] = int(n) if n is not None else n_params_of(s["problem"])

    def problems_with(self, min_params: int) -> list[str]:
        """The problems with at least ``min_params`` parameters, in report order."""
        return [p for p in self.problems if (self.n_params.get(p) or 0) >= min_params]

    def max_trials(self) -> int:
        """Longest stored study."""
        return max((int(s["n_trials"]) for s in self.runs.values()), default=0)

    def regret(self, problem: str, sampler: str, budget: int) -> dict[int, float]:
        """Seed -> simple regret after ``budget`` trials (studies that long only)."""
        out = {}
        for (p, s, seed), run in self.runs.items():
            if p == problem and s == sampler and run["n_trials"] >= budget:
                out[seed] = float(run["regret"][budget - 1])
        return out

    def metric(self, sampler: str, budget: int, key: str) -> list[float]:
        """Per-study ``unique`` configurations or mean ``sampler_ms`` over ``budget`` trials."""
        out = []
        for (_, s, _), run in self.runs.items():
            if s != sampler or run["n_trials"] < budget:
                continue
            if key == "unique":
                out.append(float(run["unique"][budget - 1]))
            else:
                out.append(float(np.mean(run["sampler_ms"][:budget])))
        return out


# ----------------------------------------------------------------------------- statistics
def _rankdata(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return np.asarray(rankdata(x, method="average"), dtype=float)


def rank_cells(
    res: Results, samplers: Sequence[str], budget: int, problems: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Ranks of ``samplers`` on every (problem, seed) cell where all of them ran.

    Returns:
        Problem -> array ``[n_seeds, n_samplers]`` of ranks (1 = best, ties averaged).
    """
    out = {}
    for p in problems or res.problems:
        per = [res.regret(p, s, budget) for s in samplers]
        seeds = sorted(set.intersection(*(set(r) for r in per))) if per else []
        if not seeds:
            continue
        vals = np.array([[r[seed] for r in per] for seed in seeds])
        vals = np.where(np.isnan(vals), np.inf, vals)
        out[p] = np.array([_rankdata(row) for row in vals])
    return out


def mean_rank_ci(
    cells: dict[str, np.ndarray], rng: np.random.Generator, n_boot: int = N_BOOT
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean rank over all cells and its hierarchical-bootstrap 95% interval.

    Returns:
        ``(mean, low, high)``, one entry per sampler.
    """
    blocks = list(cells.values())
    mean = np.concatenate(blocks).mean(axis=0)
    boots = np.empty((n_boot, mean.size))
    for b in range(n_boot):
        picked = [blocks[i] for i in rng.integers(len(blocks), size=len(blocks))]
        rows = [blk[rng.integers(len(blk), size=len(blk))] for blk in picked]
        boots[b] = np.concatenate(rows).mean(axis=0)
    low, high = np.percentile(boots, [2.5, 97.5], axis=0)
    return mean, low, high


def _fmt(x: float) -> str:
    if x != x:
        return "—"
    if x == 0:
        return "0"
    if abs(x) >= 1000 or abs(x) < 1e-3:
        return f"{x:.2e}"
    return f"{x:.3g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


# ----------------------------------------------------------------------------- one budget
def complete_samplers(res: Results, samplers: Sequence[str], budget: int) -> list[str]:
    """The samplers with a result on every (problem, seed) cell that any sampler has."""
    cells = {(p, seed) for (p, _, seed), r in res.runs.items() if r["n_trials"] >= budget}
    out = []
    for s in samplers:
        mine = {(p, seed) for (p, ss, seed), r in res.runs.items()
                if ss == s and r["n_trials"] >= budget}  # fmt: skip
        if mine and mine >= cells:
            out.append(s)
    return out


def rank_section(
    res: Results,
    samplers: Sequence[str],
    budget: int,
    title: str,
    seed: int = 0,
    problems: Sequence[str] | None = None,
) -> tuple[list[str], dict[str, Any]]:
    """A Markdown rank table (overall and per family) and its numbers.

    Args:
        res: The results.
        samplers: The samplers ranked against each other.
        budget: Trials.
        title: Section title.
        seed: Seed of the bootstrap.
        problems: Problems to rank on (all when ``None``).

    Returns:
        ``(lines, numbers)``; both empty when no cell has every sampler.
    """
    if problems is not None and not problems:
        return [], {}
    cells = rank_cells(res, samplers, budget, problems)
    if not cells:
        return [], {}
    rng = np.random.default_rng(seed)
    mean, low, high = mean_rank_ci(cells, rng)
    fam_rank: dict[str, np.ndarray] = {}
    for fam in res.families:
        blocks = [c for p, c in cells.items() if res.family[p] == fam]
        if blocks:
            fam_rank[fam] = np.concatenate(blocks).mean(axis=0)
    n_cells = sum(len(c) for c in cells.values())
    seeds_per = sorted({len(c) for c in cells.values()})
    lines = [
        f"### {title}",
        "",
        f"Mean rank among {len(samplers)} samplers (1 = best; ties averaged) over {n_cells} "
        f"(problem, seed) cells: {len(cells)} problems x {'/'.join(map(str, seeds_per))} seeds; "
        "95% interval from a hierarchical bootstrap (problems, then seeds).",
        "",
    ]
    header = ["sampler", "mean rank [95% CI]", *res.families]
    order = np.argsort(mean)
    rows = []
    for i in order:
        rows.append(
            [f"`{samplers[i]}`", f"**{mean[i]:.2f}** [{low[i]:.2f}, {high[i]:.2f}]"]
            + [f"{fam_rank[f][i]:.2f}" if f in fam_rank else "—" for f in res.families]
        )
    lines += [*_table(header, rows), ""]
    numbers = {
        "samplers": list(samplers),
        "n_cells": n_cells,
        "problems": list(cells),
        "mean_rank": dict(zip(samplers, mean.round(4).tolist())),
        "ci95": {s: [float(lo), float(hi)] for s, lo, hi in zip(samplers, low, high)},
        "family_rank": {f: dict(zip(samplers, r.round(4).tolist())) for f, r in fam_rank.items()},
    }
    return lines, numbers


_H2H_HEADER = ("pair", "problems", "cells", "first: mean rank [95% CI]",
               "second: mean rank [95% CI]", "wins / ties / losses")  # fmt: skip


def head_to_head_section(
    res: Results, budget: int, pairs: Sequence[tuple[str, str]] = HEAD_TO_HEAD, seed: int = 0
) -> tuple[list[str], list[dict[str, Any]]]:
    """Two-sampler mean ranks (with bootstrap intervals) of ``pairs``, on every problem
    and on the problems with :data:`MANY_PARAMS` or more parameters."""
    many = res.problems_with(MANY_PARAMS)
    subsets = [("all problems", None), (f"{MANY_PARAMS}+ parameters", many)]
    numbers: list[dict[str, Any]] = []
    for a, b in pairs:
        if a not in res.samplers or b not in res.samplers:
            continue
        for label, problems in subsets:
            if problems is not None and not problems:
                continue
            cells = rank_cells(res, [a, b], budget, problems)
            if not cells:
                continue
            mean, low, high = mean_rank_ci(cells, np.random.default_rng(seed))
            stacked = np.concatenate(list(cells.values()))
            wins = int((stacked[:, 0] < stacked[:, 1]).sum())
            ties = int((stacked[:, 0] == stacked[:, 1]).sum())
            n = len(stacked)
            numbers.append({
                "pair": [a, b], "subset": label, "problems": list(cells), "n_cells": n,
                "mean_rank": [float(mean[0]), float(mean[1])],
                "ci95": [[float(low[0]), float(high[0])], [float(low[1]), float(high[1])]],
                "wins_ties_losses": [wins, ties, n - wins - ties],
            })  # fmt: skip
    if not numbers:
        return [], []
    lines = [
        "### Head to head",
        "",
        "Two samplers ranked against each other on each (problem, seed) cell (1 = better, "
        "1.5 = tie; the two mean ranks add up to 3), 95% hierarchical-bootstrap interval; "
        "wins / ties / losses of the first.",
        "",
        *_table(_H2H_HEADER, _h2h_rows(numbers)),
        "",
    ]
    return lines, numbers


def _h2h_rows(numbers: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Table rows of :func:`head_to_head_section`'s numbers."""
    return [
        [f"`{h['pair'][0]}` vs `{h['pair'][1]}`", f"{h['subset']} ({len(h['problems'])})",
         str(h["n_cells"]),
         f"**{h['mean_rank'][0]:.2f}** [{h['ci95'][0][0]:.2f}, {h['ci95'][0][1]:.2f}]",
         f"**{h['mean_rank'][1]:.2f}** [{h['ci95'][1][0]:.2f}, {h['ci95'][1][1]:.2f}]",
         " / ".join(map(str, h["wins_ties_losses"]))]
        for h in numbers
    ]  # fmt: skip


def budget_section(res: Results, main: Sequence[str], ablation: Sequence[str], budget: int
                   ) -> tuple[list[str], dict[str, Any]]:  # fmt: skip
    """The whole Markdown report and numbers of one budget."""
    numbers: dict[str, Any] = {"budget": budget}
    lines = [f"# Benchmark results at {budget} trials", ""]
    main = [s for s in main if s in res.samplers]
    full = complete_samplers(res, main, budget)
    sec, nums = rank_section(res, main, budget, "Mean rank, all samplers (common cells)")
    lines += sec
    numbers["rank"] = nums
    if full and len(full) < len(main):
        sec, nums = rank_section(
            res, full, budget, f"Mean rank without {', '.join(s for s in main if s not in full)} "
            "(every cell)"
        )  # fmt: skip
        lines += sec
        numbers["rank_full"] = nums
    many = res.problems_with(MANY_PARAMS)
    if many and len(many) < len(res.problems):
        ranked = full if len(full) >= 2 else main
        sec, nums = rank_section(
            res, ranked, budget, f"Mean rank on the problems with {MANY_PARAMS} or more parameters",
            problems=many,
        )  # fmt: skip
        lines += sec
        numbers["rank_many_params"] = nums
    sec, h2h = head_to_head_section(res, budget)
    lines += sec
    numbers["head_to_head"] = h2h

    # Summary per sampler.
    norm: dict[str, list[float]] = defaultdict(list)
    per_problem: dict[str, dict[str, Any]] = {}
    for p in res.problems:
        rnd = res.regret(p, "random", budget)
        rnd_med = float(np.median(list(rnd.values()))) if rnd else math.nan
        per_problem[p] = {}
        for s in res.samplers:
            r = res.regret(p, s, budget)
            if not r:
                continue
            v = np.array(list(r.values()))
            med, q1, q3 = (float(x) for x in np.percentile(v, [50, 25, 75]))
            ratio = med / rnd_med if rnd_med and rnd_med > 0 else math.nan
            if ratio == ratio:
                norm[s].append(ratio)
            per_problem[p][s] = {"median": med, "q1": q1, "q3": q3, "n": len(v),
                                 "normalized": ratio}  # fmt: skip
    numbers["per_problem"] = per_problem
    summary_rows, summary = [], {}
    for s in res.samplers:
        uniq, ms = res.metric(s, budget, "unique"), res.metric(s, budget, "ms")
        if not uniq:
            continue
        summary[s] = {
            "median_normalized_regret": float(np.median(norm[s])) if norm[s] else math.nan,
            "unique_median": float(np.median(uniq)),
            "sampler_ms_median": float(np.median(ms)),
            "n_studies": len(uniq),
        }
        row = summary[s]
        summary_rows.append(
            [f"`{s}`", _fmt(row["median_normalized_regret"]), f"{row['unique_median']:.0f}",
             f"{row['sampler_ms_median']:.2f}", str(len(uniq))]
        )  # fmt: skip
    numbers["summary"] = summary
    lines += [
        "### Per sampler",
        "",
        "Regret normalized to RandomSampler: per problem, median regret / RandomSampler's median "
        "regret; the median over problems is shown (lower is better; 0 = optimum found in over "
        "half the seeds). Unique configurations: median over studies. CPU: sampler calls only, "
        "process CPU time per trial, median over studies (2 shared cores, so indicative).",
        "",
        *_table(
            ["sampler", "normalized regret", "unique configs", "sampler CPU ms/trial", "studies"],
            summary_rows,
        ),
        "",
        "### Per problem: median simple regret [IQR] over seeds (normalized to RandomSampler)",
        "",
    ]
    rows = []
    for p in res.problems:
        cells = []
        for s in res.samplers:
            st = per_problem[p].get(s)
            cells.append(
                "—"
                if st is None
                else f"{_fmt(st['median'])} [{_fmt(st['q1'])}, {_fmt(st['q3'])}] "
                f"({_fmt(st['normalized'])})"
            )
        rows.append([p, *cells])
    lines += [*_table(["problem", *[f"`{s}`" for s in res.samplers]], rows), ""]
    abl = [s for s in ablation if s in res.samplers]
    if len([s for s in abl if s not in ("qlearn", "qlearn-seed", "dqn", "tpe", "random")]) > 0:
        sec, nums = rank_section(
            res, abl, budget, "Ablations: QLearningSampler and DQNSampler variants"
        )
        lines += sec
        numbers["ablation"] = nums
    return lines, numbers


# ----------------------------------------------------------------------------- plots
def plot_family(res: Results, family: str, samplers: Sequence[str], path: Path) -> None:
    """Median and IQR of best-so-far regret against trials, one panel per problem."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = [p for p in res.problems if res.family[p] == family]
    ncol = min(3, len(problems))
    nrow = math.ceil(len(problems) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5 * ncol, 3.6 * nrow), squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, p in zip(axes.flat, problems):
        floor = math.inf
        for k, s in enumerate(samplers):
            curves = [r["regret"] for (pp, ss, _), r in res.runs.items() if pp == p and ss == s]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            arr = np.array([c[:n] for c in curves], dtype=float)
            med, q1, q3 = np.nanpercentile(arr, [50, 25, 75], axis=0)
            x = np.arange(1, n + 1)
            pos = arr[arr > 0]
            if pos.size:
                floor = min(floor, float(pos.min()))
            ax.plot(x, med, color=colors(k % 10), label=f"{s} ({len(curves)})", lw=1.4)
            ax.fill_between(x, q1, q3, color=colors(k % 10), alpha=0.15, lw=0)
        ax.set_yscale("symlog", linthresh=floor if math.isfinite(floor) else 1e-6)
        ax.set_title(p, fontsize=10)
        ax.set_xlabel("trial")
        ax.set_ylabel("simple regret")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(problems) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.suptitle(f"{family}: median and IQR of best-so-far regret (seeds in legend)")
    fig.tight_layout(rect=(0, 0, 1, 0.90))
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.95),
               ncol=min(8, len(labels)), fontsize=8, frameon=False)  # fmt: skip
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ----------------------------------------------------------------------------- entry points
def load_summaries(storage: Any) -> list[dict[str, Any]]:
    """Every stored study summary."""
    from benchmarks.run import stored_summaries

    return list(stored_summaries(storage).values())


def write_report(
    storage: Any,
    out: str | Path,
    problems: Sequence[str] | None = None,
    samplers: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    budgets: Sequence[int] = (50, 100, 200),
    summaries: Sequence[dict[str, Any]] | None = None,
) -> list[Path]:
    """Write the Markdown tables, PNG plots and JSON for the stored studies.

    Args:
        storage: The benchmark storage (ignored when ``summaries`` are given).
        out: Output directory.
        problems: Problems to report (all stored when ``None``).
        samplers: Samplers to report (all stored when ``None``).
        seeds: Seeds to report (all stored when ``None``).
        budgets: Trial budgets; those longer than every stored study are dropped.
        summaries: Study summaries to use instead of reading ``storage``.

    Returns:
        The paths written.

    Raises:
        ValueError: If no stored study matches.
    """
    from benchmarks.samplers import ABLATIONS, MAIN

    res = Results(summaries if summaries is not None else load_summaries(storage),
                  problems, samplers, seeds)  # fmt: skip
    if not res.runs:
        raise ValueError("No stored benchmark study matches the selection; run benchmarks.run.")
    out = Path(out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    main = [s for s in res.samplers if s in MAIN or s not in ABLATIONS]
    ablation = [s for s in res.samplers if s in ABLATIONS] + [
        s for s in ("dqn", "tpe", "random") if s in res.samplers and s not in ABLATIONS
    ]
    budgets = [b for b in sorted(set(budgets)) if b <= res.max_trials()] or [res.max_trials()]
    written: list[Path] = []
    all_numbers: dict[str, Any] = {"budgets": {}, "studies": {}}
    for b in budgets:
        lines, numbers = budget_section(res, main, ablation, b)
        path = out / f"results_{b}.md"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
        all_numbers["budgets"][str(b)] = numbers
    # The README summarizes 100 trials (the headline budget) when available.
    readme_b = 100 if 100 in budgets else budgets[-1]
    readme_budget = (readme_b, all_numbers["budgets"][str(readme_b)])
    plot_samplers = main
    for fam in res.families:
        path = out / "plots" / f"convergence_{fam}.png"
        plot_family(res, fam, plot_samplers, path)
        written.append(path)
    for (p, s, seed), run in sorted(res.runs.items()):
        all_numbers["studies"][f"{p}:{s}:{seed}"] = {
            k: run[k]
            for k in (
                "problem",
                "family",
                "sampler",
                "seed",
                "version",
                "n_trials",
                "optimum",
                "failed",
            )
        } | {
            "regret": [float(f"{v:.6g}") for v in run["regret"]],
            "unique": run["unique"],
            "sampler_ms_mean": float(np.mean(run["sampler_ms"])),
        }
    path = out / "results.json"
    path.write_text(json.dumps(all_numbers, indent=None, allow_nan=True), encoding="utf-8")
    written.append(path)
    path = out / "README.md"
    path.write_text(_readme(res, budgets, readme_budget, main), encoding="utf-8")
    written.append(path)
    return written


def _rank_rows(rank: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    samplers = rank["samplers"]
    order = sorted(samplers, key=lambda s: rank["mean_rank"][s])
    fams = list(rank["family_rank"])
    rows = [
        [f"`{s}`", f"**{rank['mean_rank'][s]:.2f}** [{rank['ci95'][s][0]:.2f}, "
         f"{rank['ci95'][s][1]:.2f}]"]
        + [f"{rank['family_rank'][f][s]:.2f}" for f in fams]
        + [_fmt(summary.get(s, {}).get("median_normalized_regret", math.nan)),
           _ms(summary.get(s, {}).get("sampler_ms_median", math.nan))]
        for s in order
    ]  # fmt: skip
    header = ["sampler", "mean rank [95% CI]", *fams, "normalized regret", "CPU ms/trial"]
    return _table(header, rows)


def _ms(x: float) -> str:
    return "—" if x != x else f"{x:.2f}"


def _readme(res: Results, budgets: Sequence[int], chosen: tuple[int, dict[str, Any]],
            main: Sequence[str]) -> str:  # fmt: skip
    b, numbers = chosen
    lines = [
        "# Benchmark results",
        "",
        "Generated by `python -m benchmarks.report` from the stored studies; see "
        "[docs/benchmarks.md](../../../docs/benchmarks.md) for the method.",
        "",
        f"Problems: {len(res.problems)} ({', '.join(res.families)}). Samplers: "
        + ", ".join(f"`{s}`" for s in res.samplers)
        + ".",
        "",
        f"## Summary at {b} trials",
        "",
        "Mean rank (1 = best, ties averaged, 95% hierarchical-bootstrap interval), mean "
        "rank per family, the median over problems of the regret normalized to "
        "RandomSampler's, and the sampler's CPU milliseconds per trial (median over "
        "studies of the mean over the study's trials; process CPU time inside the "
        "sampler's methods, on 2 shared cores, so indicative).",
        "",
    ]
    tables = [("rank_full", "Samplers run on every (problem, seed) cell"),
              ("rank", "All samplers, on the cells they share"),
              ("rank_many_params", f"Problems with {MANY_PARAMS} or more parameters")]  # fmt: skip
    for key, title in tables:
        rank = numbers.get(key)
        if not rank:
            continue
        n_p = len(rank["problems"])
        lines += [
            f"### {title}: {rank['n_cells']} cells, {n_p} problems",
            "",
            *_rank_rows(rank, numbers["summary"]),
            "",
        ]
    h2h = numbers.get("head_to_head")
    if h2h:
        lines += [
            "### Head to head (two samplers ranked against each other; ranks add up to 3)",
            "",
            *_table(_H2H_HEADER, _h2h_rows(h2h)),
            "",
        ]
    if "dqn" in res.samplers and "gp" not in res.samplers:
        lines += [
            "GPSampler is not in these tables (it was not run on the suite); the CPU time per "
            "trial of DQNSampler against GPSampler at 100 and 1,000 trials is measured by "
            "`python -m benchmarks.overhead --sampler dqn` "
            "([benchmarks/results/overhead_dqn.md](../../../benchmarks/results/overhead_dqn.md)).",
            "",
        ]
    abl = numbers.get("ablation")
    if abl:
        lines += [
            f"### QLearningSampler variants and ablations: {abl['n_cells']} cells",
            "",
            *_rank_rows(abl, numbers["summary"]),
            "",
        ]
    lines += ["## Files", ""]
    lines += [f"- [results_{x}.md](results_{x}.md): tables at {x} trials" for x in budgets]
    lines += [f"- [plots/convergence_{f}.png](plots/convergence_{f}.png)" for f in res.families]
    lines += ["- [results.json](results.json): every number, per-study regret curves", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks.report``."""
    from benchmarks.run import CANONICAL_OUT, DEFAULT_OUT, DEFAULT_STORAGE, open_storage, select

    p = argparse.ArgumentParser(
        prog="python -m benchmarks.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--storage", default=DEFAULT_STORAGE)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", default=DEFAULT_OUT, help=f"report directory ({DEFAULT_OUT})")
    where.add_argument(
        "--canonical",
        action="store_true",
        help="rewrite the committed report in benchmarks/results/suite",
    )
    p.add_argument("--problems", help="comma list of problems or families (default: all stored)")
    p.add_argument("--samplers", help="comma list of samplers (default: all stored)")
    p.add_argument("--budgets", default="50,100,200")
    args = p.parse_args(argv)
    storage = open_storage(args.storage)
    summaries = load_summaries(storage)
    stored_p = list(dict.fromkeys(s["problem"] for s in summaries))
    stored_s = list(dict.fromkeys(s["sampler"] for s in summaries))
    from benchmarks.problems import SUITE
    from benchmarks.samplers import SAMPLERS

    try:
        order_p = [x for x in SUITE if x in stored_p] + [x for x in stored_p if x not in SUITE]
        order_s = [x for x in SAMPLERS if x in stored_s]
        problems = select(args.problems, order_p, order_p, "problem", prefix=True)
        samplers = select(args.samplers, order_s, order_s, "sampler")
        budgets = [int(x) for x in args.budgets.split(",") if x.strip()]
        out = CANONICAL_OUT if args.canonical else args.out
        paths = write_report(storage, out, problems, samplers, None, budgets, summaries)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
