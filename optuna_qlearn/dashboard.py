"""Open a storage in optuna-dashboard, with the Q-learning agent's view of each study.

publish(study) writes what the agent has learned into the study itself, where
optuna-dashboard shows it on the study's page: the figures of
optuna_qlearn.visualization and a note with the sampler's settings. For a learned
policy (the default) the figures are the last trial's candidate actions with their
Q-values and the chosen one's features, the per-study correction table, and
epsilon and reward per trial, and every trial gets a note of its own (the Trials
page) with its candidates, their Q-values and the chosen one's features: why it
went there. For the tabular agent (policy="table") they are the greedy value
max_a Q(s, a) over two parameters with the greedy moves as arrows, the visit
counts, the greedy policy as arrows, and epsilon and reward per trial, and the
study note has the greedy policy. DashboardCallback refreshes these views during
study.optimize.

The command serves a storage (an RDB URL such as sqlite:///study.db, a SQLite
file, a journal file or a redis:// URL) on 127.0.0.1; --publish refreshes the
Q-learning views of its studies first.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_qlearn._replay import KEY_RECORD
from optuna_qlearn.sampler import QLearningSampler
from optuna_qlearn.visualization._plotly import GRAPH_IDS, POLICY_GRAPH_IDS, TABLE_GRAPH_IDS
from optuna_qlearn.visualization._plotly import figures as _figures
from optuna_qlearn.visualization._view import (
    KEY_SETTINGS,
    OFF_AXES,
    STAY,
    AgentView,
    DecisionView,
    agent_view,
    fmt,
    fmt_params,
    parse_decision,
)

if TYPE_CHECKING:
    from optuna.storages import BaseStorage
    from optuna.study import Study
    from plotly.graph_objects import Figure

_logger = optuna.logging.get_logger(f"optuna.{__name__}")  # silenced with Optuna

__all__ = [
    "GRAPH_IDS",
    "KEY_SETTINGS",
    "NOTE_BEGIN",
    "NOTE_END",
    "POLICY_GRAPH_IDS",
    "TABLE_GRAPH_IDS",
    "DashboardCallback",
    "add_arguments",
    "figures",
    "publish",
    "resolve_storage",
    "run",
]
#: Invisible Markdown line opening the sampler's section of the study note (and of a
#: trial's note); text outside the section (a user's own note) is kept.
NOTE_BEGIN = "[//]: # (qlearn:begin)"
#: Invisible Markdown line closing the sampler's section of a note.
NOTE_END = "[//]: # (qlearn:end)"
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


# ---------------------------------------------------------------------- figures
def figures(
    study: Study,
    sampler: QLearningSampler | None = None,
    params: Sequence[str] | None = None,
) -> dict[str, Figure]:
    """The figures :func:`publish` writes, keyed by their graph-object id.

    They are those of :mod:`optuna_qlearn.visualization` (one implementation),
    built from one replay of the study: :data:`TABLE_GRAPH_IDS` for the tabular
    agent, :data:`POLICY_GRAPH_IDS` for a learned policy.

    Args:
        study: See :func:`optuna_qlearn.visualization.plot_greedy_value`.
        sampler: See :func:`optuna_qlearn.visualization.plot_greedy_value`.
        params: See :func:`optuna_qlearn.visualization.plot_greedy_value`.

    Returns:
        For the tabular agent ``{"qlearn-greedy-value": plot_greedy_value,
        "qlearn-visits": plot_visits, "qlearn-policy": plot_policy,
        "qlearn-epsilon-reward": plot_epsilon_reward}``; for a learned policy
        ``{"qlearn-decision": plot_decision (of the last trial with a decision, left
        out while there is none), "qlearn-correction": plot_correction,
        "qlearn-epsilon-reward": plot_epsilon_reward}``.

    Raises:
        ImportError: If Plotly is missing.
        TypeError: See :func:`optuna_qlearn.visualization.plot_greedy_value`.
        ValueError: See :func:`optuna_qlearn.visualization.plot_greedy_value`.
    """
    return _figures(agent_view(study, sampler, params))


def _cell(text: str) -> str:
    """Text for a Markdown table cell (a ``|`` in a parameter name would end the cell)."""
    return text.replace("|", "\\|")


def _note_markdown(view: AgentView, study_name: str = "") -> str:
    """The Markdown section :func:`publish` puts in the study note.

    Args:
        view: The agent's view of the study.
        study_name: Shown in the heading.

    Returns:
        Markdown: progress, the grid, the greedy policy table (tabular agent) or the
        correction table (learned policy), and the settings.
    """
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {view.sampler_name}" + (f" on {study_name}" if study_name else ""),
        "",
    ]
    published = (
        f"*Agent view published by `optuna_qlearn.dashboard` after {view.n_trials} finished "
        f"trials ({now}).*"
    )
    if view.learned:
        lines += [
            f"{published} The learned policy ({fmt(view.policy_name)}) chose each trial's "
            "point among candidate actions by Q(s, a) = Q_net(features) + C[kind]: the "
            "pre-trained network's value plus this study's correction of the action's kind. "
            "The figures show the last trial's candidates with their Q-values and the chosen "
            "one's features, the correction table, and epsilon and reward per trial. Each "
            "trial's own note (on the Trials page) shows its candidates and features: why it "
            "went there.",
            "",
        ]
    else:
        lines += [
            f"{published} The figures show the greedy value max_a Q(s, a) over "
            f"{' and '.join(view.params)} (other parameters maximized out; arrows: greedy "
            f"move, {STAY} stay, {OFF_AXES} a move along another parameter), the visit "
            "counts, the greedy policy as arrows, and epsilon and reward per trial.",
            "",
        ]
    lines += [f"> **Note:** {w}" for w in view.warnings]
    if view.warnings:
        lines.append("")
    lines += ["### Progress", ""]
    if view.learned:
        decided = sum(n for n, _ in view.chosen_kinds.values())
        randomly = sum(r for _, r in view.chosen_kinds.values())
        lines.append(f"- trials chosen by the policy: {decided} ({randomly} at random)")
    else:
        covered = 100.0 * view.n_visited / max(view.n_states, 1)
        lines.append(
            f"- states learned from: {view.n_visited} of {view.n_states} grid points "
            f"({covered:.2g}%)"
        )
    lines.append(f"- epsilon now: {view.epsilon_now:.3g}")
    if view.best is not None:
        lines.append(f"- best value: {view.best[0]:.6g} at {fmt_params(view.best[1])}")
    if view.rewards:
        tail = view.rewards[-10:]
        lines.append(f"- mean reward of the last {len(tail)} trials: {np.mean(tail):.3g}")
    lines += ["", "### Grid", "", "| parameter | points | from | to |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {_cell(n)} | {k} | {_cell(fmt(lo))} | {_cell(fmt(hi))} |"
        for n, k, lo, hi in view.grid_axes
    ]
    if view.learned:
        lines += [
            "",
            "### Correction per action kind (the study's Q-table over kinds)",
            "",
            "| kind | correction | updates | chosen by | at random |",
            "| --- | --- | --- | --- | --- |",
        ]
        for kind, entry in view.correction.items():
            n, r = view.chosen_kinds.get(kind, (0, 0))
            lines.append(f"| {kind} | {entry['q']:.4g} | {int(entry['updates'])} | {n} | {r} |")
    else:
        lines += [
            "",
            f"### Greedy policy (the {len(view.policy)} visited states with the highest max Q)",
            "",
            "| state | greedy move | Q | next | visits |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {_cell(fmt_params(e['params']))} | {_cell(e['action'])} | {e['q']:.4g} | "
            f"{_cell(fmt_params(e['next_params']))} | {e['visits']} |"
            for e in view.policy
        ]
    lines += ["", "### Settings", "", "| setting | value |", "| --- | --- |"]
    lines += [f"| {k} | {_cell(fmt(v))} |" for k, v in view.settings.items()]
    return "\n".join(lines)


def _decision_markdown(decision: DecisionView) -> str:
    """The Markdown section :func:`publish` puts in a trial's note: why it went there.

    Args:
        decision: The trial's decision (see
            :func:`optuna_qlearn.visualization.plot_decision`).

    Returns:
        Markdown: how the action was chosen, a table ``action | Q (network) | Q (total)``
        of every candidate sorted by total Q with the chosen row marked, and the
        chosen action's features.
    """
    chosen = decision.chosen
    shown = _cell(chosen.name if chosen is not None else decision.label)
    lines = [
        f"### Why trial {decision.number} went to {_cell(decision.label)}",
        "",
        f"The learned policy chose **{_cell(decision.label)}** (kind `{decision.kind}`) "
        f"{decision.how}, among {len(decision.candidates)} candidate actions. "
        "Q (total) = Q (network) + this study's correction of the action's kind, when the "
        "trial was proposed.",
        "",
        "| action | Q (network) | Q (total) |",
        "| --- | --- | --- |",
    ]
    for c in decision.candidates:
        if c.chosen:
            lines.append(f"| **▶ {_cell(c.name)} (chosen)** | **{c.q_net:.4g}** | **{c.q:.4g}** |")
        else:
            lines.append(f"| {_cell(c.name)} | {c.q_net:.4g} | {c.q:.4g} |")
    lines += ["", f"#### Features of {shown}", "", "| feature | value |", "| --- | --- |"]
    lines += [f"| {_cell(k)} | {v:.4g} |" for k, v in decision.features.items()]
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

    Saves the figures of :func:`figures` (those of :mod:`optuna_qlearn.visualization`:
    :data:`TABLE_GRAPH_IDS` for the tabular agent, :data:`POLICY_GRAPH_IDS` for a
    learned policy; re-publishing replaces them) and a section of the study note
    (text outside the section is kept), using
    ``optuna_dashboard.save_plotly_graph_object`` and ``save_note``. With a learned
    policy, every finished trial with a decision also gets a section in its own
    note: its candidate actions in a table ``action | Q (network) | Q (total)``
    sorted by total Q with the chosen row marked, and the chosen one's features.
    It is written once: a trial whose note already has it is not rewritten, so a
    refresh writes only the trials finished since the last one, and a note the
    trial had before (for example one its objective saved) is kept below the
    section. The sampler's ``parameters`` are stored too, so that a later
    ``publish`` without a sampler (for example ``optuna-qlearn dashboard
    --publish``) rebuilds the same agent. Call it once at the end or from
    :class:`DashboardCallback`.

    Example:

        .. code-block:: python

            import optuna
            from optuna_qlearn import QLearningSampler
            from optuna_qlearn.dashboard import publish

            study = optuna.create_study(storage="sqlite:///qlearn.db", sampler=QLearningSampler())
            study.optimize(lambda t: (t.suggest_int("x", 0, 20) - 7) ** 2, n_trials=50)
            publish(study)  # then: optuna-qlearn dashboard sqlite:///qlearn.db

    Args:
        study: A single-objective study run by a :class:`~optuna_qlearn.QLearningSampler`
            or :class:`~optuna_qlearn.DQNSampler`.
        sampler: The sampler that ran it (same settings suffice); by default the
            study's own sampler if it is one, else the settings stored by the last
            ``publish``, else a default ``QLearningSampler()``.
        params: One or two parameters for the heatmaps (of the tabular agent); by
            default the two with the most grid points.
        top_k: Rows of the greedy-policy table in the note (tabular agent).

    Returns:
        The graph-object ids written.

    Raises:
        ImportError: If optuna-dashboard or plotly is missing.
        TypeError: See :func:`optuna_qlearn.visualization.plot_greedy_value`.
        ValueError: See :func:`optuna_qlearn.visualization.plot_greedy_value`; also if
            ``top_k`` is not a positive integer.
    """
    try:
        import optuna_dashboard
    except ImportError as exc:
        raise ImportError(
            "publish needs optuna-dashboard and plotly: pip install 'optuna-qlearn[dashboard]'"
        ) from exc
    view = agent_view(study, sampler, params, top_k)
    ids = []
    for graph_id, fig in _figures(view).items():
        ids.append(optuna_dashboard.save_plotly_graph_object(study, fig, graph_object_id=graph_id))
    old = optuna_dashboard.get_note(study)
    optuna_dashboard.save_note(study, _merge_note(old, _note_markdown(view, study.study_name)))
    if view.learned:
        _write_trial_notes(study)
    study._storage.set_study_system_attr(
        study._study_id,
        KEY_SETTINGS,
        {"class": type(view.sampler).__name__, "kwargs": view.sampler.parameters},
    )
    return ids


