"""A tabular Q-learning learning-rate controller, as a PyTorch LR scheduler.

:class:`QLearningLRScheduler` is a :class:`torch.optim.lr_scheduler.LRScheduler` that, like
:class:`~torch.optim.lr_scheduler.ReduceLROnPlateau`, reads the validation loss from
``step(val_loss)``. At each such call a Q-learning agent

1. turns the loss into a discrete state: the *trend* of the validation loss (relative change
   since the previous evaluation, bucketed by ``trend_thresholds``) and the *LR level* (the
   agent's current multiplier, bucketed on a log scale between its bounds) -- and, with
   ``n_phases > 1``, the *phase* of training (which of ``n_phases`` equal parts of
   ``total_steps`` the next optimizer step falls in), so that a table can learn a policy that
   depends on progress ("raise the LR early, hold it mid-run, let it come down late");
2. turns the change into a reward (``"improvement"``: relative decrease of the loss, or
   ``"improvement_vs_reference"``: that decrease minus the one a reference run made over the
   same interval) and does one Q-learning update of the previous (state, action) (or an
   n-step one, ``n_step``);
3. picks an action epsilon-greedily (a tie between Q-values, e.g. in a state never seen,
   goes to the most neutral action -- the one closest to x1 -- so the LR only moves on
   evidence or exploration); an action multiplies the agent's LR multiplier (by
   default x0.5, x1 or x2), which is kept within ``[min_multiplier, max_multiplier]``.

The learning rate of every parameter group is then
``initial_lr * base_lr_fn(last_epoch) * multiplier``: the agent rides on top of a base schedule
(for example warmup and cosine decay, :class:`WarmupCosine`); without
``base_lr_fn`` it scales the initial LR alone.

Calling convention (PyTorch's: scheduler after optimizer):

.. code-block:: python

    for it in range(1, max_iters + 1):
        train_step(); optimizer.step()
        if it % eval_interval == 0:
            scheduler.step(evaluate())   # the agent decides; the next step uses its LR
        else:
            scheduler.step()             # the base schedule advances

Each call, with or without a loss, advances ``last_epoch`` by one, so ``base_lr_fn`` sees the
optimizer-step index. A loop that calls ``step(val_loss)`` only once per epoch (the
ReduceLROnPlateau way) works too; ``last_epoch`` then counts epochs.

The whole state -- Q-table and its update counts, multiplier, previous state/action/loss, the
agent's random number generator and its decision history -- is in
:meth:`~QLearningLRScheduler.state_dict` as plain tensors, numbers and lists, so
``torch.save``/``torch.load(weights_only=True)`` round-trips it, training resumes exactly, and a
learned table warm-starts the next run (``QLearningLRScheduler(opt, q_table=old.q_table,
q_visits=old.q_visits)``). This module needs PyTorch only, not Optuna.

The reward modes and options are the ones that proved useful in the LR-schedule experiment
(``experiments/lr_schedule/``); the ones it tried and dropped (``"neg_val_loss"``,
``"improvement_delta"``, ``"improvement_ema"``, a decaying epsilon) live in its
``ExperimentLRScheduler``, a subclass of :class:`QLearningLRScheduler`.
"""

from __future__ import annotations

import bisect
import itertools
import math
import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

REWARD_MODES = ("improvement", "improvement_vs_reference")


@dataclass(frozen=True)
class WarmupCosine:
    """LR factor of nanoGPT's schedule: linear warmup, cosine decay, then constant.

    ``factor(t) = (t + 1) / (warmup_iters + 1)`` for ``t < warmup_iters``, then a half cosine
    from 1 down to ``min_factor`` at ``decay_iters``, and ``min_factor`` afterwards. It equals
    PyTorch's ``SequentialLR([LinearLR(start_factor=1/(w+1), total_iters=w),
    CosineAnnealingLR(T_max=decay_iters-w, eta_min=min_factor*lr)], milestones=[w])`` up to
    floating-point rounding (tested), but as a closed-form function of the step it can be
    multiplied by the Q-agent's factor and stored as three numbers.

    Attributes:
        warmup_iters: Steps of linear warmup.
        decay_iters: Step at which the factor reaches ``min_factor``.
        min_factor: Final factor (``min_lr / lr``).
    """

    warmup_iters: int
    decay_iters: int
    min_factor: float

    def __post_init__(self) -> None:
        if self.warmup_iters < 0:
            raise ValueError(f"warmup_iters must be >= 0, got {self.warmup_iters}")
        if self.decay_iters < self.warmup_iters:
            raise ValueError(
                f"decay_iters ({self.decay_iters}) must be >= warmup_iters ({self.warmup_iters})"
            )
        if not 0.0 <= self.min_factor <= 1.0:
            raise ValueError(f"min_factor must be in [0, 1], got {self.min_factor}")

    def __call__(self, step: int) -> float:
        if step < self.warmup_iters:
            return (step + 1) / (self.warmup_iters + 1)
        if step >= self.decay_iters:
            return self.min_factor
        ratio = (step - self.warmup_iters) / (self.decay_iters - self.warmup_iters)
        return self.min_factor + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (1.0 - self.min_factor)


