"""The agent's state projected onto one or two parameters: the data every plot draws.

One home for what the Plotly functions, their Matplotlib twins and the dashboard
show: :func:`agent_view` rebuilds the sampler's agent from the study (through the
sampler's public ``agent``, ``q_table``, ``greedy_policy``, ``correction_table``,
``trial_rewards`` and ``parameters``), checks that the sampler fits the trials'
records, and projects the Q-table onto the chosen axes (the tabular agent,
``policy="table"``) or takes the per-study correction table (a learned policy).
:func:`decision_view` reads one trial's decision (the ``qlearn:decision`` system
attribute: every candidate action with its Q-values, and the chosen one's
features) from the trial itself, without a replay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import optuna
from optuna.trial import TrialState

from optuna_qlearn._core.agent import QLearningAgent
from optuna_qlearn._core.learned import Decision, PolicyAgent
from optuna_qlearn._core.policy import CORRECTION_KINDS
from optuna_qlearn._grid import Grid, State
from optuna_qlearn._replay import KEY_DECISION, KEY_RECORD, parse_record
from optuna_qlearn.sampler import USER_ATTR_PREFIX, QLearningSampler

if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial

_logger = optuna.logging.get_logger(f"optuna.{__name__}")  # silenced with Optuna

#: Study system attribute holding the settings of the last published sampler.
KEY_SETTINGS = "qlearn:dashboard:sampler"

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
#: Arrow glyph of a greedy move by its direction ``(dx, dy)`` on the plotted axes.
ARROWS = {
    (1, 0): "→", (-1, 0): "←", (0, 1): "↑", (0, -1): "↓",
    (1, 1): "↗", (-1, 1): "↖", (1, -1): "↘", (-1, -1): "↙",
}  # fmt: skip
#: Glyph of a greedy "stay".
STAY = "·"
#: Glyph of a greedy move along a parameter that is not plotted.
OFF_AXES = "•"


class Candidate(NamedTuple):
    """One candidate action of a decision, as stored on the trial.

    Args:
        name: Its label, made unique within the decision (``"model #2"`` when several
            candidates share the label ``"model"``).
        label: Its label as stored (``"lr+1"``, ``"restart-best"``, ``"model"``...).
        q_net: The network's Q-value.
        q: The total Q-value: the network's plus the study's correction of its kind.
        chosen: Whether the decision chose it.
    """

    name: str
    label: str
    q_net: float
    q: float
    chosen: bool


@dataclass
class DecisionView:
    """One trial's decision by a learned policy, ready to plot (see :func:`decision_view`).

    Args:
        number: The trial's number.
        label: The chosen action's label.
        kind: Its kind in the correction table (``"move-1"``, ``"model"``...).
        explored: Whether epsilon's random branch chose it (else it had the highest Q).
        epsilon: The exploration rate of the decision.
        q_net: The chosen action's network Q-value.
        q: Its total Q-value.
        candidates: Every candidate, sorted by total Q, best first.
        features: The chosen action's features, by name, as the network saw them.
    """

    number: int
    label: str
    kind: str
    explored: bool
    epsilon: float
    q_net: float
    q: float
    candidates: list[Candidate]
    features: dict[str, float]

    @property
    def chosen(self) -> Candidate | None:
        """The chosen candidate (``None`` if the stored candidates do not hold it)."""
        return next((c for c in self.candidates if c.chosen), None)

    @property
    def how(self) -> str:
        """How the action was chosen, in words."""
        if self.explored:
            return f"at random (exploration, epsilon {self.epsilon:.3g})"
        return f"greedily (highest Q; epsilon {self.epsilon:.3g})"


@dataclass
class AgentView:
    """The agent's state projected onto one or two parameters, ready to plot.

    Cells are indexed ``[y][x]``: ``x`` is the first chosen parameter, ``y`` the
    second (a single row when one parameter is shown). A cell's greedy value is
    the largest ``max_a Q(s, a)`` among the visited states that project onto it
    (the other parameters are maximized out); its arrow is the greedy move of that
    best state; its visits are the Q-table updates summed over the actions and the
    other parameters. Unvisited cells hold ``None``. A learned policy has no
    Q-table over grid points: its cells are all unvisited, and ``correction``,
    ``chosen_kinds`` and ``decision`` describe it instead.

    Args:
        params: The one or two parameters on the axes, ``(x, y)``.
        x_labels: Tick labels of the x axis (one per grid value).
        y_labels: Tick labels of the y axis (``[""]`` with one parameter).
        value: Greedy value per cell.
        visits: Visit count per cell (0 when unvisited).
        arrows: Greedy move per cell: an arrow (:data:`ARROWS`) for a move along the
            shown axes, :data:`STAY` for stay, :data:`OFF_AXES` for a move along
            another parameter, ``""`` when unvisited.
        moves: Greedy move per cell as ``(dx, dy)`` grid steps on the shown axes
            (``None`` when unvisited).
        hover: Details per cell (``<br>``-separated lines).
        policy: Visited states sorted by greedy value, best first:
            ``{"params", "action", "q", "next_params", "visits"}``.
        trial_numbers: Trials with a ``qlearn:epsilon`` attribute.
        epsilon: Their exploration rate when they were proposed.
        reward_numbers: Trials whose last move (or chosen action) got a reward.
        rewards: That reward, as the agent learned it.
        settings: The sampler's ``parameters`` (for the dashboard's note).
        grid_axes: ``(name, number of points, first value, last value)`` per axis.
        n_states: Grid points in total.
        n_visited: States in the Q-table.
        n_trials: Finished trials of the study.
        epsilon_now: The agent's exploration rate now.
        sampler: The sampler the view was built with (see :func:`resolve_sampler`).
        best: ``(value, params)`` of the best trial, if any.
        sampler_name: Its class name.
        warnings: Caveats about how the view was built.
        policy_name: The sampler's ``policy``: ``"table"`` for the tabular agent
            (and a ``DQNSampler``), else the learned policy's (``"default"``,
            ``None`` for the untrained network, or a file path).
        correction: A learned policy's per-study correction table
            (``sampler.correction_table(study)``): ``{kind: {"q", "updates"}}``.
        chosen_kinds: A learned policy's decisions per action kind:
            ``{kind: (chosen, of which at random)}``.
        decision: The last trial's decision (see :func:`decision_view`), if any.
    """

    params: tuple[str, ...]
    x_labels: list[str]
    y_labels: list[str]
    value: list[list[float | None]]
    visits: list[list[int]]
    arrows: list[list[str]]
    moves: list[list[tuple[int, int] | None]]
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
    sampler: QLearningSampler
    best: tuple[float, dict[str, Any]] | None = None
    sampler_name: str = "QLearningSampler"
    warnings: list[str] = field(default_factory=list)
    policy_name: str | None = "table"
    correction: dict[str, dict[str, float]] = field(default_factory=dict)
    chosen_kinds: dict[str, tuple[int, int]] = field(default_factory=dict)
    decision: DecisionView | None = None

    @property
    def learned(self) -> bool:
        """Whether the view is of a learned policy (not of the tabular agent)."""
        return self.policy_name != "table"


def fmt(value: Any) -> str:
    """A parameter value as a short label."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def fmt_params(params: dict[str, Any]) -> str:
    """Parameters as ``name=value, ...``."""
    return ", ".join(f"{k}={fmt(v)}" for k, v in params.items())


