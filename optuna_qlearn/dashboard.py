"""Open a storage in optuna-dashboard, with the Q-learning agent's view of each study.

publish(study) writes what the agent has learned into the study itself, where
optuna-dashboard shows it on the study's page: the greedy value max_a Q(s, a)
over two parameters with the greedy moves as arrows, the visit counts, epsilon
and reward per trial, and a note with the sampler's settings and greedy policy.
DashboardCallback refreshes these views during study.optimize.

The command serves a storage (an RDB URL such as sqlite:///study.db, a SQLite
file, a journal file or a redis:// URL) on 127.0.0.1; --publish refreshes the
Q-learning views of its studies first.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import inspect
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.search_space import IntersectionSearchSpace
from optuna.trial import FrozenTrial, TrialState

from optuna_qlearn._core.qlearning import MoveSet
from optuna_qlearn._core.rewards import RewardModel
from optuna_qlearn._grid import Grid, State
from optuna_qlearn._replay import KEY_RECORD, KEY_STALE, parse_record, trial_value
from optuna_qlearn.sampler import USER_ATTR_PREFIX, QLearningSampler

if TYPE_CHECKING:
    from optuna.storages import BaseStorage
    from optuna.study import Study
    from plotly.graph_objects import Figure

_logger = optuna.logging.get_logger(__name__)

#: Graph-object ids of the figures :func:`publish` writes (re-publishing overwrites them).
GRAPH_IDS = ("qlearn-greedy-value", "qlearn-visits", "qlearn-epsilon-reward")
#: Study system attribute holding the settings of the last published sampler.
KEY_SETTINGS = "qlearn:dashboard:sampler"
#: Invisible Markdown line opening the sampler's section of the study note; text
#: outside the section (a user's own note) is kept when the section is refreshed.
NOTE_BEGIN = "[//]: # (qlearn:begin)"
#: Invisible Markdown line closing the sampler's section of the study note.
NOTE_END = "[//]: # (qlearn:end)"

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
_ARROWS = {
    (1, 0): "→", (-1, 0): "←", (0, 1): "↑", (0, -1): "↓",
    (1, 1): "↗", (-1, 1): "↖", (1, -1): "↘", (-1, -1): "↙",
}  # fmt: skip


# ---------------------------------------------------------------------- the view
@dataclass
class AgentView:
    """The agent's state projected onto two parameters, ready to plot.

    Cells are indexed ``[y][x]``: ``x`` is the first chosen parameter, ``y`` the
    second (a single row when the grid has one parameter). A cell's greedy value is
    the largest ``max_a Q(s, a)`` among the visited states that project onto it
    (the other parameters are maximized out); its arrow is the greedy action of
    that best state; its visits are the Q-table updates summed over the actions and
    the other parameters. Unvisited cells hold ``None``.

    Args:
        params: The one or two parameters on the axes, ``(x, y)``.
        x_labels: Tick labels of the x axis (one per grid value).
        y_labels: Tick labels of the y axis.
        value: Greedy value per cell.
        visits: Visit count per cell (0 when unvisited).
        arrows: Greedy move per cell: an arrow for a move along the shown axes,
            ``"·"`` for stay, ``"•"`` for a move along another parameter.
        hover: Details per cell (Plotly hover text, ``<br>``-separated).
        policy: Visited states sorted by greedy value, best first:
            ``{"params", "action", "q", "next_params", "visits"}``.
        trial_numbers: Trials with a ``qlearn:epsilon`` attribute.
        epsilon: Their exploration rate when they were proposed.
        reward_numbers: Trials whose last move got a reward.
        rewards: That reward (recomputed by :func:`trial_rewards`).
        settings: Sampler settings for the note.
        grid_axes: ``(name, number of points, first value, last value)`` per axis.
        n_states: Grid points in total.
        n_visited: States in the Q-table.
        n_trials: Finished trials of the study.
        epsilon_now: The agent's exploration rate now.
        best: ``(value, params)`` of the best trial, if any.
        sampler_name: Class name of the sampler the view was built with.
        warnings: Caveats to show in the note.
    """

    params: tuple[str, ...]
    x_labels: list[str]
    y_labels: list[str]
    value: list[list[float | None]]
    visits: list[list[int]]
    arrows: list[list[str]]
    hover: list[list[str]]
    policy: list[dict[str, Any]]
    trial_numbers: list[int]
    epsilon: list[float]
    reward_numbers: list[int]
    rewards: list[float]
    settings: dict[str, Any]
    grid_axes: list[tuple[str, int, Any, Any]]
    n_states: int
    n_visited: int
    n_trials: int
    epsilon_now: float
    best: tuple[float, dict[str, Any]] | None = None
    sampler_name: str = "QLearningSampler"
    warnings: list[str] = field(default_factory=list)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _fmt_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())


def sampler_settings(sampler: QLearningSampler) -> dict[str, Any]:
    """The settings that rebuild ``sampler``'s agent (what replaying a study depends on).

    Args:
        sampler: A :class:`~optuna_qlearn.QLearningSampler`.

    Returns:
        Its :attr:`~optuna_qlearn.QLearningSampler.parameters`;
        :func:`sampler_from_settings` turns them back into a sampler that learns the
        same Q-table from a study.
    """
    return dict(sampler.parameters)


def sampler_from_settings(settings: dict[str, Any]) -> QLearningSampler:
    """Rebuild a sampler from :func:`sampler_settings`.

    Args:
        settings: From :func:`sampler_settings`.

    Returns:
        The sampler.

    Raises:
        ValueError: If a setting is unknown to this version or out of range.
    """
    accepted = set(inspect.signature(QLearningSampler.__init__).parameters) - {"self"}
    unknown = sorted(set(settings) - accepted)
    if unknown:
        raise ValueError(f"Unknown sampler settings {unknown}.")
    return QLearningSampler(**settings)


def _resolve_sampler(
    study: Study, sampler: QLearningSampler | None
) -> tuple[QLearningSampler, str]:
    """The sampler to rebuild the agent with, and how it was found."""
    if sampler is not None:
        if not isinstance(sampler, QLearningSampler):
            raise TypeError(
                f"sampler must be a QLearningSampler (or subclass), got {type(sampler).__name__}."
            )
        return sampler, "given"
    if isinstance(study.sampler, QLearningSampler):
        return study.sampler, "the study's sampler"
    stored = study._storage.get_study_system_attrs(study._study_id).get(KEY_SETTINGS)
    if isinstance(stored, dict):
        if stored.get("class") != "QLearningSampler":
            raise ValueError(
                f"Study {study.study_name!r} was last published with a {stored.get('class')}; "
                "pass that sampler: publish(study, sampler=...)."
            )
        kwargs = dict(stored.get("kwargs") or {})
        try:
            return sampler_from_settings(kwargs), "the settings stored by the last publish"
        except (TypeError, ValueError) as exc:
            _logger.warning(f"Ignoring stored sampler settings {kwargs!r}: {exc}")
    return QLearningSampler(), "default settings (no sampler given)"


def _check_records(study: Study, grid: Grid, n_actions: int) -> None:
    """Refuse to rebuild a table with settings that do not match the study's records."""
    on_grid = other = 0
    for trial in study._storage.get_all_trials(study._study_id, deepcopy=False):
        attrs = trial.system_attrs.get(KEY_RECORD)
        if not isinstance(attrs, dict):
            continue
        rec = parse_record(trial, grid)
        if rec is None:
            other += 1
            continue
        on_grid += 1
        bad = [a for _, a in rec.path if not 0 <= a < n_actions]
        if bad:
            raise ValueError(
                f"Trial {trial.number} moved with action {bad[0]}, but this sampler has only "
                f"{n_actions} actions: its moves/step_sizes differ from the sampler that ran "
                "the study. Pass that sampler: publish(study, sampler=...)."
            )
    if other and not on_grid:
        raise ValueError(
            f"None of the {other} trials proposed by a QLearningSampler lies on this sampler's "
            "grid: its n_bins/max_bins (or the search space) differ from those of the sampler "
            "that ran the study. Pass that sampler: publish(study, sampler=...)."
        )


