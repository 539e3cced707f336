"""The learned-policy environment: one Q-valued decision per trial.

A study is a walk on the grid. At every trial the environment lists candidate
actions, each with the grid point it would evaluate:

* ``move``: from the current point, one axis ``+-1``, ``+-2`` or ``+-4`` steps
  (at most :data:`MAX_MOVES` of them, a random subset when there are more);
* ``restart-best``: an unevaluated point next to one of the 5 best points;
* ``model``: the density model's best candidate (24 draws from ``l`` of
  ``optuna_qlearn._core.prior.GridPrior``, highest ``log l - log g``, as TPE picks;
  the factorized model is univariate TPE, Optuna's default, and cheap enough to
  refit at every trial of thousands of training episodes);
* ``random``: a uniformly random unevaluated point.

Each candidate is described by :data:`N_FEATURES` features that do not depend on
the grid's size or number of axes (see :func:`features`). A Q-function scores every
candidate and epsilon-greedy over those scores picks the one evaluated: no other
rule picks a point. The evaluated point becomes the current point.

The Q-function is :class:`MLP`, a two-hidden-layer ReLU network whose forward and
backward passes are NumPy, trained with Adam on the Huber loss.

Example:

    .. code-block:: python

        import numpy as np
        from experiments.learned_policy.policy import MLP, run_study
        from experiments.learned_policy.tasks import generate_task

        task = generate_task(np.random.default_rng(0))
        q = MLP(np.random.default_rng(1))
        values = run_study(task.shape, task.categorical, task.observe, q, 50, 0.05, 0)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from optuna_qlearn._core.prior import GridPrior, n_good

#: Step sizes of the neighbour moves.
STEPS = (1, 2, 4)
#: Most neighbour moves offered at one trial.
MAX_MOVES = 28
#: Most candidates at one trial (moves plus the three jumps).
MAX_CANDIDATES = MAX_MOVES + 3
#: Action types, in the order of their one-hot features.
ACTION_TYPES = ("move", "restart-best", "model", "random")
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
    "budget",  # trials so far / budget
    "stale",  # trials since the best improved / budget (at most 1)
    "neighbours_evaluated",  # fraction of the target's +-1 neighbours evaluated
    *(f"type_{t}" for t in ACTION_TYPES),
)
N_FEATURES = len(FEATURE_NAMES)
#: Fraction and most of the evaluated points the density model counts as good
#: (QLearningSampler's defaults).
MODEL_GAMMA, MODEL_MAX_GOOD = 0.15, 25
#: Draws from the good-point density per ``model`` candidate (TPE's default).
MODEL_DRAWS = 24


class MLP:
    """``N_FEATURES -> hidden -> hidden -> 1`` ReLU network, NumPy only, Adam + Huber.

    Args:
        rng: Initializes the weights (He initialization).
        hidden: Units per hidden layer.
        lr: Adam's learning rate.
    """

    def __init__(self, rng: np.random.Generator, hidden: int = 32, lr: float = 1e-3) -> None:
        if hidden < 1:
            raise ValueError(f"hidden must be at least 1, got {hidden}.")
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}.")
        sizes = [N_FEATURES, hidden, hidden, 1]
        self.params: list[np.ndarray] = []
        for a, b in itertools.pairwise(sizes):
            self.params.append(rng.normal(0.0, math.sqrt(2.0 / a), (a, b)))
            self.params.append(np.zeros(b))
        self.lr = lr
        self._m = [np.zeros_like(p) for p in self.params]
        self._v = [np.zeros_like(p) for p in self.params]
        self._t = 0

    def copy_from(self, other: MLP) -> None:
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
        q = (h2 @ w3 + b3)[:, 0]
        err = q - target
        loss = np.where(np.abs(err) <= delta, 0.5 * err**2, delta * (np.abs(err) - 0.5 * delta))
        g = (np.clip(err, -delta, delta) / len(x))[:, None]
        grads = [None] * 6
        grads[4], grads[5] = h2.T @ g, g.sum(0)
        g2 = (g @ w3.T) * (z2 > 0)
        grads[2], grads[3] = h1.T @ g2, g2.sum(0)
        g1 = (g2 @ w2.T) * (z1 > 0)
        grads[0], grads[1] = x.T @ g1, g1.sum(0)
        self._t += 1
        b1c, b2c = 1 - 0.9**self._t, 1 - 0.999**self._t
        for i, grad in enumerate(grads):
            assert grad is not None
            self._m[i] = 0.9 * self._m[i] + 0.1 * grad
            self._v[i] = 0.999 * self._v[i] + 0.001 * grad**2
            self.params[i] = self.params[i] - self.lr * (self._m[i] / b1c) / (
                np.sqrt(self._v[i] / b2c) + 1e-8
            )
        return float(loss.mean())

    def save(self, path: str) -> None:
        """Write the weights to an ``.npz`` file (loaded with ``allow_pickle=False``)."""
        np.savez(path, *self.params)

    @classmethod
    def load(cls, path: str) -> MLP:
        """Read weights written by :meth:`save`.

        Raises:
            ValueError: If the file does not hold this network's weights (naming it).
        """
        with np.load(path, allow_pickle=False) as data:
            params = [np.asarray(data[f"arr_{i}"], dtype=float) for i in range(len(data.files))]
        if len(params) != 6 or params[0].shape[0] != N_FEATURES:
            raise ValueError(f"{path!r} does not hold a {N_FEATURES}-feature MLP's weights.")
        net = cls(np.random.default_rng(0), hidden=params[0].shape[1])
        net.params = params
        return net


@dataclass
class StudyState:
    """What a study has seen so far: evaluated points, values, the density model.

    Args:
        shape: Points per axis.
        categorical: Per axis, whether it is unordered.
        budget: Trials of the study.
        rng: The study's generator (candidate draws).
    """

    shape: tuple[int, ...]
    categorical: tuple[bool, ...]
    budget: int
    rng: np.random.Generator
    values: dict[int, float] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    current: int | None = None
    best_value: float = math.inf
    best_flat: int | None = None
    last_improvement: int = 0

    def __post_init__(self) -> None:
        self.dims = np.asarray(self.shape, dtype=np.int64)
        self.strides = np.asarray(
            [int(np.prod(self.shape[i + 1 :])) for i in range(len(self.shape))], dtype=np.int64
        )
        self.n_points = int(np.prod(self.dims))
        self.cat = np.asarray(self.categorical, dtype=bool)
        self.span = np.maximum(self.dims - 1, 1).astype(float)
        self.prior = GridPrior(self.shape, self.categorical)
        self._seed = np.random.RandomState(int(self.rng.integers(2**31)))
        self._evaluated = np.zeros(0, dtype=np.int64)
        self._sorted_values = np.zeros(0)
        self.ranked: list[int] = []

    def coords(self, flat: np.ndarray) -> np.ndarray:
        """Grid indices ``(n, d)`` of flat indices."""
        return (flat[:, None] // self.strides[None, :]) % self.dims[None, :]

    def record(self, flat: int, value: float) -> None:
        """Count one evaluation."""
        self.order.append(flat)
        if flat not in self.values or value < self.values[flat]:
            self.values[flat] = value
        if value < self.best_value:
            self.best_value, self.best_flat = value, flat
            self.last_improvement = len(self.order)
        self.current = flat
        self._evaluated = np.fromiter(self.values, dtype=np.int64, count=len(self.values))
        self._sorted_values = np.sort(np.fromiter(self.values.values(), dtype=float))
        self.ranked = sorted(self.values, key=self.values.__getitem__)
        point = tuple(int(i) for i in self.coords(np.array([flat]))[0])
        self.prior.add(point)
        k = n_good(len(self.ranked), MODEL_GAMMA, MODEL_MAX_GOOD)
        self.prior.fit([tuple(int(i) for i in c) for c in self.coords(np.array(self.ranked[:k]))])

    def _random_unevaluated(self) -> int:
        for _ in range(32):
            flat = int(self.rng.integers(self.n_points))
            if flat not in self.values:
                return flat
        return int(self.rng.integers(self.n_points))

    def _near_best(self) -> int:
        ranked = self.ranked[:5]
        base = self.coords(np.array([ranked[int(self.rng.integers(len(ranked)))]]))[0]
        d = len(self.shape)
        flat = int(base @ self.strides)
        for _ in range(16):
            point = base.copy()
            axes = self.rng.random(d) < 1.0 / d
            axes[int(self.rng.integers(d))] = True
            shift = self.rng.choice([-2, -1, 1, 2], size=d)
            point[axes] = np.clip(point[axes] + shift[axes], 0, self.dims[axes] - 1)
            flat = int(point @ self.strides)
            if flat not in self.values:
                return flat
        return flat

    def _model_best(self) -> int:
        if not self.prior.fitted:
            return self._random_unevaluated()
        draws = np.asarray(self.prior.sample(self._seed, MODEL_DRAWS), dtype=np.int64)
        flats = draws @ self.strides
        fresh = ~np.isin(flats, self._evaluated)
        if fresh.any():
            draws, flats = draws[fresh], flats[fresh]
        return int(flats[int(np.argmax(self._scores(draws)))])

    def _scores(self, pts: np.ndarray) -> np.ndarray:
        """``log l - log g`` of grid points ``(n, d)`` (0 before the first fit)."""
        if not self.prior.fitted:
            return np.zeros(len(pts))
        return np.asarray(sum(r[pts[:, a]] for a, r in enumerate(self.prior.log_ratio)))

    def candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The candidate actions now.

        Returns:
            ``(targets, types, steps, axes)``: flat target index, index into
            :data:`ACTION_TYPES`, step size (0 for jumps) and axis (-1 for jumps).
        """
        targets: list[int] = []
        types: list[int] = []
        steps: list[int] = []
        axes: list[int] = []
        if self.current is not None:
            cur = self.coords(np.array([self.current]))[0]
            moves = [
                (a, s * sign)
                for a in range(len(self.shape))
                for s in STEPS
                for sign in (-1, 1)
                if 0 <= cur[a] + s * sign < self.shape[a]
            ]
            if len(moves) > MAX_MOVES:
                pick = self.rng.choice(len(moves), size=MAX_MOVES, replace=False)
                moves = [moves[i] for i in sorted(pick)]
            for a, s in moves:
                targets.append(int(self.current + s * self.strides[a]))
                types.append(0)
                steps.append(abs(s))
                axes.append(a)
        if self.values:
            targets.append(self._near_best())
            types.append(1)
            steps.append(0)
            axes.append(-1)
        targets.append(self._model_best())
        types.append(2)
        steps.append(0)
        axes.append(-1)
        targets.append(self._random_unevaluated())
        types.append(3)
        steps.append(0)
        axes.append(-1)
        return (np.asarray(targets, dtype=np.int64), np.asarray(types), np.asarray(steps),
                np.asarray(axes))  # fmt: skip

    def _quality(self, flats: np.ndarray) -> np.ndarray:
        """``1 - value rank fraction`` of evaluated flats (1 = the best), 0 otherwise."""
        n = len(self._sorted_values)
        out = np.zeros(len(flats))
        if n == 0:
            return out
        for i, f in enumerate(flats.tolist()):
            if f in self.values:
                rank = np.searchsorted(self._sorted_values, self.values[f], side="left")
                out[i] = 1.0 - rank / max(1, n - 1)
        return out

    def _distance(self, pts: np.ndarray, ref: int | None) -> np.ndarray:
        if ref is None:
            return np.ones(len(pts))
        r = self.coords(np.array([ref]))[0]
        diff = np.abs(pts - r[None, :]).astype(float)
        diff = np.where(self.cat[None, :], diff > 0, diff / self.span[None, :])
        return np.asarray(diff.mean(axis=1))

    def features(
        self, targets: np.ndarray, types: np.ndarray, steps: np.ndarray, axes: np.ndarray
    ) -> np.ndarray:
        """The ``(candidates, N_FEATURES)`` feature matrix (see :data:`FEATURE_NAMES`)."""
        n_c, d = len(targets), len(self.shape)
        pts = self.coords(targets)
        x = np.zeros((n_c, N_FEATURES))
        x[:, 0] = 1.0
        raw = self._scores(pts)
        x[:, 1] = np.tanh(0.5 * raw)
        order = np.argsort(np.argsort(-raw, kind="stable"), kind="stable")
        x[:, 2] = 1.0 - order / max(1, n_c - 1)
        x[:, 3] = np.isin(targets, self._evaluated)
        x[:, 4] = self._quality(targets)
        if self.current is not None:
            x[:, 5] = self._quality(np.array([self.current]))[0]
        x[:, 6] = self._distance(pts, self.best_flat)
        x[:, 7] = self._distance(pts, self.current)
        x[:, 8] = steps / max(STEPS)
        x[:, 9] = (axes >= 0) & self.cat[np.maximum(axes, 0)]
        t = len(self.order)
        x[:, 10] = t / self.budget
        x[:, 11] = min(1.0, (t - self.last_improvement) / self.budget)
        # Evaluated +-1 neighbours of each target (out-of-grid ones excluded).
        if len(self._evaluated):
            neigh = pts[:, None, :].repeat(2 * d, axis=1)
            eye = np.concatenate([np.eye(d, dtype=np.int64), -np.eye(d, dtype=np.int64)])
            neigh = neigh + eye[None]
            valid = ((neigh >= 0) & (neigh < self.dims)).all(axis=2)
            flat_n = neigh @ self.strides
            hit = np.isin(flat_n, self._evaluated) & valid
            x[:, 12] = hit.sum(1) / np.maximum(valid.sum(1), 1)
        x[np.arange(n_c), 13 + types] = 1.0
        return x