def warmup_cosine_scheduler(
    optimizer: Optimizer, warmup_iters: int, decay_iters: int, min_factor: float
) -> LambdaLR:
    """The baseline schedule (linear warmup, then cosine decay) as a :class:`LambdaLR`.

    Args:
        optimizer: The wrapped optimizer.
        warmup_iters: Steps of linear warmup.
        decay_iters: Step at which the cosine reaches ``min_factor``.
        min_factor: Final factor, ``min_lr / lr``.

    Returns:
        ``LambdaLR(optimizer, WarmupCosine(warmup_iters, decay_iters, min_factor))``.

    Raises:
        ValueError: If the :class:`WarmupCosine` arguments are invalid.

    Example:
        .. code-block:: python

            sched = warmup_cosine_scheduler(opt, warmup_iters=100, decay_iters=2000, min_factor=0.1)
    """
    return LambdaLR(optimizer, WarmupCosine(warmup_iters, decay_iters, min_factor))


def _real(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite float within the bounds, or an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        bound = f"< {high}" if high_open else f"<= {high}"
        raise ValueError(f"{name} must be {bound}, got {v}")
    return v


def _integer(name: str, value: object, *, low: int) -> int:
    """``value`` as an int ``>= low``, or an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if v < low:
        raise ValueError(f"{name} must be >= {low}, got {v}")
    return v


def _thresholds(values: object) -> tuple[float, ...]:
    """Strictly ascending finite trend edges, or an error naming ``trend_thresholds``."""
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise TypeError(f"trend_thresholds must be a sequence of numbers, got {values!r}")
    edges = tuple(_real("trend_thresholds", v) for v in values)
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise ValueError(f"trend_thresholds must be strictly ascending, got {edges}")
    return edges


def _losses(values: object) -> list[float]:
    """Positive finite losses, or an error naming ``reference_losses``."""
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise TypeError(f"reference_losses must be a sequence of numbers, got {values!r}")
    out = [_real("reference_losses", v) for v in values]
    if any(v <= 0 for v in out):
        raise ValueError("reference_losses must be positive and finite")
    return out


def parse_actions(spec: str | Sequence[float]) -> tuple[float, ...]:
    """Parse an action set such as ``"0.5,1,2"`` into multipliers.

    Args:
        spec: Comma-separated multipliers, or a sequence of numbers.

    Returns:
        The multipliers, in the order given.

    Raises:
        TypeError: If ``spec`` is neither a string nor a sequence of real numbers.
        ValueError: If the set is empty, has a duplicate, or has a non-positive or
            non-finite multiplier.

    Example:
        .. code-block:: python

            parse_actions("0.5,1,2")  # (0.5, 1.0, 2.0)
    """
    if isinstance(spec, str):
        try:
            values = tuple(float(v) for v in spec.split(",") if v.strip())
        except ValueError:
            raise ValueError(f"actions: cannot parse {spec!r}; expected e.g. '0.5,1,2'") from None
    elif isinstance(spec, Sequence):
        values = tuple(_real("actions", v) for v in spec)
    else:
        raise TypeError(f"actions must be a string or a sequence of numbers, got {spec!r}")
    if not values:
        raise ValueError("actions: the action set is empty")
    if any(not (math.isfinite(v) and v > 0) for v in values):
        raise ValueError(f"actions must be positive finite multipliers, got {values}")
    if len(set(values)) != len(values):
        raise ValueError(f"actions must not repeat a multiplier, got {values}")
    return values


class QLearningLRScheduler(LRScheduler):
    """Adjust the learning rate with a tabular Q-learning agent driven by the validation loss.

    Args:
        optimizer: The wrapped optimizer.
        base_lr_fn: Base schedule as a factor ``step -> float`` (like a :class:`LambdaLR`
            lambda), applied to every group's initial LR; ``None`` means a constant 1. It is
            not saved in :meth:`state_dict` (pass the same one when resuming).
        actions: Multipliers the agent can apply at a decision (default x0.5, x1, x2).
        min_multiplier: Lower bound of the agent's cumulative multiplier.
        max_multiplier: Upper bound of the agent's cumulative multiplier.
        initial_multiplier: Multiplier before the first decision.
        n_lr_levels: LR-level buckets, evenly spaced in ``log(multiplier)`` between the bounds
            (the default 7 gives one level per factor of 2 between 1/8 and 8).
        trend_thresholds: Ascending edges for the relative improvement
            ``(prev_loss - loss) / prev_loss``; ``k`` edges make ``k + 1`` trend buckets, plus
            one "start" bucket for the first decision. ``()`` leaves a single trend bucket
            (besides "start"): the state is then the phase and the LR level only.
        n_phases: Training-progress buckets of the state: the decision taken after ``t``
            optimizer steps is in phase ``min(n_phases - 1, n_phases * t // total_steps)``.
            The default 1 leaves progress out of the state (the table of earlier versions).
        total_steps: Optimizer steps of the run (for example ``max_iters``), needed when
            ``n_phases > 1``.
        alpha: Q-learning step size (with ``sample_average``, its floor).
        gamma: Discount factor.
        epsilon: Exploration rate of the epsilon-greedy policy.
        reward: ``"improvement"`` -- ``reward_scale * (prev_loss - loss) / prev_loss``, the
            relative improvement since the previous decision; or
            ``"improvement_vs_reference"`` -- the relative improvement minus the one a reference
            run (for example the base schedule alone) made over the same decision interval,
            ``reward_scale * (improvement - reference_improvement)``: summed to the end of a run
            (``gamma=1`` and ``n_step`` at least the decisions left) it is how much the run
            gained on the reference from this decision to the end.
        reference_losses: The reference run's loss at each decision (index = decision
            number, starting at 0), needed by ``"improvement_vs_reference"``; past its end the
            reference improvement is 0.
        reward_scale: Multiplies the reward; ``None`` means 100 (relative improvements in
            percent).
        reward_clip: Rewards are clipped to ``[-reward_clip, reward_clip]``; a non-finite
            loss (divergence) earns ``-reward_clip``.
        n_step: Steps of the Q-learning target: the update of a decision waits for the next
            ``n_step`` rewards and bootstraps from the Q-values ``n_step`` decisions later
            (``r_1 + gamma r_2 + ... + gamma^(n-1) r_n + gamma^n max_a Q(s_n, a)``; 1 is plain
            one-step Q-learning). Updates still waiting at the end of a run are done by
            :meth:`end_episode` (without bootstrapping).
        sample_average: If ``True``, the step size of an update of entry ``(s, a)`` is
            ``max(alpha, 1 / n)``, where ``n`` counts that entry's updates (this one
            included): an entry is the plain mean of its first ``1 / alpha`` returns, then
            an exponential average -- less noise from a few lucky or unlucky runs than a
            constant step size gives.
        q_init: Initial value of every Q-table entry (ignored when ``q_table`` is given).
        q_table: A learned table of shape ``(n_states, n_actions)`` to warm-start from.
        q_visits: The update counts of ``q_table`` (same shape), to continue its sample
            averages; ``None`` starts every count at 0.
        seed: Seed of the agent's exploration.
        last_epoch: As for every :class:`LRScheduler`; ``-1`` starts fresh.

    Raises:
        TypeError: If an argument has the wrong type (for example ``alpha="0.5"`` or
            ``n_lr_levels=2.5``); the message names it.
        ValueError: If an argument is out of range or not finite (``reward_clip=nan``,
            ``seed=-1``), or the arguments do not fit together (``n_phases > 1`` without
            ``total_steps``, ``total_steps`` without phases, a ``q_table`` of another shape or
            with NaN); the message names the argument.

    Example:
        .. code-block:: python

            import torch
            from optuna_qlearn.lr import QLearningLRScheduler, WarmupCosine

            model = torch.nn.Linear(4, 1)
            opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
            sched = QLearningLRScheduler(
                opt, base_lr_fn=WarmupCosine(100, 2000, 0.1), seed=0
            )
            for it in range(1, 2001):
                opt.zero_grad()
                model(torch.randn(8, 4)).pow(2).mean().backward()
                opt.step()
                sched.step(val_loss=1.0 / it) if it % 100 == 0 else sched.step()
    """

    #: The reward modes this class implements (``reward=``).
    REWARDS: tuple[str, ...] = REWARD_MODES

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr_fn: Callable[[int], float] | None = None,
        *,
        actions: Sequence[float] | str = (0.5, 1.0, 2.0),
        min_multiplier: float = 0.125,
        max_multiplier: float = 8.0,
        initial_multiplier: float = 1.0,
        n_lr_levels: int = 7,
        trend_thresholds: Sequence[float] = (0.0, 0.005, 0.02),
        n_phases: int = 1,
        total_steps: int | None = None,
        alpha: float = 0.5,
        gamma: float = 0.9,
        epsilon: float = 0.1,
        reward: str = "improvement",
        reference_losses: Sequence[float] | None = None,
        reward_scale: float | None = None,
        reward_clip: float = 10.0,
        n_step: int = 1,
        sample_average: bool = False,
        q_init: float = 0.0,
        q_table: torch.Tensor | None = None,
        q_visits: torch.Tensor | None = None,
        seed: int | None = None,
        last_epoch: int = -1,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        if base_lr_fn is not None and not callable(base_lr_fn):
            raise TypeError(
                f"base_lr_fn must be a callable step -> factor or None, got "
                f"{type(base_lr_fn).__name__}"
            )
        self.actions = parse_actions(actions)
        min_multiplier = _real("min_multiplier", min_multiplier, low=0.0, low_open=True)
        max_multiplier = _real("max_multiplier", max_multiplier, low=0.0, low_open=True)
        initial_multiplier = _real("initial_multiplier", initial_multiplier, low=0.0, low_open=True)
        if not min_multiplier <= initial_multiplier <= max_multiplier:
            raise ValueError(
                "need min_multiplier <= initial_multiplier <= max_multiplier, got "
                f"min_multiplier={min_multiplier}, initial_multiplier={initial_multiplier}, "
                f"max_multiplier={max_multiplier}"
            )
        n_lr_levels = _integer("n_lr_levels", n_lr_levels, low=1)
        thresholds = _thresholds(trend_thresholds)
        n_phases = _integer("n_phases", n_phases, low=1)
        if total_steps is not None:
            total_steps = _integer("total_steps", total_steps, low=1)
        if n_phases > 1 and total_steps is None:
            raise ValueError(
                f"n_phases={n_phases} needs total_steps (the run's optimizer steps, e.g. "
                "max_iters) to tell the phase of a decision"
            )
        if n_phases == 1 and total_steps is not None:
            raise ValueError(
                f"total_steps={total_steps} is used only with n_phases > 1 (it splits the run "
                "into phases); pass n_phases or leave total_steps out"
            )
        alpha = _real("alpha", alpha, low=0.0, high=1.0, low_open=True)
        gamma = _real("gamma", gamma, low=0.0, high=1.0)
        epsilon = _real("epsilon", epsilon, low=0.0, high=1.0)
        if not isinstance(reward, str) or reward not in self.REWARDS:
            raise ValueError(f"reward must be one of {self.REWARDS}, got {reward!r}")
        reference = None if reference_losses is None else _losses(reference_losses)
        if reward == "improvement_vs_reference" and not reference:
            raise ValueError(
                "reward='improvement_vs_reference' needs reference_losses (the reference run's "
                "loss at each decision)"
            )
        n_step = _integer("n_step", n_step, low=1)
        if not isinstance(sample_average, bool):
            raise TypeError(f"sample_average must be a bool, got {sample_average!r}")
        if reward_scale is None:
            reward_scale = 100.0
        reward_scale = _real("reward_scale", reward_scale, low=0.0, low_open=True)
        reward_clip = _real("reward_clip", reward_clip, low=0.0, low_open=True)
        q_init = _real("q_init", q_init)
        if seed is not None:
            seed = _integer("seed", seed, low=0)
        last_epoch = _integer("last_epoch", last_epoch, low=-1)

        self.base_lr_fn = base_lr_fn
        self.min_multiplier = min_multiplier
        self.max_multiplier = max_multiplier
        self.multiplier = initial_multiplier
        self.n_lr_levels = n_lr_levels
        self.trend_thresholds = thresholds
        self.n_phases = n_phases
        self.total_steps = total_steps
        self.alpha = alpha
        self.gamma = gamma
        self.epsilon = epsilon
        self.reward_mode = reward
        self.reference_losses = reference
        self.n_step = n_step
        self.sample_average = sample_average
        self.reward_scale = reward_scale
        self.reward_clip = reward_clip

        shape = (self.n_states, len(self.actions))
        if q_table is None:
            self.q_table = torch.full(shape, q_init, dtype=torch.float64)
        else:
            self.q_table = self._checked_table(q_table, "q_table")
        if q_visits is None:
            self.q_visits = torch.zeros(shape, dtype=torch.float64)
        else:
            self.q_visits = self._checked_table(q_visits, "q_visits")
        self._rng = torch.Generator()
        if seed is None:
            self._rng.seed()
        else:
            self._rng.manual_seed(seed)

        # Agent memory between decisions.
        self.n_decisions = 0
        self.first_loss: float | None = None
        self.prev_loss: float | None = None
        self.prev_state: int | None = None
        self.prev_action: int | None = None
        #: Transitions waiting for their n-step target: [state, action, reward] each.
        self.pending: list[list[float]] = []
        #: One entry per decision: step, val_loss, state, action, reward, multiplier after it.
        self.history: list[dict[str, float | int | None]] = []
        super().__init__(optimizer, last_epoch)

    def _checked_table(self, table: object, name: str, source: str = "") -> torch.Tensor:
        """``table`` as a float64 copy of the Q-table's shape, finite (counts also >= 0)."""
        try:
            q = torch.as_tensor(table, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(f"{name}{source} must be a tensor of numbers: {exc}") from None
        shape = (self.n_states, len(self.actions))
        if tuple(q.shape) != shape:
            raise ValueError(
                f"{name}{source} has shape {tuple(q.shape)}, expected {shape} "
                f"(n_states={self.n_states} = {self.n_phases} phases x {self.n_trends} trend "
                f"buckets x {self.n_lr_levels} LR levels, n_actions={len(self.actions)})"
            )
        if not bool(torch.isfinite(q).all()):
            raise ValueError(f"{name}{source} holds non-finite values (NaN or inf)")
        if name == "q_visits" and bool((q < 0).any()):
            raise ValueError(f"{name}{source} holds negative update counts")
        return q.clone()

    # ------------------------------------------------------------------ state and reward
    @property
    def n_trends(self) -> int:
        """Trend buckets, the "start" bucket included."""
        return len(self.trend_thresholds) + 2

    @property
    def n_states(self) -> int:
        """Number of discrete states (phases x trend buckets x LR levels)."""
        return self.n_phases * self.n_trends * self.n_lr_levels

    @property
    def current_epsilon(self) -> float:
        """Exploration rate of the next decision (``epsilon``; a subclass may schedule it)."""
        return self.epsilon

    def trend_bucket(self, loss: float) -> int:
        """Bucket of the relative improvement since the previous decision (last = "start")."""
        if self.prev_loss is None:
            return self.n_trends - 1
        if not math.isfinite(loss):
            return 0
        rel = (self.prev_loss - loss) / max(abs(self.prev_loss), 1e-12)
        return bisect.bisect_right(self.trend_thresholds, rel)

    def lr_level(self, multiplier: float | None = None) -> int:
        """Bucket of ``log(multiplier)`` between the bounds (0 = lowest)."""
        m = self.multiplier if multiplier is None else multiplier
        if self.n_lr_levels == 1 or self.max_multiplier == self.min_multiplier:
            return 0
        span = math.log(self.max_multiplier / self.min_multiplier)
        pos = math.log(m / self.min_multiplier) / span
        return min(self.n_lr_levels - 1, max(0, round(pos * (self.n_lr_levels - 1))))

    def phase(self, steps: int | None = None) -> int:
        """Training phase after ``steps`` optimizer steps (default: the steps taken so far).

        ``min(n_phases - 1, n_phases * steps // total_steps)``; always 0 with one phase. Within
        ``step(val_loss)`` the steps taken so far are ``last_epoch + 1``: the phase is that of
        the next optimizer step, the first to use the decision's LR.
        """
        if self.n_phases == 1 or self.total_steps is None:
            return 0
        t = self.last_epoch + 1 if steps is None else int(steps)
        return min(self.n_phases - 1, max(0, self.n_phases * t // self.total_steps))

    def state_index(self, loss: float) -> int:
        """Index of the state ``(phase(), trend_bucket(loss), lr_level())`` in the Q-table.

        The layout is ``(phase * n_trends + trend) * n_lr_levels + level``; with one phase it
        is the ``trend * n_lr_levels + level`` of tables saved before phases existed.
        """
        trend = self.phase() * self.n_trends + self.trend_bucket(loss)
        return trend * self.n_lr_levels + self.lr_level()

    def improvement(self, loss: float) -> float | None:
        """Relative improvement ``(prev_loss - loss) / prev_loss``; ``None`` without a prev_loss."""
        if self.prev_loss is None or not math.isfinite(loss):
            return None
        return (self.prev_loss - loss) / max(abs(self.prev_loss), 1e-12)

    def reference_improvement(self) -> float:
        """Relative improvement of the reference run over the current decision interval."""
        ref, k = self.reference_losses, self.n_decisions
        if not ref or not 1 <= k < len(ref):
            return 0.0
        return (ref[k - 1] - ref[k]) / ref[k - 1]

    def reward(self, loss: float) -> float | None:
        """Reward of the last action, given the loss it led to (``None``: nothing to learn yet)."""
        if not math.isfinite(loss):
            return -self.reward_clip
        rel = self.improvement(loss)
        if rel is None:
            return None
        if self.reward_mode == "improvement_vs_reference":
            rel -= self.reference_improvement()
        return min(self.reward_clip, max(-self.reward_clip, self.reward_scale * rel))

    # ------------------------------------------------------------------ the agent
    def _greedy(self, state: int) -> int:
        row = self.q_table[state]
        best = [int(i) for i in torch.nonzero(row == row.max()).flatten()]
        # Without evidence (a tie), keep the LR: prefer the most neutral action (closest to x1),
        # then break any remaining tie at random. Distances equal up to rounding (x2/3 and x1.5)
        # count as a tie, so a symmetric action set has no built-in bias up or down.
        distance = [abs(math.log(self.actions[i])) for i in best]
        nearest = min(distance)
        neutral = [
            i
            for i, d in zip(best, distance, strict=True)
            if math.isclose(d, nearest, rel_tol=1e-9, abs_tol=1e-12)
        ]
        pick = torch.randint(len(neutral), (1,), generator=self._rng).item()
        return neutral[int(pick)]

    def select_action(self, state: int) -> int:
        """Epsilon-greedy action in ``state`` (uses and advances the agent's RNG)."""
        if torch.rand(1, generator=self._rng).item() < self.current_epsilon:
            return int(torch.randint(len(self.actions), (1,), generator=self._rng).item())
        return self._greedy(state)

    def observe(self, val_loss: float) -> None:
        """Learn from ``val_loss`` and set the multiplier for the next steps.

        This is the agent half of ``step(val_loss)`` without advancing the base schedule;
        prefer ``step(val_loss)`` in a training loop.
        """
        loss = float(val_loss)
        if math.isnan(loss):
            loss = math.inf
        state = self.state_index(loss)
        acted = self.prev_state is not None and self.prev_action is not None
        r = self.reward(loss) if acted else None
        if r is not None and self.prev_state is not None and self.prev_action is not None:
            # n-step Q-learning: Q(s,a) += alpha * (G - Q(s,a)) with
            # G = r_1 + ... + gamma^(n-1) r_n + gamma^n max_a' Q(s_n,a'); n = 1 is one-step.
            self.pending.append([self.prev_state, self.prev_action, r])
            if len(self.pending) >= self.n_step:
                self._update_oldest(bootstrap=float(self.q_table[state].max()))
        action = self.select_action(state)
        self.multiplier = min(
            self.max_multiplier, max(self.min_multiplier, self.multiplier * self.actions[action])
        )
        if self.first_loss is None and math.isfinite(loss):
            self.first_loss = loss
        if math.isfinite(loss):
            self.prev_loss = loss
        self.prev_state, self.prev_action = state, action
        self.n_decisions += 1
        self.history.append(
            {
                "step": self.last_epoch,
                "val_loss": loss,
                "state": state,
                "action": action,
                "reward": r,
                "multiplier": self.multiplier,
            }
        )

    def _update_oldest(self, bootstrap: float | None) -> None:
        """Update the oldest pending transition with its return (bootstrapped if given)."""
        g = 0.0
        for i, (_, _, r) in enumerate(self.pending):
            g += self.gamma**i * r
        if bootstrap is not None:
            g += self.gamma ** len(self.pending) * bootstrap
        s, a, _ = self.pending.pop(0)
        s, a = int(s), int(a)
        self.q_visits[s, a] += 1.0
        step = self.alpha
        if self.sample_average:
            step = max(self.alpha, 1.0 / float(self.q_visits[s, a]))
        old = float(self.q_table[s, a])
        self.q_table[s, a] = old + step * (g - old)

    def end_episode(self) -> None:
        """End a run: do the n-step updates still waiting, without bootstrapping.

        The last loss seen is then the end of the episode: the next ``step(val_loss)`` starts
        a new one (no transition links the two, and the decision counter behind the epsilon
        decay and ``reference_losses`` restarts at 0). With ``n_step=1`` nothing is waiting.
        """
        while self.pending:
            self._update_oldest(bootstrap=None)
        self.prev_state = self.prev_action = None
        self.prev_loss = None
        self.first_loss = None
        self.n_decisions = 0

    # ------------------------------------------------------------------ LRScheduler API
    def step(self, val_loss: float | torch.Tensor | None = None) -> None:
        """Advance one step; with ``val_loss``, first let the agent learn and act.

        Args:
            val_loss: The validation loss just measured, or ``None`` on steps without an
                evaluation (only the base schedule advances).
        """
        if val_loss is not None:
            self.observe(float(val_loss))
        super().step()

    def get_lr(self) -> list[float | torch.Tensor]:
        """``initial_lr * base_lr_fn(last_epoch) * multiplier`` for every parameter group."""
        if not self._get_lr_called_within_step:
            warnings.warn(
                "To get the last learning rate computed by the scheduler, use `get_last_lr()`.",
                UserWarning,
                stacklevel=2,
            )
        return self._lrs()

    def _lrs(self) -> list[float | torch.Tensor]:
        """The learning rates :meth:`get_lr` gives (also applied at once by integrations)."""
        factor = 1.0 if self.base_lr_fn is None else self.base_lr_fn(self.last_epoch)
        # A float (the common case, every step) skips the slower abstract-class check.
        if type(factor) is not float and (
            isinstance(factor, bool) or not isinstance(factor, numbers.Real)
        ):
            raise TypeError(
                f"base_lr_fn({self.last_epoch}) must return a real number, got {factor!r}"
            )
        if not (math.isfinite(factor) and factor >= 0):
            raise ValueError(
                f"base_lr_fn({self.last_epoch}) must return a finite factor >= 0, got {factor}"
            )
        return [base_lr * factor * self.multiplier for base_lr in self.base_lrs]

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state: plain tensors, numbers, strings and lists only.

        ``base_lr_fn`` is left out (as :class:`LambdaLR` leaves out its lambdas); the agent's
        RNG is stored as its state tensor.
        """
        state = {
            k: v for k, v in self.__dict__.items() if k not in ("optimizer", "base_lr_fn", "_rng")
        }
        state["q_table"] = self.q_table.clone()
        state["q_visits"] = self.q_visits.clone()
        state["history"] = [dict(h) for h in self.history]
        state["pending"] = [list(p) for p in self.pending]
        state["rng_state"] = self._rng.get_state()
        return state

    #: Settings that define the Q-table's layout and meaning: a state must have been saved
    #: with the same ones (:meth:`load_state_dict` refuses another layout).
    LAYOUT_KEYS = (
        "actions",
        "trend_thresholds",
        "n_lr_levels",
        "n_phases",
        "total_steps",
        "min_multiplier",
        "max_multiplier",
    )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` saved by a scheduler of the same layout.

        The layout -- the settings in :attr:`LAYOUT_KEYS` (actions, trend buckets, LR levels,
        phases and multiplier bounds) and the optimizer's number of parameter groups -- must
        be the one this scheduler was built with: a table learned for another layout means
        something else, so it is refused rather than silently replacing the configuration.
        The learning settings (``alpha``, ``gamma``, ``epsilon``, the reward, ...) are restored
        from the state, as every PyTorch scheduler restores its own, and checked like the
        constructor's arguments. A state saved before phases and update counts existed loads
        as one phase with all counts 0.

        Args:
            state_dict: A dictionary from :meth:`state_dict` (for example after
                ``torch.load(path, weights_only=True)``).

        Raises:
            TypeError: If ``state_dict`` is not a mapping or a value has the wrong type.
            ValueError: If the state has another layout or number of parameter groups, an
                unknown or missing key, or a Q-table (or counts) of the wrong shape or with
                non-finite values; the message names the mismatch.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"state_dict must be a mapping from state_dict(), got {type(state_dict).__name__}"
            )
        state = dict(state_dict)
        state.setdefault("n_phases", 1)
        state.setdefault("total_steps", None)
        state.setdefault("sample_average", False)
        own = self.state_dict()
        unknown = sorted(set(state) - set(own) - {"q_visits"})
        if unknown:
            raise ValueError(
                f"state_dict has keys this {type(self).__name__} does not have: {unknown}"
            )
        missing = sorted(set(own) - set(state) - {"q_visits", "rng_state"})
        if missing:
            raise ValueError(f"state_dict lacks the keys {missing}")
        for key in self.LAYOUT_KEYS:
            saved, configured = state[key], own[key]
            if isinstance(configured, tuple):
                same = isinstance(saved, Sequence) and tuple(float(v) for v in saved) == configured
            else:
                same = saved == configured
            if not same:
                raise ValueError(
                    f"state_dict was saved with {key}={saved!r}, but this scheduler has "
                    f"{key}={configured!r}: build the scheduler with the saved settings (a "
                    "Q-table means something only in the layout it was learned in)"
                )
        n_groups = len(self.optimizer.param_groups)
        base_lrs = state["base_lrs"]
        if not isinstance(base_lrs, Sequence) or len(base_lrs) != n_groups:
            n_saved = len(base_lrs) if isinstance(base_lrs, Sequence) else base_lrs
            raise ValueError(
                f"state_dict was saved for an optimizer with {n_saved} parameter group(s), but "
                f"this scheduler's optimizer has {n_groups}"
            )
        q = self._checked_table(state.pop("q_table"), "q_table", " in state_dict")
        visits_in = state.pop("q_visits", None)
        visits = (
            torch.zeros_like(q)
            if visits_in is None
            else self._checked_table(visits_in, "q_visits", " in state_dict")
        )
        self._check_learning_settings(state)
        self._check_memory(state)
        rng_state = state.pop("rng_state", None)
        for key in self.LAYOUT_KEYS:
            state.pop(key)  # equal to the configured ones (checked above)
        self.__dict__.update(state)
        self.q_table = q
        self.q_visits = visits
        if rng_state is not None:
            self._rng.set_state(torch.as_tensor(rng_state, dtype=torch.uint8))

    def _check_learning_settings(self, state: dict[str, Any]) -> None:
        """Check the restored learning settings as the constructor checks its arguments."""
        src = " (in state_dict)"
        if state["reward_mode"] not in self.REWARDS:
            raise ValueError(
                f"reward_mode{src} must be one of {self.REWARDS}, got {state['reward_mode']!r}"
            )
        _real("alpha" + src, state["alpha"], low=0.0, high=1.0, low_open=True)
        _real("gamma" + src, state["gamma"], low=0.0, high=1.0)
        _real("epsilon" + src, state["epsilon"], low=0.0, high=1.0)
        _real("reward_scale" + src, state["reward_scale"], low=0.0, low_open=True)
        _real("reward_clip" + src, state["reward_clip"], low=0.0, low_open=True)
        _real("multiplier" + src, state["multiplier"], low=self.min_multiplier,
              high=self.max_multiplier)  # fmt: skip
        _integer("n_step" + src, state["n_step"], low=1)
        _integer("n_decisions" + src, state["n_decisions"], low=0)
        _integer("last_epoch" + src, state["last_epoch"], low=-1)
        if not isinstance(state["sample_average"], bool):
            raise TypeError(f"sample_average{src} must be a bool, got {state['sample_average']!r}")
        if state["reference_losses"] is not None:
            state["reference_losses"] = _losses(state["reference_losses"])
        if state["reward_mode"] == "improvement_vs_reference" and not state["reference_losses"]:
            raise ValueError(f"reward 'improvement_vs_reference'{src} needs reference_losses")

    def _check_memory(self, state: dict[str, Any]) -> None:
        """Check the restored agent memory (previous state/action, pending transitions)."""
        n_states, n_actions = self.n_states, len(self.actions)
        for key, bound in (("prev_state", n_states), ("prev_action", n_actions)):
            value = state[key]
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, numbers.Integral)
                or not 0 <= int(value) < bound
            ):
                raise ValueError(
                    f"{key} in state_dict must be None or in [0, {bound}), got {value!r}"
                )
        pending = state["pending"]
        if not isinstance(pending, list) or len(pending) >= max(state["n_step"], 1) + 1:
            raise ValueError(
                f"pending in state_dict must be a list of at most n_step transitions, got "
                f"{pending!r}"
            )
        for item in pending:
            if (
                not isinstance(item, Sequence)
                or len(item) != 3
                or not 0 <= int(item[0]) < n_states
                or not 0 <= int(item[1]) < n_actions
                or not math.isfinite(float(item[2]))
            ):
                raise ValueError(f"pending in state_dict holds an invalid transition {item!r}")

    def greedy_policy(self) -> list[float]:
        """The multiplier the greedy policy applies in each state (ties -> first action)."""
        return [self.actions[int(i)] for i in self.q_table.argmax(dim=1)]
