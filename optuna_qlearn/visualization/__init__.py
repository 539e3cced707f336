"""Plots of what a Q-learning sampler learned, in the style of :mod:`optuna.visualization`.

Each function takes a study run by a :class:`~optuna_qlearn.QLearningSampler` or
:class:`~optuna_qlearn.DQNSampler` (and, optionally, the sampler: by default the
study's own, else the settings the dashboard stored in the study) and returns a
Plotly figure; :mod:`optuna_qlearn.visualization.matplotlib` has a Matplotlib twin
of each. The dashboard (:func:`optuna_qlearn.dashboard.publish`) publishes these
same figures.

- :func:`plot_greedy_value`: the greedy value ``max_a Q(s, a)`` as a heatmap.
- :func:`plot_visits`: where the agent has been learning.
- :func:`plot_policy`: the greedy policy as arrows.
- :func:`plot_epsilon_reward`: epsilon and reward per trial.
"""

from optuna_qlearn.visualization import matplotlib
from optuna_qlearn.visualization._plotly import (
    is_available,
    plot_epsilon_reward,
    plot_greedy_value,
    plot_policy,
    plot_visits,
)

__all__ = [
    "is_available",
    "matplotlib",
    "plot_epsilon_reward",
    "plot_greedy_value",
    "plot_policy",
    "plot_visits",
]
