"""Matplotlib twins of the Plotly functions: the same views, drawn on Matplotlib axes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from optuna_qlearn.visualization._plotly import REWARD_WINDOW
from optuna_qlearn.visualization._view import STAY, AgentView, agent_view

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from optuna.study import Study

    from optuna_qlearn.sampler import QLearningSampler

#: Most tick labels on a heatmap axis (a 64-point axis shows every sixth value).
MAX_TICKS = 12


def _import_pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "optuna_qlearn.visualization.matplotlib needs Matplotlib: "
            "pip install 'optuna-qlearn[visualization]'."
        ) from exc
    return plt


def is_available() -> bool:
    """Whether Matplotlib, which the functions of this module need, is installed.

    Returns:
        ``True`` if ``import matplotlib`` works.
    """
    try:
        _import_pyplot()
    except ImportError:
        return False
    return True


def _ticks(labels: list[str]) -> tuple[list[int], list[str]]:
    step = max(1, int(np.ceil(len(labels) / MAX_TICKS)))
    positions = list(range(0, len(labels), step))
    return positions, [labels[i] for i in positions]


def _decorate(ax: Axes, view: AgentView, title: str) -> None:
    xt, xl = _ticks(view.x_labels)
    ax.set_xticks(xt, xl, rotation=45 if len(view.x_labels) > 6 else 0)
    ax.set_xlabel(view.params[0])
    if len(view.params) > 1:
        yt, yl = _ticks(view.y_labels)
        ax.set_yticks(yt, yl)
        ax.set_ylabel(view.params[1])
    else:
        ax.set_yticks([])
    ax.set_title(title)


def _grid_array(rows: Sequence[Sequence[float | None]]) -> np.ma.MaskedArray:
    values = np.array([[np.nan if v is None else float(v) for v in row] for row in rows])
    return np.ma.masked_invalid(values)


def _new_axes() -> Axes:
    plt = _import_pyplot()
    _, ax = plt.subplots(figsize=(7.5, 5.5), layout="constrained")
    return ax


def greedy_value_axes(view: AgentView) -> Axes:
    """The greedy value heatmap of a view (see :func:`plot_greedy_value`)."""
    ax = _new_axes()
    image = ax.imshow(
        _grid_array(view.value), origin="lower", aspect="auto", cmap="viridis",
        interpolation="nearest",
    )  # fmt: skip
    ax.figure.colorbar(image, ax=ax, label="max Q")
    for y, row in enumerate(view.arrows):
        for x, arrow in enumerate(row):
            if arrow:
                ax.text(x, y, arrow, ha="center", va="center", color="white", fontsize=8)
    over = " × ".join(view.params)
    _decorate(ax, view, f"Q-learning: greedy value max_a Q(s, a) over {over}")
    return ax


def visits_axes(view: AgentView) -> Axes:
    """The visit-count heatmap of a view (see :func:`plot_visits`)."""
    ax = _new_axes()
    counts = [[v if v > 0 else None for v in row] for row in view.visits]
    image = ax.imshow(
        _grid_array(counts), origin="lower", aspect="auto", cmap="Blues", interpolation="nearest"
    )
    ax.figure.colorbar(image, ax=ax, label="visits")
    _decorate(ax, view, f"Q-learning: visit counts over {' × '.join(view.params)}")
    return ax


def policy_axes(view: AgentView) -> Axes:
    """The greedy policy as arrows (see :func:`plot_policy`)."""
    ax = _new_axes()
    cells = [
        (x, y, m) for y, row in enumerate(view.moves) for x, m in enumerate(row) if m is not None
    ]
    xs = np.array([c[0] for c in cells], dtype=float)
    ys = np.array([c[1] for c in cells], dtype=float)
    qs = np.array([view.value[int(y)][int(x)] for x, y in zip(xs, ys)], dtype=float)
    points = ax.scatter(xs, ys, c=qs, cmap="viridis", s=30, edgecolors="black", linewidths=0.5)
    if len(cells):
        ax.figure.colorbar(points, ax=ax, label="max Q")
    moving = [c for c in cells if c[2] != (0, 0)]
    if moving:
        ax.quiver(
            [c[0] for c in moving], [c[1] for c in moving],
            [c[2][0] for c in moving], [c[2][1] for c in moving],
            angles="xy", scale_units="xy", scale=1, width=0.004, color="0.2",
        )  # fmt: skip
    stay = [c for c in cells if c[2] == (0, 0) and view.arrows[c[1]][c[0]] == STAY]
    off = [c for c in cells if c[2] == (0, 0) and view.arrows[c[1]][c[0]] != STAY]
    if stay:
        ax.scatter(
            [c[0] for c in stay], [c[1] for c in stay], marker="o", s=90, facecolors="none",
            edgecolors="black", linewidths=1, label="stay",
        )  # fmt: skip
    if off:
        ax.scatter(
            [c[0] for c in off], [c[1] for c in off], marker="x", s=90, color="black",
            linewidths=1, label="move along another parameter",
        )  # fmt: skip
    if stay or off:
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlim(-0.5, len(view.x_labels) - 0.5)
    ax.set_ylim(-0.5, len(view.y_labels) - 0.5)
    _decorate(ax, view, f"Q-learning: greedy policy over {' × '.join(view.params)}")
    return ax


def epsilon_reward_axes(view: AgentView) -> np.ndarray:
    """Epsilon and reward per trial (see :func:`plot_epsilon_reward`)."""
    plt = _import_pyplot()
    _, axes = plt.subplots(2, 1, sharex=True, figsize=(7.5, 5.5), layout="constrained")
    axes[0].plot(view.trial_numbers, view.epsilon, label="epsilon")
    axes[0].set_title("epsilon")
    axes[1].scatter(view.reward_numbers, view.rewards, s=10, alpha=0.6, label="reward")
    if len(view.rewards) >= REWARD_WINDOW:
        smooth = np.convolve(view.rewards, np.ones(REWARD_WINDOW) / REWARD_WINDOW, mode="valid")
        axes[1].plot(
            view.reward_numbers[REWARD_WINDOW - 1 :], smooth, color="C1",
            label=f"reward, mean of {REWARD_WINDOW}",
        )  # fmt: skip
    axes[1].set_title("reward of the move")
    axes[1].set_xlabel("trial")
    axes[1].legend(loc="upper right", fontsize=8)
    axes[0].figure.suptitle("Q-learning: epsilon and reward per trial")
    return np.asarray(axes)


def plot_greedy_value(
    study: Study,
    sampler: QLearningSampler | None = None,
    params: Sequence[str] | None = None,
) -> Axes:
    """Plot the greedy value ``max_a Q(s, a)`` as a heatmap, with Matplotlib.

    The twin of :func:`optuna_qlearn.visualization.plot_greedy_value`: the same
    cells (an image, unvisited cells masked) and the same arrows (text).

    Example:

        .. code-block:: python

            from optuna_qlearn.visualization.matplotlib import plot_greedy_value

            ax = plot_greedy_value(study)
            ax.figure.savefig("greedy_value.png")

    Args:
        study: As in :func:`optuna_qlearn.visualization.plot_greedy_value`.
        sampler: As in :func:`optuna_qlearn.visualization.plot_greedy_value`.
        params: As in :func:`optuna_qlearn.visualization.plot_greedy_value`.

    Returns:
        A :class:`matplotlib.axes.Axes` holding the greedy values as one image and the
        arrows as texts.

    Raises:
        ImportError: If Matplotlib is not installed.
        TypeError: As in :func:`optuna_qlearn.visualization.plot_greedy_value`.
        ValueError: As in :func:`optuna_qlearn.visualization.plot_greedy_value`.
    """
    _import_pyplot()
    return greedy_value_axes(agent_view(study, sampler, params))


def plot_visits(
    study: Study,
    sampler: QLearningSampler | None = None,
    params: Sequence[str] | None = None,
) -> Axes:
    """Plot the Q-table's visit counts as a heatmap, with Matplotlib.

    The twin of :func:`optuna_qlearn.visualization.plot_visits`.

    Example:

        .. code-block:: python

            from optuna_qlearn.visualization.matplotlib import plot_visits

            plot_visits(study, params=["x", "y"]).figure.savefig("visits.png")

    Args:
        study: As in :func:`optuna_qlearn.visualization.plot_visits`.
        sampler: As in :func:`optuna_qlearn.visualization.plot_visits`.
        params: As in :func:`optuna_qlearn.visualization.plot_visits`.

    Returns:
        A :class:`matplotlib.axes.Axes` holding the visit counts as one image.

    Raises:
        ImportError: If Matplotlib is not installed.
        TypeError: As in :func:`optuna_qlearn.visualization.plot_visits`.
        ValueError: As in :func:`optuna_qlearn.visualization.plot_visits`.
    """
    _import_pyplot()
    return visits_axes(agent_view(study, sampler, params))


def plot_policy(
    study: Study,
    sampler: QLearningSampler | None = None,
    params: Sequence[str] | None = None,
) -> Axes:
    """Plot the learned greedy policy as arrows, with Matplotlib.

    The twin of :func:`optuna_qlearn.visualization.plot_policy`: a marker per
    visited cell coloured by its greedy value, a quiver arrow per greedy move along
    the plotted axes, open circles for "stay", crosses for a move along another
    parameter.

    Example:

        .. code-block:: python

            from optuna_qlearn.visualization.matplotlib import plot_policy

            plot_policy(study).figure.savefig("policy.png")

    Args:
        study: As in :func:`optuna_qlearn.visualization.plot_policy`.
        sampler: As in :func:`optuna_qlearn.visualization.plot_policy`.
        params: As in :func:`optuna_qlearn.visualization.plot_policy`.

    Returns:
        A :class:`matplotlib.axes.Axes` holding the markers and the quiver.

    Raises:
        ImportError: If Matplotlib is not installed.
        TypeError: As in :func:`optuna_qlearn.visualization.plot_policy`.
        ValueError: As in :func:`optuna_qlearn.visualization.plot_policy`.
    """
    _import_pyplot()
    return policy_axes(agent_view(study, sampler, params))


def plot_epsilon_reward(study: Study, sampler: QLearningSampler | None = None) -> np.ndarray:
    """Plot epsilon and the reward of each trial's move per trial, with Matplotlib.

    The twin of :func:`optuna_qlearn.visualization.plot_epsilon_reward`.

    Example:

        .. code-block:: python

            from optuna_qlearn.visualization.matplotlib import plot_epsilon_reward

            axes = plot_epsilon_reward(study)
            axes[0].figure.savefig("epsilon_reward.png")

    Args:
        study: As in :func:`optuna_qlearn.visualization.plot_epsilon_reward`.
        sampler: As in :func:`optuna_qlearn.visualization.plot_epsilon_reward`.

    Returns:
        A :class:`numpy.ndarray` of two :class:`matplotlib.axes.Axes`: epsilon on
        top, the rewards (and their running mean) below.

    Raises:
        ImportError: If Matplotlib is not installed.
        TypeError: As in :func:`optuna_qlearn.visualization.plot_epsilon_reward`.
        ValueError: As in :func:`optuna_qlearn.visualization.plot_epsilon_reward`.
    """
    _import_pyplot()
    return epsilon_reward_axes(agent_view(study, sampler))
