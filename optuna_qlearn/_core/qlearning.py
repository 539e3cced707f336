"""Pure tabular Q-learning on a grid: moves, Q-table, epsilon schedule, Bellman update.

Nothing here knows about Optuna. A *state* is a tuple of grid indices, an
*action* is a row of :attr:`MoveSet.deltas` (how many grid steps to move along
each axis), and the agent learns

.. math::

    Q(s, a) \\leftarrow Q(s, a) + \\alpha \\left(r + \\gamma \\max_{a'} Q(s', a') - Q(s, a)\\right)

with :math:`\\gamma \\max_{a'} Q(s', a')` dropped on the last step of an episode.
"""

from __future__ import annotations

import itertools
import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

State = tuple[int, ...]

#: Joint moves have 3**d actions; above this many axes the table is refused.
MAX_JOINT_DIMS = 8

#: States whose valid moves are cached (about 2 kB each with 25 moves; the cache
#: is emptied when full).
_MAX_CACHED_STATES = 50_000


class MoveSet:
    """The action space: neighbour moves on a grid.

    Args:
        shape: Number of points per axis.
        moves: ``"axis"`` moves one axis by ``±step`` for each step in ``step_sizes``
            (``1 + 2 * d * len(step_sizes)`` actions); ``"joint"`` moves every axis by
            -1, 0 or +1 at once (``3**d`` actions, the original design).
        step_sizes: Grid steps per axis move (``"axis"`` only), e.g. ``(1, 2, 4)``.
        names: Axis names, used for readable action labels.
        allow_stay: Whether the no-op move is allowed.

    Raises:
        ValueError: For ``"joint"`` with more than :data:`MAX_JOINT_DIMS` axes, or
            bad arguments.

    Example:

        .. code-block:: python

            from optuna_qlearn._core.qlearning import MoveSet

            moves = MoveSet((3, 3), names=("x", "y"))
            assert moves.n_actions == 5  # stay, x-1, x+1, y-1, y+1
            mask = moves.valid_mask((0, 2))  # at a corner: x-1 and y+1 leave the grid
            assert mask.tolist() == [True, False, True, True, False]
    """

    def __init__(
        self,
        shape: Sequence[int],
        moves: str = "axis",
        step_sizes: Sequence[int] = (1,),
        names: Sequence[str] | None = None,
        allow_stay: bool = True,
    ) -> None:
        self.shape = np.asarray(shape, dtype=np.int64)
        d = len(self.shape)
        self.names = tuple(names) if names is not None else tuple(f"x{i}" for i in range(d))
        if len(self.names) != d:
            raise ValueError(f"Got {len(self.names)} names for {d} axes.")
        if moves == "joint":
            if d > MAX_JOINT_DIMS:
                raise ValueError(
                    f'moves="joint" needs 3**d actions; with d={d} parameters that is {3**d:,}, '
                    f'more than a Q-table can learn from trials. Use moves="axis" '
                    f"(1 + 2*d actions), or at most {MAX_JOINT_DIMS} parameters."
                )
            deltas = np.array(list(itertools.product((-1, 0, 1), repeat=d)), dtype=np.int64)
            deltas = deltas.reshape(-1, d)
            # Put "stay" first so that action 0 is always the no-op.
            zero = np.flatnonzero(~deltas.any(axis=1))[0]
            order = [zero, *[i for i in range(len(deltas)) if i != zero]]
            deltas = deltas[order]
        elif moves == "axis":
            sizes = sorted({int(s) for s in step_sizes})
            if not sizes or sizes[0] < 1:
                raise ValueError(f"step_sizes must be positive integers, got {step_sizes!r}.")
            rows = [np.zeros(d, dtype=np.int64)]
            for axis in range(d):
                for s in sizes:
                    for sign in (-1, 1):
                        row = np.zeros(d, dtype=np.int64)
                        row[axis] = sign * s
                        rows.append(row)
            deltas = np.stack(rows).reshape(-1, d)
        else:
            raise ValueError(f'moves must be "axis" or "joint", got {moves!r}.')
        self.kind = moves
        self.allow_stay = allow_stay
        self.deltas: np.ndarray = deltas
        self.n_actions = len(deltas)
        #: Per action, the one axis it moves (``-1`` for "stay" and for joint moves).
        self.axis_of: list[int] = [
            int(np.flatnonzero(row)[0]) if moves == "axis" and row.any() else -1 for row in deltas
        ]
        self._cache: dict[State, tuple[list[int], list[State]]] = {}
        self._masks: dict[State, np.ndarray] = {}
        self._shape = [int(n) for n in self.shape]
        # Per axis, its moves as (action, step), in action order.
        self._axis_moves = [
            (ax, [(a, int(deltas[a][ax])) for a in range(len(deltas)) if self.axis_of[a] == ax])
            for ax in range(d)
        ]
        self._labels = [
            ",".join(f"{n}{int(v):+d}" for n, v in zip(self.names, row) if v != 0) or "stay"
            for row in deltas
        ]

    def label(self, action: int) -> str:
        """A readable label such as ``"stay"``, ``"lr+1"`` or ``"x+1,y-1"``."""
        return self._labels[action]

    def labels(self) -> list[str]:
        """Labels of all actions, in order."""
        return list(self._labels)

    def apply(self, state: Sequence[int], action: int) -> State:
        """The state reached by ``action`` from ``state`` (not checked against the grid)."""
        return tuple(int(v) for v in np.asarray(state, dtype=np.int64) + self.deltas[action])

    def valid_mask(self, state: Sequence[int]) -> np.ndarray:
        """Boolean mask of the actions that keep ``state`` on the grid (a fresh array)."""
        return self.mask(tuple(state)).copy()

    def mask(self, state: State) -> np.ndarray:
        """The cached, read-only mask of the valid actions at ``state``."""
        mask = self._masks.get(state)
        if mask is None:
            mask = np.zeros(self.n_actions, dtype=bool)
            mask[self.valid(state)[0]] = True
            mask.flags.writeable = False
            if len(self._masks) >= _MAX_CACHED_STATES:
                self._masks.clear()
            self._masks[state] = mask
        return mask

    def valid(self, state: State) -> tuple[list[int], list[State]]:
        """``(actions, next_states)`` of the valid actions at ``state``, in action order.

        Cached and shared: the sampler asks about the same states many times per
        trial. Do not mutate the results.
        """
        hit = self._cache.get(state)
        if hit is not None:
            return hit
        actions: list[int] = []
        nexts: list[State] = []
        if self.kind == "axis":
            # Plain Python beats array set-up for the 1 + 2 * d * steps axis moves.
            if self.allow_stay:
                actions.append(0)
                nexts.append(state)
            point = list(state)
            for ax, moves in self._axis_moves:
                here, size = point[ax], self._shape[ax]
                for a, step in moves:
                    v = here + step
                    if 0 <= v < size:
                        point[ax] = v
                        actions.append(a)
                        nexts.append(tuple(point))
                point[ax] = here
        else:
            nxt = np.asarray(state, dtype=np.int64)[None, :] + self.deltas
            ok = np.all((nxt >= 0) & (nxt < self.shape[None, :]), axis=1)
            ok[0] = ok[0] and self.allow_stay
            actions = np.flatnonzero(ok).tolist()
            nexts = [tuple(r) for r in nxt[actions].tolist()]
        if len(self._cache) >= _MAX_CACHED_STATES:
            self._cache.clear()
        hit = self._cache[state] = (actions, nexts)
        return hit


