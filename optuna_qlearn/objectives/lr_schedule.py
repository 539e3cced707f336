"""``LRScheduleObjective``: tune a learning-rate schedule of the char-level GPT with Optuna.

Each trial trains a :class:`~optuna_qlearn.objectives.chargpt.CharGPT` with a schedule the
trial chooses and returns the best validation loss (minimize). The validation loss of every
evaluation is reported with ``trial.report``, so Optuna's pruners work.

Search spaces (``search_space=``):

* ``"qlearning"`` -- the :class:`~optuna_qlearn.lr.QLearningLRScheduler` on top of the
  configuration's warmup+cosine schedule: ``q_alpha``, ``q_gamma``, ``q_epsilon`` and
  ``q_actions`` (an action set such as ``"0.5,1,2"``), with the reward ``"improvement"``
  (a subclass may search ``q_reward`` over :attr:`LRScheduleObjective.REWARD_CHOICES`); with
  ``phases=(1, 4)`` (for example) also ``q_phases``, the number of training phases in the
  controller's state (``n_phases``, over the configuration's ``max_iters``).
* ``"baseline"`` -- warmup+cosine itself: ``lr``, ``warmup_iters``, ``min_lr_ratio``.
* ``"both"`` -- ``schedule`` in ``{"baseline", "qlearning"}`` and then that schedule's
  parameters (a conditional space).

Example:
    .. code-block:: python

        import optuna
        from optuna_qlearn import QLearningSampler
        from optuna_qlearn.objectives import GPTConfig, LRScheduleObjective

        objective = LRScheduleObjective(
            "shakespeare_char",
            path="../shared/data/shakespeare_char/input.txt",
            config=GPTConfig.cpu(max_iters=200),
        )
        study = optuna.create_study(sampler=QLearningSampler(seed=0))
        study.optimize(objective, n_trials=12)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import optuna
import torch

from optuna_qlearn.lr import QLearningLRScheduler, parse_actions
from optuna_qlearn.objectives.chargpt import GPTConfig, SchedulerFactory, train_chargpt
from optuna_qlearn.objectives.text_data import CharCorpus, load_corpus

SEARCH_SPACES = ("qlearning", "baseline", "both")
#: Action sets the ``"qlearning"`` space chooses from.
ACTION_SETS = ("0.5,1,2", "0.7,1,1.4", "0.5,0.8,1,1.25,2", "0.8,1,1.25")


def qlearning_factory(
    params: dict[str, Any],
    seed: int | None = None,
    *,
    scheduler_cls: type[QLearningLRScheduler] = QLearningLRScheduler,
    **extra: Any,
) -> SchedulerFactory:
    """Scheduler factory for a :class:`QLearningLRScheduler` over the config's warmup+cosine.

    Args:
        params: ``q_alpha``, ``q_gamma``, ``q_epsilon``, ``q_actions``, ``q_reward`` and
            ``q_phases`` (missing keys keep the scheduler's defaults; ``q_phases > 1``
            splits the configuration's ``max_iters`` into that many training phases).
        seed: Seed of the agent's exploration.
        scheduler_cls: The scheduler class (a subclass of :class:`QLearningLRScheduler`).
        extra: Further keyword arguments of ``scheduler_cls``.

    Returns:
        ``(optimizer, config) -> scheduler_cls(...)``.

    Raises:
        TypeError: If ``scheduler_cls`` is not a subclass of :class:`QLearningLRScheduler`.
    """
    if not (isinstance(scheduler_cls, type) and issubclass(scheduler_cls, QLearningLRScheduler)):
        raise TypeError(
            f"scheduler_cls must be a subclass of QLearningLRScheduler, got {scheduler_cls!r}"
        )
    kwargs: dict[str, Any] = dict(extra)
    names = {"q_alpha": "alpha", "q_gamma": "gamma", "q_epsilon": "epsilon", "q_reward": "reward"}
    for key, arg in names.items():
        if key in params:
            kwargs[arg] = params[key]
    if "q_actions" in params:
        kwargs["actions"] = parse_actions(params["q_actions"])
    phases = int(params.get("q_phases", 1))

    def factory(optimizer: torch.optim.Optimizer, config: GPTConfig) -> QLearningLRScheduler:
        phase_kw: dict[str, Any] = (
            {"n_phases": phases, "total_steps": config.max_iters} if phases > 1 else {}
        )
        return scheduler_cls(
            optimizer, base_lr_fn=config.base_lr_fn(), seed=seed, **kwargs, **phase_kw
        )

    return factory


class LRScheduleObjective:
    """Optuna objective: best validation loss of a char-level GPT under a trial's LR schedule.

    Args:
        corpus: A loaded :class:`CharCorpus` or a corpus name (``"shakespeare_char"``,
            ``"enwik8"``, ``"text8"``), loaded from ``path``.
        path: Corpus file when ``corpus`` is a name.
        config: Model and training configuration (default :meth:`GPTConfig.cpu`).
        search_space: ``"qlearning"``, ``"baseline"`` or ``"both"`` (see the module docstring).
        seed: Training seed, the same in every trial so that trials differ only in schedule.
        download_if_missing: Fetch the corpus from its public URL when ``path`` is missing.
        phases: Numbers of training phases the controller's state may have: one value
            fixes it, several make ``q_phases`` a searched parameter (``(1,)``, the
            default, keeps the phase out of the state and of the search space).

    Raises:
        ValueError: If ``search_space`` is unknown or ``phases`` is empty or not all >= 1.

    Example:
        .. code-block:: python

            objective = LRScheduleObjective("shakespeare_char", path="input.txt")
            study = optuna.create_study(pruner=optuna.pruners.MedianPruner())
            study.optimize(objective, n_trials=16)
    """

    #: Reward modes ``q_reward`` is searched over; empty (the default) leaves ``q_reward``
    #: out of the space and uses the scheduler's default reward. A subclass may set it
    #: together with ``SCHEDULER``.
    REWARD_CHOICES: tuple[str, ...] = ()
    #: The scheduler class of the ``"qlearning"`` schedule.
    SCHEDULER: type[QLearningLRScheduler] = QLearningLRScheduler

    def __init__(
        self,
        corpus: CharCorpus | str = "shakespeare_char",
        path: str | os.PathLike[str] | None = None,
        config: GPTConfig | None = None,
        *,
        search_space: str = "qlearning",
        seed: int = 0,
        download_if_missing: bool = False,
        phases: Sequence[int] = (1,),
    ) -> None:
        if search_space not in SEARCH_SPACES:
            raise ValueError(f"search_space must be one of {SEARCH_SPACES}, got {search_space!r}")
        phases = tuple(phases)
        if not phases or any(not isinstance(n, int) or n < 1 for n in phases):
            raise ValueError(f"phases must be a non-empty list of integers >= 1, got {phases!r}")
        if isinstance(corpus, str):
            corpus = load_corpus(corpus, path, download_if_missing=download_if_missing)
        self.corpus = corpus
        self.config = config if config is not None else GPTConfig.cpu()
        self.search_space = search_space
        self.seed = seed
        self.phases = phases

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Draw the schedule's parameters from ``trial``.

        Returns:
            The parameters, with ``"schedule"`` set to ``"baseline"`` or ``"qlearning"``.
        """
        schedule = self.search_space
        if schedule == "both":
            schedule = str(trial.suggest_categorical("schedule", ["baseline", "qlearning"]))
        params: dict[str, Any] = {"schedule": schedule}
        if schedule == "qlearning":
            params["q_alpha"] = trial.suggest_float("q_alpha", 0.05, 1.0, log=True)
            params["q_gamma"] = trial.suggest_float("q_gamma", 0.0, 0.99)
            params["q_epsilon"] = trial.suggest_float("q_epsilon", 0.0, 0.5)
            params["q_actions"] = trial.suggest_categorical("q_actions", list(ACTION_SETS))
            if self.REWARD_CHOICES:
                params["q_reward"] = trial.suggest_categorical(
                    "q_reward", list(self.REWARD_CHOICES)
                )
            if len(self.phases) > 1:
                params["q_phases"] = int(trial.suggest_categorical("q_phases", list(self.phases)))
            elif self.phases[0] > 1:
                params["q_phases"] = self.phases[0]
        else:
            lr = self.config.learning_rate
            params["lr"] = trial.suggest_float("lr", lr / 4, lr * 4, log=True)
            params["warmup_iters"] = trial.suggest_int(
                "warmup_iters", 0, max(1, self.config.max_iters // 5)
            )
            params["min_lr_ratio"] = trial.suggest_float("min_lr_ratio", 0.01, 1.0, log=True)
        return params

    def build(self, params: dict[str, Any]) -> tuple[GPTConfig, SchedulerFactory | str]:
        """The training configuration and schedule for ``params`` (from :meth:`suggest`)."""
        if params["schedule"] == "qlearning":
            return self.config, qlearning_factory(
                params, seed=self.seed, scheduler_cls=self.SCHEDULER
            )
        config = dataclasses.replace(
            self.config,
            learning_rate=params["lr"],
            min_lr=params["lr"] * params["min_lr_ratio"],
            warmup_iters=params["warmup_iters"],
        )
        return config, "baseline"

    def __call__(self, trial: optuna.Trial) -> float:
        """Train with the trial's schedule and return the best validation loss.

        Raises:
            optuna.TrialPruned: When the study's pruner stops the trial.
        """
        config, schedule = self.build(self.suggest(trial))

        def on_eval(iteration: int, train_loss: float, val_loss: float) -> None:
            if iteration == 0:
                return  # before training: identical in every trial
            trial.report(val_loss, iteration)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at iteration {iteration}")

        result = train_chargpt(
            self.corpus, config, schedule=schedule, seed=self.seed, on_eval=on_eval
        )
        trial.set_user_attr("final_train_loss", result.final_train_loss)
        trial.set_user_attr("final_val_loss", result.final_val_loss)
        trial.set_user_attr("train_time", result.train_time)
        trial.set_user_attr("tokens_per_sec", result.tokens_per_sec)
        return result.best_val_loss
