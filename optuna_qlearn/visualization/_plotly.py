"""Plotly figures of the agent's view (the functions of :mod:`optuna_qlearn.visualization`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

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
    from optuna.study import Study
    from plotly.graph_objects import Figure

    from optuna_qlearn.sampler import QLearningSampler

#: Trials in the running mean of the reward curve.
REWARD_WINDOW = 10
#: Bar colours of the decision figure: the network's Q and the total Q, and those of
#: the chosen candidate (highlighted).
DECISION_COLORS = {
    "q_net": "rgba(99, 110, 250, 0.45)",
    "q": "rgb(99, 110, 250)",
    "chosen_q_net": "rgba(239, 85, 59, 0.5)",
    "chosen_q": "rgb(239, 85, 59)",
}


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
    require_table(view, "plot_greedy_value")
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
    require_table(view, "plot_visits")
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
    require_table(view, "plot_policy")
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


def reward_title(view: AgentView) -> str:
    """The title of the reward panel: a move of the tabular agent, an action of a policy."""
    return "reward of the chosen action" if view.learned else "reward of the move"


def epsilon_reward_figure(view: AgentView) -> Figure:
    """Epsilon and reward per trial (see :func:`plot_epsilon_reward`)."""
    go = _import_plotly()
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, subplot_titles=("epsilon", reward_title(view))
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


def decision_figure(decision: DecisionView) -> Figure:
    """One trial's candidates and the chosen one's features (see :func:`plot_decision`)."""
    go = _import_plotly()
    from plotly.subplots import make_subplots

    chosen = decision.chosen
    shown = chosen.name if chosen is not None else decision.label
    # Sized for Plotly's default height of 450 px, which is also that of the dashboard's
    # cards (half the page wide): the bars, and beside them a compact features table.
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.62, 0.38],
        horizontal_spacing=0.05,
        specs=[[{"type": "xy"}, {"type": "table"}]],
        subplot_titles=("Q-value of each candidate action", f"features of {shown}"),
    )
    cands = decision.candidates
    names = [c.name for c in cands]
    features = "".join(f"<br>  {k} = {v:.4g}" for k, v in decision.features.items())
    hover = [
        f"{c.name}<br>Q (network) = {c.q_net:.4g}<br>correction = {c.q - c.q_net:.4g}"
        f"<br>Q (total) = {c.q:.4g}"
        + (f"<br><b>chosen</b>; features:{features}" if c.chosen else "")
        for c in cands
    ]
    colors = DECISION_COLORS
    fig.add_trace(
        go.Bar(
            x=names, y=[c.q_net for c in cands], name="Q (network)", hovertext=hover,
            hoverinfo="text",
            marker={"color": [colors["chosen_q_net" if c.chosen else "q_net"] for c in cands]},
        ),
        row=1,
        col=1,
    )  # fmt: skip
    fig.add_trace(
        go.Bar(
            x=names, y=[c.q for c in cands], name="Q (total)", hovertext=hover, hoverinfo="text",
            marker={
                "color": [colors["chosen_q" if c.chosen else "q"] for c in cands],
                "line": {"color": "black", "width": [2 if c.chosen else 0 for c in cands]},
            },
        ),
        row=1,
        col=1,
    )  # fmt: skip
    fig.add_trace(
        go.Table(
            header={
                "values": ["feature", "value"], "align": "left", "height": 20,
                "font": {"size": 10},
            },
            cells={
                "values": [
                    list(decision.features), [f"{v:.4g}" for v in decision.features.values()],
                ],
                "align": "left", "height": 18, "font": {"size": 10},
            },
            columnwidth=[3, 2],
            name="features",
        ),
        row=1,
        col=2,
    )  # fmt: skip
    if chosen is not None:
        fig.add_annotation(
            x=chosen.name, y=max(chosen.q, chosen.q_net, 0.0), text="chosen", showarrow=True,
            arrowhead=2, ax=0, ay=-24, row=1, col=1,
        )  # fmt: skip
    # No axis title (the panel's title says it): the table shares the panel's height.
    fig.update_xaxes(tickfont={"size": 10}, tickangle=-60, row=1, col=1)
    fig.update_yaxes(title_text="Q(s, a)", row=1, col=1)
    fig.update_annotations(font_size=12)  # the subplot titles (and the mark)
    fig.update_layout(
        barmode="group",
        margin={"l": 55, "r": 15, "t": 58, "b": 30},
        # Inside the bars' panel, top right: the bars are sorted, so the low ones are there.
        legend={
            "x": 0.6,
            "xanchor": "right",
            "y": 1,
            "yanchor": "top",
            "bgcolor": "rgba(255, 255, 255, 0.7)",
            "font": {"size": 10},
        },
        title={"text": decision_title(decision), "font": {"size": 14}},
    )
    return fig


def decision_title(decision: DecisionView) -> str:
    """The decision figure's title (short: the dashboard's cards are narrow)."""
    how = f"at random, epsilon {decision.epsilon:.3g}" if decision.explored else "greedy"
    return f"Q-learning: the decision of trial {decision.number}: {decision.label} ({how})"


def n_updates(n: int) -> str:
    """A bar's label in the correction figure."""
    return f"{n} update" if n == 1 else f"{n} updates"


