"""QLearningSampler or DQNSampler with different settings, study by study, on every problem.

A quick A/B check for changes to the agent's decisions: each variant runs the
same (problem, seed) studies, and the final true regret (of the trial with the
best observed value) is compared study by study: mean rank among the variants,
and how often each variant is better, worse or equal than the first.

Run from the repository root: ``python -m experiments.agent_variants.run --variants
max_walk=4 max_walk=8 max_walk=64`` (``--seeds 10 --trials 100`` by default; about a
minute per variant on one core). A variant is spelled as
:func:`benchmarks.samplers.parse_variant` reads it, and changes the tabular agent's
settings (``QLearningSampler(policy="table")``; ``policy=default`` in a variant runs the
learned policy instead, ``policy=default,alpha=0`` without in-study learning);
``--sampler dqn`` runs the same
variants of DQNSampler's settings, its network's included (about 6 ms per trial more:
the network's training). Writes ``build/experiments/agent_variants.md`` or ``--out``;
the reports kept are in ``experiments/agent_variants/results/`` (see the README there).
"""

from __future__ import annotations

import argparse
import json
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from scipy.stats import rankdata

from benchmarks.problems import PROBLEMS, SUITE, get_problem
from benchmarks.run import init_worker, parse_seeds
from benchmarks.samplers import variant_sampler

#: Where a run writes its report unless ``--out`` names a file.
DEFAULT_OUT = Path("build") / "experiments" / "agent_variants.md"


def study_regret(name: str, seed: int, variant: str, trials: int, kind: str = "qlearn") -> float:
    """True regret of the best observed trial of one study of problem ``name``."""
    problem = get_problem(name)
    salt = zlib.crc32(name.encode())

    def objective(trial: optuna.Trial) -> float:
        idx = problem.suggest(trial)
        return problem.observe(idx, np.random.default_rng([salt, seed, trial.number]))

    study = optuna.create_study(sampler=variant_sampler(kind, seed, variant))
    study.optimize(objective, n_trials=trials)
    return problem.true_value(problem.index_of(study.best_trial.params)) - problem.optimum


def _study(task: tuple[str, int, str, int, str]) -> float:
    return study_regret(*task)


def final_regrets(
    variants: Sequence[str],
    seeds: Sequence[int],
    trials: int,
    kind: str = "qlearn",
    problems: Sequence[str] = tuple(PROBLEMS),
    workers: int = 1,
    cache: Path | None = None,
) -> dict[str, dict[str, float]]:
    """variant -> ``"problem:seed"`` -> :func:`study_regret`, for every problem and seed.

    Args:
        variants: Variant texts (see :func:`benchmarks.samplers.parse_variant`).
        seeds: Study seeds.
        trials: Trials per study.
        kind: ``"qlearn"`` or ``"dqn"``.
        problems: Problem names.
        workers: Processes running studies in parallel (``1``: this process).
        cache: A JSON-lines file of finished studies (task and regret per line): studies
            found there are not run again, and each new one is appended when it ends,
            so an interrupted run loses nothing. Only for one version of the code.
    """
    for v in variants:  # fail on a bad variant before any study runs
        variant_sampler(kind, 0, v)
    tasks = [(n, s, v, trials, kind) for v in variants for n in problems for s in seeds]
    done: dict[tuple[Any, ...], float] = {}
    if cache is not None and cache.exists():
        for line in cache.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                done[tuple(rec["task"])] = float(rec["regret"])
    todo = [t for t in tasks if t not in done]

    def keep(task: tuple[Any, ...], regret: float) -> None:
        done[task] = regret
        if cache is not None:
            with cache.open("a") as f:
                f.write(json.dumps({"task": list(task), "regret": regret}) + "\n")

    if workers <= 1:
        init_worker()
        for t in todo:
            keep(t, _study(t))
    else:
        with ProcessPoolExecutor(workers, initializer=init_worker) as pool:
            for t, regret in zip(todo, pool.map(_study, todo, chunksize=1)):
                keep(t, regret)
    out: dict[str, dict[str, float]] = {v: {} for v in variants}
    for t in tasks:
        name, seed, v, _, _ = t
        out[v][f"{name}:{seed}"] = done[t]
    return out