def epsilon_at(n: int, start: float, end: float, decay: float) -> float:
    """Exponentially decaying exploration rate.

    Args:
        n: Number of completed steps so far.
        start: Epsilon at ``n = 0``.
        end: The floor (``epsilon_min``).
        decay: Multiplicative decay per completed step, in ``(0, 1]``.

    Returns:
        ``max(end, start * decay**n)``.
    """
    return float(max(end, start * decay**n))


def epsilon_greedy(
    q: Sequence[float] | np.ndarray,
    allowed: np.ndarray | Sequence[int],
    epsilon: float,
    rng: np.random.RandomState,
) -> tuple[int, bool]:
    """Pick an action epsilon-greedily among the allowed ones.

    Ties among greedy actions are broken uniformly at random (a unique greedy
    action draws no random number).

    Args:
        q: Q-values, one per action.
        allowed: A boolean mask over actions, or the list of allowed action indices.
        epsilon: Probability of a uniformly random allowed action.
        rng: The random number generator.

    Returns:
        ``(action, explored)``, where ``explored`` says the random branch was taken.

    Raises:
        ValueError: If no action is allowed.
    """
    valid = np.flatnonzero(allowed).tolist() if isinstance(allowed, np.ndarray) else allowed
    if len(valid) == 0:
        raise ValueError("No valid action: every move leaves the grid or is masked.")
    if rng.random_sample() < epsilon:
        return int(valid[rng.randint(len(valid))]), True
    best = q[max(valid, key=q.__getitem__)] - 1e-12
    ties = [a for a in valid if q[a] >= best]
    return int(ties[rng.randint(len(ties))] if len(ties) > 1 else ties[0]), False


