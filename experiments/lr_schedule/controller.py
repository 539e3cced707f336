"""The experiment's LR controller: the library's, plus the options the experiment dropped.

Runs 1-25 of the LR-schedule experiment (see ``README.md`` here) tried reward modes and an
exploration schedule that did not hold up; the library's
:class:`~optuna_qlearn.lr.QLearningLRScheduler` keeps only what the final design used.
:class:`ExperimentLRScheduler` adds the rest back so that every stored run still means what
it meant when it was run:

- ``reward="neg_val_loss"``: ``-reward_scale * loss / first_loss`` (``reward_scale`` 1 by
  default), runs 1-2;
- ``reward="improvement_delta"``: the change of the relative improvement across the decision,
  ``reward_scale * (improvement_after - improvement_before)`` (no update until two
  improvements have been seen), runs 5-15;
- ``reward="improvement_ema"``: the relative improvement minus an exponential moving average
  of the earlier ones (``ema_decay``), runs 16-19;
- ``epsilon_end`` / ``epsilon_decay_decisions``: a linear epsilon decay (CleanRL's schedule),
  run 4.

:class:`ExperimentLRObjective` is the library's
:class:`~optuna_qlearn.objectives.lr_schedule.LRScheduleObjective` with the study's original
``q_reward`` choices.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

from torch.optim import Optimizer

from optuna_qlearn.lr import QLearningLRScheduler
from optuna_qlearn.objectives.lr_schedule import LRScheduleObjective

#: The reward modes only the experiment uses.
EXTRA_REWARDS = ("neg_val_loss", "improvement_delta", "improvement_ema")


def _unit_interval(name: str, value: object, *, open_high: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    ok = 0.0 <= v < 1.0 if open_high else 0.0 <= v <= 1.0
    if not (math.isfinite(v) and ok):
        raise ValueError(f"{name} must be in [0, {'1)' if open_high else '1]'}, got {v}")
    return v


class ExperimentLRScheduler(QLearningLRScheduler):
    """:class:`~optuna_qlearn.lr.QLearningLRScheduler` with the experiment's extra options.

    Args:
        optimizer: The wrapped optimizer.
        base_lr_fn: As for :class:`~optuna_qlearn.lr.QLearningLRScheduler`.
        reward: One of the library's reward modes or of :data:`EXTRA_REWARDS`.
        ema_decay: Weight of the old average in ``"improvement_ema"`` (``0`` makes it
            ``"improvement_delta"``).
        epsilon_end: Final exploration rate of a linear decay from ``epsilon``; ``None``
            keeps ``epsilon``.
        epsilon_decay_decisions: Decisions over which epsilon decays to ``epsilon_end``.
        reward_scale: As for the library; ``None`` means 1 for ``"neg_val_loss"`` (rewards
            near -1) and 100 otherwise.
        kwargs: Every other :class:`~optuna_qlearn.lr.QLearningLRScheduler` argument.

    Raises:
        TypeError: If an argument has the wrong type; the message names it.
        ValueError: If an argument is out of range; the message names it.

    Example:
        .. code-block:: python

            sched = ExperimentLRScheduler(opt, reward="improvement_ema", ema_decay=0.7, seed=0)
    """

    REWARDS = (*QLearningLRScheduler.REWARDS, *EXTRA_REWARDS)
    ema_decay: float
    epsilon_end: float | None
    epsilon_decay_decisions: int

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr_fn: Callable[[int], float] | None = None,
        *,
        reward: str = "improvement",
        ema_decay: float = 0.7,
        epsilon_end: float | None = None,
        epsilon_decay_decisions: int = 10,
        reward_scale: float | None = None,
        **kwargs: Any,
    ) -> None:
        self.ema_decay = _unit_interval("ema_decay", ema_decay, open_high=True)
        self.epsilon_end = (
            None if epsilon_end is None else _unit_interval("epsilon_end", epsilon_end)
        )
        if (
            isinstance(epsilon_decay_decisions, bool)
            or not isinstance(epsilon_decay_decisions, numbers.Integral)
            or epsilon_decay_decisions < 1
        ):
            raise ValueError(
                f"epsilon_decay_decisions must be an integer >= 1, got {epsilon_decay_decisions!r}"
            )
        self.epsilon_decay_decisions = int(epsilon_decay_decisions)
        #: Relative improvement at the previous decision (``"improvement_delta"``).
        self.prev_improvement: float | None = None
        #: Moving average of the earlier relative improvements (``"improvement_ema"``).
        self.improvement_ema: float | None = None
        if reward_scale is None and reward == "neg_val_loss":
            reward_scale = 1.0
        super().__init__(optimizer, base_lr_fn, reward=reward, reward_scale=reward_scale, **kwargs)

    @property
    def current_epsilon(self) -> float:
        """Exploration rate of the next decision (CleanRL's linear schedule)."""
        if self.epsilon_end is None:
            return self.epsilon
        slope = (self.epsilon_end - self.epsilon) / self.epsilon_decay_decisions
        value = self.epsilon + slope * self.n_decisions
        return max(value, self.epsilon_end) if slope <= 0 else min(value, self.epsilon_end)

    def reward(self, loss: float) -> float | None:
        """Reward of the last action, for every mode of :attr:`REWARDS`."""
        if self.reward_mode not in EXTRA_REWARDS:
            return super().reward(loss)
        if not math.isfinite(loss):
            return -self.reward_clip
        if self.reward_mode == "neg_val_loss":
            ref = self.first_loss if self.first_loss is not None else loss
            r = -self.reward_scale * loss / max(abs(ref), 1e-12)
        else:
            rel = self.improvement(loss)
            if rel is None:
                return None
            before = (
                self.prev_improvement
                if self.reward_mode == "improvement_delta"
                else self.improvement_ema
            )
            if before is None:
                return None
            r = self.reward_scale * (rel - before)
        return min(self.reward_clip, max(-self.reward_clip, r))

    def observe(self, val_loss: float) -> None:
        """The library's decision, then the bookkeeping of the extra reward modes."""
        loss = float(val_loss)
        finite = math.isfinite(loss)
        improvement = self.improvement(loss) if finite else None
        super().observe(val_loss)
        if finite:
            self.prev_improvement = improvement
            if improvement is not None:
                self.improvement_ema = (
                    improvement
                    if self.improvement_ema is None
                    else self.ema_decay * self.improvement_ema
                    + (1.0 - self.ema_decay) * improvement
                )

    def end_episode(self) -> None:
        """The library's end of episode; the improvement memory restarts too."""
        super().end_episode()
        self.prev_improvement = self.improvement_ema = None


class ExperimentLRObjective(LRScheduleObjective):
    """The study's objective: ``q_reward`` searched over the study's original choices."""

    REWARD_CHOICES = ("improvement", "neg_val_loss", "improvement_delta")
    SCHEDULER = ExperimentLRScheduler
