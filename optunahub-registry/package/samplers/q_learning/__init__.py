"""OptunaHub entry point of the optuna-qlearn samplers.

The samplers live in the ``optuna-qlearn`` distribution (``requirements.txt``); this
package re-exports them so that ``optunahub.load_module("samplers/q_learning")``
gives the same classes as ``import optuna_qlearn``. ``DQNSampler`` needs PyTorch and is
imported on first access, so ``QLearningSampler`` works without it.
"""

from __future__ import annotations

from typing import Any

from optuna_qlearn import QLearningSampler


def __getattr__(name: str) -> Any:
    if name == "DQNSampler":
        import optuna_qlearn

        return optuna_qlearn.DQNSampler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DQNSampler", "QLearningSampler"]
