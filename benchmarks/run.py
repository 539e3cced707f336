"""Run samplers x problems x seeds in worker processes, store every study, write the report.

Usage::

    python -m benchmarks.run --quick                       # < 5 minutes on 2 cores
    python -m benchmarks.run --trials 100 --seeds 10 --workers 2
    python -m benchmarks.run --problems hpobench --samplers qlearn,tpe,random --seeds 0-4

A run writes its report to its own folder: ``build/bench/quick`` with ``--quick``,
``build/bench/report`` otherwise, or the folder named by ``--out``. The committed
report in ``benchmarks/results/suite`` is rewritten only by the explicit
``python -m benchmarks.report --canonical`` (see :mod:`benchmarks.report`).

One study is one (problem, sampler, seed), named ``problem:sampler:seed``; the
reported budgets (50, 100, 200 trials) are prefixes of it, which is exact for
every sampler here since none of them knows the trial budget in advance. A
worker optimizes in memory (so storage latency does not pollute the sampler's
CPU time) and returns the trials; the main process alone writes them to the
storage (a journal file, ``build/bench/bench.journal`` by default, or any RDB
URL such as ``sqlite:///bench.db``), where ``optuna-dashboard
build/bench/bench.journal`` browses it (a journal append costs ~1 ms per trial,
SQLite's ORM ~7 ms). Trial system attributes longer than 2,000 characters
(CMA-ES's pickled optimizer state) are not stored. Re-running the same command
skips the studies already complete with the same code version (see
:func:`benchmarks.samplers.sampler_version`); asking for more trials than stored
extends the stored study.

Each study's summary (best-so-far regret curve, unique configurations, sampler
CPU time per trial) is saved in its user attribute ``bench``, which
:mod:`benchmarks.report` turns into tables, plots and JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import multiprocessing
import os
import sqlite3
import sys
import time
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Attribute holding a study's summary.
KEY = "bench"
#: Longer trial system attributes (CMA-ES's pickled optimizer state) are not stored.
MAX_SYSTEM_ATTR = 2000
DEFAULT_STORAGE = "journal:build/bench/bench.journal"
#: Report folder of a run (``--out`` names another one).
DEFAULT_OUT = "build/bench/report"
#: Report folder of a ``--quick`` run.
QUICK_OUT = "build/bench/quick"
#: The committed report, written only by ``python -m benchmarks.report --canonical``.
CANONICAL_OUT = Path(__file__).resolve().parent / "results" / "suite"
QUICK_SAMPLERS = ("qlearn", "qlearn-seed", "tpe", "random")


@dataclass(frozen=True)
class Task:
    """One study to run (or extend)."""

    problem: str
    sampler: str
    seed: int
    trials: int
    version: str
    previous: tuple[Any, ...] = ()  # stored trials of the same version, to extend
    previous_ms: tuple[float, ...] = ()

    @property
    def study_name(self) -> str:
        """The study's name in the storage."""
        return study_name(self.problem, self.sampler, self.seed)


def study_name(problem: str, sampler: str, seed: int) -> str:
    """``problem:sampler:seed``."""
    return f"{problem}:{sampler}:{seed}"