def require_table(view: AgentView, what: str) -> None:
    """Refuse a view of the tabular agent's Q-table for a learned policy.

    Args:
        view: The view.
        what: The function asked for (named in the message).

    Raises:
        ValueError: If the view's sampler has a learned policy.
    """
    if view.learned:
        raise ValueError(
            f"{what} draws the tabular agent's Q-table over grid points: it needs "
            f"QLearningSampler(policy='table'), and this study's sampler has "
            f"policy={view.policy_name!r}, a learned policy. Use plot_decision(study) for "
            "its decisions (the candidates' Q-values and the chosen one's features) and "
            "plot_correction(study) for its per-study correction table."
        )


def require_learned(view: AgentView, what: str) -> None:
    """Refuse a view of a learned policy's correction table for the tabular agent.

    Args:
        view: The view.
        what: The function asked for (named in the message).

    Raises:
        ValueError: If the view's sampler is the tabular agent.
    """
    if not view.learned:
        raise ValueError(
            f"{what} draws a learned policy's per-study correction table: it needs a "
            "QLearningSampler with policy='default', None or a policy file, and this "
            f"study's sampler is a {view.sampler_name} with policy='table'. Use "
            "plot_greedy_value(study), plot_visits(study) or plot_policy(study) for its "
            "Q-table."
        )


