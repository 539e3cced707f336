"""Plots of what a Q-learning sampler learned, in the style of :mod:`optuna.visualization`.

Each function takes a study run by a :class:`~optuna_qlearn.QLearningSampler` or
:class:`~optuna_qlearn.DQNSampler` (and, optionally, the sampler: by default the
study's own, else the settings the dashboard stored in the study) and returns a
Plotly figure; :mod:`optuna_qlearn.visualization.matplotlib` has a Matplotlib twin
of each. The dashboard (:func:`optuna_qlearn.dashboard.publish`) publishes these
same figures.

A learned policy (``QLearningSampler()``, ``policy="default"``):

- :func:`plot_decision`: a trial's candidate actions with their Q-values, and the
  features of the chosen one (why it went there).
- :func:`plot_correction`: the study's correction of the network's Q per action kind.

The tabular agent (``policy="table"``, and ``DQNSampler``):

- :func:`plot_greedy_value`: the greedy value ``max_a Q(s, a)`` as a heatmap.
- :func:`plot_visits`: where the agent has been learning.
- :func:`plot_policy`: the greedy policy as arrows.

Both:

- :func:`plot_epsilon_reward`: epsilon and reward per trial.
"""

from optuna_qlearn.visualization import matplotlib
from optuna_qlearn.visualization._plotly import (
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
    "matplotlib",
    "plot_correction",
    "plot_decision",
    "plot_epsilon_reward",
    "plot_greedy_value",
    "plot_policy",
    "plot_visits",
]