def bellman_target(
    reward: float, gamma: float, next_q: np.ndarray | float | None, done: bool
) -> float:
    """The one-step target ``r + gamma * max_a' Q(s', a')`` (just ``r`` when ``done``).

    Args:
        reward: The observed reward.
        gamma: The discount factor.
        next_q: Q-values of the next state's *valid* actions, or their maximum;
            ``None`` or empty when it has none.
        done: Whether the episode ended with this step.

    Returns:
        The target.
    """
    if done or next_q is None:
        return float(reward)
    if isinstance(next_q, np.ndarray):
        if next_q.size == 0:
            return float(reward)
        next_q = float(next_q.max())
    return float(reward + gamma * next_q)


@dataclass
class QTable:
    """A sparse Q-table: only visited states are stored.

    Args:
        n_actions: Size of the action space.
        q_init: Q-value of an action never updated.

    Example:

        .. code-block:: python

            import numpy as np
            from optuna_qlearn._core.qlearning import QTable

            table = QTable(n_actions=3)
            table.update((0,), 1, reward=1.0, next_state=(1,), next_mask=np.ones(3, bool),
                         alpha=0.5, gamma=0.9, done=False)
            assert table.get((0,))[1] == 0.5
    """

    n_actions: int
    q_init: float = 0.0

    def __post_init__(self) -> None:
        self.q: dict[State, np.ndarray] = {}
        self.visits: dict[State, np.ndarray] = {}

    def get(self, state: State) -> np.ndarray:
        """Q-values of ``state`` (a fresh ``q_init`` row if never visited; do not mutate)."""
        row = self.q.get(state)
        if row is None:
            return np.full(self.n_actions, self.q_init)
        return row

    def _row(self, state: State) -> np.ndarray:
        row = self.q.get(state)
        if row is None:
            row = self.q[state] = np.full(self.n_actions, self.q_init)
            self.visits[state] = np.zeros(self.n_actions, dtype=np.int64)
        return row

    def update(
        self,
        state: State,
        action: int,
        reward: float,
        next_state: State,
        next_mask: np.ndarray,
        alpha: float,
        gamma: float,
        done: bool,
    ) -> float:
        """Apply one Bellman update and return the TD error.

        Args:
            state: ``s``.
            action: ``a``.
            reward: ``r``.
            next_state: ``s'``.
            next_mask: Valid actions at ``s'`` (the max runs over these only).
            alpha: Learning rate.
            gamma: Discount factor.
            done: Whether ``s'`` ends the episode (no bootstrap).

        Returns:
            ``target - Q(s, a)`` before the update.
        """
        next_q: np.ndarray | float | None = None
        if not done:
            next_row = self.q.get(next_state)
            if next_row is not None:
                next_q = next_row[next_mask]
            elif next_mask.any():  # never left: q_init everywhere
                next_q = self.q_init
        target = bellman_target(reward, gamma, next_q, done)
        row = self._row(state)
        old = float(row[action])
        td = target - old
        row[action] = old + alpha * td
        self.visits[state][action] += 1
        return td

    def set(self, state: State, values: np.ndarray, visits: np.ndarray | None = None) -> None:
        """Overwrite a row (used to warm-start from a saved table)."""
        self._row(state)[:] = values
        if visits is not None:
            self.visits[state][:] = visits

    def __len__(self) -> int:
        return len(self.q)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QTable):
            return NotImplemented
        return (
            self.n_actions == other.n_actions
            and self.q.keys() == other.q.keys()
            and all(np.array_equal(self.q[s], other.q[s]) for s in self.q)
            and all(np.array_equal(self.visits[s], other.visits[s]) for s in self.visits)
        )

    __hash__ = None  # type: ignore[assignment]