# ---------------------------------------------------------------------- the sampler
def resolve_sampler(study: Study, sampler: QLearningSampler | None) -> tuple[QLearningSampler, str]:
    """The sampler that rebuilds the study's agent, and where it came from.

    ``sampler`` if given, else ``study.sampler`` if it is a ``QLearningSampler``,
    else ``QLearningSampler(**parameters)`` with the ``sampler.parameters`` stored
    in the study by the dashboard's last ``publish`` (:data:`KEY_SETTINGS`), else a
    default ``QLearningSampler()``. Stored settings without ``policy`` (stored
    before the learned policy existed) are the tabular agent's: ``policy="table"``.
    A ``DQNSampler`` is never rebuilt so: its network depends on its ``seed``,
    which ``parameters`` leaves out.

    Raises:
        TypeError: If ``sampler`` is not a ``QLearningSampler``.
        ValueError: If the stored settings are those of another sampler class.
    """
    if sampler is not None:
        if not isinstance(sampler, QLearningSampler):
            raise TypeError(
                f"sampler must be a QLearningSampler or DQNSampler, got {type(sampler).__name__}."
            )
        return sampler, "given"
    if isinstance(study.sampler, QLearningSampler):
        return study.sampler, "the study's sampler"
    stored = study._storage.get_study_system_attrs(study._study_id).get(KEY_SETTINGS)
    if isinstance(stored, dict):
        if stored.get("class") != "QLearningSampler":
            raise ValueError(
                f"Study {study.study_name!r} was last published with a {stored.get('class')}; "
                "pass that sampler as sampler=..."
            )
        kwargs = dict(stored.get("kwargs") or {})
        kwargs.setdefault("policy", "table")  # stored before the learned policy existed
        try:
            rebuilt = QLearningSampler(**kwargs)
        except (TypeError, ValueError) as exc:
            _logger.warning(f"Ignoring stored sampler settings {kwargs!r}: {exc}")
        else:
            return rebuilt, "the settings stored by the last publish"
    return QLearningSampler(), "default settings (no sampler given)"


# ---------------------------------------------------------------------- checks
def _check_study_type(study: Study) -> None:
    if not isinstance(study, optuna.Study):
        raise TypeError(f"study must be an optuna.Study, got {type(study).__name__}.")
    if len(study.directions) != 1:
        raise ValueError(
            f"study {study.study_name!r} has {len(study.directions)} objectives; the "
            "Q-learning plots need a single-objective study (the samplers learn one value)."
        )


def _check_study(study: Study) -> None:
    _check_study_type(study)
    trials = study._storage.get_all_trials(study._study_id, deepcopy=False, states=_FINISHED)
    if not trials:
        raise ValueError(
            f"study {study.study_name!r} has no finished trials; run some trials first."
        )


