"""Pre-training the policy's Q-network by Q-learning over many whole-study episodes.

Pure NumPy, no Optuna. Each episode is one study of ``budget`` trials on a task (a
finite grid with a value per point): the policy (:mod:`optuna_qlearn._core.policy`)
picks every point epsilon-greedily, the reward of a trial is the normalized
improvement of the incumbent's true value (its quantile over the task's grid, see
:class:`TrainingConfig`), and the network is trained by
double deep Q-learning: a target network synced every ``sync_every`` gradient steps,
a replay memory of transitions (each with its next decision's candidate features),
the Huber loss, Adam, ``gamma > 0`` so that exploration which pays off later is
credited. Everything is a deterministic function of ``seed``.

:func:`generate_task` draws the built-in training tasks: random functions on random
grids (1-10 axes, some categorical; bowls, rotated bowls, Gaussian wells, rugged
terms, categorical effects and interactions, plateaus, noise).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from optuna_qlearn._core.policy import (
    MAX_CANDIDATES,
    N_FEATURES,
    PolicyEnsemble,
    PolicyNetwork,
    SearchState,
    epsilon_greedy,
    improvement_reward,
)

#: Largest number of grid points of a generated task (keeps tables cheap).
MAX_POINTS = 50_000


@dataclass(frozen=True)
class Task:
    """A training task: a grid, the true value of every point and an observation noise.

    Args:
        table: True values (minimized), one per grid point; its shape is the grid's.
        categorical: Per axis, whether it is unordered.
        noise: Standard deviation of the Gaussian noise added to each observation.
        kinds: What the function is made of (for logs).
    """

    table: np.ndarray
    categorical: tuple[bool, ...]
    noise: float = 0.0
    kinds: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        table = np.asarray(self.table, dtype=float)
        if table.ndim < 1 or table.size < 2:
            raise ValueError(f"A task's table needs at least 2 points, got shape {table.shape}.")
        if not np.isfinite(table).all():
            raise ValueError("A task's table holds NaN or infinite values.")
        if len(self.categorical) != table.ndim:
            raise ValueError(
                f"A task has {table.ndim} axes but {len(self.categorical)} categorical flags."
            )
        if not (self.noise >= 0 and math.isfinite(self.noise)):
            raise ValueError(f"A task's noise must be finite and >= 0, got {self.noise}.")
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "categorical", tuple(bool(c) for c in self.categorical))

    @property
    def shape(self) -> tuple[int, ...]:
        """Points per axis."""
        return tuple(int(n) for n in self.table.shape)

    def observe(self, point: tuple[int, ...], rng: np.random.Generator) -> float:
        """The value an evaluation of ``point`` returns (true value plus noise)."""
        value = float(self.table[point])
        return value + float(rng.normal(0.0, self.noise)) if self.noise > 0 else value


def _shape(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """Random axis sizes and categorical flags, at most :data:`MAX_POINTS` points."""
    d = int(rng.integers(1, 11))
    sizes: list[int] = []
    cats: list[bool] = []
    for _ in range(d):
        is_cat = bool(rng.random() < 0.25)
        if is_cat:
            sizes.append(int(rng.integers(2, 7)))
        else:
            sizes.append(int(rng.choice([2, 3, 4, 5, 6, 8, 10, 16, 21, 41])))
        cats.append(is_cat)
    while np.prod(sizes) > MAX_POINTS:  # shrink the largest axis until it fits
        i = int(np.argmax(sizes))
        sizes[i] = max(2, sizes[i] // 2)
    return tuple(sizes), tuple(cats)


def generate_task(rng: np.random.Generator) -> Task:
    """One random training task (a deterministic function of ``rng``'s state)."""
    shape, cats = _shape(rng)
    d = len(shape)
    grids = np.meshgrid(*[np.linspace(0.0, 1.0, n) for n in shape], indexing="ij")
    x = np.stack([g.ravel() for g in grids], axis=1)  # (N, d) in [0, 1]
    ordered = np.array([not c for c in cats])
    f = np.zeros(len(x))
    kinds: list[str] = []
    if ordered.any():
        xo = x[:, ordered]
        do = xo.shape[1]
        center = rng.uniform(0.0, 1.0, do)
        if rng.random() < 0.7:
            if rng.random() < 0.5 and do > 1:  # rotated, anisotropic: not separable
                q, _ = np.linalg.qr(rng.normal(size=(do, do)))
                z = (xo - center) @ q * np.exp(rng.uniform(-1.5, 1.5, do))
                kinds.append("rotated-bowl")
            else:
                z = (xo - center) * np.exp(rng.uniform(-1.5, 1.5, do))
                kinds.append("bowl")
            f += rng.uniform(0.5, 2.0) * np.sum(z**2, axis=1)
        if rng.random() < 0.5:  # Gaussian wells: multimodal
            k = int(rng.integers(2, 9))
            for _ in range(k):
                mu = rng.uniform(0.0, 1.0, do)
                width = rng.uniform(0.05, 0.3)
                depth = rng.uniform(0.3, 1.5)
                f -= depth * np.exp(-0.5 * np.sum((xo - mu) ** 2, axis=1) / width**2)
            kinds.append(f"wells{k}")
        if rng.random() < 0.35:  # rugged
            freq = rng.uniform(3.0, 12.0)
            amp = rng.uniform(0.05, 0.5)
            f += amp * np.sum(np.cos(2 * np.pi * freq * (xo - center)), axis=1) / do
            kinds.append("rugged")
    if not ordered.all():
        idx = np.stack(np.unravel_index(np.arange(len(x)), shape), axis=1)
        cat_axes = [i for i in range(d) if cats[i]]
        for i in cat_axes:
            f += rng.uniform(0.0, 1.0) * rng.normal(size=shape[i])[idx[:, i]]
        if len(cat_axes) >= 2 and rng.random() < 0.5:
            a, b = rng.choice(cat_axes, size=2, replace=False)
            f += rng.uniform(0.2, 1.0) * rng.normal(size=(shape[a], shape[b]))[idx[:, a], idx[:, b]]
            kinds.append("cat-interaction")
        kinds.append(f"cat{len(cat_axes)}")
    if not kinds or np.ptp(f) == 0:
        f += rng.normal(size=len(f))  # nothing to learn from: a random table
        kinds.append("random")
    if rng.random() < 0.2:  # plateaus
        levels = int(rng.integers(5, 30))
        lo, hi = f.min(), f.max()
        f = np.floor((f - lo) / (hi - lo + 1e-12) * levels)
        kinds.append(f"plateaus{levels}")
    f = (f - f.mean()) / (f.std() + 1e-12)
    noise = float(rng.choice([0.0, 0.0, 0.0, 0.02, 0.1]))
    if noise:
        kinds.append(f"noise{noise}")
    return Task(f.reshape(shape), cats, noise, tuple(kinds))


class ReplayMemory:
    """Ring buffer of transitions ``(x, r, next candidates' x)``.

    Args:
        capacity: Transitions kept.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}.")
        self.x = np.zeros((capacity, N_FEATURES), dtype=np.float32)
        self.r = np.zeros(capacity, dtype=np.float32)
        self.nx = np.zeros((capacity, MAX_CANDIDATES, N_FEATURES), dtype=np.float32)
        self.mask = np.zeros((capacity, MAX_CANDIDATES), dtype=bool)
        self.done = np.zeros(capacity, dtype=np.float32)
        self.capacity, self.size, self._next = capacity, 0, 0

    def add(self, x: np.ndarray, r: float, nx: np.ndarray | None) -> None:
        """Store one transition (``nx=None``: terminal)."""
        i = self._next
        self.x[i], self.r[i] = x, r
        self.mask[i] = False
        self.done[i] = 1.0 if nx is None else 0.0
        if nx is not None:
            n = min(len(nx), MAX_CANDIDATES)
            self.nx[i, :n] = nx[:n]
            self.mask[i, :n] = True
        self._next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)


@dataclass
class TrainingConfig:
    """Settings of :func:`train`, with their defaults (those of the shipped policy).

    Args:
        episodes: Training studies.
        budgets: Trials of a study, drawn per episode from these.
        gamma: Discount factor, in ``(0, 1)``.
        batch: Replay batch size.
        update_every: Trials between gradient steps.
        sync_every: Gradient steps between target-network syncs.
        eps_start: Exploration rate of the first episode.
        eps_end: Exploration rate from ``eps_decay_fraction`` of the episodes on.
        eps_decay_fraction: Fraction of the episodes over which epsilon decays linearly.
        capacity: Replay memory size.
        hidden: Hidden units per layer.
        lr: Adam's learning rate.
        episodes_per_task: Studies run on each task (with other study seeds).
        reward: ``"quantile"`` (default: the fall of ``log u`` over ``log(points)``,
            ``u`` the fraction of the task's grid at least as good as the incumbent's
            true value; a study's return is at most 1) or ``"improvement"``
            (:func:`~optuna_qlearn._core.policy.improvement_reward`, what a study can
            observe, which the per-study table learns from; as a pre-training reward it
            ranked worse on the suite, see ``experiments/learned_policy``).
    """

    episodes: int = 1000
    budgets: tuple[int, ...] = (50, 100, 150, 200)
    gamma: float = 0.97
    batch: int = 64
    update_every: int = 2
    sync_every: int = 200
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_decay_fraction: float = 0.6
    capacity: int = 30_000
    hidden: int = 32
    lr: float = 1e-3
    episodes_per_task: int = 2
    reward: str = "quantile"

    def __post_init__(self) -> None:
        for name in ("episodes", "batch", "update_every", "sync_every", "capacity", "hidden",
                     "episodes_per_task"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
        if not self.budgets or any(int(b) < 1 for b in self.budgets):
            raise ValueError(f"budgets must be trial counts >= 1, got {self.budgets!r}.")
        if not 0 < self.gamma < 1:
            raise ValueError(f"gamma must be in (0, 1), got {self.gamma!r}.")
        for name in ("eps_start", "eps_end", "eps_decay_fraction"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}.")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}.")
        if self.reward not in ("improvement", "quantile"):
            raise ValueError(f"reward must be 'improvement' or 'quantile', got {self.reward!r}.")


@dataclass
class TrainingLog:
    """What :func:`train` did: one row per episode, and the wall time."""

    rows: list[dict[str, float]] = field(default_factory=list)
    wall_s: float = 0.0

    def mean_return(self, part: slice) -> float:
        """Mean episode return over a slice of the episodes."""
        rets = [row["return"] for row in self.rows[part]]
        return float(np.mean(rets)) if rets else math.nan


def run_episode(
    task: Task,
    q: PolicyNetwork | PolicyEnsemble,
    budget: int,
    epsilon: float,
    rng: np.random.Generator,
    on_step: Callable[[np.ndarray, int, float], None] | None = None,
    reward: str = "improvement",
) -> list[tuple[int, ...]]:
    """One study of ``budget`` trials on ``task``, every point chosen by the policy.

    Args:
        task: The task.
        q: The Q-network.
        budget: Trials.
        epsilon: Exploration rate.
        rng: The study's generator (candidates, exploration, noise).
        on_step: Called after each trial with the candidates' features, the chosen
            index and the trial's reward.
        reward: See :class:`TrainingConfig`.

    Returns:
        The point evaluated at each trial.
    """
    state = SearchState(task.shape, task.categorical)
    order: list[tuple[int, ...]] = []
    oracle = np.sort(task.table.ravel()) if reward == "quantile" else None
    log_n = math.log(max(2, task.table.size))
    u_before = 1.0
    for _ in range(budget):
        cands = state.candidates(rng)
        x = state.features(cands)
        i, _ = epsilon_greedy(q(x), epsilon, rng)
        point = cands.points[i]
        before = state.best_value
        state.record(point, task.observe(point, rng))
        order.append(point)
        if on_step is None:
            continue
        if oracle is not None:
            assert state.best_point is not None
            true_best = float(task.table[state.best_point])
            u = max(float(np.searchsorted(oracle, true_best, side="right")) / oracle.size, 1e-300)
            r, u_before = (math.log(u_before) - math.log(u)) / log_n, u
        else:
            r = improvement_reward(before, state.best_value, state.spread())
        on_step(x, i, r)
    return order


def train(
    tasks: Callable[[np.random.Generator], Task] = generate_task,
    seed: int = 0,
    config: TrainingConfig | None = None,
    progress: Callable[[int, TrainingLog], None] | None = None,
) -> tuple[PolicyNetwork, TrainingLog]:
    """Pre-train a Q-network by double deep Q-learning over whole-study episodes.

    Args:
        tasks: Draws a task from a generator (called every ``episodes_per_task``
            episodes).
        seed: Seeds tasks, initialization, exploration and replay sampling.
        config: Settings; :class:`TrainingConfig`'s defaults when ``None``.
        progress: Called after each episode with its index and the log so far.

    Returns:
        The trained network and the training log.
    """
    cfg = config or TrainingConfig()
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    learner = _Learner(PolicyNetwork.initial(seed, hidden=cfg.hidden, lr=cfg.lr), cfg, rng)
    log = TrainingLog()
    task: Task | None = None
    for episode in range(cfg.episodes):
        if episode % cfg.episodes_per_task == 0:
            task = tasks(rng)
            if not isinstance(task, Task):
                raise TypeError(f"tasks() must return a Task, got {type(task).__name__}.")
        assert task is not None
        decay = max(1.0, cfg.eps_decay_fraction * cfg.episodes)
        eps = max(cfg.eps_end, cfg.eps_start - (cfg.eps_start - cfg.eps_end) * episode / decay)
        budget = int(cfg.budgets[int(rng.integers(len(cfg.budgets)))])
        learner.start_episode()
        study_rng = np.random.default_rng(int(rng.integers(2**63)))
        run_episode(task, learner.q, budget, eps, study_rng, learner.on_step, cfg.reward)
        learner.end_episode()
        log.rows.append({"episode": episode, "epsilon": round(eps, 4), "budget": budget,
                         "return": round(learner.ret, 5), "loss": round(learner.loss, 6),
                         "n_params": len(task.shape)})  # fmt: skip
        log.wall_s = time.perf_counter() - t0
        if progress is not None:
            progress(episode, log)
    return learner.q, log


class _Learner:
    """Double DQN over the transitions of the training episodes."""

    def __init__(self, q: PolicyNetwork, cfg: TrainingConfig, rng: np.random.Generator) -> None:
        self.q, self.target, self.cfg, self.rng = q, q.copy(), cfg, rng
        self.memory = ReplayMemory(cfg.capacity)
        self.n_updates = self.n_steps = 0
        self.pending: tuple[np.ndarray, float] | None = None
        self.ret = self.loss = 0.0

    def start_episode(self) -> None:
        self.pending, self.ret, self.loss = None, 0.0, 0.0

    def end_episode(self) -> None:
        if self.pending is not None:  # the last trial: no next decision
            self.memory.add(self.pending[0], self.pending[1], None)
            self.pending = None

    def on_step(self, x: np.ndarray, i: int, r: float) -> None:
        """Store the previous transition (``x`` is its next decision), learn."""
        cfg, memory = self.cfg, self.memory
        if self.pending is not None:
            memory.add(self.pending[0], self.pending[1], x)
        self.pending = (x[i], r)
        self.ret += r
        self.n_steps += 1
        if memory.size < cfg.batch or self.n_steps % cfg.update_every:
            return
        idx = self.rng.integers(memory.size, size=cfg.batch)
        nx, mask, done = memory.nx[idx], memory.mask[idx], memory.done[idx]
        best = np.argmax(np.where(mask, self.q(nx), -np.inf), axis=1)
        tq = np.where(done > 0, 0.0, self.target(nx)[np.arange(cfg.batch), best])
        y = memory.r[idx] + cfg.gamma * tq
        self.loss = self.q.train_step(memory.x[idx].astype(float), y.astype(float))
        self.n_updates += 1
        if self.n_updates % cfg.sync_every == 0:
            self.target.copy_from(self.q)
