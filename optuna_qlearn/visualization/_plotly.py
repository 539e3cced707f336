"""Plotly figures of the agent's view (the functions of :mod:`optuna_qlearn.visualization`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from optuna_qlearn.visualization._view import STAY, AgentView, agent_view

if TYPE_CHECKING:
    from optuna.study import Study
    from plotly.graph_objects import Figure

    from optuna_qlearn.sampler import QLearningSampler

#: Trials in the running mean of the reward curve.
REWARD_WINDOW = 10


def _import_plotly() -> Any:
    try:
        import plotly.graph_objects as go
    except ImportError as exc:
        raise ImportError(
            "optuna_qlearn.visualization needs Plotly: pip install 'optuna-qlearn[visualization]' "
            "(or use optuna_qlearn.visualization.matplotlib)."
        ) from exc
    return go


def is_available() -> bool:
    """Whether Plotly, which the functions of this module need, is installed.

    Returns:
        ``True`` if ``import plotly`` works.
    """
    try:
        _import_plotly()
    except ImportError:
        return False
    return True


def _axes(view: AgentView) -> dict[str, Any]:
    return {
        "xaxis": {
            "title": {"text": view.params[0]},
            "tickmode": "array",
            "tickvals": list(range(len(view.x_labels))),
            "ticktext": view.x_labels,
        },
        "yaxis": {
            "title": {"text": view.params[1] if len(view.params) > 1 else ""},
            "tickmode": "array",
            "tickvals": list(range(len(view.y_labels))),
            "ticktext": view.y_labels,
        },
    }


def greedy_value_figure(view: AgentView) -> Figure:
    """The greedy value heatmap of a view (see :func:`plot_greedy_value`)."""
    go = _import_plotly()
    fig = go.Figure(
        go.Heatmap(
            z=view.value,
            text=view.arrows,
            texttemplate="%{text}",
            hovertext=view.hover,
            hoverinfo="text",
            colorscale="Viridis",
            colorbar={"title": {"text": "max Q"}},
            name="greedy value",
        )
    )
    over = " × ".join(view.params)
    fig.update_layout(
        title={"text": f"Q-learning: greedy value max_a Q(s, a) over {over}"}, **_axes(view)
    )
    return fig


def visits_figure(view: AgentView) -> Figure:
    """The visit-count heatmap of a view (see :func:`plot_visits`)."""
    go = _import_plotly()
    fig = go.Figure(
        go.Heatmap(
            z=[[v if v > 0 else None for v in row] for row in view.visits],
            hovertext=view.hover,
            hoverinfo="text",
            colorscale="Blues",
            colorbar={"title": {"text": "visits"}},
            name="visits",
        )
    )
    over = " × ".join(view.params)
    fig.update_layout(title={"text": f"Q-learning: visit counts over {over}"}, **_axes(view))
    return fig


def policy_figure(view: AgentView) -> Figure:
    """The greedy policy as arrows (see :func:`plot_policy`)."""
    go = _import_plotly()
    xs, ys, qs, text, symbols = [], [], [], [], []
    annotations = []
    for y, row in enumerate(view.moves):
        for x, move in enumerate(row):
            if move is None:
                continue
            xs.append(x)
            ys.append(y)
            qs.append(view.value[y][x])
            text.append(view.hover[y][x])
            if move == (0, 0):
                symbols.append("circle-open" if view.arrows[y][x] == STAY else "x-thin-open")
                continue
            symbols.append("circle")
            annotations.append(
                {
                    "x": x + move[0], "y": y + move[1], "ax": x, "ay": y,
                    "xref": "x", "yref": "y", "axref": "x", "ayref": "y",
                    "showarrow": True, "arrowhead": 2, "arrowwidth": 1.5,
                    "arrowcolor": "rgba(40, 40, 40, 0.8)", "text": "",
                }
            )  # fmt: skip
    fig = go.Figure(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers",
            marker={
                "color": qs,
                "colorscale": "Viridis",
                "symbol": symbols,
                "size": 9,
                "colorbar": {"title": {"text": "max Q"}},
                "line": {"width": 1},
            },
            hovertext=text,
            hoverinfo="text",
            name="greedy move",
        )
    )
    axes = _axes(view)
    axes["xaxis"]["range"] = [-0.5, len(view.x_labels) - 0.5]
    axes["yaxis"]["range"] = [-0.5, len(view.y_labels) - 0.5]
    over = " × ".join(view.params)
    fig.update_layout(
        title={"text": f"Q-learning: greedy policy over {over}"},
        annotations=annotations,
        **axes,
    )
    return fig


def epsilon_reward_figure(view: AgentView) -> Figure:
    """Epsilon and reward per trial (see :func:`plot_epsilon_reward`)."""
    go = _import_plotly()
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, subplot_titles=("epsilon", "reward of the move")
    )
    fig.add_trace(
        go.Scatter(x=view.trial_numbers, y=view.epsilon, mode="lines", name="epsilon"),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=view.reward_numbers, y=view.rewards, mode="markers", name="reward",
            marker={"size": 5, "opacity": 0.6},
        ),
        row=2,
        col=1,
    )  # fmt: skip
    if len(view.rewards) >= REWARD_WINDOW:
        smooth = np.convolve(view.rewards, np.ones(REWARD_WINDOW) / REWARD_WINDOW, mode="valid")
        fig.add_trace(
            go.Scatter(
                x=view.reward_numbers[REWARD_WINDOW - 1 :], y=[float(v) for v in smooth],
                mode="lines", name=f"reward, mean of {REWARD_WINDOW}",
            ),
            row=2,
            col=1,
        )  # fmt: skip
    fig.update_xaxes(title_text="trial", row=2, col=1)
    fig.update_layout(title={"text": "Q-learning: epsilon and reward per trial"})
    return fig


def plot_greedy_value(
    study: Study,
    sampler: QLearningSampler | None = None,
    params: Sequence[str] | None = None,
) -> Figure:
    """Plot the greedy value ``max_a Q(s, a)`` over one or two parameters, as a heatmap.

    Each cell shows the largest greedy value among the visited states that project
    onto it (the other parameters are maximized out); its text is the greedy move
    of that best state: an arrow along the plotted axes, ``·`` for stay, ``•`` for
    a move along another parameter. Unvisited cells are empty.

    Example:

        .. code-block:: python

            import optuna
            from optuna_qlearn import QLearningSampler
            from optuna_qlearn.visualization import plot_greedy_value


            def objective(trial):
                x = trial.suggest_int("x", -10, 10)
                y = trial.suggest_int("y", -10, 10)
                return (x - 3) ** 2 + (y + 2) ** 2


            study = optuna.create_study(sampler=QLearningSampler(seed=0))
            study.optimize(objective, n_trials=60)
            plot_greedy_value(study).show()

    Args:
        study: A single-objective study run by a :class:`~optuna_qlearn.QLearningSampler`
            or :class:`~optuna_qlearn.DQNSampler`.
        sampler: The sampler that ran it (same settings suffice). By default the
            study's own sampler if it is one, else the settings that
            :func:`optuna_qlearn.dashboard.publish` stored in the study, else a
            default ``QLearningSampler()``.
        params: One or two parameter names for the x and y axes; by default the two
            with the most grid points.

    Returns:
        A :class:`plotly.graph_objects.Figure` with one ``Heatmap`` trace.

    Raises:
        ImportError: If Plotly is not installed.
        TypeError: If ``study`` is not a study or ``sampler`` not a ``QLearningSampler``.
        ValueError: If the study is multi-objective or has no finished trials,
            ``params`` does not name one or two of its parameters, or ``sampler``
            does not fit the trials' records.
    """
    _import_plotly()
    return greedy_value_figure(agent_view(study, sampler, params))


def plot_visits(
    study: Study,
    sampler: QLearningSampler | None = None,
    params: Sequence[str] | None = None,
) -> Figure:
    """Plot the visit counts of the Q-table over one or two parameters, as a heatmap.

    A cell counts the Q-table updates of the visited states that project onto it,
    summed over the actions and over the other parameters: where the agent has
    been learning.

    Example:

        .. code-block:: python

            from optuna_qlearn.visualization import plot_visits

            plot_visits(study, params=["x", "y"]).show()

    Args:
        study: See :func:`plot_greedy_value`.
        sampler: See :func:`plot_greedy_value`.
        params: See :func:`plot_greedy_value`.

    Returns:
        A :class:`plotly.graph_objects.Figure` with one ``Heatmap`` trace (unvisited
        cells ``None``).

    Raises:
        ImportError: If Plotly is not installed.
        TypeError: See :func:`plot_greedy_value`.
        ValueError: See :func:`plot_greedy_value`.
    """
    _import_plotly()
    return visits_figure(agent_view(study, sampler, params))


def plot_policy(
    study: Study,
    sampler: QLearningSampler | None = None,
    params: Sequence[str] | None = None,
) -> Figure:
    """Plot the learned greedy policy as arrows over one or two parameters.

    Every visited cell gets a marker coloured by its greedy value and, when the
    greedy move of its best state changes a plotted parameter, an arrow from the
    cell to where that move leads (its length is the move's size in grid steps).
    Open circles mark a greedy "stay", crosses a move along a parameter that is
    not plotted.

    Example:

        .. code-block:: python

            from optuna_qlearn.visualization import plot_policy

            plot_policy(study).show()

    Args:
        study: See :func:`plot_greedy_value`.
        sampler: See :func:`plot_greedy_value`.
        params: See :func:`plot_greedy_value`.

    Returns:
        A :class:`plotly.graph_objects.Figure` with one ``Scatter`` trace of the
        visited cells and one layout annotation (arrow) per move along the axes.

    Raises:
        ImportError: If Plotly is not installed.
        TypeError: See :func:`plot_greedy_value`.
        ValueError: See :func:`plot_greedy_value`.
    """
    _import_plotly()
    return policy_figure(agent_view(study, sampler, params))


def plot_epsilon_reward(study: Study, sampler: QLearningSampler | None = None) -> Figure:
    """Plot the exploration rate and the reward of each trial's move, per trial.

    The top panel is the epsilon each trial was proposed with (its
    ``qlearn:epsilon`` attribute); the bottom one the reward each trial's own move
    got, exactly as the agent learned it, with a running mean over
    :data:`REWARD_WINDOW` moves.

    Example:

        .. code-block:: python

            from optuna_qlearn.visualization import plot_epsilon_reward

            plot_epsilon_reward(study).show()

    Args:
        study: See :func:`plot_greedy_value`.
        sampler: See :func:`plot_greedy_value`.

    Returns:
        A :class:`plotly.graph_objects.Figure` with the traces ``"epsilon"``,
        ``"reward"`` and, from :data:`REWARD_WINDOW` rewards on, their running mean.

    Raises:
        ImportError: If Plotly is not installed.
        TypeError: See :func:`plot_greedy_value`.
        ValueError: If the study is multi-objective or has no finished trials, or
            ``sampler`` does not fit the trials' records.
    """
    _import_plotly()
    return epsilon_reward_figure(agent_view(study, sampler))


#: The dashboard's graph-object id of each figure, in publishing order.
GRAPH_IDS = ("qlearn-greedy-value", "qlearn-visits", "qlearn-policy", "qlearn-epsilon-reward")


def figures(view: AgentView) -> dict[str, Figure]:
    """Every figure of a view, keyed by the dashboard's graph-object ids (:data:`GRAPH_IDS`)."""
    makers = (greedy_value_figure, visits_figure, policy_figure, epsilon_reward_figure)
    return {graph_id: make(view) for graph_id, make in zip(GRAPH_IDS, makers)}
