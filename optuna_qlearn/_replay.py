"""Study trials -> the Q-learning agent: the storage <-> RL boundary.

Every trial the sampler proposes carries its RL record in the trial's system
attributes (written while the trial is RUNNING). :class:`StudyReplay` reads
trials from storage *incrementally* and feeds the finished ones to a
:class:`~optuna_qlearn._core.agent.QLearningAgent` in trial-number order, so every
worker, and a new process resuming a stored study, rebuilds the same Q-table.

A trial that is still running holds the learning cursor until it finishes;
other trials keep being used for decisions meanwhile. A trial left RUNNING by a
killed worker on a storage without heartbeat would block learning for ever: once
``stale_after`` later trials have finished it is marked ``qlearn:stale`` in
storage (so every worker skips it alike) and learning moves on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optuna.trial import FrozenTrial, TrialState

from optuna_qlearn._core.agent import QLearningAgent, Step
from optuna_qlearn._core.learned import Decision, PolicyAgent
from optuna_qlearn._grid import Grid, State

if TYPE_CHECKING:
    from optuna.study import Study

#: System attribute holding a trial's record (one JSON object, one storage write).
KEY_RECORD = "qlearn:record"
#: System attribute holding the learned policy's decision (candidates, Q-values, features).
KEY_DECISION = "qlearn:decision"
#: System attribute marking a trial abandoned by its worker (see the module docstring).
KEY_STALE = "qlearn:stale"

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)

#: Open episode ends remembered for continuation (more than enough for many workers).
_MAX_HEADS = 64


@dataclass(frozen=True)
class Record:
    """The sampler's record of one trial, parsed from its system attributes."""

    state: State
    episode: int
    step: int
    parent: int | None
    path: tuple[tuple[State, int], ...]


def record_attrs(grid: Grid, record: Record) -> dict[str, Any]:
    """The JSON-serializable form of ``record`` (stored under :data:`KEY_RECORD`;
    :func:`parse_record` reads it back)."""
    return {
        "grid": grid.signature,
        "state": list(record.state),
        "episode": int(record.episode),
        "step": int(record.step),
        "parent": record.parent,
        # One string ("action@i,j,k;..."): compact, and cheap for storages to copy.
        "path": ";".join(f"{int(a)}@{','.join(map(str, map(int, s)))}" for s, a in record.path),
    }


def parse_record(trial: FrozenTrial, grid: Grid) -> Record | None:
    """The record of ``trial`` if the sampler proposed it on this grid, else ``None``."""
    attrs = trial.system_attrs.get(KEY_RECORD)
    if not isinstance(attrs, dict) or attrs.get("grid") != grid.signature:
        return None
    return Record(
        state=tuple(int(i) for i in attrs["state"]),
        episode=int(attrs["episode"]),
        step=int(attrs["step"]),
        parent=attrs["parent"],
        path=_parse_path(attrs["path"]),
    )


def _parse_path(text: str) -> tuple[tuple[State, int], ...]:
    steps = []
    for item in text.split(";") if text else ():
        action, _, state = item.partition("@")
        steps.append((tuple(int(i) for i in state.split(",")), int(action)))
    return tuple(steps)


def trial_value(trial: FrozenTrial) -> float | None:
    """The value the agent learns from: ``None`` for failed trials and NaN/inf.

    Pruned trials count with their last intermediate value.
    """
    if trial.state == TrialState.FAIL:
        return None
    value = trial.value if trial.values is not None and len(trial.values) == 1 else None
    if value is None and trial.state == TrialState.PRUNED and trial.intermediate_values:
        value = trial.intermediate_values[max(trial.intermediate_values)]
    if value is None or not math.isfinite(value):
        return None
    return float(value)


