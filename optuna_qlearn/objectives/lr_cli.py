"""Tune the learning-rate schedule of a character-level GPT with Optuna.

Each trial trains the GPT under a schedule the sampler picks (the Q-learning LR
controller's parameters, the warmup+cosine baseline's, or both) and returns its best
validation loss. Example: optuna-qlearn lr --data input.txt --n-trials 12
"""

from __future__ import annotations

import argparse

CONFIGS = ("cpu", "full", "tiny")
SAMPLERS = ("qlearning", "tpe", "random")


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
    parser.add_argument("--sampler", choices=SAMPLERS, default="qlearning")
    parser.add_argument("--n-trials", type=int, default=12)
    parser.add_argument("--storage", default="sqlite:///optuna_qlearn_lr.db")
    parser.add_argument("--study-name", default=None, help="default: lr-<corpus>-<sampler>")
    parser.add_argument("--seed", type=int, default=0, help="sampler and training seed")
    parser.add_argument("--prune", action="store_true", help="use Optuna's MedianPruner")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")


def run(args: argparse.Namespace) -> int:
    """Run the study and print the best trial.

    Returns:
        ``0`` on success, ``2`` on bad arguments.
    """
    import dataclasses

    import optuna
    import torch

    from optuna_qlearn.objectives.chargpt import GPTConfig
    from optuna_qlearn.objectives.lr_schedule import LRScheduleObjective

    if args.n_trials < 1:
        print("error: --n-trials must be >= 1")
        return 2
    if args.threads < 1:
        print("error: --threads must be >= 1")
        return 2
    torch.set_num_threads(args.threads)
    config: GPTConfig = getattr(GPTConfig, args.config)()
    if args.max_iters is not None:
        if args.max_iters < 1:
            print("error: --max-iters must be >= 1")
            return 2
        # The cosine then ends at the new last iteration.
        config = dataclasses.replace(config, max_iters=args.max_iters, lr_decay_iters=None)
    try:
        phases = tuple(int(p) for p in args.phases.split(",") if p.strip())
    except ValueError:
        print(f"error: --phases must be integers separated by commas, got {args.phases!r}")
        return 2
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
        print(f"error: {exc}")
        return 2

    sampler: optuna.samplers.BaseSampler
    if args.sampler == "qlearning":
        from optuna_qlearn import QLearningSampler

        sampler = QLearningSampler(seed=args.seed)
    elif args.sampler == "tpe":
        sampler = optuna.samplers.TPESampler(seed=args.seed)
    else:
        sampler = optuna.samplers.RandomSampler(seed=args.seed)
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
