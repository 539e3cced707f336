"""Tune a reconstruction model's Frechet distance over the seed grid.

Runs an Optuna study over K in 2..10, intermediate_dim in {64, 128, 256}, batch_size in
{8, 16, 32} and maxiter in {10, 20, 40} on the VAE (8x8 digits, no download) or the DGMM
(fMRI -> digits, needs the digit69 .mat file) objective, then prints the best parameters and
the command that opens the study in optuna-dashboard. With the default offline extractor the
value is the Frechet distance in fixed random-network features, not a published-style FID
(see docs/fid.md); pass --extractor inception --weights FILE for the real FID network.
"""

from __future__ import annotations

import argparse

from optuna_qlearn._cli_checks import (
    FAILURE,
    SAMPLER_NAMES,
    USAGE,
    CommandError,
    check_study_storage,
    reports_errors,
    require_extra,
)

DEFAULT_STORAGE = "sqlite:///optuna_qlearn_fid.db"
DEFAULT_DATA = "../shared/data/digit69/digit69_28x28.mat"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``optuna-qlearn fid`` options to ``parser``.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument(
        "objective",
        nargs="?",
        choices=["vae", "dgmm"],
        default="vae",
        help="vae: conv VAE on scikit-learn's 8x8 digits (default); dgmm: DGMM on digit69 fMRI",
    )
    parser.add_argument("--trials", type=int, default=30, help="number of trials (default 30)")
    parser.add_argument(
        "--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default {DEFAULT_STORAGE})"
    )
    parser.add_argument(
        "--study-name", default=None, help="study name (default fid-<objective>-<sampler>)"
    )
    parser.add_argument(
        "--data", default=DEFAULT_DATA, help=f"digit69_28x28.mat for dgmm (default {DEFAULT_DATA})"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of sampler and objective")
    parser.add_argument(
        "--sampler",
        choices=SAMPLER_NAMES,
        default="qlearning",
        help="sampler (default qlearning)",
    )
    parser.add_argument(
        "--extractor",
        choices=["random", "inception", "inception-torchvision"],
        default="random",
        help="feature extractor (default random: offline, not comparable to published FID)",
    )
    parser.add_argument("--weights", default=None, help="Inception weights file (never downloaded)")
    parser.add_argument("--sha256", default=None, help="expected sha256 (or prefix) of --weights")
    parser.add_argument(
        "--image-dir", default=None, help="keep the stimuli and per-trial reconstructions here"
    )
    parser.add_argument(
        "--pruner",
        choices=["none", "median"],
        default="none",
        help="prune trials on their per-iteration reports (default none)",
    )


def _check_files(args: argparse.Namespace) -> None:
    """Refuse --weights/--sha256/--data values the run would fail on or ignore."""
    import os
    import re

    from optuna_qlearn.fid import FID_INCEPTION_WEIGHTS_URL

    inception = args.extractor.startswith("inception")
    if inception and args.weights is None:
        raise CommandError(
            f"--extractor {args.extractor} needs --weights FILE, a local weights file "
            f"(for FID: {FID_INCEPTION_WEIGHTS_URL}); this package never downloads weights",
            USAGE,
        )
    if not inception and args.weights is not None:
        raise CommandError(
            "--weights is used only with --extractor inception or inception-torchvision",
            USAGE,
        )
    if args.weights is not None and not os.path.isfile(args.weights):
        raise CommandError(
            f"--weights {args.weights!r}: no such file; download the weights yourself "
            f"(for FID: {FID_INCEPTION_WEIGHTS_URL}) and pass their path",
            USAGE,
        )
    if args.sha256 is not None:
        if args.weights is None:
            raise CommandError("--sha256 checks --weights; pass --weights FILE too", USAGE)
        if not re.fullmatch(r"[0-9a-fA-F]{8,64}", args.sha256):
            raise CommandError(f"--sha256 must be 8 to 64 hex digits, got {args.sha256!r}", USAGE)
    if args.objective == "dgmm" and not os.path.isfile(args.data):
        raise CommandError(
            f"--data {args.data!r}: digit69 dataset not found; the dgmm objective needs "
            "digit69_28x28.mat from the DGMM repository (not shipped with this package)",
            USAGE,
        )


@reports_errors("fid")
def run(args: argparse.Namespace) -> int:
    """Run the study described by ``args`` and print its best trial.

    Args:
        args: Parsed options of :func:`add_arguments`.

    Returns:
        The exit status: 0 on success, otherwise that of the error printed on stderr
        (2 for a wrong option, 1 for a missing package of the ``vision`` extra or a
        study in which no trial completed).
    """
    if args.trials < 1:
        raise CommandError(f"--trials must be at least 1, got {args.trials}", USAGE)
    modules = ["torch", "sklearn", "threadpoolctl"]
    if args.objective == "dgmm":
        modules.append("scipy")
    if args.extractor.startswith("inception"):
        modules.append("torchvision")
    if args.extractor == "inception":
        modules.append("torch_fidelity")  # the "fid" Inception network
    if args.image_dir is not None:
        modules.append("PIL")
    require_extra("vision", modules, f"optuna-qlearn fid {args.objective}")
    _check_files(args)
    check_study_storage(args.storage)

    import warnings

    import optuna
    import torch

    from optuna_qlearn.fid import FIDSampleSizeWarning
    from optuna_qlearn.objectives._reconstruction import ReconstructionObjective

    torch.set_num_threads(1)
    common = {
        "extractor": args.extractor,
        "seed": args.seed,
        "image_dir": args.image_dir,
        "weights": args.weights,
        "sha256": args.sha256,
    }
    objective: ReconstructionObjective
    try:
        if args.objective == "vae":
            from optuna_qlearn.objectives.vae import VAEReconstruction

            objective = VAEReconstruction(**common)
        else:
            from optuna_qlearn.objectives.dgmm import DGMMReconstruction

            objective = DGMMReconstruction(args.data, **common)
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc), USAGE) from None

    from optuna_qlearn._demo import SAMPLERS  # the CLI's samplers, by name

    sampler = SAMPLERS[args.sampler](args.seed)
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5)
        if args.pruner == "median"
        else optuna.pruners.NopPruner()
    )
    study_name = args.study_name or f"fid-{args.objective}-{args.sampler}"
    study = optuna.create_study(
        storage=args.storage,
        study_name=study_name,
        direction="minimize",
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    study.set_user_attr("objective", args.objective)
    study.set_user_attr("extractor", args.extractor)
    if args.objective == "dgmm":
        # 10 test images in 64-d features: documented bias; one warning per run is enough.
        warnings.filterwarnings("once", category=FIDSampleSizeWarning)
    study.optimize(objective, n_trials=args.trials)

    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise CommandError(
            f"no trial of study {study_name!r} completed; see the warnings above", FAILURE
        )
    best = study.best_trial
    what = "FID" if args.extractor != "random" else "Frechet distance (random-conv features)"
    print(f"study {study_name!r}: {len(completed)} complete trials")
    print(f"best {what}: {best.value:.6g} (trial {best.number})")
    print("best params: " + ", ".join(f"{k}={v}" for k, v in best.params.items()))
    print(f"dashboard: optuna-qlearn dashboard {args.storage}")
    return 0