def trial_rewards(study: Study, grid: Grid, reward: RewardModel) -> dict[int, float]:
    """Recompute the reward each trial's own move received, as the agent learned it.

    Replays the finished trials in number order through a fresh copy of the agent's
    reward model (rewards are causal, see :mod:`optuna_qlearn._core.rewards`), exactly as
    :meth:`~optuna_qlearn._core.agent.QLearningAgent.learn` rewards the last move of a
    trial's path. Trials that were not reached by a move (episode starts, enqueued
    or other samplers' trials) get no reward but still enter the value history.

    Args:
        study: The study.
        grid: The grid of the agent.
        reward: The agent's reward model (only its mode and direction are used).

    Returns:
        Trial number -> reward.
    """
    model = RewardModel(reward.mode, minimize=reward.sign > 0, clip=reward.clip)
    learned: dict[State, float] = {}
    out: dict[int, float] = {}
    trials = study._storage.get_all_trials(study._study_id, deepcopy=False, states=_FINISHED)
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.system_attrs.get(KEY_STALE):
            continue
        rec = parse_record(trial, grid)
        if rec is not None:
            state: State | None = rec.state
        elif all(
            name in trial.params and trial.distributions[name] == grid.distributions[name]
            for name in grid.names
        ):
            state = grid.encode(trial.params)
        else:
            state = None
        if state is None:
            continue
        value = trial_value(trial)
        if rec is not None and rec.path:
            previous = learned.get(rec.path[-1][0])
            out[trial.number] = (
                model.failure_reward() if value is None else model.reward(value, previous)
            )
        if value is not None:
            model.observe(value)
            learned.setdefault(state, value)
    return out


