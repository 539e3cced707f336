"""DQNSampler CPU time per trial against GPSampler and QLearningSampler.

Zero-cost objective on the 4- and 6-parameter grids of :mod:`benchmarks.overhead`
(ints, stepped floats, a log float, a log int and a categorical), in-memory
storage, ``study.ask``/``study.tell``; the CPU time spent inside the sampler's own
methods is measured with ``time.process_time`` by :class:`benchmarks.overhead.TimedSampler`,
with ``torch.set_num_threads(1)``.

DQNSampler and QLearningSampler run 100 and 1,000 trials; GPSampler's cost grows
with the history (it refits a Gaussian process every trial), so it runs only up to
``--gp-max`` trials (300 by default). Each sampler first runs a short warm-up study
so that one-time imports (``torch._dynamo`` on the first optimizer step, GPSampler's
SciPy/torch modules) are not charged to the timed runs; that one-time cost is
reported separately.

Run: ``python -m benchmarks.dqn_overhead`` (``--quick``: 100 trials only).
Writes ``benchmarks/results/dqn_overhead.md``.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.samplers import BaseSampler, GPSampler

from benchmarks.overhead import measure
from optuna_qlearn import QLearningSampler
from optuna_qlearn.dqn import DQNSampler

RESULTS = Path(__file__).resolve().parent / "results"

SAMPLERS: dict[str, Callable[[], BaseSampler]] = {
    "DQNSampler": lambda: DQNSampler(seed=0),
    "GPSampler": lambda: GPSampler(seed=0),
    "QLearningSampler": lambda: QLearningSampler(seed=0),
}


def warm_up(make: Callable[[], BaseSampler]) -> float:
    """Run 12 trials once and return their CPU seconds (one-time costs included)."""
    t0 = time.process_time()
    measure(make, 4, 12)
    return time.process_time() - t0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="100 trials only")
    parser.add_argument("--gp-max", type=int, default=300, help="largest GPSampler budget")
    parser.add_argument("--params", default="4,6", help="grid sizes (comma list)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    dims = [int(d) for d in args.params.split(",")]
    first_use = {name: warm_up(make) for name, make in SAMPLERS.items()}
    results: list[dict[str, Any]] = []
    for d in dims:
        budgets = {
            "DQNSampler": [100] if args.quick else [100, 1000],
            "QLearningSampler": [100] if args.quick else [100, 1000],
            "GPSampler": [100] if args.quick else sorted({100, args.gp_max}),
        }
        for name, make in SAMPLERS.items():
            for n in budgets[name]:
                r: dict[str, Any] = {**measure(make, d, n), "sampler": name}
                r.update(params=d, trials=n)
                results.append(r)
                print(
                    f"d={d} n={n:>5} {name:<17} {r['ms_per_trial']:9.3f} ms/trial "
                    f"(first 10%: {r['first10_ms']:.3f}, last 10%: {r['last10_ms']:.3f})",
                    flush=True,
                )
    lines = [
        "# DQNSampler overhead (CPU ms per trial, zero-cost objective)",
        "",
        "One run per cell, in-memory storage, `torch.set_num_threads(1)`, "
        f"`python -m benchmarks.dqn_overhead`; {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, Optuna {optuna.__version__}, "
        f"torch {torch.__version__}. Time inside the sampler's methods only "
        "(`time.process_time`), averaged over all trials of the run; first/last 10% show "
        f"the growth with the history. GPSampler only up to {args.gp_max} trials (it refits a "
        "Gaussian process every trial). All samplers at their defaults, `seed=0`.",
        "",
        "| params | trials | sampler | ms / trial | first 10% | last 10% |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['params']} | {r['trials']:,} | {r['sampler']} | {r['ms_per_trial']:.2f} "
            f"| {r['first10_ms']:.2f} | {r['last10_ms']:.2f} |"
        )
    lines += [
        "",
        "One-time cost in a fresh process (CPU seconds for a 12-trial warm-up study, "
        "imports included; not counted above):",
        "",
        *[f"- {name}: {sec:.2f} s" for name, sec in first_use.items()],
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dqn_overhead.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