def _agent(study: Study, sampler: QLearningSampler) -> tuple[Grid, QLearningAgent | PolicyAgent]:
    """``sampler.agent(study)``, with trials whose moves the sampler cannot have made refused."""
    try:
        grid, agent = sampler.agent(study)
    except IndexError as exc:  # a recorded action beyond this sampler's moves
        what = f"A trial's recorded move is not one of its moves ({exc})"
        raise ValueError(_moves_differ(what)) from exc
    on_grid = other = moved = decided = 0
    for trial in study._storage.get_all_trials(study._study_id, deepcopy=False):
        if not isinstance(trial.system_attrs.get(KEY_RECORD), dict):
            continue
        rec = parse_record(trial, grid)
        if rec is None:
            other += 1
            continue
        on_grid += 1
        decided += isinstance(trial.system_attrs.get(KEY_DECISION), dict)
        moved += bool(rec.path)
        shown = trial.user_attrs.get(USER_ATTR_PREFIX + "action")
        if not rec.path or not isinstance(shown, str) or not isinstance(agent, QLearningAgent):
            continue
        n_actions = agent.moves.n_actions
        if any(not 0 <= a < n_actions for _, a in rec.path):
            raise ValueError(_moves_differ(f"Trial {trial.number} moved with an unknown action"))
        ours = " > ".join(agent.moves.label(a) for _, a in rec.path)
        if shown.removesuffix(" (random)") != ours:
            raise ValueError(
                _moves_differ(f"Trial {trial.number} made {shown!r}, read here as {ours!r}")
            )
    if other and not on_grid:
        raise ValueError(
            f"None of the {other} trials proposed by a QLearningSampler lies on this sampler's "
            "grid: its n_bins/max_bins (or the search space) differ from those of the sampler "
            "that ran the study. Pass that sampler as sampler=..."
        )
    if isinstance(agent, PolicyAgent) and moved and not decided:
        raise ValueError(
            f"The trials of study {study.study_name!r} were proposed by the tabular agent "
            f"(policy='table'), and this sampler has policy={sampler.policy!r}, a learned "
            "policy. Pass the sampler that ran the study as sampler=... (for example "
            "QLearningSampler(policy='table', ...))."
        )
    if not isinstance(agent, PolicyAgent) and decided and not moved:
        raise ValueError(
            f"The trials of study {study.study_name!r} were proposed by a learned policy, and "
            f"this {type(sampler).__name__} is the tabular agent (policy='table'). Pass the "
            "sampler that ran the study as sampler=... (for example QLearningSampler())."
        )
    return grid, agent


def _moves_differ(what: str) -> str:
    return (
        f"{what}: this sampler's moves/step_sizes differ from those of the sampler that ran "
        "the study. Pass that sampler as sampler=..."
    )


def choose_params(grid: Grid, params: Sequence[str] | None) -> tuple[str, ...]:
    """The plotted parameters: ``params`` checked, or the two axes with most grid points.

    Raises:
        ValueError: If ``params`` does not name one or two distinct grid parameters.
    """
    if params is not None:
        if isinstance(params, str) or not all(isinstance(p, str) for p in params):
            raise ValueError(
                f"params must be a list of one or two parameter names, got {params!r}."
            )
        chosen = tuple(params)
        unknown = [p for p in chosen if p not in grid.names]
        if unknown or not 1 <= len(chosen) <= 2 or len(set(chosen)) != len(chosen):
            raise ValueError(
                f"params must name one or two distinct parameters among {list(grid.names)}, "
                f"got {list(chosen)}"
                + (f" ({unknown} not in the study's search space)." if unknown else ".")
            )
        return chosen
    order = sorted(range(grid.ndim), key=lambda i: (-grid.shape[i], grid.names[i]))
    return tuple(grid.names[i] for i in order[:2])


# ---------------------------------------------------------------------- decisions
def parse_decision(trial: FrozenTrial) -> DecisionView | None:
    """The decision a learned policy stored on ``trial`` (``qlearn:decision``).

    Args:
        trial: A trial of the study.

    Returns:
        Its decision, or ``None`` if it has none (the tabular agent, an enqueued point,
        another sampler, or a malformed attribute).
    """
    attrs = trial.system_attrs.get(KEY_DECISION)
    if not isinstance(attrs, dict):
        return None
    core = Decision.from_attrs(attrs)
    if core is None:
        return None
    rows, features = core.candidates, core.features
    # The chosen candidate: its stored index; records without one name the one with its
    # label whose values are closest (candidates are rounded to 4 decimals, the chosen
    # values to 6).
    index = core.chosen
    pick: int | None
    if 0 <= index < len(rows) and rows[index][0] == core.label:
        pick = index
    else:
        same = [i for i, r in enumerate(rows) if r[0] == core.label]
        pick = min(
            same,
            key=lambda i: abs(rows[i][1] - core.q_net) + abs(rows[i][2] - core.q),
            default=None,
        )
    counts: dict[str, int] = {}
    for label, _, _ in rows:
        counts[label] = counts.get(label, 0) + 1
    seen: dict[str, int] = {}
    candidates = []
    for i, (label, q_net, q) in enumerate(rows):
        seen[label] = seen.get(label, 0) + 1
        name = f"{label} #{seen[label]}" if counts[label] > 1 else label
        candidates.append(Candidate(name, label, q_net, q, i == pick))
    candidates.sort(key=lambda c: -c.q)  # stable: ties keep the stored order
    return DecisionView(
        number=trial.number,
        label=core.label,
        kind=core.kind,
        explored=core.explored,
        epsilon=core.epsilon,
        q_net=core.q_net,
        q=core.q,
        candidates=candidates,
        features=features,
    )