def _axis_labels(grid: Grid, index: int) -> list[str]:
    return [_fmt(v) for v in grid.axes[index].values]


def _choose_params(grid: Grid, params: Sequence[str] | None) -> tuple[str, ...]:
    if params is not None:
        chosen = tuple(params)
        unknown = [p for p in chosen if p not in grid.names]
        if unknown or not 1 <= len(chosen) <= 2 or len(set(chosen)) != len(chosen):
            raise ValueError(
                f"params must name one or two distinct parameters among {list(grid.names)}, "
                f"got {list(chosen)}."
            )
        return chosen
    # The two axes with most grid points (ties: name order).
    order = sorted(range(grid.ndim), key=lambda i: (-grid.shape[i], grid.names[i]))
    return tuple(grid.names[i] for i in order[:2])


def agent_view(
    study: Study,
    sampler: QLearningSampler | None = None,
    params: Sequence[str] | None = None,
    top_k: int = 20,
) -> AgentView:
    """Build the agent's view of a study (the data behind :func:`publish`).

    Args:
        study: A study run by a :class:`~optuna_qlearn.QLearningSampler`.
        sampler: The sampler that ran it (same settings suffice); by default the
            study's own sampler if it is one, else the settings stored by the last
            :func:`publish`, else a default ``QLearningSampler()``.
        params: One or two parameter names for the heatmap axes; by default the
            two with the most grid points.
        top_k: Rows of the greedy-policy table.

    Returns:
        The view.

    Raises:
        ValueError: If the study has no finished trials with a shared search space,
            ``params`` are not parameters of the grid, or the sampler's settings do
            not match the trials' records.
        TypeError: If ``sampler`` is not a ``QLearningSampler``.
    """
    resolved, origin = _resolve_sampler(study, sampler)
    return _build_view(study, resolved, origin, params, top_k)


