"""Hugging Face ``transformers``: the LR controller in a ``Trainer``.

The ``Trainer`` steps its LR scheduler after every optimizer step and never hands it a
metric, so :class:`QLearningLRCallback` does the other half: after each evaluation it
feeds ``eval_loss`` (or another metric) to
:meth:`~optuna_qlearn.lr.QLearningLRScheduler.observe` and applies the LR the agent picked
at once, so the very next optimizer step uses it (the ``Trainer``'s next
``scheduler.step()`` computes the same value). Give the ``Trainer`` the controller as its
scheduler (``optimizers=(optimizer, scheduler)``); with a scheduler of its own it would
overwrite the controller's LR every step.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from optuna_qlearn.lr import QLearningLRScheduler

__all__ = ["QLearningLRCallback"]


class QLearningLRCallback(TrainerCallback):
    """Feed each evaluation's loss to a :class:`~optuna_qlearn.lr.QLearningLRScheduler`.

    Args:
        scheduler: The controller, built on the optimizer the ``Trainer`` gets, and given to
            it as its scheduler: ``Trainer(..., optimizers=(optimizer, scheduler))``.
        metric: The evaluation metric to feed, as the ``Trainer`` names it (``"eval_loss"``,
            or ``"eval_<name>"`` of ``compute_metrics``); lower must be better.
        end_episode_on_train_end: Call ``scheduler.end_episode()`` when training ends (the
            n-step updates still waiting are done; the next run starts a new episode).

    Raises:
        TypeError: If ``scheduler`` is not a
            :class:`~optuna_qlearn.lr.QLearningLRScheduler`.
        ValueError: If ``metric`` is empty.

    Example:
        .. code-block:: python

            from transformers import Trainer, TrainingArguments

            from optuna_qlearn.integration.huggingface import QLearningLRCallback
            from optuna_qlearn.lr import QLearningLRScheduler, WarmupCosine

            optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
            scheduler = QLearningLRScheduler(
                optimizer, WarmupCosine(100, 2000, 0.1), seed=0
            )
            args = TrainingArguments("out", max_steps=2000, eval_strategy="steps", eval_steps=100)
            trainer = Trainer(
                model=model,
                args=args,
                train_dataset=train,
                eval_dataset=val,
                optimizers=(optimizer, scheduler),
                callbacks=[QLearningLRCallback(scheduler)],
            )
            trainer.train()
    """

    def __init__(
        self,
        scheduler: QLearningLRScheduler,
        *,
        metric: str = "eval_loss",
        end_episode_on_train_end: bool = True,
    ) -> None:
        if not isinstance(scheduler, QLearningLRScheduler):
            raise TypeError(
                f"scheduler must be a QLearningLRScheduler, got {type(scheduler).__name__}"
            )
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"metric must be the name of an evaluation metric, got {metric!r}")
        self.scheduler = scheduler
        self.metric = metric
        self.end_episode_on_train_end = end_episode_on_train_end

    def _check_trainer_scheduler(self, kwargs: dict[str, Any]) -> None:
        given = kwargs.get("lr_scheduler")
        if given is not None and given is not self.scheduler:
            raise ValueError(
                "the Trainer steps another LR scheduler "
                f"({type(given).__name__}), which overwrites the controller's LR: pass "
                "optimizers=(optimizer, scheduler) with the callback's scheduler"
            )

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        """Check that the ``Trainer`` steps this callback's scheduler.

        Raises:
            ValueError: If the ``Trainer`` has another LR scheduler.
        """
        self._check_trainer_scheduler(kwargs)

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        """Let the agent learn from the metric and apply its LR to the optimizer now.

        Raises:
            KeyError: If the evaluation did not produce ``metric``.
            ValueError: If the ``Trainer`` has another LR scheduler.
        """
        self._check_trainer_scheduler(kwargs)
        metrics = metrics or {}
        if self.metric not in metrics:
            raise KeyError(
                f"QLearningLRCallback(metric={self.metric!r}): the evaluation gave "
                f"{sorted(metrics)}"
            )
        s = self.scheduler
        s.observe(float(metrics[self.metric]))
        lrs = s._lrs()  # what the scheduler's next step() gives too, checked as there
        for group, lr in zip(s.optimizer.param_groups, lrs):
            group["lr"] = lr
        s._last_lr = lrs  # what get_last_lr() (the Trainer's logged learning_rate) reports

    def on_train_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        """End the controller's episode (see ``end_episode_on_train_end``)."""
        if self.end_episode_on_train_end:
            self.scheduler.end_episode()