def correction_figure(view: AgentView) -> Figure:
    """The per-study correction table of a learned policy (see :func:`plot_correction`)."""
    require_learned(view, "plot_correction")
    go = _import_plotly()
    kinds = list(view.correction)
    q = [view.correction[k]["q"] for k in kinds]
    updates = [int(view.correction[k]["updates"]) for k in kinds]
    picked = [view.chosen_kinds.get(k, (0, 0)) for k in kinds]
    hover = [
        f"{k}<br>correction = {v:.4g}<br>updates: {u}<br>chosen by {n} trials ({r} at random)"
        for k, v, u, (n, r) in zip(kinds, q, updates, picked)
    ]
    fig = go.Figure(
        go.Bar(
            x=kinds, y=q, text=[n_updates(u) for u in updates], textposition="outside",
            cliponaxis=False, hovertext=hover, hoverinfo="text", name="correction",
        )
    )  # fmt: skip
    fig.update_layout(
        title={"text": "Q-learning: the study's correction of the network's Q, per action kind"},
        xaxis={"title": {"text": "action kind"}},
        yaxis={"title": {"text": "correction C[kind]"}},
    )
    return fig


def plot_greedy_value(
    study: Study,
    sampler: QLearningSampler | None = None,
    params: Sequence[str] | None = None,
) -> Figure:
    """Plot the greedy value ``max_a Q(s, a)`` over one or two parameters, as a heatmap.

    A view of the tabular agent's Q-table (``QLearningSampler(policy="table")`` or a
    ``DQNSampler``); a learned policy has no Q-table over grid points (see
    :func:`plot_decision` and :func:`plot_correction`). Each cell shows the largest
    greedy value among the visited states that project onto it (the other
    parameters are maximized out); its text is the greedy move of that best state:
    an arrow along the plotted axes, ``·`` for stay, ``•`` for a move along another
    parameter. Unvisited cells are empty.

    Example:

        .. code-block:: python

            import optuna
            from optuna_qlearn import QLearningSampler
            from optuna_qlearn.visualization import plot_greedy_value


            def objective(trial):
                x = trial.suggest_int("x", -10, 10)
                y = trial.suggest_int("y", -10, 10)
                return (x - 3) ** 2 + (y + 2) ** 2


            study = optuna.create_study(sampler=QLearningSampler(policy="table", seed=0))
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
            ``params`` does not name one or two of its parameters, ``sampler``
            does not fit the trials' records, or it has a learned policy (this view
            needs ``policy="table"``).
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
    been learning. A view of the tabular agent (``policy="table"``), as
    :func:`plot_greedy_value`.

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
    not plotted. A view of the tabular agent (``policy="table"``), as
    :func:`plot_greedy_value`.

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
    (the tabular agent) or chosen action (a learned policy: the improvement of the
    best value, scaled) got, exactly as the agent learned it, with a running mean
    over :data:`REWARD_WINDOW` trials. Works with every policy.

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


def plot_decision(study: Study, trial_number: int | None = None) -> Figure:
    """Plot why a learned policy chose a trial's point: every candidate's Q-values.

    At each trial the learned policy (``QLearningSampler(policy="default")``, the
    default) lists candidate actions (neighbour moves such as ``lr+2``,
    ``restart-best``, the density model's ``model`` candidates, ``random``), gives
    each ``Q(s, a) = Q_net(features) + C[kind]``, the network's value plus the
    study's correction of the action's kind, and picks epsilon-greedily. The left
    panel has two bars per candidate, sorted by total Q: the network's Q and the
    total; the chosen candidate is highlighted (and marked "chosen"). The right panel
    lists the chosen candidate's features, as the network saw them. Everything comes
    from the trial's ``qlearn:decision`` attribute: no replay, no sampler needed.

    Example:

        .. code-block:: python

            import optuna
            from optuna_qlearn import QLearningSampler
            from optuna_qlearn.visualization import plot_decision


            def objective(trial):
                x = trial.suggest_int("x", -10, 10)
                y = trial.suggest_int("y", -10, 10)
                return (x - 3) ** 2 + (y + 2) ** 2


            study = optuna.create_study(sampler=QLearningSampler(seed=0))
            study.optimize(objective, n_trials=30)
            plot_decision(study).show()  # the last trial
            plot_decision(study, trial_number=5).show()

    Args:
        study: A single-objective study run by a :class:`~optuna_qlearn.QLearningSampler`
            with a learned policy.
        trial_number: The trial; by default the last trial with a decision.

    Returns:
        A :class:`plotly.graph_objects.Figure` with the ``Bar`` traces
        ``"Q (network)"`` and ``"Q (total)"`` (one bar per candidate) and a ``Table``
        trace ``"features"``.

    Raises:
        ImportError: If Plotly is not installed.
        TypeError: If ``study`` is not a study.
        ValueError: If the study is multi-objective, ``trial_number`` is not one of its
            trials, or that trial (by default: every trial) has no decision of a
            learned policy (``policy="table"`` stores none).
    """
    _import_plotly()
    return decision_figure(decision_view(study, trial_number))


def plot_correction(study: Study, sampler: QLearningSampler | None = None) -> Figure:
    """Plot a learned policy's per-study correction table: one bar per action kind.

    The learned policy adds to the network's Q-value of an action the study's own
    correction of the action's kind (``move-1``, ``move-2``, ``move-4``,
    ``restart-best``, ``model``, ``random``), learned from the trials' values by the
    Bellman update (:meth:`~optuna_qlearn.QLearningSampler.correction_table`). A
    positive bar: actions of that kind paid more in this study than the network
    expected. Each bar's text is its number of updates; hovering it also shows how
    many trials chose that kind.

    Example:

        .. code-block:: python

            from optuna_qlearn.visualization import plot_correction

            plot_correction(study).show()

    Args:
        study: A single-objective study run by a :class:`~optuna_qlearn.QLearningSampler`
            with a learned policy.
        sampler: The sampler that ran it (same settings suffice); see
            :func:`plot_greedy_value`.

    Returns:
        A :class:`plotly.graph_objects.Figure` with one ``Bar`` trace ``"correction"``.

    Raises:
        ImportError: If Plotly is not installed.
        TypeError: See :func:`plot_greedy_value`.
        ValueError: If the study is multi-objective or has no finished trials, the
            sampler does not fit the trials' records, or it is the tabular agent
            (``policy="table"``, or a ``DQNSampler``), which has no correction table.
    """
    _import_plotly()
    return correction_figure(agent_view(study, sampler))


#: The dashboard's graph-object ids of the tabular agent's figures, in publishing order.
TABLE_GRAPH_IDS = ("qlearn-greedy-value", "qlearn-visits", "qlearn-policy", "qlearn-epsilon-reward")
#: The dashboard's graph-object ids of a learned policy's figures, in publishing order
#: (``"qlearn-decision"`` once a trial has a decision).
POLICY_GRAPH_IDS = ("qlearn-decision", "qlearn-correction", "qlearn-epsilon-reward")
#: Every graph-object id the dashboard writes.
GRAPH_IDS = (*TABLE_GRAPH_IDS, "qlearn-decision", "qlearn-correction")


def figures(view: AgentView) -> dict[str, Figure]:
    """Every figure of a view, keyed by the dashboard's graph-object ids.

    Those of :data:`TABLE_GRAPH_IDS` for the tabular agent; those of
    :data:`POLICY_GRAPH_IDS` for a learned policy (the decision figure is of the last
    trial with a decision, and left out while there is none).
    """
    if view.learned:
        out: dict[str, Figure] = {}
        if view.decision is not None:
            out["qlearn-decision"] = decision_figure(view.decision)
        out["qlearn-correction"] = correction_figure(view)
        out["qlearn-epsilon-reward"] = epsilon_reward_figure(view)
        return out
    makers = (greedy_value_figure, visits_figure, policy_figure, epsilon_reward_figure)
    return {graph_id: make(view) for graph_id, make in zip(TABLE_GRAPH_IDS, makers)}
