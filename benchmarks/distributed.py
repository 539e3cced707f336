"""Throughput of many workers sharing one study on PostgreSQL: QLearningSampler vs RandomSampler.

Usage::

    python -m benchmarks.distributed                         # 1, 2, 4, 8 workers, 3 repeats
    python -m benchmarks.distributed --workers 1,4 --repeats 1 --trials 100
    python -m benchmarks.distributed --url postgresql+psycopg2://user@host/db

Each configuration (sampler, number of workers, repeat) is one fresh study on the
PostgreSQL database, created once before its workers start. The workers are
separate processes (``multiprocessing`` spawn) that each open their own
``RDBStorage`` and run the same objective -- three parameters and a fixed
``--objective-ms`` sleep, standing in for a real evaluation -- until the study
holds ``--trials`` trials (``MaxTrialsCallback``; up to ``workers - 1`` more can
start at the end). Throughput is finished trials divided by the span from the
first trial's start to the last trial's completion, both read from storage, so
process start-up is not counted. The ideal is ``workers / objective time``.

Also reported: *repeated points*, trials whose parameters an earlier trial of the
same study already had (work wasted; QLearningSampler's grid walk should never
repeat a point, concurrent workers included), and *forked episodes*, pairs of
QLearningSampler trials that continued the same episode head (two workers deciding
at the same instant). The table goes to ``benchmarks/results/distributed.md``, the
raw numbers to ``distributed.json``; the studies are deleted unless ``--keep``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import platform
import statistics
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import MaxTrialsCallback
from optuna.trial import Trial, TrialState

from optuna_qlearn import QLearningSampler
from optuna_qlearn._replay import KEY_RECORD

DEFAULT_URL = os.environ.get(
    "OPTUNA_QLEARN_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1/test"
)
RESULTS = Path(__file__).resolve().parent / "results"
SAMPLERS = ("qlearn", "random")


def make_sampler(name: str, seed: int) -> BaseSampler:
    """The sampler a worker uses (each worker its own seed)."""
    if name == "qlearn":
        return QLearningSampler(seed=seed)
    if name == "random":
        return RandomSampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")


def objective_factory(objective_ms: float) -> Any:
    """Three parameters and a fixed sleep of ``objective_ms`` milliseconds."""

    def objective(trial: Trial) -> float:
        x = trial.suggest_float("x", -4.0, 4.0)
        y = trial.suggest_int("y", 0, 15)
        c = trial.suggest_categorical("c", ["a", "b", "c", "d"])
        time.sleep(objective_ms / 1000.0)
        return (x - 1.0) ** 2 + 0.1 * (y - 7) ** 2 + "abcd".index(str(c)) * 0.3

    return objective


def worker(
    url: str,
    study_name: str,
    sampler_name: str,
    seed: int,
    n_trials: int,
    objective_ms: float,
    start_at: float,
) -> None:
    """One worker process: load the shared study and optimize until it is full."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(url)
    study = optuna.load_study(
        study_name=study_name, storage=storage, sampler=make_sampler(sampler_name, seed)
    )
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    cpu = time.process_time()
    study.optimize(
        objective_factory(objective_ms),
        callbacks=[MaxTrialsCallback(n_trials, states=None)],
    )
    # CPU seconds this worker spent in Optuna + sampler + storage client (sleep excluded).
    study.set_user_attr(f"cpu_s:{seed}", time.process_time() - cpu)


@dataclass
class Run:
    """One configuration's measurement."""

    sampler: str
    workers: int
    repeat: int
    trials: int
    failed: int
    span_s: float
    trials_per_s: float
    ideal_per_s: float
    cpu_ms_per_trial: float
    repeated_points: int
    forked_episodes: int


