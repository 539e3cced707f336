"""Sampler CPU time per trial with a zero-cost objective.

Measures the time spent inside the sampler's own methods (search-space
inference, relative and independent sampling, before/after hooks) with
``time.process_time``, on a 4-parameter and a 6-parameter grid (in-memory
storage, ``study.ask``/``study.tell``), in one of two comparisons:

* ``--sampler qlearn`` (the default): QLearningSampler, RandomSampler and
  TPESampler at 100, 1,000 and 10,000 trials. Each configuration runs
  ``--repeats`` times (3 by default), the samplers interleaved so that a change of
  machine load hits them alike; the tables give the median over repeats of each
  number, and the ratios are taken per repeat before the median, so the two
  samplers of a ratio always ran side by side. Writes ``overhead.md`` and
  ``overhead.json``.
* ``--sampler dqn``: DQNSampler and QLearningSampler at 100 and 1,000 trials and
  GPSampler, whose cost grows with the history (it refits a Gaussian process every
  trial), up to ``--gp-max`` trials (300 by default); one run per cell unless
  ``--repeats`` says more, with ``torch.set_num_threads(1)``. Each sampler first runs
  a short warm-up study so that one-time imports (``torch._dynamo`` on the first
  optimizer step, GPSampler's SciPy/torch modules) are not charged to the timed
  runs; that one-time cost is reported separately. Writes ``overhead_dqn.md`` and
  ``overhead_dqn.json``.

Run: ``python -m benchmarks.overhead`` (``--quick`` for 100/1,000 trials only, with
``--sampler dqn`` 100 only; ``--variant max_walk=8`` times the sampler under test
with other settings, spelled as in :func:`benchmarks.samplers.parse_variant`).
QLearningSampler is timed with its defaults (the shipped learned policy) unless the
variant names another policy (``--variant policy=table`` times the tabular agent, with
the other settings of the variant).
Writes to ``benchmarks/results/`` or ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler, TPESampler
from optuna.trial import FrozenTrial, TrialState

from benchmarks.samplers import parse_variant, variant_sampler

RESULTS = Path(__file__).resolve().parent / "results"


class TimedSampler(BaseSampler):
    """Delegates to ``inner`` and accumulates the CPU seconds spent in it per trial.

    Used here and by :mod:`benchmarks.run` (the sampler CPU time of every study).

    Args:
        inner: The timed sampler.
    """

    def __init__(self, inner: BaseSampler) -> None:
        self.inner = inner
        self.per_trial: dict[int, float] = {}

    def _timed(self, number: int, fn: Callable[[], Any]) -> Any:
        t0 = time.process_time()
        try:
            return fn()
        finally:
            self.per_trial[number] = self.per_trial.get(number, 0.0) + time.process_time() - t0

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._timed(
            trial.number, lambda: self.inner.infer_relative_search_space(study, trial)
        )

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._timed(
            trial.number, lambda: self.inner.sample_relative(study, trial, search_space)
        )

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, name: str, dist: BaseDistribution
    ) -> Any:
        return self._timed(
            trial.number, lambda: self.inner.sample_independent(study, trial, name, dist)
        )

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._timed(trial.number, lambda: self.inner.before_trial(study, trial))

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Any,
    ) -> None:
        self._timed(trial.number, lambda: self.inner.after_trial(study, trial, state, values))

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


def grid_space(d: int) -> dict[str, BaseDistribution]:
    """A ``d``-parameter grid: ints, stepped floats, log floats and a categorical.

    Every grid has far more points than the largest budget (the 4-parameter one
    64 x 64 x 16 x 8 = 524,288 points after binning), so the benchmark measures
    the sampler's overhead, not what it does on an exhausted grid.
    """
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    kinds: list[BaseDistribution] = [
        IntDistribution(0, 200),
        FloatDistribution(-5.0, 5.0, step=0.1),
        FloatDistribution(1e-5, 1e-1, log=True),
        CategoricalDistribution(["a", "b", "c", "d", "e", "f", "g", "h"]),
        IntDistribution(1, 1024, log=True),
        FloatDistribution(0.0, 1.0, step=0.05),
    ]
    return {f"p{i}": kinds[i % len(kinds)] for i in range(d)}


def objective_value(params: dict[str, Any]) -> float:
    """A cheap deterministic value so that learning samplers have something to learn."""
    return float(sum((hash(repr(v)) % 1000) / 1000.0 for v in params.values()))


def measure(make: Callable[[], BaseSampler], d: int, n_trials: int) -> dict[str, float]:
    """Run ``n_trials`` ask/tell steps and summarize the sampler's CPU ms per trial."""
    timed = TimedSampler(make())
    study = optuna.create_study(sampler=timed)
    space = grid_space(d)
    totals = []
    for _ in range(n_trials):
        t0 = time.process_time()
        trial = study.ask(space)
        study.tell(trial, objective_value(trial.params))
        totals.append((time.process_time() - t0) * 1e3)
    costs = [timed.per_trial.get(i, 0.0) * 1e3 for i in range(n_trials)]
    tenth = max(1, n_trials // 10)
    return {
        "ms_per_trial": sum(costs) / n_trials,
        "first10_ms": sum(costs[:tenth]) / tenth,
        "last10_ms": sum(costs[-tenth:]) / tenth,
        "loop_ms_per_trial": sum(totals) / n_trials,
        "loop_first10_ms": sum(totals[:tenth]) / tenth,
        "loop_last10_ms": sum(totals[-tenth:]) / tenth,
    }


def warm_up(make: Callable[[], BaseSampler]) -> float:
    """Run 12 trials once and return their CPU seconds (one-time costs included)."""
    t0 = time.process_time()
    measure(make, 4, 12)
    return time.process_time() - t0


def _platform(torch_too: bool = False) -> str:
    text = (
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"Optuna {optuna.__version__}"
    )
    if torch_too:
        import torch

        text += f", torch {torch.__version__}"
    return text


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.overhead",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument(
        "--sampler",
        choices=("qlearn", "dqn"),
        default="qlearn",
        help="qlearn: QLearningSampler vs RandomSampler and TPESampler; "
        "dqn: DQNSampler vs GPSampler and QLearningSampler",
    )
    parser.add_argument(
        "--quick", action="store_true", help="100 and 1,000 trials only (--sampler dqn: 100 only)"
    )
    parser.add_argument(
        "--tpe-max",
        type=int,
        default=None,
        help="largest budget run for TPESampler (slow; default 1000)",
    )
    parser.add_argument(
        "--gp-max",
        type=int,
        default=None,
        help="with --sampler dqn: largest GPSampler budget (default 300)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="runs per configuration (default 3; --sampler dqn: 1)",
    )
    parser.add_argument("--params", default="4,6", help="grid sizes, a comma list (default 4,6)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory of the results")
    parser.add_argument(
        "--variant", default="default", help="settings of the sampler under test, e.g. max_walk=8"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the results table."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.sampler == "qlearn" and args.gp_max is not None:
        parser.error("--gp-max goes with --sampler dqn")
    if args.sampler == "dqn" and args.tpe_max is not None:
        parser.error("--tpe-max goes with --sampler qlearn")
    try:
        dims = [int(d) for d in args.params.split(",") if d.strip()]
    except ValueError:
        parser.error(f"--params must be a comma list of grid sizes, got {args.params!r}")
    for name, value in (("--params", min(dims, default=0)), ("--repeats", args.repeats),
                        ("--tpe-max", args.tpe_max), ("--gp-max", args.gp_max)):  # fmt: skip
        if value is not None and value < 1:
            parser.error(f"{name} must be positive, got {value}")
    try:
        variant_sampler(args.sampler, 0, args.variant)  # a bad variant fails before any run
    except (ValueError, TypeError) as err:
        parser.error(f"--variant {args.variant!r}: {err}")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if args.sampler == "dqn":
        return _dqn_main(args, dims)
    return _qlearn_main(args, dims)


def _qlearn_main(args: argparse.Namespace, dims: list[int]) -> int:
    # The sampler's own defaults (the learned policy), unless the variant picks a policy.
    named = "policy" in parse_variant(args.variant, "qlearn")
    default_policy: dict[str, Any] = {} if named else {"policy": "default"}
    samplers: dict[str, Callable[[], BaseSampler]] = {
        "QLearningSampler": lambda: variant_sampler("qlearn", 0, args.variant, **default_policy),
        "RandomSampler": lambda: RandomSampler(seed=0),
        "TPESampler": lambda: TPESampler(seed=0),
    }
    repeats = args.repeats or 3
    tpe_max = args.tpe_max or 1000
    budgets = [100, 1000] if args.quick else [100, 1000, 10000]
    runs: list[dict[str, Any]] = []
    for d in dims:
        for n in budgets:
            for rep in range(repeats):
                for name, make in samplers.items():
                    if name == "TPESampler" and n > tpe_max:
                        continue
                    r: dict[str, Any] = dict(measure(make, d, n))
                    r.update(sampler=name, params=d, trials=n, repeat=rep)
                    runs.append(r)
                    print(
                        f"d={d} n={n:>6} #{rep} {name:<17} {r['ms_per_trial']:8.3f} ms/trial "
                        f"(first 10%: {r['first10_ms']:.3f}, last 10%: {r['last10_ms']:.3f})",
                        flush=True,
                    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overhead.json").write_text(json.dumps(runs, indent=1))
    variant = "" if args.variant == "default" else f" --variant {args.variant}"
    lines = [
        "# Sampler overhead (CPU ms per trial, zero-cost objective)",
        "",
        f"Median of {repeats} runs per cell (samplers interleaved), in-memory storage, "
        f"`python -m benchmarks.overhead{variant}`; {_platform()}. TPESampler only up "
        f"to {tpe_max:,} trials (its cost grows with the history). *sampler*: CPU time "
        "inside the sampler's methods; *loop*: CPU time of the whole `study.ask` + "
        "`study.tell` step (what a user pays per trial). Ratios are computed per repeat "
        "(the two samplers ran side by side), then the median is taken; [min, max] over repeats.",
        "",
        "| params | trials | QL sampler ms | Random sampler ms | TPE sampler ms | QL / Random "
        "(sampler) | QL loop ms | Random loop ms | QL / Random (loop) "
        "| QL last10% / first10% (sampler) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(xs: list[float], fmt: str, spread: bool = False) -> str:
        text = format(statistics.median(xs), fmt)
        if spread and len(xs) > 1:
            text += f" [{format(min(xs), fmt)}, {format(max(xs), fmt)}]"
        return text

    for d in dims:
        for n in budgets:
            by: dict[str, list[dict[str, Any]]] = {}
            for r in runs:
                if r["params"] == d and r["trials"] == n:
                    by.setdefault(r["sampler"], []).append(r)
            ql, rnd = by["QLearningSampler"], by["RandomSampler"]
            tpe = by.get("TPESampler")
            tpe_ms = cell([r["ms_per_trial"] for r in tpe], ".3f") if tpe else "not run"
            ratio = [q["ms_per_trial"] / r["ms_per_trial"] for q, r in zip(ql, rnd)]
            loop_ratio = [q["loop_ms_per_trial"] / r["loop_ms_per_trial"] for q, r in zip(ql, rnd)]
            growth = [q["last10_ms"] / q["first10_ms"] for q in ql]
            lines.append(
                f"| {d} | {n:,} | {cell([r['ms_per_trial'] for r in ql], '.3f')} "
                f"| {cell([r['ms_per_trial'] for r in rnd], '.3f')} | {tpe_ms} "
                f"| {cell(ratio, '.2f', True)}x "
                f"| {cell([r['loop_ms_per_trial'] for r in ql], '.3f')} "
                f"| {cell([r['loop_ms_per_trial'] for r in rnd], '.3f')} "
                f"| {cell(loop_ratio, '.2f', True)}x "
                f"| {cell(growth, '.2f', True)}x |"
            )
    (args.out / "overhead.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _dqn_main(args: argparse.Namespace, dims: list[int]) -> int:
    import torch
    from optuna.samplers import GPSampler

    torch.set_num_threads(1)
    # The samplers' own defaults (the learned policy), unless the variant picks a policy.
    named = "policy" in parse_variant(args.variant, "dqn")
    default_policy: dict[str, Any] = {} if named else {"policy": "default"}
    samplers: dict[str, Callable[[], BaseSampler]] = {
        "DQNSampler": lambda: variant_sampler("dqn", 0, args.variant, **default_policy),
        "GPSampler": lambda: GPSampler(seed=0),
        "QLearningSampler": lambda: variant_sampler("qlearn", 0, policy="default"),
    }
    repeats = args.repeats or 1
    gp_max = args.gp_max or 300
    first_use = {name: warm_up(make) for name, make in samplers.items()}
    runs: list[dict[str, Any]] = []
    for d in dims:
        budgets = {
            "DQNSampler": [100] if args.quick else [100, 1000],
            "QLearningSampler": [100] if args.quick else [100, 1000],
            "GPSampler": [100] if args.quick else sorted({100, gp_max}),
        }
        for name, make in samplers.items():
            for n in budgets[name]:
                for rep in range(repeats):
                    r: dict[str, Any] = {**measure(make, d, n), "sampler": name}
                    r.update(params=d, trials=n, repeat=rep)
                    runs.append(r)
                    print(
                        f"d={d} n={n:>5} #{rep} {name:<17} {r['ms_per_trial']:9.3f} ms/trial "
                        f"(first 10%: {r['first10_ms']:.3f}, last 10%: {r['last10_ms']:.3f})",
                        flush=True,
                    )
    variant = "" if args.variant == "default" else f" --variant {args.variant}"
    runs_text = "One run per cell" if repeats == 1 else f"Median of {repeats} runs per cell"
    lines = [
        "# DQNSampler overhead (CPU ms per trial, zero-cost objective)",
        "",
        f"{runs_text}, in-memory storage, `torch.set_num_threads(1)`, "
        f"`python -m benchmarks.overhead --sampler dqn{variant}`; {_platform(True)}. Time "
        "inside the sampler's methods only (`time.process_time`), averaged over all trials of "
        "the run; first/last 10% show the growth with the history. GPSampler only up to "
        f"{gp_max} trials (it refits a Gaussian process every trial). All samplers at their "
        "defaults, `seed=0`.",
        "",
        "| params | trials | sampler | ms / trial | first 10% | last 10% |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    cells = dict.fromkeys((r["params"], r["trials"], r["sampler"]) for r in runs)
    for d, n, name in cells:
        mine = [r for r in runs if (r["params"], r["trials"], r["sampler"]) == (d, n, name)]
        ms, first, last = (
            statistics.median(r[k] for r in mine)
            for k in ("ms_per_trial", "first10_ms", "last10_ms")
        )
        lines.append(f"| {d} | {n:,} | {name} | {ms:.2f} | {first:.2f} | {last:.2f} |")
    lines += [
        "",
        "One-time cost in a fresh process (CPU seconds for a 12-trial warm-up study, "
        "imports included; not counted above):",
        "",
        *[f"- {name}: {sec:.2f} s" for name, sec in first_use.items()],
        "",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overhead_dqn.json").write_text(json.dumps(runs, indent=1))
    (args.out / "overhead_dqn.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
