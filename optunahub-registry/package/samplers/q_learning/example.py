"""Run QLearningSampler and DQNSampler from this OptunaHub package on a mixed search space.

Run from anywhere: ``python example.py`` loads the package from the registry folder
this file sits in (``package/samplers/q_learning``). Once the package is in the
registry, ``optunahub.load_module("samplers/q_learning")`` does the same.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import optunahub


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    k = trial.suggest_int("k", 1, 16)
    kind = trial.suggest_categorical("kind", ["a", "b", "c"])
    return (x - 1.0) ** 2 + 0.1 * (k - 7) ** 2 + {"a": 0.0, "b": 0.5, "c": 1.0}[kind]


def main(n_trials: int = 40) -> None:
    """Run each sampler for ``n_trials`` trials and print its best trial."""
    module = optunahub.load_local_module(
        package="samplers/q_learning",
        registry_root=str(Path(__file__).resolve().parents[2]),  # .../package
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    samplers = {"QLearningSampler": module.QLearningSampler(seed=0)}
    try:
        samplers["DQNSampler"] = module.DQNSampler(seed=0)
    except ImportError as exc:  # PyTorch not installed
        print(f"skipping DQNSampler: {exc}")
    for name, sampler in samplers.items():
        study = optuna.create_study(sampler=sampler)
        study.optimize(objective, n_trials=n_trials)
        print(f"{name}: best value {study.best_value:.4f} at {study.best_params}")


if __name__ == "__main__":
    main()