# --------------------------------------------------------------------- persistence
TABLE_FORMAT = "optuna-qlearn/q-table"
TABLE_VERSION = 1


@dataclass
class SavedTable:
    """A Q-table detached from any study, as written by :func:`save_table`.

    Args:
        axes: ``[{"name", "values", "categorical"}, ...]``: what each state index means.
        actions: Action labels (see :meth:`MoveSet.label`).
        states: ``(n_states, d)`` int array of grid indices.
        q: ``(n_states, n_actions)`` Q-values.
        visits: ``(n_states, n_actions)`` update counts.
    """

    axes: list[dict[str, object]]
    actions: list[str]
    states: np.ndarray
    q: np.ndarray
    visits: np.ndarray

    @classmethod
    def from_table(
        cls, table: QTable, actions: list[str], axes: list[dict[str, object]]
    ) -> SavedTable:
        """Snapshot a :class:`QTable`."""
        keys = sorted(table.q)
        d = len(axes)
        return cls(
            axes=axes,
            actions=list(actions),
            states=np.array(keys, dtype=np.int64).reshape(len(keys), d),
            q=np.array([table.q[s] for s in keys], dtype=float).reshape(len(keys), len(actions)),
            visits=np.array([table.visits[s] for s in keys], dtype=np.int64).reshape(
                len(keys), len(actions)
            ),
        )


def _table_path(path: str | os.PathLike[str]) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"A Q-table path must be a str or os.PathLike, got {type(path).__name__}.")
    text = os.fspath(path)
    if not text.endswith((".json", ".npz")):
        raise ValueError(f"Q-table path must end with .json or .npz, got {text!r}.")
    return text


def save_table(path: str | os.PathLike[str], saved: SavedTable) -> None:
    """Write a Q-table as JSON (``.json``) or NumPy ``.npz``; never pickle.

    Args:
        path: Destination; the suffix picks the format.
        saved: The table.

    Raises:
        ValueError: For another suffix.
    """
    path = _table_path(path)
    header = {
        "format": TABLE_FORMAT,
        "version": TABLE_VERSION,
        "axes": saved.axes,
        "actions": saved.actions,
    }
    if path.endswith(".json"):
        doc = dict(
            header, states=saved.states.tolist(), q=saved.q.tolist(), visits=saved.visits.tolist()
        )
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
    else:
        np.savez(
            path,
            header=np.array(json.dumps(header)),
            states=saved.states,
            q=saved.q,
            visits=saved.visits,
        )