def _build_view(
    study: Study,
    sampler: QLearningSampler,
    origin: str,
    params: Sequence[str] | None,
    top_k: int,
) -> AgentView:
    warnings = []
    if origin.startswith("default"):
        warnings.append(
            "Rebuilt with default QLearningSampler settings: pass the sampler that ran the "
            "study if it had other settings."
        )
    space = {
        k: v for k, v in IntersectionSearchSpace(include_pruned=True).calculate(study).items()
        if not v.single()
    }  # fmt: skip
    if space:
        probe = Grid(space, n_bins=sampler.n_bins, max_bins=sampler.max_bins)
        n_actions = MoveSet(probe.shape, sampler.moves, sampler.step_sizes).n_actions
        _check_records(study, probe, n_actions)
    grid, agent = sampler.agent(study)  # raises ValueError without a shared search space
    chosen = _choose_params(grid, params)
    ix = [grid.names.index(p) for p in chosen]
    moves = agent.moves
    labels = moves.labels()
    label_index = {lab: a for a, lab in enumerate(labels)}

    x_labels = _axis_labels(grid, ix[0])
    y_labels = _axis_labels(grid, ix[1]) if len(ix) > 1 else [""]
    nx, ny = len(x_labels), len(y_labels)
    value: list[list[float | None]] = [[None] * nx for _ in range(ny)]
    visits = [[0] * nx for _ in range(ny)]
    best_state: list[list[dict[str, Any] | None]] = [[None] * nx for _ in range(ny)]
    policy: list[dict[str, Any]] = []
    for row in sampler.q_table(study):
        if not row["q"]:
            continue
        state = tuple(row["state"])
        action = max(row["q"], key=lambda lab: (row["q"][lab], -label_index[lab]))
        q = float(row["q"][action])
        n_visits = int(sum(row["visits"].values()))
        entry: dict[str, Any] = {
            "params": row["params"],
            "action": action,
            "q": q,
            "next_params": grid.decode(moves.apply(state, label_index[action])),
            "visits": n_visits,
            "state": state,
        }
        policy.append(entry)
        x = state[ix[0]]
        y = state[ix[1]] if len(ix) > 1 else 0
        visits[y][x] += n_visits
        current = value[y][x]
        if current is None or q > current:
            value[y][x] = q
            best_state[y][x] = entry

    arrows = [[""] * nx for _ in range(ny)]
    hover = [[""] * nx for _ in range(ny)]
    for y in range(ny):
        for x in range(nx):
            where = f"{chosen[0]}={x_labels[x]}"
            if len(chosen) > 1:
                where += f", {chosen[1]}={y_labels[y]}"
            cell = best_state[y][x]
            if cell is None:
                hover[y][x] = f"{where}<br>not visited"
                continue
            delta = moves.deltas[label_index[cell["action"]]]
            dx = int(np.sign(delta[ix[0]]))
            dy = int(np.sign(delta[ix[1]])) if len(ix) > 1 else 0
            if (dx, dy) != (0, 0):
                arrows[y][x] = _ARROWS[(dx, dy)]
            else:
                arrows[y][x] = "·" if cell["action"] == "stay" else "•"
            hover[y][x] = (
                f"{where}<br>max Q = {cell['q']:.4g} at {_fmt_params(cell['params'])}"
                f"<br>greedy move: {cell['action']}<br>visits here: {visits[y][x]}"
            )
    policy.sort(key=lambda e: (-e["q"], e["state"]))
    for e in policy:
        del e["state"]

    trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
    numbers: list[int] = []
    eps: list[float] = []
    for t in sorted(trials, key=lambda t: t.number):
        eps_t = t.user_attrs.get(USER_ATTR_PREFIX + "epsilon")
        if isinstance(eps_t, (int, float)) and math.isfinite(eps_t):
            numbers.append(t.number)
            eps.append(float(eps_t))
    rewards = trial_rewards(study, grid, agent.rewards)
    finished = [t for t in trials if t.state in _FINISHED]
    best: tuple[float, dict[str, Any]] | None = None
    try:
        best_trial = study.best_trial
        if best_trial.value is not None:
            best = (float(best_trial.value), dict(best_trial.params))
    except ValueError:
        pass
    settings = sampler_settings(sampler)
    extra = getattr(sampler, "dqn_config", None)  # DQNSampler's network settings
    if dataclasses.is_dataclass(extra) and not isinstance(extra, type):
        settings.update({f"dqn.{k}": v for k, v in dataclasses.asdict(extra).items()})
    return AgentView(
        params=chosen,
        x_labels=x_labels,
        y_labels=y_labels,
        value=value,
        visits=visits,
        arrows=arrows,
        hover=hover,
        policy=policy[:top_k],
        trial_numbers=numbers,
        epsilon=eps,
        reward_numbers=sorted(rewards),
        rewards=[rewards[n] for n in sorted(rewards)],
        settings=settings,
        grid_axes=[(a.name, a.size, a.values[0], a.values[-1]) for a in grid.axes],
        n_states=grid.n_states,
        n_visited=len(policy),
        n_trials=len(finished),
        epsilon_now=float(agent.epsilon),
        best=best,
        sampler_name=type(sampler).__name__,
        warnings=warnings,
    )


