"""Tune the learning-rate schedule of a character-level GPT with Optuna.

Each trial trains the GPT under a schedule the sampler picks (the Q-learning LR
controller's parameters, the warmup+cosine baseline's, or both) and returns its best
validation loss. Example: optuna-qlearn lr --data input.txt --n-trials 12
"""

from __future__ import annotations

import argparse

from optuna_qlearn._cli_checks import (
    SAMPLER_NAMES,
    USAGE,
    CommandError,
    check_study_storage,
    reports_errors,
    require_extra,
)

CONFIGS = ("cpu", "full", "tiny")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``lr`` subcommand's options to ``parser``."""
    parser.add_argument(
        "--corpus", choices=("shakespeare_char", "enwik8", "text8"), default="shakespeare_char"
    )
    parser.add_argument(
        "--data",
        default=None,
        help="corpus file (input.txt, enwik8.zip or text8.zip); default: the download cache",
    )
    parser.add_argument(
        "--download", action="store_true", help="fetch the corpus from its public URL if missing"
    )
    parser.add_argument("--config", choices=CONFIGS, default="cpu", help="model/training size")
    parser.add_argument("--max-iters", type=int, default=None, help="override the iterations")
    parser.add_argument(
        "--search-space", choices=("qlearning", "baseline", "both"), default="qlearning"
    )
    parser.add_argument(
        "--phases",
        default="1",
        help="training phases in the controller's state: one number, or a comma list to "
        "search over (e.g. 1,4); default 1 (no phase)",
    )
    parser.add_argument("--sampler", choices=SAMPLER_NAMES, default="qlearning")
    parser.add_argument("--n-trials", type=int, default=12)
    parser.add_argument("--storage", default="sqlite:///optuna_qlearn_lr.db")
    parser.add_argument("--study-name", default=None, help="default: lr-<corpus>-<sampler>")
    parser.add_argument("--seed", type=int, default=0, help="sampler and training seed")
    parser.add_argument("--prune", action="store_true", help="use Optuna's MedianPruner")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")


def _cli_terms(message: str) -> str:
    """Say in command-line flags what the library's errors say in Python arguments."""
    return message.replace("pass download_if_missing=True to", "pass --download to").replace(
        "pass split=(n_train, n_val, n_test) for a custom file",
        "a custom file needs the Python API (LRScheduleObjective(..., split=...))",
    )


@reports_errors("lr")
def run(args: argparse.Namespace) -> int:
    """Run the learning-rate study and print its best trial.

    Args:
        args: The options :func:`add_arguments` parsed.

    Returns:
        The exit status: 0 on success, else that of the error printed on stderr
        (2 for a wrong option or corpus file, 1 for a missing ``torch`` extra).
    """
    import os

    if args.n_trials < 1:
        raise CommandError(f"--n-trials must be at least 1, got {args.n_trials}", USAGE)
    if args.threads < 1:
        raise CommandError(f"--threads must be at least 1, got {args.threads}", USAGE)
    if args.max_iters is not None and args.max_iters < 1:
        raise CommandError(f"--max-iters must be at least 1, got {args.max_iters}", USAGE)
    try:
        phases = tuple(int(p) for p in args.phases.split(",") if p.strip())
    except ValueError:
        phases = ()
    if not phases or min(phases) < 1:
        raise CommandError(
            f"--phases must be one integer >= 1 or a comma list of them (e.g. 1,4), "
            f"got {args.phases!r}",
            USAGE,
        )
    if args.data is not None and not os.path.isfile(args.data):
        raise CommandError(
            f"--data {args.data!r}: no such file; pass the {args.corpus} corpus file, or "
            "leave --data out and pass --download to fetch it into the cache",
            USAGE,
        )
    require_extra("torch", ("torch",), "optuna-qlearn lr")
    check_study_storage(args.storage)

    import dataclasses

    import optuna
    import torch

    from optuna_qlearn.objectives.chargpt import GPTConfig
    from optuna_qlearn.objectives.lr_schedule import LRScheduleObjective

    torch.set_num_threads(args.threads)
    config: GPTConfig = getattr(GPTConfig, args.config)()
    if args.max_iters is not None:
        # The cosine then ends at the new last iteration.
        config = dataclasses.replace(config, max_iters=args.max_iters, lr_decay_iters=None)
    try:
        objective = LRScheduleObjective(
            args.corpus,
            path=args.data,
            config=config,
            search_space=args.search_space,
            seed=args.seed,
            download_if_missing=args.download,
            phases=phases,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(_cli_terms(str(exc)), USAGE) from None

    from optuna_qlearn._demo import SAMPLERS  # the CLI's samplers, by name

    sampler = SAMPLERS[args.sampler](args.seed)
    pruner = optuna.pruners.MedianPruner() if args.prune else optuna.pruners.NopPruner()
    study = optuna.create_study(
        storage=args.storage,
        study_name=args.study_name or f"lr-{args.corpus}-{args.sampler}",
        sampler=sampler,
        pruner=pruner,
        direction="minimize",
        load_if_exists=True,
    )
    study.optimize(objective, n_trials=args.n_trials)
    best = study.best_trial
    print(f"best trial #{best.number}: best_val_loss={best.value:.4f}")
    for name, value in best.params.items():
        print(f"  {name} = {value}")
    return 0