def _read_table_file(path: str) -> tuple[Any, dict[str, Any]]:
    """The header document and the raw arrays of a Q-table file (nothing checked yet)."""
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            try:
                doc = json.load(f)
            except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
                raise ValueError(f"is not valid JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise ValueError(f"holds a JSON {type(doc).__name__}, not an object")
        return doc, {k: doc[k] for k in ("states", "q", "visits") if k in doc}
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"is not a readable .npz archive ({exc})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError("is a single .npy array, not an .npz archive")
    with z:
        if "header" not in z.files:
            raise ValueError("has no 'header' array")
        try:
            doc = json.loads(str(z["header"]))
            return doc, {k: z[k] for k in ("states", "q", "visits") if k in z.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"has an unreadable entry ({exc})") from None


def _array(name: str, raw: Any, shape: tuple[int, int], integral: bool) -> np.ndarray:
    try:
        arr = np.asarray(raw, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name!r} is not a numeric array ({exc})") from None
    if arr.size == 0 and shape[0] == 0:
        arr = arr.reshape(shape)
    if arr.shape != shape:
        raise ValueError(f"{name!r} has shape {arr.shape}, expected {shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name!r} holds NaN or infinite values")
    if integral:
        if (arr != np.round(arr)).any():
            raise ValueError(f"{name!r} holds non-integer values")
        return arr.astype(np.int64)
    return arr


def _check_table(doc: Any, raw: dict[str, Any]) -> SavedTable:
    if not isinstance(doc, dict) or doc.get("format") != TABLE_FORMAT:
        raise ValueError(f"is not an optuna-qlearn Q-table (format {TABLE_FORMAT!r})")
    if doc.get("version") != TABLE_VERSION:
        raise ValueError(
            f"has version {doc.get('version')!r}; this optuna-qlearn reads version {TABLE_VERSION}"
        )
    missing = [
        k for k in ("axes", "actions", "states", "q", "visits") if k not in doc and k not in raw
    ]
    if missing:
        raise ValueError(f"has no {missing[0]!r} entry")
    axes, actions = doc.get("axes"), doc.get("actions")
    if not isinstance(axes, list) or not axes:
        raise ValueError("'axes' must be a non-empty list")
    sizes = []
    for i, axis in enumerate(axes):
        if (
            not isinstance(axis, dict)
            or not isinstance(axis.get("name"), str)
            or not isinstance(axis.get("values"), list)
            or not axis["values"]
        ):
            raise ValueError(f"axis {i} must be an object with a 'name' and a non-empty 'values'")
        sizes.append(len(axis["values"]))
    names = [axis["name"] for axis in axes]
    if len(set(names)) != len(names):
        raise ValueError(f"repeats a parameter name: {names}")
    if (
        not isinstance(actions, list)
        or not actions
        or not all(isinstance(a, str) for a in actions)
        or len(set(actions)) != len(actions)
    ):
        raise ValueError("'actions' must be a non-empty list of distinct labels")
    states_raw = raw["states"]
    n = len(states_raw) if hasattr(states_raw, "__len__") else -1
    if n < 0:
        raise ValueError("'states' is not an array")
    states = _array("states", states_raw, (n, len(axes)), integral=True)
    q = _array("q", raw["q"], (n, len(actions)), integral=False)
    visits = _array("visits", raw["visits"], (n, len(actions)), integral=True)
    bad = (states < 0) | (states >= np.asarray(sizes, dtype=np.int64))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"state {row} has index {int(states[row, col])} on axis {names[col]!r}, which has "
            f"{sizes[col]} values"
        )
    if (visits < 0).any():
        raise ValueError("'visits' holds negative counts")
    if len({tuple(r) for r in states.tolist()}) != n:
        raise ValueError("lists a state twice")
    return SavedTable(axes, list(actions), states, q, visits)


def load_table(path: str | os.PathLike[str]) -> SavedTable:
    """Read and validate a table written by :func:`save_table` (``allow_pickle=False``).

    The whole file is checked here, so a bad file fails at load with its name and
    the problem, never later inside a trial.

    Args:
        path: A ``.json`` or ``.npz`` file.

    Returns:
        The table.

    Raises:
        TypeError: If ``path`` is not a str or os.PathLike.
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is not a valid optuna-qlearn Q-table: unreadable,
            truncated, another format or version, missing entries, wrong shapes,
            non-finite Q-values, or state indices outside their axes.
    """
    path = _table_path(path)
    try:
        doc, raw = _read_table_file(path)
        return _check_table(doc, raw)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(f"Q-table file {path!r} {exc}.") from None