def choose(q_values: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
    """Epsilon-greedy: a uniform candidate with probability ``epsilon``, else the argmax
    (ties broken uniformly)."""
    if rng.random() < epsilon:
        return int(rng.integers(len(q_values)))
    best = np.flatnonzero(q_values >= q_values.max() - 1e-12)
    return int(best[int(rng.integers(len(best)))])


def run_study(
    shape: Sequence[int],
    categorical: Sequence[bool],
    observe: Callable[[int, np.random.Generator], float],
    q: MLP,
    budget: int,
    epsilon: float,
    seed: int,
    on_step: Callable[[np.ndarray, int, StudyState], None] | None = None,
) -> list[int]:
    """Run one study with the policy; every point is picked by :func:`choose`.

    Args:
        shape: Points per axis.
        categorical: Per axis, whether it is unordered.
        observe: ``(flat index, rng) -> observed value`` (minimized).
        q: The Q-function.
        budget: Trials.
        epsilon: Exploration rate.
        seed: Seeds the study's generator.
        on_step: Called after each trial with the candidates' features, the chosen
            index and the state after recording the value (training hooks in here).

    Returns:
        The flat index evaluated at each trial.
    """
    if budget < 1:
        raise ValueError(f"budget must be at least 1, got {budget}.")
    rng = np.random.default_rng(seed)
    state = StudyState(tuple(int(n) for n in shape), tuple(categorical), budget, rng)
    noise_rng = np.random.default_rng([seed, 1])
    for _ in range(budget):
        cand = state.candidates()
        x = state.features(*cand)
        i = choose(q(x), epsilon, rng)
        flat = int(cand[0][i])
        state.record(flat, observe(flat, noise_rng))
        if on_step is not None:
            on_step(x, i, state)
    return state.order
