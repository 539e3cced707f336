"""Record every proposal of the tabular QLearningSampler and DQNSampler on fixed studies.

Run it once with the code of one commit and once with another, then compare the two
JSON files (``compare.py``): a refactor that changes no proposal gives identical
traces, trial by trial. Uses only the public API, so it runs on any commit since the
samplers existed:

    PYTHONPATH=/path/to/old/checkout python experiments/same_proposals/trace.py old.json
    PYTHONPATH=. python experiments/same_proposals/trace.py new.json
    python experiments/same_proposals/compare.py old.json new.json
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _space(kind: int) -> Callable[[optuna.Trial], list[float]]:
    """One of several mixed search spaces (ints, steps, logs, floats, categoricals)."""

    def suggest(trial: optuna.Trial) -> list[float]:
        xs: list[float] = []
        if kind % 4 == 0:
            xs.append(trial.suggest_int("a", 0, 20))
            xs.append(trial.suggest_float("b", -3.0, 3.0))
            xs.append(["u", "v", "w"].index(trial.suggest_categorical("c", ["u", "v", "w"])))
        elif kind % 4 == 1:
            xs.append(math.log10(trial.suggest_float("lr", 1e-5, 1e-1, log=True)))
            xs.append(trial.suggest_int("n", 1, 128, log=True) / 32.0)
            xs.append(trial.suggest_float("d", 0.0, 1.0, step=0.05))
            xs.append(trial.suggest_int("k", 2, 10))
        elif kind % 4 == 2:
            for i in range(6):
                xs.append(trial.suggest_int(f"x{i}", -5, 5))
        else:
            xs.append(trial.suggest_categorical("dim", [64, 128, 256]) / 64.0)
            xs.append(trial.suggest_int("K", 2, 10))
            xs.append(trial.suggest_categorical("bs", [8, 16, 32]) / 8.0)
            xs.append(trial.suggest_float("w", 0.0, 2.0))
            xs.append(float(trial.suggest_categorical("flag", [True, False])))
        return xs

    return suggest


def _objective(kind: int, seed: int) -> Callable[[optuna.Trial], float]:
    suggest = _space(kind)
    rng = np.random.RandomState(1000 + seed)
    shift = rng.uniform(-2, 2, size=8)

    def objective(trial: optuna.Trial) -> float:
        xs = np.asarray(suggest(trial), dtype=float)
        z = xs - shift[: len(xs)]
        value = float(np.sum(z**2) + np.sum(np.sin(3 * z)))
        if kind % 5 == 3 and trial.number % 17 == 5:
            raise optuna.TrialPruned()
        return value

    return objective


def _make(sampler_name: str, seed: int) -> optuna.samplers.BaseSampler:
    """The named sampler with its defaults; ``SeedDesign`` is the original design, built
    with whichever API the checkout has."""
    import optuna_qlearn

    if sampler_name != "SeedDesign":
        cls_ = getattr(optuna_qlearn, sampler_name)
        # Since issue 14 the tabular agent is policy="table" (the default is learned).
        table = (
            sampler_name == "QLearningSampler" and "policy" in inspect.signature(cls_).parameters
        )
        sampler: optuna.samplers.BaseSampler = cls_(
            seed=seed, **({"policy": "table"} if table else {})
        )
        return sampler
    cls = optuna_qlearn.QLearningSampler
    if hasattr(cls, "seed_design_parameters"):
        return cls(**cls.seed_design_parameters(), seed=seed)
    from optuna_qlearn.agent import AgentConfig  # the API before issue 13

    pins = {"episode_length": 10, "n_startup": 0, "model_scores": False, "model_restart_prob": 0.0}
    return cls(preset="seed", agent_config=AgentConfig(**pins), seed=seed)  # type: ignore[call-arg]


def trace(sampler_name: str, n_studies: int, n_trials: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n_studies):
        kind, seed = i % 4, i
        direction = (
            optuna.study.StudyDirection.MAXIMIZE
            if i % 3 == 2
            else optuna.study.StudyDirection.MINIMIZE
        )
        sampler = _make(sampler_name, seed)
        study = optuna.create_study(direction=direction, sampler=sampler)
        study.optimize(_objective(kind, seed), n_trials=n_trials, catch=(Exception,))
        out.append(
            {
                "study": i,
                "sampler": sampler_name,
                "params": [t.params for t in study.trials],
                "values": [t.value for t in study.trials],
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="JSON file to write")
    parser.add_argument("--studies", type=int, default=40)
    parser.add_argument("--trials", type=int, default=150)
    parser.add_argument("--dqn-studies", type=int, default=40)
    parser.add_argument("--dqn-trials", type=int, default=150)
    parser.add_argument("--seed-design-studies", type=int, default=20)
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    result = trace("QLearningSampler", args.studies, args.trials)
    if args.seed_design_studies:
        result += trace("SeedDesign", args.seed_design_studies, args.trials)
    if args.dqn_studies:
        result += trace("DQNSampler", args.dqn_studies, args.dqn_trials)
    with open(args.out, "w") as f:
        json.dump(result, f)
    print(f"{len(result)} studies written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