# ---------------------------------------------------------------------- figures
def figures(view: AgentView) -> dict[str, Figure]:
    """Plotly figures of a view, keyed by their graph-object id (:data:`GRAPH_IDS`).

    Args:
        view: From :func:`agent_view`.

    Returns:
        ``{"qlearn-greedy-value": heatmap with arrows, "qlearn-visits": heatmap,
        "qlearn-epsilon-reward": two line plots}``.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    x_title = view.params[0]
    y_title = view.params[1] if len(view.params) > 1 else ""
    axes = {
        "xaxis": {
            "title": {"text": x_title},
            "tickmode": "array",
            "tickvals": list(range(len(view.x_labels))),
            "ticktext": view.x_labels,
        },
        "yaxis": {
            "title": {"text": y_title},
            "tickmode": "array",
            "tickvals": list(range(len(view.y_labels))),
            "ticktext": view.y_labels,
        },
    }
    over = " × ".join(view.params)
    value_fig = go.Figure(
        go.Heatmap(
            z=view.value,
            text=view.arrows,
            texttemplate="%{text}",
            hovertext=view.hover,
            hoverinfo="text",
            colorscale="Viridis",
            colorbar={"title": {"text": "max Q"}},
        )
    )
    value_fig.update_layout(
        title={"text": f"Q-learning: greedy value max_a Q(s, a) over {over}"}, **axes
    )
    visits_fig = go.Figure(
        go.Heatmap(
            z=[[v if v > 0 else None for v in row] for row in view.visits],
            hovertext=[[f"{h}" for h in row] for row in view.hover],
            hoverinfo="text",
            colorscale="Blues",
            colorbar={"title": {"text": "visits"}},
        )
    )
    visits_fig.update_layout(title={"text": f"Q-learning: visit counts over {over}"}, **axes)

    curves = make_subplots(
        rows=2, cols=1, shared_xaxes=True, subplot_titles=("epsilon", "reward of the move")
    )
    curves.add_trace(
        go.Scatter(x=view.trial_numbers, y=view.epsilon, mode="lines", name="epsilon"),
        row=1,
        col=1,
    )
    curves.add_trace(
        go.Scatter(
            x=view.reward_numbers, y=view.rewards, mode="markers", name="reward",
            marker={"size": 5, "opacity": 0.6},
        ),
        row=2,
        col=1,
    )  # fmt: skip
    window = 10
    if len(view.rewards) >= window:
        smooth = np.convolve(view.rewards, np.ones(window) / window, mode="valid")
        curves.add_trace(
            go.Scatter(
                x=view.reward_numbers[window - 1 :], y=[float(v) for v in smooth],
                mode="lines", name=f"reward, mean of {window}",
            ),
            row=2,
            col=1,
        )  # fmt: skip
    curves.update_xaxes(title_text="trial", row=2, col=1)
    curves.update_layout(title={"text": "Q-learning: epsilon and reward per trial"})
    return dict(zip(GRAPH_IDS, (value_fig, visits_fig, curves)))


def note_markdown(view: AgentView, study_name: str = "") -> str:
    """The Markdown section :func:`publish` puts in the study note.

    Args:
        view: From :func:`agent_view`.
        study_name: Shown in the heading.

    Returns:
        Markdown: progress, the grid, the greedy policy table and the settings.
    """
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {view.sampler_name}" + (f" on {study_name}" if study_name else ""),
        "",
        f"*Agent view published by `optuna_qlearn.dashboard` after {view.n_trials} finished "
        f"trials ({now}).* The figures show the greedy value max_a Q(s, a) over "
        f"{' and '.join(view.params)} (other parameters maximized out; arrows: greedy move, "
        "· stay, • a move along another parameter), the visit counts, and epsilon and "
        "reward per trial.",
        "",
    ]
    lines += [f"> **Note:** {w}" for w in view.warnings]
    if view.warnings:
        lines.append("")
    covered = 100.0 * view.n_visited / max(view.n_states, 1)
    lines += [
        "### Progress",
        "",
        f"- states learned from: {view.n_visited} of {view.n_states} grid points ({covered:.2g}%)",
        f"- epsilon now: {view.epsilon_now:.3g}",
    ]
    if view.best is not None:
        lines.append(f"- best value: {view.best[0]:.6g} at {_fmt_params(view.best[1])}")
    if view.rewards:
        tail = view.rewards[-10:]
        lines.append(f"- mean reward of the last {len(tail)} moves: {np.mean(tail):.3g}")
    lines += ["", "### Grid", "", "| parameter | points | from | to |", "| --- | --- | --- | --- |"]
    lines += [f"| {n} | {k} | {_fmt(lo)} | {_fmt(hi)} |" for n, k, lo, hi in view.grid_axes]
    lines += [
        "",
        f"### Greedy policy (the {len(view.policy)} visited states with the highest max Q)",
        "",
        "| state | greedy move | Q | next | visits |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {_fmt_params(e['params'])} | {e['action']} | {e['q']:.4g} | "
        f"{_fmt_params(e['next_params'])} | {e['visits']} |"
        for e in view.policy
    ]
    lines += ["", "### Settings", "", "| setting | value |", "| --- | --- |"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in view.settings.items()]
    return "\n".join(lines)


def _merge_note(old: str, section: str) -> str:
    # Blank lines keep the markers out of the section's last table or paragraph.
    block = f"{NOTE_BEGIN}\n\n{section}\n\n{NOTE_END}"
    start, end = old.find(NOTE_BEGIN), old.find(NOTE_END)
    if start >= 0 and end > start:
        return old[:start] + block + old[end + len(NOTE_END) :]
    if old.strip():
        return f"{block}\n\n{old}"
    return block


def publish(
    study: Study,
    sampler: QLearningSampler | None = None,
    params: Sequence[str] | None = None,
    *,
    top_k: int = 20,
) -> list[str]:
    """Write the agent's view of ``study`` into the study, for optuna-dashboard.

    Saves three Plotly figures (:data:`GRAPH_IDS`; re-publishing replaces them) and
    a section of the study note (text outside the section is kept), using
    ``optuna_dashboard.save_plotly_graph_object`` and ``save_note``. The sampler's
    settings are stored too, so that a later ``publish`` without a sampler (for
    example ``optuna-qlearn dashboard --publish``) rebuilds the same table. Call it
    once at the end or from :class:`DashboardCallback`.

    Example:

        .. code-block:: python

            import optuna
            from optuna_qlearn import QLearningSampler
            from optuna_qlearn.dashboard import publish

            study = optuna.create_study(storage="sqlite:///qlearn.db", sampler=QLearningSampler())
            study.optimize(lambda t: (t.suggest_int("x", 0, 20) - 7) ** 2, n_trials=50)
            publish(study)  # then: optuna-qlearn dashboard sqlite:///qlearn.db

    Args:
        study: A study run by a :class:`~optuna_qlearn.QLearningSampler`.
        sampler: See :func:`agent_view`.
        params: One or two parameters for the heatmaps; see :func:`agent_view`.
        top_k: Rows of the greedy-policy table in the note.

    Returns:
        The graph-object ids written.

    Raises:
        ImportError: If optuna-dashboard or plotly is missing.
        ValueError: See :func:`agent_view`.
    """
    try:
        import optuna_dashboard
    except ImportError as exc:
        raise ImportError(
            "publish needs optuna-dashboard and plotly: pip install 'optuna-qlearn[dashboard]'"
        ) from exc
    resolved, origin = _resolve_sampler(study, sampler)
    view = _build_view(study, resolved, origin, params, top_k)
    ids = []
    for graph_id, fig in figures(view).items():
        ids.append(optuna_dashboard.save_plotly_graph_object(study, fig, graph_object_id=graph_id))
    old = optuna_dashboard.get_note(study)
    optuna_dashboard.save_note(study, _merge_note(old, note_markdown(view, study.study_name)))
    study._storage.set_study_system_attr(
        study._study_id,
        KEY_SETTINGS,
        {"class": type(resolved).__name__, "kwargs": sampler_settings(resolved)},
    )
    return ids


class DashboardCallback:
    """``study.optimize`` callback that refreshes the dashboard views every few trials.

    Publishes after every trial whose number is a multiple of ``every`` minus one
    (trials 9, 19, ... for ``every=10``), so with several workers each refresh
    happens once. Call :func:`publish` once more after ``optimize`` for the final
    state. A study too young to have a shared search space is skipped quietly.

    Example:

        .. code-block:: python

            from optuna_qlearn.dashboard import DashboardCallback, publish

            study.optimize(objective, n_trials=200, callbacks=[DashboardCallback(every=20)])
            publish(study)

    Args:
        every: Trials between refreshes.
        sampler: See :func:`agent_view`.
        params: See :func:`agent_view`.
    """

    def __init__(
        self,
        every: int = 10,
        sampler: QLearningSampler | None = None,
        params: Sequence[str] | None = None,
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be a positive number of trials, got {every}.")
        self.every = every
        self.sampler = sampler
        self.params = params
        self._lock = threading.Lock()

    def __call__(self, study: Study, trial: FrozenTrial) -> None:
        if (trial.number + 1) % self.every:
            return
        with self._lock:
            try:
                publish(study, self.sampler, self.params)
            except ValueError as exc:
                _logger.info(f"Dashboard views not refreshed at trial {trial.number}: {exc}")


# ---------------------------------------------------------------------- the command
def resolve_storage(storage: str) -> str | BaseStorage:
    """Turn the command's STORAGE argument into what optuna-dashboard opens.

    Args:
        storage: An RDB URL (``sqlite:///study.db``, ``postgresql://...``), a
            ``redis://`` URL (journal), a SQLite database file or a journal file.

    Returns:
        A URL string or a storage object.

    Raises:
        FileNotFoundError: If a path is neither a URL nor an existing file.
    """
    if "://" in storage:
        if storage.startswith(("redis://", "rediss://", "unix://")):
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalRedisBackend

            return JournalStorage(JournalRedisBackend(storage))
        return storage
    if not os.path.isfile(storage):
        raise FileNotFoundError(
            f"Storage {storage!r} is neither a URL (sqlite:///..., postgresql://..., redis://...) "
            "nor an existing SQLite or journal file."
        )
    with open(storage, "rb") as f:
        is_sqlite = f.read(16) == b"SQLite format 3\x00"
    if is_sqlite:
        return "sqlite:///" + os.path.abspath(storage)
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(storage))


def command_hint(storage: str, port: int | None = None) -> str:
    """The shell command that opens ``storage`` in the dashboard (for demos to print).

    Args:
        storage: The storage URL or file.
        port: Port, if not the default.

    Returns:
        For example ``"optuna-qlearn dashboard sqlite:///demo.db"``.
    """
    return f"optuna-qlearn dashboard {storage}" + (f" --port {port}" if port else "")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``dashboard`` subcommand's arguments.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument(
        "storage",
        metavar="STORAGE",
        help="storage URL (sqlite:///study.db, postgresql://..., redis://...), "
        "SQLite file or journal file",
    )
    parser.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1; the dashboard has no authentication)",
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help="refresh the Q-learning views of the studies first (see optuna_qlearn.dashboard)",
    )
    parser.add_argument(
        "--study", default=None, help="with --publish: only this study (default: all)"
    )
    parser.add_argument(
        "--params",
        nargs="+",
        metavar="PARAM",
        default=None,
        help="with --publish: one or two parameters for the heatmaps",
    )


def _publish_all(
    storage: str | BaseStorage, study_name: str | None, params: Sequence[str] | None
) -> int:
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if study_name is not None:
        if study_name not in names:
            raise ValueError(f"No study {study_name!r} in the storage; it has {names}.")
        names = [study_name]
    count = 0
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
        if not any(KEY_RECORD in t.system_attrs for t in trials):
            continue
        try:
            publish(study, params=params)
        except ValueError as exc:
            print(f"{name}: not published: {exc}")
            continue
        print(f"{name}: Q-learning views published")
        count += 1
    return count


def run(args: argparse.Namespace) -> int:
    """Run ``optuna-qlearn dashboard``: serve the storage until interrupted.

    Args:
        args: Parsed arguments (see :func:`add_arguments`).

    Returns:
        The exit status.
    """
    try:
        from optuna_dashboard import run_server
    except ImportError:
        print("The dashboard needs optuna-dashboard: pip install 'optuna-qlearn[dashboard]'")
        return 2
    if not 0 < args.port < 65536:
        print(f"--port must be in 1..65535, got {args.port}.")
        return 2
    try:
        storage = resolve_storage(args.storage)
    except FileNotFoundError as exc:
        print(exc)
        return 2
    if args.publish:
        try:
            _publish_all(storage, args.study, args.params)
        except ValueError as exc:
            print(exc)
            return 2
    print(f"optuna-dashboard: http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        run_server(storage, host=args.host, port=args.port)
    return 0