def _write_trial_notes(study: Study) -> int:
    """Give every finished trial with a decision its note section, once.

    optuna-dashboard keeps a trial's note in the study's system attributes (a version
    and the body in chunks): they are read once here, and only trials without the
    section are written, in the dashboard's own format (that of
    ``optuna_dashboard.save_note``, which would re-read all the study's attributes
    for every trial; the version is incremented as it does, so that an edit open in
    the browser meanwhile is refused, not lost).

    Returns:
        The number of trial notes written.
    """
    try:
        from optuna_dashboard._note import note_str_key_prefix, note_ver_key, split_body
    except ImportError:  # a future optuna-dashboard that stores notes otherwise
        _logger.warning(
            "This optuna-dashboard version stores notes in an unknown way: trial notes with "
            "the learned policy's decisions are not written."
        )
        return 0
    storage, study_id = study._storage, study._study_id
    attrs = storage.get_study_system_attrs(study_id)
    written = 0
    for trial in storage.get_all_trials(study_id, deepcopy=False, states=_FINISHED):
        trial_id = trial._trial_id
        prefix = note_str_key_prefix(trial_id)
        first = attrs.get(f"{prefix}0")
        if isinstance(first, str) and first.startswith(NOTE_BEGIN):
            continue  # written by an earlier publish (the section opens the note)
        decision = parse_decision(trial)
        if decision is None:
            continue
        n_old = 0
        while f"{prefix}{n_old}" in attrs:
            n_old += 1
        old = "".join(str(attrs[f"{prefix}{i}"]) for i in range(n_old))
        if NOTE_BEGIN in old:
            continue  # written earlier, and edited in the browser since
        chunks = split_body(_merge_note(old, _decision_markdown(decision)), trial_id)
        version = int(attrs.get(note_ver_key(trial_id), 0)) + 1
        storage.set_study_system_attr(study_id, note_ver_key(trial_id), version)
        for key, value in chunks.items():
            storage.set_study_system_attr(study_id, key, value)
        for i in range(len(chunks), n_old):  # as save_note clears a longer old body
            storage.set_study_system_attr(study_id, f"{prefix}{i}", "")
        written += 1
    return written


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
        sampler: See :func:`publish`.
        params: See :func:`publish`.

    Raises:
        ValueError: If ``every`` is not a positive integer.
    """

    def __init__(
        self,
        every: int = 10,
        sampler: QLearningSampler | None = None,
        params: Sequence[str] | None = None,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive number of trials, got {every!r}.")
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
