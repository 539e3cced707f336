"""Reinforcement-learning samplers for Optuna.

``QLearningSampler`` walks a discretized search space with tabular Q-learning;
``DQNSampler`` (needs PyTorch) replaces the table with a deep Q-network.

The samplers are imported on first use, so the Optuna-free RL core
(``optuna_qlearn._core``) imports without Optuna.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna_qlearn.dqn import DQNSampler
    from optuna_qlearn.sampler import QLearningSampler

__version__ = "0.1.0"
__all__ = ["DQNSampler", "QLearningSampler", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "QLearningSampler":
        from optuna_qlearn.sampler import QLearningSampler

        return QLearningSampler
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


def __dir__() -> list[str]:
    return sorted([*globals(), "DQNSampler", "QLearningSampler"])
