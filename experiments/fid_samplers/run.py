"""QLearningSampler vs TPE vs Random on the FID workload's two objectives, equal trials.

Usage::

    python -m experiments.fid_samplers.run                      # 5 seeds x 25 trials, vae + dgmm
    python -m experiments.fid_samplers.run --seeds 3 --trials 10 --objectives vae   # quick look

For each objective one instance is shared by all samplers and seeds. Its training seed is
fixed, so the value is a deterministic function of the four seed-grid parameters; the
objective caches each parameter set's result and replays it when a study revisits the grid
point (what differs between runs is only the sampler and its seed). Studies are in-memory.

Writes ``build/experiments/fid_samplers/`` (or ``--out DIR``): ``fid_samplers.{json,md,png}``,
best-so-far value per trial for every (objective, sampler, seed), a table of the final best
value (median and IQR, mean and sd over seeds, and the number of seeds reaching the best
value any run found), and a convergence plot (median best-so-far with the IQR band). The
recorded run is in ``experiments/fid_samplers/results/`` (see the README there).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: Where a run writes unless ``--out`` names a folder.
DEFAULT_OUT = Path("build") / "experiments" / "fid_samplers"
SAMPLER_NAMES = ("qlearning", "tpe", "random")


def make_sampler(name: str, seed: int) -> Any:
    """Build a sampler by name with ``seed``."""
    import optuna

    if name == "qlearning":
        from optuna_qlearn import QLearningSampler

        return QLearningSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}; choose from {SAMPLER_NAMES}")


def make_objective(name: str, data: str) -> Callable[[Any], float]:
    """Build the shared objective instance (training seed 0, cache on)."""
    if name == "vae":
        from optuna_qlearn.objectives.vae import VAEReconstruction

        return VAEReconstruction(seed=0)
    if name == "dgmm":
        from optuna_qlearn.objectives.dgmm import DGMMReconstruction

        return DGMMReconstruction(data, seed=0)
    raise ValueError(f"unknown objective {name!r}; choose vae or dgmm")


def code_version() -> str:
    """``git describe``-style version of the checkout, marking uncommitted sampler files."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "optuna_qlearn"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
    except OSError:
        return "unknown"
    changed = sorted(line[3:] for line in dirty if line.strip())
    return head + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")


def run_one(objective: Callable[[Any], float], sampler: str, seed: int, trials: int) -> dict:
    """One study; returns its values, best-so-far curve and params."""
    import optuna

    study = optuna.create_study(direction="minimize", sampler=make_sampler(sampler, seed))
    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    wall = time.perf_counter() - start
    values = [float(t.value) if t.value is not None else float("nan") for t in study.trials]
    best = np.minimum.accumulate(np.where(np.isnan(values), np.inf, values)).tolist()
    return {
        "sampler": sampler,
        "seed": seed,
        "values": values,
        "best_so_far": best,
        "params": [t.params for t in study.trials],
        "unique_params": len({tuple(sorted(t.params.items())) for t in study.trials}),
        "wall_s": wall,
    }


