"""Open a storage in optuna-dashboard, with the Q-learning agent's view of each study.

publish(study) writes what the agent has learned into the study itself, where
optuna-dashboard shows it on the study's page: the figures of
optuna_qlearn.visualization (the greedy value max_a Q(s, a) over two parameters
with the greedy moves as arrows, the visit counts, the greedy policy as arrows,
epsilon and reward per trial) and a note with the sampler's settings and greedy
policy. DashboardCallback refreshes these views during study.optimize.

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
from optuna.trial import FrozenTrial

from optuna_qlearn._replay import KEY_RECORD
from optuna_qlearn.sampler import QLearningSampler
from optuna_qlearn.visualization._plotly import GRAPH_IDS
from optuna_qlearn.visualization._plotly import figures as _figures
from optuna_qlearn.visualization._view import (
    KEY_SETTINGS,
    OFF_AXES,
    STAY,
    AgentView,
    agent_view,
    fmt,
    fmt_params,
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
    "DashboardCallback",
    "add_arguments",
    "figures",
    "publish",
    "resolve_storage",
    "run",
]
#: Invisible Markdown line opening the sampler's section of the study note; text
#: outside the section (a user's own note) is kept when the section is refreshed.
NOTE_BEGIN = "[//]: # (qlearn:begin)"
#: Invisible Markdown line closing the sampler's section of the study note.
NOTE_END = "[//]: # (qlearn:end)"


# ---------------------------------------------------------------------- figures
def figures(
    study: Study,
    sampler: QLearningSampler | None = None,
    params: Sequence[str] | None = None,
) -> dict[str, Figure]:
    """The figures :func:`publish` writes, keyed by their graph-object id (:data:`GRAPH_IDS`).

    They are those of :mod:`optuna_qlearn.visualization` (one implementation),
    built from one replay of the study.

    Args:
        study: See :func:`optuna_qlearn.visualization.plot_greedy_value`.
        sampler: See :func:`optuna_qlearn.visualization.plot_greedy_value`.
        params: See :func:`optuna_qlearn.visualization.plot_greedy_value`.

    Returns:
        ``{"qlearn-greedy-value": plot_greedy_value, "qlearn-visits": plot_visits,
        "qlearn-policy": plot_policy, "qlearn-epsilon-reward": plot_epsilon_reward}``.

    Raises:
        ImportError: If Plotly is missing.
        TypeError: See :func:`optuna_qlearn.visualization.plot_greedy_value`.
        ValueError: See :func:`optuna_qlearn.visualization.plot_greedy_value`.
    """
    return _figures(agent_view(study, sampler, params))


def _note_markdown(view: AgentView, study_name: str = "") -> str:
    """The Markdown section :func:`publish` puts in the study note.

    Args:
        view: The agent's view of the study.
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
        f"{STAY} stay, {OFF_AXES} a move along another parameter), the visit counts, the "
        "greedy policy as arrows, and epsilon and reward per trial.",
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
        lines.append(f"- best value: {view.best[0]:.6g} at {fmt_params(view.best[1])}")
    if view.rewards:
        tail = view.rewards[-10:]
        lines.append(f"- mean reward of the last {len(tail)} moves: {np.mean(tail):.3g}")
    lines += ["", "### Grid", "", "| parameter | points | from | to |", "| --- | --- | --- | --- |"]
    lines += [f"| {n} | {k} | {fmt(lo)} | {fmt(hi)} |" for n, k, lo, hi in view.grid_axes]
    lines += [
        "",
        f"### Greedy policy (the {len(view.policy)} visited states with the highest max Q)",
        "",
        "| state | greedy move | Q | next | visits |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {fmt_params(e['params'])} | {e['action']} | {e['q']:.4g} | "
        f"{fmt_params(e['next_params'])} | {e['visits']} |"
        for e in view.policy
    ]
    lines += ["", "### Settings", "", "| setting | value |", "| --- | --- |"]
    lines += [f"| {k} | {fmt(v)} |" for k, v in view.settings.items()]
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

    Saves the four figures of :func:`figures` (:data:`GRAPH_IDS`: those of
    :mod:`optuna_qlearn.visualization`; re-publishing replaces them) and
    a section of the study note (text outside the section is kept), using
    ``optuna_dashboard.save_plotly_graph_object`` and ``save_note``. The sampler's
    ``parameters`` are stored too, so that a later ``publish`` without a sampler (for
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
        study: A single-objective study run by a :class:`~optuna_qlearn.QLearningSampler`
            or :class:`~optuna_qlearn.DQNSampler`.
        sampler: The sampler that ran it (same settings suffice); by default the
            study's own sampler if it is one, else the settings stored by the last
            ``publish``, else a default ``QLearningSampler()``.
        params: One or two parameters for the heatmaps; by default the two with the
            most grid points.
        top_k: Rows of the greedy-policy table in the note.

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
    study._storage.set_study_system_attr(
        study._study_id,
        KEY_SETTINGS,
        {"class": type(view.sampler).__name__, "kwargs": view.sampler.parameters},
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