def decision_view(study: Study, trial_number: int | None = None) -> DecisionView:
    """Read one trial's decision by a learned policy, from the trial itself.

    Args:
        study: A single-objective study run by a :class:`~optuna_qlearn.QLearningSampler`
            with a learned policy (the default).
        trial_number: The trial's number; by default the last trial with a decision.

    Returns:
        The decision.

    Raises:
        TypeError: If ``study`` is not a study.
        ValueError: If the study is multi-objective, ``trial_number`` is not the number
            of one of its trials, or that trial (or, by default, every trial) has no
            decision of a learned policy.
    """
    _check_study_type(study)
    storage = study._storage
    if trial_number is None:
        trials = storage.get_all_trials(study._study_id, deepcopy=False)
        for trial in sorted(trials, key=lambda t: -t.number):
            found = parse_decision(trial)
            if found is not None:
                return found
        raise ValueError(
            f"No trial of study {study.study_name!r} was proposed by a learned policy: only "
            "QLearningSampler(policy='default'), policy=None or a policy file store their "
            "decisions. With policy='table', see plot_greedy_value(study)."
        )
    if isinstance(trial_number, bool) or not isinstance(trial_number, (int, np.integer)):
        raise ValueError(f"trial_number must be a trial number (int), got {trial_number!r}.")
    try:
        if trial_number < 0:
            raise KeyError(trial_number)
        trial_id = storage.get_trial_id_from_study_id_trial_number(
            study._study_id, int(trial_number)
        )
    except KeyError:
        n = len(storage.get_all_trials(study._study_id, deepcopy=False))
        raise ValueError(
            f"trial_number must be the number of a trial of study {study.study_name!r} "
            f"(0 to {n - 1}), got {trial_number}."
        ) from None
    trial = storage.get_trial(trial_id)
    found = parse_decision(trial)
    if found is None:
        raise ValueError(
            f"Trial {trial_number} of study {study.study_name!r} has no decision of a learned "
            "policy: it was sampled independently, enqueued, or proposed by another sampler "
            "or by the tabular agent (policy='table')."
        )
    return found


