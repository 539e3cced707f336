"""Pre-train a search policy by deep Q-learning and write it as an ``.npz`` file.

With no ``--tasks`` it trains on the built-in generator of random functions on
random grids, which is how the shipped default policy is made:

    optuna-qlearn train-policy policy.npz --episodes 2000 --seed 0

``--tasks MODULE:NAME`` names your own tasks: a function ``rng -> GridTask`` or a
list of :class:`optuna_qlearn.policy.GridTask` (for example built with
``GridTask.from_objective`` from cheap objectives). Use the file with
``QLearningSampler(policy="policy.npz")``.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

from optuna_qlearn._cli_checks import USAGE, CommandError, reports_errors


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the subcommand's options to ``parser``."""
    parser.add_argument("out", type=Path, help="the .npz policy file to write")
    parser.add_argument("--episodes", type=int, default=2000, help="training studies (2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of everything (0)")
    parser.add_argument(
        "--members", type=int, default=2,
        help="networks to train, from seeds SEED, SEED+1, ...; Q is their mean (2)",
    )  # fmt: skip
    parser.add_argument(
        "--tasks", default=None, metavar="MODULE:NAME",
        help="a function rng -> GridTask or a list of GridTask (default: generated tasks)",
    )  # fmt: skip


def _load_tasks(spec: str) -> Any:
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise CommandError(f"--tasks must look like MODULE:NAME, got {spec!r}.", USAGE)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandError(f"--tasks: cannot import {module_name!r}: {exc}", USAGE) from exc
    try:
        return getattr(module, name)
    except AttributeError as exc:
        raise CommandError(f"--tasks: {module_name!r} has no {name!r}.", USAGE) from exc


@reports_errors("train-policy")
def run(args: argparse.Namespace) -> int:
    """Train and write the policy; print a summary."""
    from optuna_qlearn._core.policy import MAX_MEMBERS
    from optuna_qlearn.policy import train_policy

    if args.episodes < 1:
        raise CommandError(f"--episodes must be at least 1, got {args.episodes}.", USAGE)
    if args.seed < 0:
        raise CommandError(f"--seed must be at least 0, got {args.seed}.", USAGE)
    if not 1 <= args.members <= MAX_MEMBERS:
        raise CommandError(f"--members must be in [1, {MAX_MEMBERS}], got {args.members}.", USAGE)
    if args.out.suffix != ".npz":
        raise CommandError(f"OUT must end in .npz, got {str(args.out)!r}.", USAGE)
    if not args.out.parent.is_dir():
        raise CommandError(f"OUT's folder {str(args.out.parent)!r} does not exist.", USAGE)
    tasks = _load_tasks(args.tasks) if args.tasks else None
    try:
        rep = train_policy(args.out, tasks=tasks, episodes=args.episodes, seed=args.seed,
                           members=args.members, verbose=True)  # fmt: skip
    except (TypeError, ValueError) as exc:
        raise CommandError(str(exc), USAGE) from exc
    print(
        f"wrote {rep.path}: {rep.members} x {rep.episodes} episodes in {rep.wall_s:.0f} s; "
        f"mean return "
        f"{rep.first_fifth_return:.3f} (first fifth) -> {rep.last_fifth_return:.3f} (last fifth)"
    )
    return 0
