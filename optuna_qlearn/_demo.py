"""The main job: QLearningSampler vs TPESampler vs RandomSampler on one objective.

Runs the same number of trials with each sampler, stores every study in one
storage (SQLite by default), shows a progress bar, prints a comparison table
and the command that opens the studies in optuna-dashboard. Re-running resumes:
each study is topped up to ``--trials`` finished trials.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.samplers import BaseSampler, RandomSampler, TPESampler
from optuna.trial import Trial, TrialState

from optuna_qlearn._cli_checks import (
    SAMPLER_NAMES,
    USAGE,
    CommandError,
    check_study_storage,
    reports_errors,
    require_extra,
)
from optuna_qlearn.sampler import QLearningSampler

DEFAULT_STORAGE = "sqlite:///optuna_qlearn_demo.db"
OBJECTIVES = ("vae", "seed-grid")
SAMPLERS: dict[str, Callable[[int], BaseSampler]] = dict(
    zip(
        SAMPLER_NAMES,
        (
            lambda seed: QLearningSampler(seed=seed),
            lambda seed: TPESampler(seed=seed),
            lambda seed: RandomSampler(seed=seed),
        ),
    )
)


def seed_grid_function(trial: Trial) -> float:
    """A torch-free stand-in on the FID workload's seed grid (``K``, ``intermediate_dim``,
    ``batch_size``, ``maxiter``): a smooth bowl with its optimum at K=7, 128, 16, 40.

    Args:
        trial: The trial.

    Returns:
        The value to minimize (0 at the optimum).
    """
    k = trial.suggest_int("K", 2, 10)
    dim = trial.suggest_categorical("intermediate_dim", [64, 128, 256])
    bs = trial.suggest_categorical("batch_size", [8, 16, 32])
    it = trial.suggest_categorical("maxiter", [10, 20, 40])
    return (k - 7) ** 2 / 4 + math.log2(dim / 128) ** 2 + math.log2(bs / 16) ** 2 + (40 - it) / 30


def make_objective(name: str) -> Callable[[Trial], float]:
    """The demo objective called ``name``.

    Args:
        name: ``"vae"`` (the convolutional VAE on scikit-learn's 8x8 digits, value =
            Frechet distance of its test reconstructions; needs the ``vision`` extra)
            or ``"seed-grid"`` (an analytic function on the same grid, no torch).

    Returns:
        An Optuna objective.

    Raises:
        CommandError: If the ``vae`` objective's packages (the ``vision`` extra) are
            missing, or the name is unknown.
    """
    if name == "vae":
        require_extra(
            "vision",
            ("torch", "sklearn"),
            "the demo's default objective 'vae'",
            "or run the torch-free objective: optuna-qlearn demo --objective seed-grid",
        )
        import torch

        from optuna_qlearn.objectives import VAEReconstruction

        torch.set_num_threads(1)
        objective: Callable[[Trial], float] = VAEReconstruction()
        return objective
    if name == "seed-grid":
        return seed_grid_function
    raise CommandError(f"--objective: unknown objective {name!r}; choose from {OBJECTIVES}", USAGE)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``optuna-qlearn demo``."""
    parser.add_argument("--objective", choices=OBJECTIVES, default="vae")
    parser.add_argument("--trials", type=int, default=30, help="trials per sampler (default 30)")
    parser.add_argument("--storage", default=DEFAULT_STORAGE, help=f"default {DEFAULT_STORAGE}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--samplers",
        default=",".join(SAMPLERS),
        help="comma-separated subset of " + "/".join(SAMPLERS),
    )
    parser.add_argument("--fresh", action="store_true", help="delete the demo studies first")


def _finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


@reports_errors("demo")
def run(args: argparse.Namespace) -> int:
    """Run the demo (see the module docstring).

    Args:
        args: Parsed options of :func:`add_arguments`.

    Returns:
        The exit status: 0 on success, otherwise that of the error printed on stderr
        (2 for a wrong option or an unusable ``--storage``, 1 for a missing extra).
    """
    from tqdm.auto import tqdm

    if args.trials < 1:
        raise CommandError(f"--trials must be at least 1, got {args.trials}", USAGE)
    names = [s.strip() for s in args.samplers.split(",") if s.strip()]
    unknown = [s for s in names if s not in SAMPLERS]
    if unknown or not names:
        raise CommandError(
            f"--samplers: unknown sampler(s) {unknown or args.samplers!r}; "
            f"choose from {','.join(SAMPLERS)}",
            USAGE,
        )
    check_study_storage(args.storage)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objective = make_objective(args.objective)
    rows: list[dict[str, Any]] = []
    with tqdm(total=args.trials * len(names), desc="demo", unit="trial") as bar:
        for name in names:
            study_name = f"demo-{args.objective}-{name}"
            if args.fresh:
                with contextlib.suppress(KeyError):
                    optuna.delete_study(study_name=study_name, storage=args.storage)
            study = optuna.create_study(
                study_name=study_name,
                storage=args.storage,
                sampler=SAMPLERS[name](args.seed),
                load_if_exists=True,
            )
            done = _finished(study)
            bar.update(min(done, args.trials))
            bar.set_postfix(sampler=name)
            start = time.perf_counter()
            if done < args.trials:
                study.optimize(
                    objective,
                    n_trials=args.trials - done,
                    callbacks=[lambda s, t: bar.update(1)],
                    catch=(RuntimeError, ValueError),
                )
            elapsed = time.perf_counter() - start
            if isinstance(study.sampler, QLearningSampler):
                _publish(study)
            trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            best = study.best_trial if trials else None
            rows.append(
                {
                    "sampler": name,
                    "trials": _finished(study),
                    "unique": len({tuple(sorted(t.params.items())) for t in trials}),
                    "best": best.value if best else float("nan"),
                    "found_at": best.number if best else -1,
                    "seconds": elapsed,
                    "params": best.params if best else {},
                }
            )
    print()
    print(f"Objective: {args.objective} (minimize)   storage: {args.storage}")
    header = (
        f"{'sampler':<10} {'trials':>6} {'unique':>6} {'best value':>12} "
        f"{'at trial':>8} {'time':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in sorted(rows, key=lambda r: r["best"]):
        print(
            f"{r['sampler']:<10} {r['trials']:>6} {r['unique']:>6} {r['best']:>12.4f} "
            f"{r['found_at']:>8} {r['seconds']:>7.1f}s"
        )
    if args.objective == "vae":
        print("(time: wall seconds this run; grid points another sampler already trained are")
        print(" served from the objective's cache, so times are not comparable across samplers)")
    print()
    for r in rows:
        print(f"best {r['sampler']}: {r['params']}")
    print()
    print("Open the studies in optuna-dashboard (the Q-learning study carries the agent's view):")
    print(f"  optuna-qlearn dashboard {args.storage}")
    return 0


def _publish(study: optuna.Study) -> None:
    """Write the agent's heatmaps and notes into the study when optuna-dashboard is installed."""
    try:
        from optuna_qlearn.dashboard import publish
    except ImportError:  # pragma: no cover - the dashboard extra is optional
        return
    try:
        publish(study)
    except ImportError:
        return