def rank_against(
    regrets: dict[str, float], stored: dict[str, Any], samplers: Sequence[str], trials: int
) -> tuple[float, dict[str, float], int]:
    """Mean rank of a variant among stored suite studies (``results.json``'s ``studies``).

    Each ``"problem:seed"`` cell where every sampler in ``samplers`` was stored ranks the
    variant's regret with theirs (regret after ``trials`` trials, ties averaged).

    Returns:
        ``(variant's mean rank, each stored sampler's mean rank, number of cells)``.
    """
    rows = []
    for key, regret in regrets.items():
        problem, seed = key.split(":")
        names = [f"{problem}:{s}:{seed}" for s in samplers]
        if any(n not in stored or len(stored[n]["regret"]) < trials for n in names):
            continue
        rows.append(rankdata([max(0.0, regret)] + [stored[n]["regret"][trials - 1] for n in names]))
    ranks = np.array(rows).reshape(len(rows), len(samplers) + 1)
    means = ranks.mean(axis=0) if rows else np.full(len(samplers) + 1, np.nan)
    return float(means[0]), {s: float(m) for s, m in zip(samplers, means[1:])}, len(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the variants and write the comparison."""
    parser = argparse.ArgumentParser(
        prog="python -m experiments.agent_variants.run",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--variants", nargs="+", default=["default"], help="field=value[,...]")
    parser.add_argument(
        "--seeds", default="10", help="N (seeds 0..N-1), A-B (inclusive) or a comma list"
    )
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--sampler", choices=("qlearn", "dqn"), default="qlearn")
    parser.add_argument(
        "--problems",
        default="all",
        help="'all', 'suite' (the suite's), or a comma-separated list of problem names",
    )
    parser.add_argument("--workers", type=int, default=1, help="processes running studies")
    parser.add_argument(
        "--against",
        type=Path,
        nargs="+",
        default=None,
        help="suite results.json files: also rank each variant among their stored samplers",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="a JSON-lines file of finished studies: reused, and appended to as studies end",
    )
    parser.add_argument(
        "--against-samplers", default="tpe,cmaes,qlearn,qlearn-prototype,random,qmc"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    if args.problems == "all":
        problems: Sequence[str] = tuple(PROBLEMS)
    elif args.problems == "suite":
        problems = SUITE
    else:
        problems = tuple(args.problems.split(","))
        for name in problems:
            get_problem(name)  # a clear error for an unknown name
    results = final_regrets(
        args.variants, seeds, args.trials, args.sampler, problems, args.workers, args.cache
    )
    keys = sorted(results[args.variants[0]])
    against = " --against " + " ".join(map(str, args.against)) if args.against else ""
    table = np.array([[results[v][k] for v in args.variants] for k in keys])
    whose = "" if args.sampler == "dqn" else ' (the tabular agent\'s, `policy="table"`)'
    ranks = np.array([rankdata(row) for row in table])
    lines = [
        f"# {'DQNSampler' if args.sampler == 'dqn' else 'QLearningSampler'} variants, "
        "study by study",
        "",
        f"`python -m experiments.agent_variants.run --variants {' '.join(args.variants)} "
        f"--seeds {args.seeds} --trials {args.trials}"
        f"{' --sampler dqn' if args.sampler == 'dqn' else ''}"
        f"{f' --problems {args.problems}' if args.problems != 'all' else ''}"
        f"{against}`: {len(problems)} problems x "
        f"{len(seeds)} seeds = {len(keys)} studies per variant; true regret of the best "
        "observed trial; rank 1 = lowest regret, ties averaged. `default` is the sampler's "
        f"own default settings{whose}; the other variants change the named fields of those.",
        "",
        f"| variant | mean rank | median regret | vs `{args.variants[0]}`: better/worse/equal |",
        "|---|---:|---:|---|",
    ]
    for j, v in enumerate(args.variants):
        col, ref = table[:, j], table[:, 0]
        vs = (
            "—"
            if j == 0
            else (
                f"{int((col < ref).sum())} / {int((col > ref).sum())} / {int((col == ref).sum())}"
            )
        )
        lines.append(f"| `{v}` | {ranks[:, j].mean():.3f} | {np.median(col):.4g} | {vs} |")
    if args.against is not None:
        stored: dict[str, Any] = {}
        for path in args.against:
            stored.update(json.loads(path.read_text())["studies"])
        others = [x for x in args.against_samplers.split(",") if x]
        lines += [
            "",
            f"Each variant ranked among the samplers stored in "
            f"{', '.join(f'`{p}`' for p in args.against)} "
            f"({', '.join(others)}), cell by cell, at {args.trials} trials:",
            "",
            "| variant | cells | variant's mean rank | " + " | ".join(others) + " |",
            "|---|---:|---:|" + "---:|" * len(others),
        ]
        for v in args.variants:
            mine, theirs, n = rank_against(results[v], stored, others, args.trials)
            cols = " | ".join(f"{theirs[x]:.2f}" for x in others)
            lines.append(f"| `{v}` | {n} | {mine:.2f} | {cols} |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