def measure(
    url: str, sampler_name: str, n_workers: int, repeat: int, args: argparse.Namespace
) -> Run:
    """Run one study with ``n_workers`` processes and read the timings from storage."""
    name = f"bench-distributed-{sampler_name}-{n_workers}-{uuid.uuid4().hex[:8]}"
    storage = optuna.storages.RDBStorage(url)
    optuna.create_study(study_name=name, storage=storage)  # once, before the workers
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 2.0 + 0.5 * n_workers  # after every worker has imported
    common = (args.trials, args.objective_ms, start_at)
    procs = [
        ctx.Process(target=worker, args=(url, name, sampler_name, 1000 * repeat + i, *common))
        for i in range(n_workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    bad = [p.exitcode for p in procs if p.exitcode != 0]
    if bad:
        raise RuntimeError(f"{len(bad)} worker(s) of {name} failed (exit codes {bad})")

    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state.is_finished()]
    starts = [t.datetime_start for t in finished if t.datetime_start is not None]
    ends = [t.datetime_complete for t in finished if t.datetime_complete is not None]
    span = (max(ends) - min(starts)).total_seconds()
    seen: set[tuple[Any, ...]] = set()
    repeated = 0
    for t in finished:
        key = tuple(sorted(t.params.items()))
        repeated += key in seen
        seen.add(key)
    parents = [
        t.system_attrs[KEY_RECORD].get("parent")
        for t in trials
        if isinstance(t.system_attrs.get(KEY_RECORD), dict)
    ]
    forked = sum(1 for a, b in itertools.combinations(parents, 2) if a is not None and a == b)
    cpu_s = sum(v for k, v in study.user_attrs.items() if k.startswith("cpu_s:"))
    if not args.keep:
        optuna.delete_study(study_name=name, storage=storage)
    return Run(
        sampler=sampler_name,
        workers=n_workers,
        repeat=repeat,
        trials=len(finished),
        failed=sum(t.state == TrialState.FAIL for t in finished),
        span_s=span,
        trials_per_s=len(finished) / span,
        ideal_per_s=n_workers * 1000.0 / args.objective_ms,
        cpu_ms_per_trial=1000.0 * cpu_s / len(finished),
        repeated_points=repeated,
        forked_episodes=forked,
    )


def _median_iqr(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    q = statistics.quantiles(values, n=4, method="inclusive")
    return f"{statistics.median(values):.1f} [{q[0]:.1f}, {q[2]:.1f}]"


def report(runs: list[Run], args: argparse.Namespace, load: tuple[float, float]) -> str:
    """The Markdown table: throughput per sampler and worker count, median [IQR]."""
    workers = sorted({r.workers for r in runs})
    samplers = [s for s in SAMPLERS if any(r.sampler == s for r in runs)]
    n_rep = max(r.repeat for r in runs) + 1
    lines = [
        "# Many workers, one study: throughput on PostgreSQL",
        "",
        f"`python -m benchmarks.distributed --workers {args.workers} --trials {args.trials} "
        f"--repeats {args.repeats} --objective-ms {args.objective_ms:g}`",
        "",
        f"Objective: three parameters and a fixed {args.objective_ms:g} ms sleep. "
        f"{args.trials} trials per study, {n_rep} repeat(s) per cell; trials per second is "
        "the median [IQR] over repeats of finished trials / (last completion - first start).",
        f"Machine: {os.cpu_count()} CPU cores ({platform.machine()}), PostgreSQL on loopback; "
        f"1-minute load average {load[0]:.1f} before the run, {load[1]:.1f} after it.",
        "",
        "| workers | ideal/s | "
        + " | ".join(f"{s} trials/s" for s in samplers)
        + " | "
        + " | ".join(f"{s} efficiency" for s in samplers)
        + " | "
        + " | ".join(f"{s} CPU ms/trial" for s in samplers)
        + " | qlearn repeated points "
        "| qlearn forked episodes |",
        "|---:|---:|" + "---:|" * (3 * len(samplers)) + "---:|---:|",
    ]
    for w in workers:
        cells = [str(w), f"{w * 1000.0 / args.objective_ms:.0f}"]
        effs = []
        for s in samplers:
            tps = [r.trials_per_s for r in runs if r.sampler == s and r.workers == w]
            cells.append(_median_iqr(tps))
            effs.append(f"{100 * statistics.median(tps) / (w * 1000.0 / args.objective_ms):.0f}%")
        cells += effs
        for s in samplers:
            cpu = [r.cpu_ms_per_trial for r in runs if r.sampler == s and r.workers == w]
            cells.append(_median_iqr(cpu))
        q = [r for r in runs if r.sampler == "qlearn" and r.workers == w]
        cells.append(", ".join(str(r.repeated_points) for r in q) or "-")
        cells.append(", ".join(str(r.forked_episodes) for r in q) or "-")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Efficiency: median trials/s over the ideal (every worker always evaluating). "
        "CPU ms/trial: CPU time of the worker processes (Optuna, sampler, database client; "
        "the sleep excluded; PostgreSQL's own CPU not counted) per finished trial. "
        "Repeated points and forked episodes are listed per repeat.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="SQLAlchemy URL of PostgreSQL")
    parser.add_argument("--workers", default="1,2,4,8", help="comma-separated worker counts")
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--trials", type=int, default=200, help="trials per study")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--objective-ms", type=float, default=50.0)
    parser.add_argument("--keep", action="store_true", help="keep the studies")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    worker_counts = [int(w) for w in args.workers.split(",")]
    samplers = args.samplers.split(",")
    for s in samplers:
        make_sampler(s, 0)  # validate names before any work
    if args.trials < 2 or args.repeats < 1 or min(worker_counts) < 1:
        parser.error("need --trials >= 2, --repeats >= 1 and worker counts >= 1")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.storages.RDBStorage(args.url)  # creates the schema once, before any worker

    load_before = os.getloadavg()[0]
    runs: list[Run] = []
    for repeat in range(args.repeats):
        for n_workers in worker_counts:
            for s in samplers:
                run = measure(args.url, s, n_workers, repeat, args)
                runs.append(run)
                print(
                    f"{s:>7} workers={n_workers} repeat={repeat}: {run.trials} trials in "
                    f"{run.span_s:.1f} s = {run.trials_per_s:.1f} trials/s "
                    f"(ideal {run.ideal_per_s:.0f}), CPU {run.cpu_ms_per_trial:.0f} ms/trial, "
                    f"repeated points {run.repeated_points}, "
                    f"forked episodes {run.forked_episodes}",
                    flush=True,
                )
    table = report(runs, args, (load_before, os.getloadavg()[0]))
    print()
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "distributed.md").write_text(table)
    (args.out / "distributed.json").write_text(
        json.dumps([asdict(r) for r in runs], indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