class TrialFeed:
    """Incremental reads of one study's trials, by trial number.

    Each :meth:`poll` fetches only trials never seen and trials seen unfinished,
    so its cost does not grow with the length of the study (one bulk read when
    many trials are new, e.g. when a process resumes a stored study).
    """

    def __init__(self) -> None:
        self.next_unseen = 0
        self.unfinished: set[int] = set()

    def poll(self, study: Study, upto: int) -> list[FrozenTrial]:
        """Trials numbered below ``upto`` that are new or were unfinished last time.

        Args:
            study: The study.
            upto: Usually the number of the trial being sampled.

        Returns:
            The fetched trials, in number order.
        """
        wanted = sorted(n for n in self.unfinished if n < min(upto, self.next_unseen))
        wanted += range(self.next_unseen, upto)
        if not wanted:
            return []
        storage = study._storage
        if len(wanted) > 32:
            wanted_set = set(wanted)
            trials = [
                t
                for t in storage.get_all_trials(study._study_id, deepcopy=False)
                if t.number in wanted_set
            ]
        else:
            trials = []
            for number in wanted:
                tid = storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
                trials.append(storage.get_trial(tid))
        for t in trials:
            if t.state in _FINISHED:
                self.unfinished.discard(t.number)
            else:
                self.unfinished.add(t.number)
        self.next_unseen = max(self.next_unseen, upto)
        return trials

    def add_own(self, number: int) -> None:
        """Register the trial being sampled in this process (re-read until it finishes)."""
        self.unfinished.add(number)


