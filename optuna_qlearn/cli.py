"""Command-line interface: ``optuna-qlearn demo | fid | lr | dashboard | train-policy``.

Each subcommand lives next to the code it drives, in a module that exposes
``add_arguments(parser)`` and ``run(args) -> int``; those modules keep their
heavy imports (torch, plotly) inside ``run`` so ``--help`` stays fast.

Errors are reported in one or two lines without a traceback (see
:mod:`optuna_qlearn._cli_checks`): exit status 2 for a wrong argument, 1 for
anything else. Storages are checked before a command uses them, and nothing is
created that the user did not ask for.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from optuna_qlearn._cli_checks import (
    CommandError,
    check_port,
    check_readable_storage,
    report,
    require_extra,
)

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("optuna_qlearn._demo", "QLearningSampler vs TPE vs Random on a default objective"),
    "fid": ("optuna_qlearn.objectives.fid_cli", "tune a reconstruction model's FID"),
    "lr": ("optuna_qlearn.objectives.lr_cli", "learning-rate-schedule studies on a char-level GPT"),
    "dashboard": ("optuna_qlearn.dashboard", "open a storage in optuna-dashboard (127.0.0.1)"),
    "train-policy": ("optuna_qlearn._train_cli", "pre-train a search policy (policy=PATH)"),
}


def _check_dashboard(args: argparse.Namespace) -> None:
    # Before optuna_qlearn.dashboard.run opens the storage or announces the URL.
    require_extra("dashboard", ("optuna_dashboard", "plotly"), "optuna-qlearn dashboard")
    check_readable_storage(args.storage)
    check_port(args.host, args.port)


# name -> the checks that run before the subcommand (the others check inside ``run``).
PRECHECKS: dict[str, Callable[[argparse.Namespace], None]] = {"dashboard": _check_dashboard}


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
        The process exit status: 0 on success, 2 for a wrong argument (argparse's own
        errors exit with 2 as well), 1 for any other error.
    """
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or (arguments[0].startswith("-") and arguments[0] not in ("-h", "--help")):
        arguments = ["demo", *arguments]  # the default command, with its options
    args = parser.parse_args(arguments)
    try:
        precheck = PRECHECKS.get(args.command)
        if precheck is not None:
            precheck(args)
        return int(args._module.run(args))
    except CommandError as exc:
        return report(args.command, exc)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
