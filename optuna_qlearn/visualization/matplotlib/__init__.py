"""Matplotlib twins of :mod:`optuna_qlearn.visualization` (as in Optuna's own visualization).

Each function takes the same arguments as its Plotly namesake and draws the same
data on Matplotlib axes (``pip install 'optuna-qlearn[visualization]'``).
"""

from ._plots import (
    is_available,
    plot_correction,
    plot_decision,
    plot_epsilon_reward,
    plot_greedy_value,
    plot_policy,
    plot_visits,
)

__all__ = [
    "is_available",
    "plot_correction",
    "plot_decision",
    "plot_epsilon_reward",
    "plot_greedy_value",
    "plot_policy",
    "plot_visits",
]
