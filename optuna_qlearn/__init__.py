"""Reinforcement-learning samplers for Optuna.

``QLearningSampler`` walks a discretized search space with tabular Q-learning;
``DQNSampler`` (needs PyTorch) replaces the table with a deep Q-network.
"""

from __future__ import annotations

from typing import Any

from optuna_qlearn.sampler import QLearningSampler

__version__ = "0.1.0"
__all__ = ["DQNSampler", "QLearningSampler", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "DQNSampler":
        try:
            from optuna_qlearn.dqn import DQNSampler
        except ImportError as exc:
            if exc.name == "torch":
                raise ImportError(
                    "DQNSampler needs PyTorch: pip install 'optuna-qlearn[torch]'"
                ) from exc
            raise
        return DQNSampler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
