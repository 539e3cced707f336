"""Run QLearningSampler with given policy files through the benchmark harness.

Each study runs in memory through ``benchmarks.run.run_task`` (the harness's own
objective, noise, seeding and regret bookkeeping), so the curves compare directly
with ``baselines``' curves of Optuna's samplers. ``--policy NAME=SPEC`` runs one
sampler on the whole suite; ``SPEC`` is a policy file, ``default``, ``none`` (the
untrained network) or ``table``, optionally followed by ``,dqn`` (DQNSampler instead
of QLearningSampler) and by settings such as ``,alpha=0`` (in-study learning off):

    python -m experiments.learned_policy.harness_eval --seeds 0-9 --trials 200 \
        --policy learned=default --policy untrained=none,alpha=0 \
        --policy dqn=default,dqn --out results/harness.json
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from experiments.learned_policy.common import (
    harness_curves,
    parse_seeds,
    suite_problems,
    write_curves,
)


def _factory(spec: str) -> Callable[[int], Any]:
    """``POLICY[,dqn][,setting=value...]`` -> ``seed -> QLearningSampler`` (or
    ``DQNSampler`` with ``dqn``); the settings are the sampler's keyword arguments, in
    the grammar of ``benchmarks.samplers.parse_variant``."""
    from benchmarks.samplers import parse_variant
    from optuna_qlearn import QLearningSampler

    head, *options = spec.split(",")
    kind = "dqn" if "dqn" in options else "qlearn"
    settings = [o for o in options if o != "dqn"]
    kwargs = parse_variant(",".join(settings), kind) if settings else {}
    policy: str | None = {"none": None}.get(head, head)
    cls: Any = QLearningSampler
    if kind == "dqn":
        from optuna_qlearn import DQNSampler

        cls = DQNSampler

    def make(seed: int) -> Any:
        return cls(policy=policy, seed=seed, **kwargs)

    make(0)  # fail early on a bad file or setting
    return make


def run(
    name: str,
    make: Callable[[int], Any],
    problems: Sequence[str],
    seeds: Sequence[int],
    trials: int,
) -> dict[str, dict[str, list[float]]]:
    """Regret curves ``{problem: {seed: [...]}}`` of one sampler factory."""
    from benchmarks import samplers

    key = f"experiment-{name}"
    samplers.SAMPLERS[key] = (make, name)
    try:
        return harness_curves(key, problems, seeds, trials, label=name)
    finally:
        del samplers.SAMPLERS[key]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", action="append", default=[], metavar="NAME=SPEC")
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    problems = suite_problems()
    seeds = parse_seeds(args.seeds)
    curves: dict[str, Any] = {}
    for item in args.policy:
        name, _, spec = item.partition("=")
        curves[name] = run(name, _factory(spec), problems, seeds, args.trials)
    write_curves(args.out, args.trials, curves)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