class StudyReplay:
    """Incremental replay of one study's trials into one agent.

    Args:
        grid: The grid the agent works on.
        agent: The agent to feed.
        stale_after: Finished later trials after which a still-RUNNING trial is
            skipped for learning (see the module docstring).
    """

    def __init__(
        self, grid: Grid, agent: QLearningAgent | PolicyAgent, stale_after: int = 64
    ) -> None:
        self.grid = grid
        self.agent = agent
        self.stale_after = stale_after
        self.cursor = 0  # next trial number to learn from
        self.finished: dict[int, FrozenTrial] = {}  # fetched, finished, not yet learned
        self.records: dict[int, Record] = {}
        self.in_flight: dict[int, State] = {}
        self.claimed: set[int] = set()  # trial numbers some trial continued from
        self.heads: dict[int, tuple[State, int]] = {}  # number -> (state, step)
        # RUNNING trials of other workers that have not chosen their point yet (no
        # record, no params) -> when this process first saw them (time.monotonic()).
        self.undecided: dict[int, float] = {}
        self.own: set[int] = set()  # trials proposed by this process
        self.proposed: dict[int, Record] = {}  # this process's records, until learned

    def _describes(self, trial: FrozenTrial, rec: Record) -> bool:
        """Whether the record's grid point is the point the trial evaluated: Optuna may
        have replaced a value (or a user may have fixed one), and the agent must never
        learn a value for a point it did not evaluate."""
        point = self.grid.decode(rec.state)
        for name, dist in self.grid.distributions.items():
            if name not in trial.params:
                continue  # never suggested (the trial failed first)
            if trial.distributions.get(name) != dist:
                return False
            if dist.to_internal_repr(trial.params[name]) != dist.to_internal_repr(point[name]):
                return False
        return True

    def _state_of(self, trial: FrozenTrial, rec: Record | None) -> State | None:
        if rec is not None:
            return rec.state
        if not all(n in trial.params for n in self.grid.names):
            return None
        for name in self.grid.names:
            dist = trial.distributions[name]
            if dist != self.grid.distributions[name]:
                return None
        return self.grid.encode(trial.params)

    def update(self, study: Study, trials: Sequence[FrozenTrial], upto: int) -> None:
        """Take in new or changed trials, then learn from all finished ones in order.

        Args:
            study: The study (used only to mark abandoned trials stale).
            trials: Trials fetched since the last call (see :class:`TrialFeed`).
            upto: Learn from trials numbered below this.
        """
        for trial in trials:
            self._see(trial)
        self._advance(study, upto)

    def _see(self, trial: FrozenTrial) -> None:
        n = trial.number
        # Parse on every sighting: a worker may redraw its proposal (and rewrite the
        # record) while the trial runs; the record of a finished trial is final.
        rec = self.proposed.get(n)
        if rec is None:
            rec = parse_record(trial, self.grid)
        if rec is not None and trial.state in _FINISHED and not self._describes(trial, rec):
            # Learned as a trial of another sampler (its evaluated params), not as a move.
            rec = None
            self.records.pop(n, None)
            self.proposed.pop(n, None)
        if rec is not None:
            self.records[n] = rec
            if rec.parent is not None:
                self.claimed.add(rec.parent)
                self.heads.pop(rec.parent, None)
        state = self._state_of(trial, rec)
        if trial.state in _FINISHED or state is not None or KEY_RECORD in trial.system_attrs:
            self.undecided.pop(n, None)
        elif n not in self.own and not trial.params:
            self.undecided.setdefault(n, time.monotonic())
        if trial.state in _FINISHED:
            self.in_flight.pop(n, None)
            self.finished[n] = trial
            if state is None:
                return
            value = trial_value(trial)
            self.agent.note_finished(n, state, value)
            step = rec.step if rec is not None else 0
            if (
                value is not None
                and n not in self.claimed
                and step + 1 < self.agent.config.episode_length
            ):
                self.heads[n] = (state, step)
                if len(self.heads) > _MAX_HEADS:  # abandoned episodes: forget the oldest
                    del self.heads[min(self.heads)]
        elif state is not None:
            self.in_flight[n] = state

    def _advance(self, study: Study, upto: int) -> None:
        while self.cursor < upto:
            n = self.cursor
            trial = self.finished.pop(n, None)
            if trial is None:
                if not self._skip_if_stale(study, n):
                    return
            else:
                self._learn(trial)
            self.proposed.pop(n, None)
            self.cursor += 1

    def _skip_if_stale(self, study: Study, number: int) -> bool:
        later_done = sum(1 for m in self.finished if m > number)
        if later_done < self.stale_after:
            return False
        storage = study._storage
        tid = storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
        trial = storage.get_trial(tid)
        if trial.system_attrs.get(KEY_STALE):
            self.in_flight.pop(number, None)
            return True
        if trial.state not in _FINISHED:
            try:
                storage.set_trial_system_attr(tid, KEY_STALE, True)
                self.in_flight.pop(number, None)
                return True
            except (RuntimeError, ValueError):  # finished meanwhile: learn from it below
                trial = storage.get_trial(tid)
                if trial.state not in _FINISHED:
                    return False  # could not mark it: keep waiting, try again next time
        self._see(trial)
        self.finished.pop(number, None)
        self._learn(trial)
        return True

    def _learn(self, trial: FrozenTrial) -> None:
        if trial.system_attrs.get(KEY_STALE):
            return
        rec = self.records.get(trial.number)
        state = self._state_of(trial, rec)
        if state is None:
            return
        value = trial_value(trial)
        if isinstance(self.agent, PolicyAgent):
            # A decision counts only with a record that describes the evaluated point.
            attrs = trial.system_attrs.get(KEY_DECISION) if rec is not None else None
            decision = Decision.from_attrs(attrs) if isinstance(attrs, dict) else None
            self.agent.learn(trial.number, state, value, decision)
            return
        path = rec.path if rec is not None else ()
        step = rec.step if rec is not None else 0
        self.agent.learn(Step(trial.number, state, value, path, step))

    # ----------------------------------------------------------- decisions
    def undecided_before(self, number: int, timeout: float) -> list[int]:
        """Trials numbered below ``number`` still choosing their point elsewhere.

        Decisions are taken in trial-number order: a trial waits until every earlier
        trial has written its record, so it sees their points as busy and their
        episode heads as claimed. A trial undecided for ``timeout`` seconds (its
        worker died while sampling, or another sampler owns it) is no longer waited for.
        """
        now = time.monotonic()
        return [m for m, t0 in self.undecided.items() if m < number and now - t0 < timeout]

    def pick_head(self) -> tuple[int, State, int] | None:
        """The most recent finished trial nobody has continued from yet."""
        if not self.heads:
            return None
        n = max(self.heads)
        state, step = self.heads[n]
        return n, state, step

    def claim(self, number: int, record: Record) -> None:
        """Register a trial this process just proposed, with the record it stores."""
        if record.parent is not None:
            self.claimed.add(record.parent)
            self.heads.pop(record.parent, None)
        self.in_flight[number] = record.state
        self.own.add(number)
        self.undecided.pop(number, None)

    def stored(self, number: int, record: Record) -> None:
        """Note that this process stored ``record`` on trial ``number``, so that it is
        not parsed back from storage when the trial finishes."""
        self.proposed[number] = record
