"""Sampler CPU time per trial with a zero-cost objective.

Measures the time spent inside the sampler's own methods (search-space
inference, relative and independent sampling, before/after hooks) with
``time.process_time``, for QLearningSampler, RandomSampler and TPESampler at
100, 1,000 and 10,000 trials on a 4-parameter and a 6-parameter grid
(in-memory storage, ``study.ask``/``study.tell``).

Each configuration runs ``--repeats`` times (3 by default), the samplers
interleaved so that a change of machine load hits them alike; the tables give
the median over repeats of each number, and the ratios are taken per repeat
before the median, so the two samplers of a ratio always ran side by side.

Run: ``python -m benchmarks.overhead`` (``--quick`` for 100/1,000 only;
``--variant max_walk=8`` times QLearningSampler with other
:class:`~optuna_qlearn._core.agent.AgentConfig` settings, as ``benchmarks.agent_variants``
spells them).
Writes ``benchmarks/results/overhead.md`` and ``overhead.json``.
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

from benchmarks.agent_variants import parse_variant
from optuna_qlearn import QLearningSampler

RESULTS = Path(__file__).resolve().parent / "results"


class TimedSampler(BaseSampler):
    """Delegates to ``inner`` and accumulates the CPU seconds spent in it per trial."""

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


SAMPLERS: dict[str, Callable[[], BaseSampler]] = {
    "QLearningSampler": lambda: QLearningSampler(seed=0),
    "RandomSampler": lambda: RandomSampler(seed=0),
    "TPESampler": lambda: TPESampler(seed=0),
}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the results table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 trials only")
    parser.add_argument(
        "--tpe-max", type=int, default=1000, help="largest budget run for TPESampler (slow)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory of the results")
    parser.add_argument(
        "--variant", default="default", help="QLearningSampler's AgentConfig, e.g. max_walk=8"
    )
    args = parser.parse_args(argv)
    config = parse_variant(args.variant)
    samplers = {
        **SAMPLERS,
        "QLearningSampler": lambda: QLearningSampler(seed=0, **config),
    }
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    budgets = [100, 1000] if args.quick else [100, 1000, 10000]
    runs: list[dict[str, Any]] = []
    for d in (4, 6):
        for n in budgets:
            for rep in range(args.repeats):
                for name, make in samplers.items():
                    if name == "TPESampler" and n > args.tpe_max:
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
        f"Median of {args.repeats} runs per cell (samplers interleaved), in-memory storage, "
        f"`python -m benchmarks.overhead{variant}`; "
        f"{platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, Optuna {optuna.__version__}. TPESampler only up "
        f"to {args.tpe_max:,} trials (its cost grows with the history). *sampler*: CPU time "
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

    for d in (4, 6):
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


if __name__ == "__main__":
    raise SystemExit(main())