# ----------------------------------------------------------------------------- storage
def open_storage(url: str) -> Any:
    """An Optuna storage for ``url``: an RDB URL, or ``journal:PATH`` for a journal file.

    SQLite connections wait up to 10 minutes for a lock, so a few workers can write.
    """
    import optuna

    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        path = url[len("journal:") :]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(path))
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        Path(path).parent.mkdir(parents=True, exist_ok=True)

        def connect() -> sqlite3.Connection:
            # WAL without fsync per commit: copying a study is ~100 small commits, and a
            # lost study after a power cut is simply re-run.
            conn = sqlite3.connect(path, timeout=600, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")
            return conn

        return optuna.storages.RDBStorage(url, engine_kwargs={"creator": connect})
    return optuna.storages.RDBStorage(url)


def stored_summaries(storage: Any) -> dict[str, dict[str, Any]]:
    """Study name -> its ``bench`` summary, for every benchmark study in ``storage``."""
    out = {}
    for s in storage.get_all_studies():
        summary = s.user_attrs.get(KEY)
        if isinstance(summary, dict):
            out[s.study_name] = summary
    return out


# ----------------------------------------------------------------------------- worker
def init_worker() -> None:
    """Set up a worker process (one thread, quiet Optuna); also used by the experiments."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="optuna")
    try:
        import torch
    except ImportError:  # torch is only needed by GPSampler / DQNSampler
        return
    torch.set_num_threads(1)


def summarize(
    problem_name: str, trials: Sequence[Any], seed: int
) -> tuple[list[float], list[int], int]:
    """Best-so-far regret curve and cumulative unique configurations of a study.

    The incumbent is the trial with the best *observed* value so far; its regret
    is its true (mean) value minus the grid optimum.

    Returns:
        ``(regret, unique, n_failed)``, one entry per trial in number order.
    """
    from optuna.trial import TrialState

    from benchmarks.problems import get_problem

    problem = get_problem(problem_name)
    opt = problem.optimum
    best_obs = float("inf")
    incumbent = float("nan")
    seen: set[tuple[int, ...]] = set()
    regret, unique, failed = [], [], 0
    for t in sorted(trials, key=lambda t: t.number):
        if t.state == TrialState.COMPLETE and t.value is not None:
            idx = problem.index_of(t.params)
            seen.add(idx)
            if t.value < best_obs:
                best_obs = float(t.value)
                incumbent = problem.true_value(idx) - opt
        else:
            failed += 1
        regret.append(max(0.0, incumbent) if incumbent == incumbent else float("nan"))
        unique.append(len(seen))
    return regret, unique, failed


def _slim(trial: Any) -> Any:
    """``trial`` without system attributes over :data:`MAX_SYSTEM_ATTR` characters."""
    import json

    big = [k for k, v in trial.system_attrs.items() if len(json.dumps(v)) > MAX_SYSTEM_ATTR]
    if not big:
        return trial
    trial = copy.copy(trial)
    trial.system_attrs = {k: v for k, v in trial.system_attrs.items() if k not in big}
    return trial


def run_task(task: Task) -> tuple[dict[str, Any], list[Any]]:
    """Run one study in memory (continuing ``task.previous``).

    Returns:
        ``(summary, trials)``: the study's summary and its trials, slimmed; when the
        sampler refuses the problem (for example the seed design's ``3**d`` joint
        moves above 8 parameters), a summary with an ``error`` and no trials.
    """
    try:
        return _run_task(task)
    except Exception as err:
        return {
            "problem": task.problem,
            "sampler": task.sampler,
            "seed": task.seed,
            "error": f"{type(err).__name__}: {err}",
        }, []


def _run_task(task: Task) -> tuple[dict[str, Any], list[Any]]:
    import numpy as np
    import optuna

    from benchmarks.overhead import TimedSampler
    from benchmarks.problems import get_problem
    from benchmarks.samplers import make_sampler

    problem = get_problem(task.problem)
    _ = problem.table  # build outside the timed region
    timed = TimedSampler(make_sampler(task.sampler, task.seed))
    study = optuna.create_study(sampler=timed, direction="minimize")
    study.add_trials(task.previous)
    salt = zlib.crc32(task.problem.encode())

    def objective(trial: optuna.Trial) -> float:
        idx = problem.suggest(trial)
        return problem.observe(idx, np.random.default_rng([salt, task.seed, trial.number]))

    n_before = len(task.previous)
    wall0 = time.perf_counter()
    study.optimize(objective, n_trials=max(0, task.trials - n_before))
    wall = time.perf_counter() - wall0
    trials = study.get_trials(deepcopy=False)
    regret, unique, failed = summarize(task.problem, trials, task.seed)
    ms = list(task.previous_ms[:n_before]) + [
        round(1000.0 * timed.per_trial.get(t.number, 0.0), 4) for t in trials[n_before:]
    ]
    summary = {
        "problem": task.problem,
        "family": problem.family,
        "n_params": len(problem.axes),
        "sampler": task.sampler,
        "seed": task.seed,
        "version": task.version,
        "n_trials": len(trials),
        "optimum": problem.optimum,
        "regret": regret,
        "unique": unique,
        "sampler_ms": ms,
        "failed": failed,
        "wall_s": round(wall, 3),
    }
    return summary, [_slim(t) for t in trials]


def store(storage: Any, summary: dict[str, Any], trials: Sequence[Any]) -> None:
    """Write one finished study (replacing a stored one of the same name)."""
    import optuna

    name = study_name(summary["problem"], summary["sampler"], summary["seed"])
    with contextlib.suppress(KeyError):
        optuna.delete_study(study_name=name, storage=storage)
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize")
    study.add_trials(trials)
    study.set_user_attr(KEY, summary)


# ----------------------------------------------------------------------------- planning
def parse_seeds(text: str) -> list[int]:
    """Seeds from the command line: ``"10"`` -> 0..9, ``"3-7"`` -> 3..7, ``"0,4,9"`` -> those.

    The one grammar of ``--seeds`` for the harness and the experiments.

    Raises:
        ValueError: For anything else, or when it names no seed.
    """
    try:
        if "," in text:
            seeds = sorted({int(s) for s in text.split(",") if s.strip()})
        elif "-" in text.strip("-"):
            lo, hi = text.split("-")
            seeds = list(range(int(lo), int(hi) + 1))
        else:
            seeds = list(range(int(text)))
    except ValueError as err:
        raise ValueError(f"--seeds must look like 10, 3-7 or 0,4,9; got {text!r}.") from err
    if not seeds:
        raise ValueError(f"--seeds {text!r} names no seed.")
    return seeds


def select(
    text: str | None,
    available: Sequence[str],
    default: Sequence[str],
    what: str,
    prefix: bool = False,
) -> list[str]:
    """Resolve a comma list of names (or, with ``prefix``, families), ``suite`` or ``all``.

    With ``prefix`` a token also selects every name starting with ``token-``
    (``hpobench`` selects ``hpobench-*``; noisy problems are selected only by
    tokens containing ``noisy``).

    Raises:
        ValueError: If a token matches nothing.
    """
    if not text:
        return list(default)
    out: list[str] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        if token == "all":
            matched = list(available)
        elif token in ("suite", "default"):
            matched = list(default)
        else:
            matched = [
                n
                for n in available
                if n == token
                or (prefix and n.startswith(token + "-") and ("noisy" in token or "noisy" not in n))
            ]
        if not matched:
            raise ValueError(f"No {what} matches {token!r}. Available: {', '.join(available)}.")
        out += [m for m in matched if m not in out]
    return out


def plan(
    problems: Sequence[str],
    samplers: Sequence[str],
    seeds: Sequence[int],
    trials: int,
    storage: Any,
    stored: dict[str, dict[str, Any]],
) -> tuple[list[Task], int]:
    """The tasks still to run, seed-major (so an interrupted run covers all problems).

    Returns:
        ``(tasks, n_skipped)``.
    """
    from benchmarks.samplers import sampler_version

    versions = {s: sampler_version(s) for s in samplers}
    tasks, skipped = [], 0
    for seed in seeds:
        for problem in problems:
            for sampler in samplers:
                name = study_name(problem, sampler, seed)
                old = stored.get(name)
                version = versions[sampler]
                same = old is not None and old.get("version") == version
                if same and old is not None and int(old.get("n_trials", 0)) >= trials:
                    skipped += 1
                    continue
                previous: tuple[Any, ...] = ()
                previous_ms: tuple[float, ...] = ()
                if same and old is not None:
                    sid = storage.get_study_id_from_name(name)
                    previous = tuple(storage.get_all_trials(sid, deepcopy=False))
                    previous_ms = tuple(old.get("sampler_ms", ()))
                tasks.append(Task(problem, sampler, seed, trials, version, previous, previous_ms))
    return tasks, skipped


def execute(
    tasks: Sequence[Task], workers: int, storage: Any, progress: bool = True
) -> list[dict[str, Any]]:
    """Run ``tasks`` in ``workers`` processes (in this process when 1); this process
    is the only one writing to ``storage``."""
    from tqdm import tqdm

    results = []
    bar = tqdm(total=len(tasks), disable=not progress, unit="study", file=sys.stderr)

    errors: dict[str, int] = {}

    def done(summary: dict[str, Any], trials: list[Any]) -> None:
        if "error" in summary:
            if summary["error"] not in errors:
                print(
                    f"\n{summary['problem']}:{summary['sampler']} failed (not stored): "
                    f"{summary['error']}",
                    file=sys.stderr,
                )
            errors[summary["error"]] = errors.get(summary["error"], 0) + 1
        else:
            store(storage, summary, trials)
        results.append(summary)
        bar.set_postfix_str(
            study_name(summary["problem"], summary["sampler"], summary["seed"]), refresh=False
        )
        bar.update()

    if workers <= 1:
        init_worker()
        for task in tasks:
            done(*run_task(task))
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers, initializer=init_worker) as pool:
            for summary, trials in pool.imap_unordered(run_task, tasks):
                done(summary, trials)
    bar.close()
    return results


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Benchmark QLearningSampler against Optuna's samplers on grid problems "
        "with exact optima; store every study and write tables, plots and JSON.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"small preset: 4 problems, samplers {','.join(QUICK_SAMPLERS)}, "
        "3 seeds, 50 trials (under 5 minutes on 2 cores)",
    )
    p.add_argument(
        "--problems",
        help="comma list of problems or families (hpobench, synthetic "
        "names, bbob-mixint, ...), 'suite' (default) or 'all'",
    )
    p.add_argument("--samplers", help="comma list of samplers; default: the main set")
    p.add_argument("--seeds", default=None, help="N (0..N-1), A-B or a comma list; default 10")
    p.add_argument("--trials", type=int, default=None, help="trials per study; default 100")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"Optuna storage URL or journal:PATH (default {DEFAULT_STORAGE})",
    )
    p.add_argument(
        "--out",
        default=None,
        help=f"report directory (default {DEFAULT_OUT}, "
        f"with --quick {QUICK_OUT}; the committed report is rewritten only by "
        "python -m benchmarks.report --canonical)",
    )
    p.add_argument("--budgets", default="50,100,200", help="budgets reported (default 50,100,200)")
    p.add_argument("--no-report", action="store_true", help="only run the studies")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    return p  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks.run``."""
    args = build_parser().parse_args(argv)
    from benchmarks.problems import PROBLEMS, QUICK, SUITE
    from benchmarks.samplers import MAIN, SAMPLERS

    try:
        problems = select(args.problems, list(PROBLEMS), QUICK if args.quick else SUITE, "problem",
                          prefix=True)  # fmt: skip
        samplers = select(args.samplers, list(SAMPLERS), QUICK_SAMPLERS if args.quick else MAIN,
                          "sampler")  # fmt: skip
        seeds = parse_seeds(args.seeds or ("3" if args.quick else "10"))
        budgets = sorted({int(b) for b in args.budgets.split(",") if b.strip()})
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    trials = args.trials or (50 if args.quick else 100)
    if trials < 1 or args.workers < 1 or not budgets or budgets[0] < 1:
        print("error: --trials, --workers and --budgets must be positive.", file=sys.stderr)
        return 2
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(args.storage)
    tasks, skipped = plan(problems, samplers, seeds, trials, storage, stored_summaries(storage))
    print(
        f"{len(problems)} problems x {len(samplers)} samplers x {len(seeds)} seeds, "
        f"{trials} trials: {len(tasks)} studies to run, {skipped} already complete "
        f"(storage {args.storage}).",
        file=sys.stderr,
    )
    if args.dry_run:
        for t in tasks:
            print(t.study_name, f"extend from {len(t.previous)}" if t.previous else "")
        return 0
    t0 = time.perf_counter()
    execute(tasks, args.workers, storage, progress=not args.no_progress)
    print(f"ran {len(tasks)} studies in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if not args.no_report:
        from benchmarks.report import write_report

        out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
        paths = write_report(
            storage, out, problems=problems, samplers=samplers, seeds=seeds,
            budgets=[b for b in budgets if b <= trials] or [trials],
        )  # fmt: skip
        for path in paths:
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
