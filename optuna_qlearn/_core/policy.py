"""The learned search policy: candidate actions, their features, and the Q-network.

Pure NumPy, no Optuna. A study is one walk on the grid. Before every trial
:meth:`SearchState.candidates` lists the actions open now, each with the grid point
it would evaluate:

* ``move``: from the current point (the last one evaluated), one axis ``+-1``,
  ``+-2`` or ``+-4`` steps (at most :data:`MAX_MOVES` of them, a random subset when
  a grid has more), and from the best point so far, one axis ``+-1`` or ``+-2`` steps
  (at most :data:`BEST_MOVES`; labelled ``"best K+1"``);
* ``restart-best``: an unevaluated point 1-2 steps from one of the 5 best points;
* ``model``: the :data:`MODEL_TOP` best of :data:`MODEL_DRAWS` draws from the good-point
  density of :class:`~optuna_qlearn._core.prior.JointGridPrior` (multivariate TPE's
  density ratio over the grid, Optuna's default), ranked by ``log l - log g``;
* ``random``: a uniformly random unevaluated point.

Each candidate is described by :data:`FEATURE_NAMES`, features that depend neither
on the grid's size nor on the number of parameters (:meth:`SearchState.features`).
:class:`PolicyNetwork` maps them to a Q-value and :func:`epsilon_greedy` picks the
candidate evaluated: **no other rule picks a point**. The density model is one input
and one kind of action, not the decider.

Rewards are normalized improvements of the best value so far. Pre-training
(:mod:`optuna_qlearn._core.training`) measures the improvement against the task's
whole grid (the fall of the incumbent's quantile); within a study, where only the
observed values are known, :func:`improvement_reward` divides the improvement by the
spread of the values seen (their 75th percentile minus the best), clipped to
``[0, 1]``. Both are at most 1 per trial; they are not the same quantity, and the
per-study table (:mod:`optuna_qlearn._core.learned`) learns in the second.

The cost of a decision does not grow with the number of trials: membership and
ranks use a dict and a sorted list, the density model is refitted on at most
:data:`MODEL_MAX_GOOD` good points and the latest :data:`MODEL_MAX_REST` others, and
candidate features touch only the candidates.

Example:

    .. code-block:: python

        import numpy as np
        from optuna_qlearn._core.policy import PolicyNetwork, SearchState, epsilon_greedy

        rng = np.random.default_rng(0)
        net = PolicyNetwork.initial(seed=0)
        state = SearchState((8, 8), (False, False))
        for _ in range(20):
            cands = state.candidates(rng)
            i, _ = epsilon_greedy(net(state.features(cands)), 0.05, rng)
            point = cands.points[i]
            state.record(point, float(sum((p - 3) ** 2 for p in point)))
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optuna_qlearn._core.prior import JointGridPrior, n_good

#: Step sizes of the neighbour moves.
STEPS = (1, 2, 4)
#: Most neighbour moves offered at one trial.
MAX_MOVES = 28
#: Candidates the density model offers per trial (its best of :data:`MODEL_DRAWS`).
MODEL_TOP = 3
#: Draws from the good-point density per trial (TPE's default number of candidates).
MODEL_DRAWS = 24
#: Most moves from the best point offered at one trial (steps 1 and 2).
BEST_MOVES = 16
#: Most candidates at one trial.
MAX_CANDIDATES = MAX_MOVES + BEST_MOVES + 2 + MODEL_TOP
#: Fraction and most of the evaluated points the density model counts as good
#: (TPE's defaults: ``min(ceil(0.1 * n), 25)``).
MODEL_GAMMA, MODEL_MAX_GOOD = 0.1, 25
#: Most of the other points the density model's ``g`` is fitted on (the latest; TPE
#: uses all, and the oldest carry the least weight), so its cost stops growing.
MODEL_MAX_REST = 500
#: How many of the best points ``restart-best`` starts from.
RESTART_TOP = 5
#: Action kinds, in the order of their one-hot features.
ACTION_KINDS = ("move", "restart-best", "model", "random")
#: Kinds of the in-study correction table: moves split by step size.
CORRECTION_KINDS = tuple(f"move-{s}" for s in STEPS) + ACTION_KINDS[1:]
#: Trial count at which the ``progress`` and ``stale`` features reach 1.
HORIZON = 1000
#: Names of the features of a candidate action.
FEATURE_NAMES = (
    "bias",
    "score",  # tanh(0.5 * (log l - log g)) of the target (density ratio)
    "score_rank",  # the target's score rank among the candidates (1 = best)
    "evaluated",  # the target was evaluated before
    "target_quality",  # evaluated: 1 - value rank fraction (1 = the best); else 0
    "current_quality",  # the current point's 1 - value rank fraction
    "dist_best",  # normalized distance of the target to the best point
    "dist_current",  # normalized distance of the target to the current point
    "move_size",  # step / 4 for moves, 0 for jumps
    "move_categorical",  # the move is along a categorical axis
    "progress",  # log(1 + trials) / log(1 + HORIZON), at most 1
    "stale",  # log(1 + trials since the best improved) / log(1 + HORIZON), at most 1
    "neighbours_evaluated",  # fraction of the target's +-1 neighbours evaluated
    *(f"kind_{k}" for k in ACTION_KINDS),
)
N_FEATURES = len(FEATURE_NAMES)
#: Version of the policy file format written by :meth:`PolicyEnsemble.save` (2: the
#: ``score`` features come from the joint density model; version-1 files, trained on the
#: per-axis one, are refused).
FILE_VERSION = 2
#: Most networks a policy file may hold.
MAX_MEMBERS = 64


class PolicyFileError(ValueError):
    """A policy file that cannot be used (the message names the file and the problem)."""


class PolicyNetwork:
    """Q-network ``N_FEATURES -> hidden -> hidden -> 1`` with ReLU, NumPy only.

    Forward and backward passes are a few matrix products, so a sampler that uses it
    needs no PyTorch; training is Adam on the Huber loss (:meth:`train_step`).

    Args:
        params: ``[w1, b1, w2, b2, w3, b3]`` with shapes ``(N_FEATURES, h)``, ``(h,)``,
            ``(h, h)``, ``(h,)``, ``(h, 1)``, ``(1,)``.
        lr: Adam's learning rate.

    Raises:
        ValueError: If the arrays do not have these shapes or are not finite.
    """

    def __init__(self, params: Sequence[np.ndarray], lr: float = 1e-3) -> None:
        params = [np.asarray(p, dtype=float) for p in params]
        if len(params) != 6 or params[0].ndim != 2 or params[0].shape[0] != N_FEATURES:
            raise ValueError(f"Expected the 6 weight arrays of a {N_FEATURES}-feature network.")
        h = params[0].shape[1]
        shapes = [(N_FEATURES, h), (h,), (h, h), (h,), (h, 1), (1,)]
        for i, (p, shape) in enumerate(zip(params, shapes)):
            if p.shape != shape:
                raise ValueError(f"Weight array {i} has shape {p.shape}, expected {shape}.")
            if not np.isfinite(p).all():
                raise ValueError(f"Weight array {i} holds NaN or infinite values.")
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}.")
        self.params = params
        self.lr = lr
        self._m = [np.zeros_like(p) for p in params]
        self._v = [np.zeros_like(p) for p in params]
        self._t = 0

    @classmethod
    def initial(cls, seed: int, hidden: int = 32, lr: float = 1e-3) -> PolicyNetwork:
        """A network at its random initialization (He), where training starts.

        Args:
            seed: Seeds the weights.
            hidden: Units per hidden layer.
            lr: Adam's learning rate.
        """
        if hidden < 1:
            raise ValueError(f"hidden must be at least 1, got {hidden}.")
        rng = np.random.default_rng([seed, 1])
        params = []
        for a, b in itertools.pairwise([N_FEATURES, hidden, hidden, 1]):
            params.append(rng.normal(0.0, math.sqrt(2.0 / a), (a, b)))
            params.append(np.zeros(b))
        return cls(params, lr=lr)

    @property
    def hidden(self) -> int:
        """Units per hidden layer."""
        return int(self.params[0].shape[1])

    def copy(self) -> PolicyNetwork:
        """An independent copy of the weights (optimizer state reset)."""
        return PolicyNetwork([p.copy() for p in self.params], lr=self.lr)

    def copy_from(self, other: PolicyNetwork) -> None:
        """Set the weights to ``other``'s (the target network's sync)."""
        self.params = [p.copy() for p in other.params]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Q-values of feature rows ``x`` (shape ``(..., N_FEATURES)``)."""
        w1, b1, w2, b2, w3, b3 = self.params
        h1 = np.maximum(x @ w1 + b1, 0.0)
        h2 = np.maximum(h1 @ w2 + b2, 0.0)
        return np.asarray((h2 @ w3 + b3)[..., 0])

    def train_step(self, x: np.ndarray, target: np.ndarray, delta: float = 1.0) -> float:
        """One Adam step on the Huber loss of ``Q(x)`` against ``target``.

        Returns:
            The mean Huber loss before the step.
        """
        w1, b1, w2, b2, w3, b3 = self.params
        z1 = x @ w1 + b1
        h1 = np.maximum(z1, 0.0)
        z2 = h1 @ w2 + b2
        h2 = np.maximum(z2, 0.0)
        err = (h2 @ w3 + b3)[:, 0] - target
        loss = np.where(np.abs(err) <= delta, 0.5 * err**2, delta * (np.abs(err) - 0.5 * delta))
        g = (np.clip(err, -delta, delta) / len(x))[:, None]
        g2 = (g @ w3.T) * (z2 > 0)
        g1 = (g2 @ w2.T) * (z1 > 0)
        grads = [x.T @ g1, g1.sum(0), h1.T @ g2, g2.sum(0), h2.T @ g, g.sum(0)]
        self._t += 1
        c1, c2 = 1 - 0.9**self._t, 1 - 0.999**self._t
        for i, grad in enumerate(grads):
            self._m[i] = 0.9 * self._m[i] + 0.1 * grad
            self._v[i] = 0.999 * self._v[i] + 0.001 * grad**2
            self.params[i] = self.params[i] - self.lr * (self._m[i] / c1) / (
                np.sqrt(self._v[i] / c2) + 1e-8
            )
        return float(loss.mean())

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the weights to an ``.npz`` policy file of one network (read back with
        ``allow_pickle=False``; see :class:`PolicyEnsemble` for the format).

        Args:
            path: Destination; ``.npz`` is appended by NumPy when missing.
        """
        PolicyEnsemble([self]).save(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PolicyNetwork:
        """Read a policy file of one network, validated whole.

        Args:
            path: An ``.npz`` policy file.

        Raises:
            PolicyFileError: As :meth:`PolicyEnsemble.load`, and for a file of several
                networks (read it with :meth:`PolicyEnsemble.load`).
        """
        members = PolicyEnsemble.load(path).members
        if len(members) != 1:
            raise PolicyFileError(
                f"Policy file {os.fspath(path)!r} holds {len(members)} networks; read it "
                "with PolicyEnsemble.load."
            )
        return members[0]


def member_keys(k: int) -> list[str]:
    """The archive keys of member ``k``'s weight arrays."""
    return [f"w{i}" if k == 0 else f"m{k}_w{i}" for i in range(6)]


