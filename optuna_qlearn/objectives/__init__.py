"""Ready-made Optuna objectives: FID reconstruction models and LR-schedule studies.

The objectives need PyTorch (``pip install "optuna-qlearn[vision]"``); names are
imported lazily so that ``import optuna_qlearn.objectives`` itself stays light.
``SEED_GRID`` and ``suggest_seed_grid(trial)`` are the seed grid (``K`` 2..10,
``intermediate_dim`` {64, 128, 256}, ``batch_size`` {8, 16, 32}, ``maxiter`` {10, 20, 40})
both reconstruction objectives search.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "VAEReconstruction": "optuna_qlearn.objectives.vae",
    "DGMMReconstruction": "optuna_qlearn.objectives.dgmm",
    "LRScheduleObjective": "optuna_qlearn.objectives.lr_schedule",
    "CharGPT": "optuna_qlearn.objectives.chargpt",
    "GPTConfig": "optuna_qlearn.objectives.chargpt",
    # The seed grid both reconstruction objectives search.
    "SEED_GRID": "optuna_qlearn.objectives._reconstruction",
    "suggest_seed_grid": "optuna_qlearn.objectives._reconstruction",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
