"""Shared helpers of the learned-policy experiment: the problem list, seeds, paths."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Where results are written.
RESULTS = Path(__file__).resolve().parent / "results"

#: Datasets reserved as held-out test tasks (issue 14): never run here.
RESERVED = ("credit_g", "kc1", "protein_structure", "slice_localization", "cifar100", "imagenet")


def suite_problems() -> list[str]:
    """The default suite of ``benchmarks.problems`` (19 problems, all offline).

    Raises:
        RuntimeError: If a reserved dataset ever appears in it.
    """
    from benchmarks.problems import SUITE

    names = list(SUITE)
    for name in names:
        if any(r in name for r in RESERVED) and not name.startswith("nasbench201-cifar10"):
            raise RuntimeError(f"Problem {name!r} uses a reserved dataset.")
        if name.startswith("nasbench201-") and name != "nasbench201-cifar10":
            raise RuntimeError(f"Problem {name!r} uses a reserved dataset.")
    return names


def parse_seeds(text: str) -> list[int]:
    """The harness's ``--seeds`` grammar (``benchmarks.run.parse_seeds``)."""
    from benchmarks.run import parse_seeds as harness_parse_seeds

    return harness_parse_seeds(text)


def write_curves(path: Path, trials: int, curves: dict[str, Any]) -> None:
    """Write regret curves ``{method: {problem: {seed: [...]}}}`` as the scripts read them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"trials": trials, "curves": curves}))
    print(f"wrote {path}")


def harness_curves(
    sampler: str, problems: Sequence[str], seeds: Sequence[int], trials: int, label: str = ""
) -> dict[str, dict[str, list[float]]]:
    """Regret curves ``{problem: {seed: [...]}}`` of a sampler of
    ``benchmarks.samplers.SAMPLERS``, each study run by ``benchmarks.run.run_task``.

    Raises:
        RuntimeError: If a study fails.
    """
    from benchmarks.run import Task, init_worker, run_task

    init_worker()  # one torch thread (GPSampler, DQNSampler), quiet Optuna, as the harness
    label = label or sampler
    out: dict[str, dict[str, list[float]]] = {}
    for problem in problems:
        t0 = time.perf_counter()
        for seed in seeds:
            summary, _ = run_task(Task(problem, sampler, seed, trials, "experiment"))
            if "error" in summary:
                raise RuntimeError(f"{label} on {problem}: {summary['error']}")
            out.setdefault(problem, {})[str(seed)] = [round(r, 10) for r in summary["regret"]]
        print(f"{label:12s} {problem:34s} {time.perf_counter() - t0:6.1f}s", flush=True)
    return out
