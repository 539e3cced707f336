"""Tune a reconstruction model's Frechet distance with QLearningSampler (the seed use case).

The seed script had four parameters, ``K``, ``intermediate_dim``, ``batch_size`` and
``maxiter``; each trial trains a model, writes the reconstructed images and returns
``calculate_fid(stimulus_folder, reconstructed_folder)``. This example runs that study on the
embedded VAE objective (scikit-learn's 8x8 digits, no download), or on DGMM when the digit69
file is given::

    python docs/examples/fid_study.py                       # VAE, 30 trials
    python docs/examples/fid_study.py --trials 10 --images out/
    python docs/examples/fid_study.py --dgmm ../shared/data/digit69/digit69_28x28.mat

The value is the Frechet distance in the features of a fixed random convolutional network
(offline, reproducible), not FID comparable to published numbers; see docs/fid.md for using
the InceptionV3 FID weights instead.
"""

from __future__ import annotations

import argparse
import warnings

import optuna
import torch

from optuna_qlearn import QLearningSampler
from optuna_qlearn.fid import FIDSampleSizeWarning
from optuna_qlearn.objectives import DGMMReconstruction, VAEReconstruction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dgmm", metavar="MAT", help="digit69_28x28.mat: tune DGMM instead")
    parser.add_argument("--images", metavar="DIR", help="keep stimuli and reconstructions here")
    args = parser.parse_args()

    torch.set_num_threads(1)
    if args.dgmm:
        objective = DGMMReconstruction(args.dgmm, seed=args.seed, image_dir=args.images)
        # 10 test images in 64-d features: the (documented) bias warning, once.
        warnings.filterwarnings("once", category=FIDSampleSizeWarning)
    else:
        objective = VAEReconstruction(seed=args.seed, image_dir=args.images)

    study = optuna.create_study(
        direction="minimize",
        sampler=QLearningSampler(seed=args.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5),
    )
    study.optimize(objective, n_trials=args.trials)

    print(f"best Frechet distance: {study.best_value:.4f}")
    print(f"best params: {study.best_params}")
    if args.images:
        print(
            f"stimuli: {args.images}/stimuli, best reconstructions: "
            f"{args.images}/trial_{study.best_trial.number:05d}"
        )


if __name__ == "__main__":
    main()