class PolicyEnsemble:
    """The Q-function of a policy: the mean Q-value of independently trained networks.

    Deep Q-learning from one seed is noisy: on the benchmark suite, networks trained
    alike from different seeds differed more than the variants compared, and the mean
    of two ranked above either (``experiments/learned_policy``). Averaging the members'
    Q-values is a plain ensemble (as in bootstrapped or averaged DQN); with one member
    it is that network exactly.

    Files are ``.npz`` archives: ``version``, ``features`` (:data:`FEATURE_NAMES`),
    ``members`` (their number; 1 when absent), member 0's arrays ``w0`` ... ``w5`` and
    member ``k``'s ``m{k}_w0`` ... ``m{k}_w5``.

    Args:
        members: The networks (at least one).

    Raises:
        ValueError: If ``members`` is empty.
    """

    def __init__(self, members: Sequence[PolicyNetwork]) -> None:
        if not members:
            raise ValueError("A policy needs at least one network.")
        self.members = list(members)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Q-values of feature rows ``x``: the members' mean."""
        if len(self.members) == 1:
            return self.members[0](x)
        return np.asarray(np.mean([m(x) for m in self.members], axis=0))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write every member to one ``.npz`` file (read back with ``allow_pickle=False``).

        Args:
            path: Destination; ``.npz`` is appended by NumPy when missing.
        """
        arrays = {
            key: p
            for k, member in enumerate(self.members)
            for key, p in zip(member_keys(k), member.params)
        }
        np.savez(
            path,
            version=np.array(FILE_VERSION),
            features=np.array(FEATURE_NAMES),
            members=np.array(len(self.members)),
            **arrays,  # type: ignore[arg-type]
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PolicyEnsemble:
        """Read a policy file written by :meth:`save`, validated whole.

        Args:
            path: An ``.npz`` policy file.

        Raises:
            PolicyFileError: If the file is missing, not an ``.npz`` archive, of
                another version or feature set, or holds malformed weights (the
                message names the file).
        """
        name = os.fspath(path)
        if not Path(name).is_file():
            raise PolicyFileError(f"Policy file {name!r} does not exist.")
        try:
            with np.load(name, allow_pickle=False) as data:
                arrays = {k: np.asarray(data[k]) for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise PolicyFileError(
                f"Policy file {name!r} is not a NumPy .npz archive: {err}"
            ) from err
        missing = [k for k in ("version", "features", *member_keys(0)) if k not in arrays]
        if missing:
            raise PolicyFileError(f"Policy file {name!r} misses {missing}.")
        if arrays["version"].shape != () or int(arrays["version"]) != FILE_VERSION:
            raise PolicyFileError(
                f"Policy file {name!r} has version {arrays['version']!r}; this release reads "
                f"version {FILE_VERSION}."
            )
        features = tuple(str(f) for f in np.atleast_1d(arrays["features"]))
        if features != FEATURE_NAMES:
            raise PolicyFileError(
                f"Policy file {name!r} was trained on other features {list(features)}; this "
                f"release computes {list(FEATURE_NAMES)}."
            )
        count = arrays.get("members", np.array(1))
        if count.shape != () or count.dtype.kind not in "iu" or not 1 <= count <= MAX_MEMBERS:
            raise PolicyFileError(
                f"Policy file {name!r} has members={count!r}; expected an integer in "
                f"[1, {MAX_MEMBERS}]."
            )
        members = []
        for k in range(int(count)):
            keys = member_keys(k)
            lost = [key for key in keys if key not in arrays]
            if lost:
                raise PolicyFileError(f"Policy file {name!r} misses {lost}.")
            try:
                members.append(PolicyNetwork([arrays[key] for key in keys]))
            except (ValueError, TypeError) as err:
                raise PolicyFileError(f"Policy file {name!r}: {err}") from err
        return cls(members)


def epsilon_greedy(
    q_values: np.ndarray, epsilon: float, rng: np.random.Generator
) -> tuple[int, bool]:
    """Epsilon-greedy over candidates: a uniform one with probability ``epsilon``, else
    the argmax of ``q_values`` (ties broken uniformly).

    Returns:
        ``(index of the chosen candidate, whether it was the random branch)``.
    """
    if len(q_values) == 0:
        raise ValueError("There is no candidate to choose from.")
    if rng.random() < epsilon:
        return int(rng.integers(len(q_values))), True
    best = np.flatnonzero(q_values >= q_values.max() - 1e-12)
    return int(best[int(rng.integers(len(best)))]), False


def improvement_reward(best_before: float, best_after: float, spread: float) -> float:
    """The reward of one trial: ``(best_before - best_after) / spread``, in ``[0, 1]``.

    Args:
        best_before: Best value (minimized) before the trial; ``inf`` when none.
        best_after: Best value after it.
        spread: Scale of the values seen (see :meth:`SearchState.spread`).
    """
    if not math.isfinite(best_before) or not spread > 0:
        return 0.0
    return float(min(1.0, max(0.0, (best_before - best_after) / spread)))


@dataclass(frozen=True)
class Candidates:
    """The actions open at one decision.

    Args:
        points: The grid point each would evaluate.
        kinds: Index into :data:`ACTION_KINDS`.
        steps: Step size of a move (0 for the jumps).
        axes: Axis of a move (-1 for the jumps).
        signs: Direction of a move (+1 or -1; 0 for the jumps).
        from_best: Whether a move starts from the best point instead of the current one.
    """

    points: list[tuple[int, ...]]
    kinds: np.ndarray
    steps: np.ndarray
    axes: np.ndarray
    signs: np.ndarray
    from_best: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.points)

    def label(self, i: int, names: Sequence[str] | None = None) -> str:
        """A readable name: ``"K+2"`` for a move, the kind for a jump."""
        kind = ACTION_KINDS[int(self.kinds[i])]
        if kind != "move":
            return kind
        a = int(self.axes[i])
        name = names[a] if names is not None else f"x{a}"
        move = f"{name}{'+' if self.signs[i] > 0 else '-'}{int(self.steps[i])}"
        if self.from_best is not None and self.from_best[i]:
            return f"best {move}"
        return move

    def correction_kind(self, i: int) -> int:
        """Index into :data:`CORRECTION_KINDS` (moves split by step size)."""
        kind = int(self.kinds[i])
        if kind == 0:
            return STEPS.index(int(self.steps[i]))
        return len(STEPS) + kind - 1


class SearchState:
    """What a study has seen: evaluated points and values, the density model.

    Values are minimized (negate them for a maximized objective before
    :meth:`record`). Points are tuples of grid indices.

    Args:
        shape: Points per axis.
        categorical: Per axis, whether it is unordered.
    """

    def __init__(self, shape: Sequence[int], categorical: Sequence[bool]) -> None:
        self.shape = tuple(int(n) for n in shape)
        if not self.shape or min(self.shape) < 1:
            raise ValueError(f"shape must have at least one axis of positive size, got {shape}.")
        if len(categorical) != len(self.shape):
            raise ValueError(
                f"Got {len(categorical)} categorical flags for {len(self.shape)} axes."
            )
        self.dims = np.asarray(self.shape, dtype=np.int64)
        self.cat = np.asarray([bool(c) for c in categorical], dtype=bool)
        self.span = np.maximum(self.dims - 1, 1).astype(float)
        self.n_points = int(np.prod(self.dims.astype(float)))
        self.prior = JointGridPrior(self.shape, self.cat.tolist(), max_rest=MODEL_MAX_REST)
        #: point -> best value seen there.
        self.values: dict[tuple[int, ...], float] = {}
        self._sorted: list[float] = []  # the values of ``values``, sorted
        self._ranked: list[tuple[float, tuple[int, ...]]] = []  # (value, point), sorted
        #: Evaluations recorded (failed ones included).
        self.n_trials = 0
        self.current: tuple[int, ...] | None = None
        self.best_value = math.inf
        self.best_point: tuple[int, ...] | None = None
        self.last_improvement = 0
        self._fitted_at = -1

    # -------------------------------------------------------------- recording
    def record(self, point: Sequence[int], value: float | None) -> None:
        """Count one evaluation of ``point`` (``value=None``: it failed).

        A failed point becomes the current point and counts as evaluated (it is not
        proposed again), with no value.
        """
        p = tuple(int(i) for i in point)
        self.n_trials += 1
        self.current = p
        old = self.values.get(p)
        if value is None or not math.isfinite(value):
            if old is None:
                self.values[p] = math.inf
            return
        if old is not None and old <= value:
            return
        if old is not None and math.isfinite(old):
            del self._sorted[bisect.bisect_left(self._sorted, old)]
            del self._ranked[bisect.bisect_left(self._ranked, (old, p))]
        else:
            self.prior.add(p)
        self.values[p] = value
        bisect.insort(self._sorted, value)
        bisect.insort(self._ranked, (value, p))
        if value < self.best_value:
            self.best_value, self.best_point = value, p
            self.last_improvement = self.n_trials

    def spread(self) -> float:
        """The scale of the values seen: their 75th percentile minus the best (0 if none)."""
        n = len(self._sorted)
        if n == 0:
            return 0.0
        return float(self._sorted[min(n - 1, int(0.75 * (n - 1) + 0.5))] - self._sorted[0])

    def best_points(self, k: int) -> list[tuple[int, ...]]:
        """The ``k`` best points, best first."""
        return [p for _, p in self._ranked[:k]]

    def _fit(self) -> None:
        n = len(self._ranked)
        if n == self._fitted_at or n == 0:
            return
        k = n_good(n, MODEL_GAMMA, MODEL_MAX_GOOD)
        self.prior.fit(self.best_points(k))
        self._fitted_at = n

    # -------------------------------------------------------------- candidates
    def _random_unevaluated(self, rng: np.random.Generator) -> tuple[int, ...]:
        point: tuple[int, ...] = ()
        for _ in range(32):
            point = tuple(int(rng.integers(n)) for n in self.shape)
            if point not in self.values:
                return point
        return point

    def _near_best(self, rng: np.random.Generator) -> tuple[int, ...]:
        ranked = self.best_points(RESTART_TOP)
        base = np.asarray(ranked[int(rng.integers(len(ranked)))], dtype=np.int64)
        d = len(self.shape)
        point = tuple(int(i) for i in base)
        for _ in range(16):
            moved = base.copy()
            axes = rng.random(d) < 1.0 / d
            axes[int(rng.integers(d))] = True
            shift = rng.choice([-2, -1, 1, 2], size=d)
            moved[axes] = np.clip(moved[axes] + shift[axes], 0, self.dims[axes] - 1)
            point = tuple(int(i) for i in moved)
            if point not in self.values:
                return point
        return point

    def _model_top(
        self, rng: np.random.Generator, busy: set[tuple[int, ...]]
    ) -> list[tuple[int, ...]]:
        """The density model's :data:`MODEL_TOP` best distinct fresh draws."""
        if not self.prior.fitted:
            return [self._random_unevaluated(rng) for _ in range(MODEL_TOP)]
        seed = np.random.RandomState(int(rng.integers(2**31)))
        draws = list(dict.fromkeys(self.prior.sample(seed, MODEL_DRAWS)))
        fresh = [p for p in draws if p not in self.values and p not in busy] or draws
        scores = self.prior.score_many(fresh)
        order = np.argsort(-np.asarray(scores), kind="stable")[:MODEL_TOP]
        return [tuple(int(i) for i in fresh[j]) for j in order]

    def _moves_from(
        self,
        base: tuple[int, ...] | None,
        step_sizes: Sequence[int],
        limit: int,
        rng: np.random.Generator,
        busy: set[tuple[int, ...]],
    ) -> list[tuple[int, int, tuple[int, ...]]]:
        """``(axis, signed step, target)`` of the moves from ``base`` (none without one):
        one axis by each step size either way, inside the grid, a random ``limit`` of
        them when there are more, leaving out busy targets."""
        if base is None:
            return []
        moves = [
            (a, s * sign)
            for a in range(len(self.shape))
            for s in step_sizes
            for sign in (-1, 1)
            if 0 <= base[a] + s * sign < self.shape[a]
        ]
        if len(moves) > limit:
            pick = rng.choice(len(moves), size=limit, replace=False)
            moves = [moves[i] for i in sorted(pick)]
        out = []
        for a, s in moves:
            target = (*base[:a], base[a] + s, *base[a + 1 :])
            if target not in busy:
                out.append((a, s, target))
        return out

    def candidates(
        self, rng: np.random.Generator, busy: set[tuple[int, ...]] | None = None
    ) -> Candidates:
        """The candidate actions now.

        Args:
            rng: Draws the subset of moves, the restart, model and random points.
            busy: Points other workers are evaluating now; no jump targets them and
                moves into them are left out (unless nothing else is left).
        """
        busy = busy or set()
        self._fit()
        points: list[tuple[int, ...]] = []
        kinds: list[int] = []
        steps: list[int] = []
        axes: list[int] = []
        signs: list[int] = []
        moves = self._moves_from(self.current, STEPS, MAX_MOVES, rng, busy)
        best = self.best_point
        if best is not None and best != self.current:
            near = self._moves_from(best, STEPS[:2], BEST_MOVES, rng, busy)
        else:
            near = []
        for a, s, target in moves + near:
            points.append(target)
            kinds.append(0)
            steps.append(abs(s))
            axes.append(a)
            signs.append(1 if s > 0 else -1)
        n_current = len(moves)
        n_moves = len(points)
        jumps: list[tuple[int, tuple[int, ...]]] = []
        if self._ranked:
            jumps.append((1, self._near_best(rng)))
        jumps.extend((2, p) for p in self._model_top(rng, busy))
        jumps.append((3, self._random_unevaluated(rng)))
        for kind, p in jumps:
            if p in busy:
                continue
            points.append(p)
            kinds.append(kind)
            steps.append(0)
            axes.append(-1)
            signs.append(0)
        if not points:  # everything is busy: evaluate a random point all the same
            points.append(jumps[-1][1])
            kinds.append(3)
            steps.append(0)
            axes.append(-1)
            signs.append(0)
        from_best = np.zeros(len(points), dtype=bool)
        from_best[n_current:n_moves] = True

        def ints(values: list[int]) -> np.ndarray:
            return np.asarray(values, dtype=np.int64)

        return Candidates(points, ints(kinds), ints(steps), ints(axes), ints(signs), from_best)

    # -------------------------------------------------------------- features
    def _quality(self, point: tuple[int, ...]) -> float:
        """``1 - value rank fraction`` of an evaluated point (1 = the best), else 0."""
        value = self.values.get(point)
        n = len(self._sorted)
        if value is None or not math.isfinite(value) or n == 0:
            return 0.0
        return 1.0 - bisect.bisect_left(self._sorted, value) / max(1, n - 1)

    def _distance(self, pts: np.ndarray, ref: tuple[int, ...] | None) -> np.ndarray:
        if ref is None:
            return np.ones(len(pts))
        diff = np.abs(pts - np.asarray(ref)[None, :]).astype(float)
        diff = np.where(self.cat[None, :], diff > 0, diff / self.span[None, :])
        return np.asarray(diff.mean(axis=1))

    def features(self, cands: Candidates) -> np.ndarray:
        """The ``(candidates, N_FEATURES)`` feature matrix (see :data:`FEATURE_NAMES`)."""
        self._fit()
        n_c, d = len(cands), len(self.shape)
        pts = np.asarray(cands.points, dtype=np.int64).reshape(n_c, d)
        x = np.zeros((n_c, N_FEATURES))
        x[:, 0] = 1.0
        raw = (
            np.asarray(self.prior.score_many(cands.points)) if self.prior.fitted else np.zeros(n_c)
        )
        x[:, 1] = np.tanh(0.5 * raw)
        order = np.argsort(np.argsort(-raw, kind="stable"), kind="stable")
        x[:, 2] = 1.0 - order / max(1, n_c - 1)
        x[:, 3] = [p in self.values for p in cands.points]
        x[:, 4] = [self._quality(p) for p in cands.points]
        if self.current is not None:
            x[:, 5] = self._quality(self.current)
        x[:, 6] = self._distance(pts, self.best_point)
        x[:, 7] = self._distance(pts, self.current)
        x[:, 8] = cands.steps / max(STEPS)
        x[:, 9] = (cands.axes >= 0) & self.cat[np.maximum(cands.axes, 0)]
        log_h = math.log1p(HORIZON)
        x[:, 10] = min(1.0, math.log1p(self.n_trials) / log_h)
        x[:, 11] = min(1.0, math.log1p(self.n_trials - self.last_improvement) / log_h)
        if self.values:
            for i, p in enumerate(cands.points):
                hit = valid = 0
                for a in range(d):
                    for s in (-1, 1):
                        j = p[a] + s
                        if 0 <= j < self.shape[a]:
                            valid += 1
                            hit += (*p[:a], j, *p[a + 1 :]) in self.values
                x[i, 12] = hit / max(valid, 1)
        x[np.arange(n_c), 13 + cands.kinds] = 1.0
        return x