# ---------------------------------------------------------------------- the view
def agent_view(
    study: Study,
    sampler: QLearningSampler | None = None,
    params: Sequence[str] | None = None,
    top_k: int = 20,
) -> AgentView:
    """Build the agent's view of a study (the data behind every plot and the dashboard).

    Args:
        study: A single-objective study run by a :class:`~optuna_qlearn.QLearningSampler`
            or :class:`~optuna_qlearn.DQNSampler`.
        sampler: The sampler that ran it (same settings suffice); see
            :func:`resolve_sampler` for the default.
        params: One or two parameter names for the axes; by default the two with the
            most grid points.
        top_k: Rows of the greedy-policy table.

    Returns:
        The view.

    Raises:
        TypeError: If ``study`` is not a study or ``sampler`` not a ``QLearningSampler``.
        ValueError: If the study is multi-objective or has no finished trials with a
            shared search space, ``params`` are not parameters of the grid, ``top_k``
            is not a positive integer, or the sampler's settings (its grid, moves or
            policy) do not match the trials' records.
    """
    _check_study(study)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}.")
    resolved, origin = resolve_sampler(study, sampler)
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
    grid, agent = _agent(study, sampler)  # raises ValueError without a shared search space
    chosen = choose_params(grid, params)
    ix = [grid.names.index(p) for p in chosen]
    x_labels = [fmt(v) for v in grid.axes[ix[0]].values]
    y_labels = [fmt(v) for v in grid.axes[ix[1]].values] if len(ix) > 1 else [""]
    nx, ny = len(x_labels), len(y_labels)
    value: list[list[float | None]] = [[None] * nx for _ in range(ny)]
    visits = [[0] * nx for _ in range(ny)]
    best_state: list[list[dict[str, Any] | None]] = [[None] * nx for _ in range(ny)]
    policy: list[dict[str, Any]] = []
    learned = isinstance(agent, PolicyAgent)
    rows = [] if learned else sampler.q_table(study)
    greedy = [] if learned else sampler.greedy_policy(study)
    for row, choice in zip(rows, greedy):
        if not row["q"]:
            continue
        state: State = tuple(row["state"])
        target = grid.encode(choice["next_params"])
        entry: dict[str, Any] = {
            "params": row["params"],
            "action": choice["action"],
            "q": float(choice["q"]),
            "next_params": choice["next_params"],
            "visits": int(sum(row["visits"].values())),
            "state": state,
            "delta": tuple(int(t - s) for t, s in zip(target, state)),
        }
        policy.append(entry)
        x = state[ix[0]]
        y = state[ix[1]] if len(ix) > 1 else 0
        visits[y][x] += entry["visits"]
        current = value[y][x]
        if current is None or entry["q"] > current:
            value[y][x] = entry["q"]
            best_state[y][x] = entry

    arrows = [[""] * nx for _ in range(ny)]
    moves: list[list[tuple[int, int] | None]] = [[None] * nx for _ in range(ny)]
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
            delta = cell["delta"]
            dx = delta[ix[0]]
            dy = delta[ix[1]] if len(ix) > 1 else 0
            moves[y][x] = (dx, dy)
            if (dx, dy) != (0, 0):
                arrows[y][x] = ARROWS[(int(np.sign(dx)), int(np.sign(dy)))]
            else:
                arrows[y][x] = STAY if not any(delta) else OFF_AXES
            hover[y][x] = (
                f"{where}<br>max Q = {cell['q']:.4g} at {fmt_params(cell['params'])}"
                f"<br>greedy move: {cell['action']}<br>visits here: {visits[y][x]}"
            )
    policy.sort(key=lambda e: (-e["q"], e["state"]))
    for e in policy:
        del e["state"], e["delta"]

    trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
    numbers: list[int] = []
    eps: list[float] = []
    chosen_kinds: dict[str, tuple[int, int]] = {}
    last_decided: FrozenTrial | None = None
    for t in sorted(trials, key=lambda t: t.number):
        eps_t = t.user_attrs.get(USER_ATTR_PREFIX + "epsilon")
        if isinstance(eps_t, (int, float)) and math.isfinite(eps_t):
            numbers.append(t.number)
            eps.append(float(eps_t))
        if learned and isinstance(t.system_attrs.get(KEY_DECISION), dict):
            decision = Decision.from_attrs(t.system_attrs[KEY_DECISION])
            if decision is not None:
                n, r = chosen_kinds.get(decision.kind, (0, 0))
                chosen_kinds[decision.kind] = (n + 1, r + decision.explored)
                last_decided = t
    correction: dict[str, dict[str, float]] = {}
    if isinstance(agent, PolicyAgent):  # sampler.correction_table, without a second replay
        correction = {
            k: {"q": float(agent.correction[k]), "updates": int(agent.updates[k])}
            for k in CORRECTION_KINDS
        }
    rewards = dict(agent.step_rewards)  # sampler.trial_rewards, without a second replay
    finished = [t for t in trials if t.state in _FINISHED]
    best: tuple[float, dict[str, Any]] | None = None
    try:
        best_trial = study.best_trial
        if best_trial.value is not None:
            best = (float(best_trial.value), dict(best_trial.params))
    except ValueError:
        pass
    return AgentView(
        params=chosen,
        x_labels=x_labels,
        y_labels=y_labels,
        value=value,
        visits=visits,
        arrows=arrows,
        moves=moves,
        hover=hover,
        policy=policy[:top_k],
        trial_numbers=numbers,
        epsilon=eps,
        reward_numbers=sorted(rewards),
        rewards=[rewards[n] for n in sorted(rewards)],
        settings=dict(sampler.parameters),
        grid_axes=[(a.name, a.size, a.values[0], a.values[-1]) for a in grid.axes],
        n_states=grid.n_states,
        n_visited=len(policy),
        n_trials=len(finished),
        epsilon_now=float(agent.epsilon),
        sampler=sampler,
        best=best,
        sampler_name=type(sampler).__name__,
        warnings=warnings,
        policy_name=sampler.policy,
        correction=correction,
        chosen_kinds={k: chosen_kinds[k] for k in CORRECTION_KINDS if k in chosen_kinds},
        decision=None if last_decided is None else parse_decision(last_decided),
    )