def summarize(runs: list[dict], objectives: list[str], samplers: list[str]) -> list[dict]:
    """Per (objective, sampler): final best median/IQR/mean/sd and hits of the best seen."""
    rows = []
    for obj in objectives:
        obj_runs = [r for r in runs if r["objective"] == obj]
        if not obj_runs:
            continue
        best_seen = min(min(r["best_so_far"]) for r in obj_runs)
        for s in samplers:
            rs = [r for r in obj_runs if r["sampler"] == s]
            if not rs:
                continue
            final = np.array([r["best_so_far"][-1] for r in rs])
            half = np.array([r["best_so_far"][len(r["best_so_far"]) // 2 - 1] for r in rs])
            q1, med, q3 = np.percentile(final, [25, 50, 75])
            rows.append(
                {
                    "objective": obj,
                    "sampler": s,
                    "seeds": len(rs),
                    "trials": len(rs[0]["best_so_far"]),
                    "final_median": float(med),
                    "final_q1": float(q1),
                    "final_q3": float(q3),
                    "final_mean": float(final.mean()),
                    "final_sd": float(final.std(ddof=1)) if len(rs) > 1 else 0.0,
                    "half_budget_median": float(np.median(half)),
                    "hits_best_seen": int(np.sum(np.isclose(final, best_seen, rtol=0, atol=1e-12))),
                    "best_seen": float(best_seen),
                    "unique_params_mean": float(np.mean([r["unique_params"] for r in rs])),
                }
            )
    return rows


def write_markdown(path: Path, rows: list[dict], meta: dict) -> None:
    """The results table."""
    lines = [
        "# FID workload: QLearningSampler vs TPE vs Random",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Code: {meta.get('code', 'unknown')}.",
        "",
        f"{meta['seeds']} sampler seeds x {meta['trials']} trials per study; objectives' training "
        "seed fixed at 0 (value deterministic per grid point, cached and replayed on revisits). "
        "Value = Frechet distance of reconstructions to stimuli in the 64-d features of the "
        "offline `RandomConvFeatures` extractor (not FID comparable to published numbers); "
        "lower is better. Seed grid: K 2..10, intermediate_dim {64,128,256}, "
        "batch_size {8,16,32}, maxiter {10,20,40} (243 points).",
        "",
        "| objective | sampler | final best: median [IQR] | mean ± sd | median at half budget "
        "| seeds hitting best seen | distinct configs / study |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['objective']} | {r['sampler']} | {r['final_median']:.4f} "
            f"[{r['final_q1']:.4f}, {r['final_q3']:.4f}] | {r['final_mean']:.4f} ± "
            f"{r['final_sd']:.4f} | {r['half_budget_median']:.4f} | "
            f"{r['hits_best_seen']}/{r['seeds']} | {r['unique_params_mean']:.1f} |"
        )
    lines += [
        "",
        "Best value seen in any run: "
        + ", ".join(
            f"{o}: {next(r['best_seen'] for r in rows if r['objective'] == o):.4f}"
            for o in dict.fromkeys(r["objective"] for r in rows)
        ),
        "",
        f"Distinct grid points trained: {meta['evaluations']}. CPU time "
        f"{meta.get('cpu_s', float('nan')):.0f} s, wall time {meta['wall_s']:.0f} s on "
        f"{meta['machine']} (one torch thread, one BLAS thread; a shared machine, so wall "
        "times are indicative only).",
        "",
        "![convergence](fid_samplers.png)",
        "",
    ]
    path.write_text("\n".join(lines))


def plot(path: Path, runs: list[dict], objectives: list[str], samplers: list[str]) -> None:
    """Median best-so-far with IQR band, one panel per objective."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(objectives), figsize=(5.5 * len(objectives), 4), squeeze=False)
    for ax, obj in zip(axes[0], objectives, strict=True):
        for s in samplers:
            curves = np.array(
                [r["best_so_far"] for r in runs if r["objective"] == obj and r["sampler"] == s]
            )
            if curves.size == 0:
                continue
            x = np.arange(1, curves.shape[1] + 1)
            q1, med, q3 = np.percentile(curves, [25, 50, 75], axis=0)
            ax.plot(x, med, label=f"{s} (n={len(curves)})")
            ax.fill_between(x, q1, q3, alpha=0.2)
        ax.set_title(f"{obj}: best Frechet distance so far")
        ax.set_xlabel("trial")
        ax.set_ylabel("FD (random-conv features), median and IQR")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m experiments.fid_samplers.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--objectives", default="vae,dgmm")
    parser.add_argument("--samplers", default=",".join(SAMPLER_NAMES))
    parser.add_argument("--seeds", default="5", help="N (0..N-1), A-B or a comma list")
    parser.add_argument("--trials", type=int, default=25)
    parser.add_argument("--data", default="../shared/data/digit69/digit69_28x28.mat")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--name", default="fid_samplers")
    args = parser.parse_args(argv)
    from benchmarks.run import parse_seeds

    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as err:
        parser.error(str(err))

    import optuna
    import torch

    from optuna_qlearn.fid import FIDSampleSizeWarning

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=FIDSampleSizeWarning)
    objectives = [o for o in args.objectives.split(",") if o]
    samplers = [s for s in args.samplers.split(",") if s]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs: list[dict] = []
    evaluations = 0
    start = time.perf_counter()
    cpu_start = time.process_time()
    meta: dict[str, Any] = {
        "command": "python -m experiments.fid_samplers.run " + " ".join(argv or sys.argv[1:]),
        "seeds": len(seeds),
        "trials": args.trials,
        "code": code_version(),
        "machine": (
            f"{platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}"
        ),
    }
    for obj_name in objectives:
        objective = make_objective(obj_name, args.data)
        for seed in seeds:
            for s in samplers:
                run = run_one(objective, s, seed, args.trials)
                run["objective"] = obj_name
                runs.append(run)
                print(
                    f"{obj_name:5s} {s:10s} seed {seed}: best {run['best_so_far'][-1]:.4f} "
                    f"({run['unique_params']} distinct, {run['wall_s']:.0f} s, "
                    f"{time.perf_counter() - start:.0f} s total)",
                    flush=True,
                )
                meta["wall_s"] = time.perf_counter() - start
                meta["cpu_s"] = time.process_time() - cpu_start
                meta["evaluations"] = evaluations + len(objective._cache)  # type: ignore[attr-defined]
                rows = summarize(runs, objectives, samplers)
                (out / f"{args.name}.json").write_text(
                    json.dumps({"meta": meta, "summary": rows, "runs": runs}, indent=1)
                )
        evaluations += len(objective._cache)  # type: ignore[attr-defined]
    meta["evaluations"] = evaluations
    meta["wall_s"] = time.perf_counter() - start
    meta["cpu_s"] = time.process_time() - cpu_start
    rows = summarize(runs, objectives, samplers)
    (out / f"{args.name}.json").write_text(
        json.dumps({"meta": meta, "summary": rows, "runs": runs}, indent=1)
    )
    write_markdown(out / f"{args.name}.md", rows, meta)
    plot(out / f"{args.name}.png", runs, objectives, samplers)
    for r in rows:
        print(
            f"{r['objective']:5s} {r['sampler']:10s} final best median {r['final_median']:.4f} "
            f"IQR [{r['final_q1']:.4f}, {r['final_q3']:.4f}] mean {r['final_mean']:.4f} ± "
            f"{r['final_sd']:.4f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
