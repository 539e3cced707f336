"""Command-line interface: ``optuna-qlearn demo | fid | lr | dashboard``.

Each subcommand lives next to the code it drives, in a module that exposes
``add_arguments(parser)`` and ``run(args) -> int``; those modules keep their
heavy imports (torch, plotly) inside ``run`` so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("optuna_qlearn._demo", "QLearningSampler vs TPE vs Random on a default objective"),
    "fid": ("optuna_qlearn.objectives.fid_cli", "tune a reconstruction model's FID"),
    "lr": ("optuna_qlearn.objectives.lr_cli", "learning-rate-schedule studies on a char-level GPT"),
    "dashboard": ("optuna_qlearn.dashboard", "open a storage in optuna-dashboard (127.0.0.1)"),
}


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level argument parser.

    Returns:
        The parser with one subparser per available subcommand.
    """
    parser = argparse.ArgumentParser(
        prog="optuna-qlearn",
        description="Reinforcement-learning samplers for Optuna.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                continue  # subcommand not part of this installation
            raise
        p = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text))
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``optuna-qlearn`` and ``python -m optuna_qlearn``.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The process exit status.
    """
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        args = parser.parse_args(["demo", *(sys.argv[1:] if argv is None else argv)])
    return int(args._module.run(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
