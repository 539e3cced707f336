"""Matplotlib twins of the Plotly functions: the same views, drawn on Matplotlib axes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from optuna_qlearn.visualization._plotly import (
    REWARD_WINDOW,
    decision_title,
    n_updates,
    reward_title,
)
from optuna_qlearn.visualization._view import (
    STAY,
    AgentView,
    DecisionView,
    agent_view,
    decision_view,
    require_learned,
    require_table,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from optuna.study import Study

    from optuna_qlearn.sampler import QLearningSampler

#: Most tick labels on a heatmap axis (a 64-point axis shows every sixth value).
MAX_TICKS = 12
#: Bar colours of the decision figure (those of the Plotly figure, as Matplotlib colours).
DECISION_COLORS = {
    "q_net": "#636efa73",
    "q": "#636efa",
    "chosen_q_net": "#ef553b80",
    "chosen_q": "#ef553b",
}


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
    require_table(view, "plot_greedy_value")
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
    require_table(view, "plot_visits")
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
    require_table(view, "plot_policy")
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
    axes[1].set_title(reward_title(view))
    axes[1].set_xlabel("trial")
    axes[1].legend(loc="upper right", fontsize=8)
    axes[0].figure.suptitle("Q-learning: epsilon and reward per trial")
    return np.asarray(axes)


def decision_axes(decision: DecisionView) -> np.ndarray:
    """One trial's candidates and the chosen one's features (see :func:`plot_decision`)."""
    plt = _import_pyplot()
    _, (ax, side) = plt.subplots(
        1, 2, figsize=(11, 5.5), layout="constrained", gridspec_kw={"width_ratios": [2.2, 1]}
    )
    cands = decision.candidates
    x = np.arange(len(cands), dtype=float)
    width = 0.4
    colors = DECISION_COLORS
    ax.bar(
        x - width / 2, [c.q_net for c in cands], width, label="Q (network)",
        color=[colors["chosen_q_net" if c.chosen else "q_net"] for c in cands],
    )  # fmt: skip
    ax.bar(
        x + width / 2, [c.q for c in cands], width, label="Q (total)",
        color=[colors["chosen_q" if c.chosen else "q"] for c in cands],
        edgecolor=["black" if c.chosen else "none" for c in cands],
        linewidth=[1.5 if c.chosen else 0.0 for c in cands],
    )  # fmt: skip
    ax.axhline(0.0, color="0.5", linewidth=0.8)
    ax.set_xticks(x, [c.name for c in cands], rotation=60 if len(cands) > 6 else 0, ha="right")
    chosen = decision.chosen
    for tick, c in zip(ax.get_xticklabels(), cands):
        if c.chosen:
            tick.set_fontweight("bold")
            tick.set_color(colors["chosen_q"])
    if chosen is not None:
        i = cands.index(chosen)
        ax.annotate(
            "chosen", xy=(i, max(chosen.q, chosen.q_net, 0.0)), xytext=(0, 18),
            textcoords="offset points", ha="center", arrowprops={"arrowstyle": "->"},
        )  # fmt: skip
    ax.set_xlabel("candidate action")
    ax.set_ylabel("Q(s, a)")
    ax.set_title("Q-value of each candidate action")
    ax.legend(loc="upper right", fontsize=8)
    side.axis("off")
    rows = [[name, f"{v:.4g}"] for name, v in decision.features.items()]
    if rows:
        table = side.table(cellText=rows, colLabels=["feature", "value"], loc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(8)
    side.set_title(f"features of {chosen.name if chosen is not None else decision.label}")
    ax.figure.suptitle(decision_title(decision))
    return np.asarray([ax, side])


def correction_axes(view: AgentView) -> Axes:
    """The per-study correction table of a learned policy (see :func:`plot_correction`)."""
    require_learned(view, "plot_correction")
    ax = _new_axes()
    kinds = list(view.correction)
    bars = ax.bar(kinds, [view.correction[k]["q"] for k in kinds], color="#636efa")
    updates = [int(view.correction[k]["updates"]) for k in kinds]
    ax.bar_label(bars, labels=[n_updates(u) for u in updates], fontsize=8, padding=2)
    ax.axhline(0.0, color="0.5", linewidth=0.8)
    ax.use_sticky_edges = False  # bars stick to 0 otherwise: no room for the labels
    ax.margins(y=0.15)
    ax.set_xlabel("action kind")
    ax.set_ylabel("correction C[kind]")
    ax.set_title("Q-learning: the study's correction of the network's Q, per action kind")
    return ax


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


def plot_decision(study: Study, trial_number: int | None = None) -> np.ndarray:
    """Plot a trial's candidate actions and the chosen one's features, with Matplotlib.

    The twin of :func:`optuna_qlearn.visualization.plot_decision`: two bars per
    candidate (the network's Q and the total, sorted by total Q), the chosen one
    highlighted and marked, and its features as a table.

    Example:

        .. code-block:: python

            from optuna_qlearn.visualization.matplotlib import plot_decision

            bars, features = plot_decision(study, trial_number=5)
            bars.figure.savefig("decision.png")

    Args:
        study: As in :func:`optuna_qlearn.visualization.plot_decision`.
        trial_number: As in :func:`optuna_qlearn.visualization.plot_decision`.

    Returns:
        A :class:`numpy.ndarray` of two :class:`matplotlib.axes.Axes`: the bars, and
        the chosen candidate's features as a table.

    Raises:
        ImportError: If Matplotlib is not installed.
        TypeError: As in :func:`optuna_qlearn.visualization.plot_decision`.
        ValueError: As in :func:`optuna_qlearn.visualization.plot_decision`.
    """
    _import_pyplot()
    return decision_axes(decision_view(study, trial_number))


def plot_correction(study: Study, sampler: QLearningSampler | None = None) -> Axes:
    """Plot a learned policy's per-study correction table, with Matplotlib.

    The twin of :func:`optuna_qlearn.visualization.plot_correction`.

    Example:

        .. code-block:: python

            from optuna_qlearn.visualization.matplotlib import plot_correction

            plot_correction(study).figure.savefig("correction.png")

    Args:
        study: As in :func:`optuna_qlearn.visualization.plot_correction`.
        sampler: As in :func:`optuna_qlearn.visualization.plot_correction`.

    Returns:
        A :class:`matplotlib.axes.Axes` holding one bar per action kind, labelled with
        its number of updates.

    Raises:
        ImportError: If Matplotlib is not installed.
        TypeError: As in :func:`optuna_qlearn.visualization.plot_correction`.
        ValueError: As in :func:`optuna_qlearn.visualization.plot_correction`.
    """
    _import_pyplot()
    return correction_axes(agent_view(study, sampler))
