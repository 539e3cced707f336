"""PyTorch Lightning: the LR controller in ``configure_optimizers``.

Lightning passes the monitored metric to a scheduler's ``step`` only when the scheduler
entry says ``"reduce_on_plateau": True``, which it infers from
``isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)``.
:class:`~optuna_qlearn.lr.QLearningLRScheduler` follows ``ReduceLROnPlateau``'s contract
(``step(val_loss)``) but is an ``LRScheduler``, so with the plain entry
``{"scheduler": s, "monitor": "val_loss", "interval": "epoch"}`` Lightning calls
``s.step()`` without the loss: the base schedule advances and the agent never decides (no
error, no warning). :func:`lr_scheduler_config` builds the entry with the flag set. No
Lightning import is needed here.
"""

from __future__ import annotations

from typing import Any

from optuna_qlearn.lr import QLearningLRScheduler

__all__ = ["lr_scheduler_config"]


def lr_scheduler_config(
    scheduler: QLearningLRScheduler,
    *,
    monitor: str = "val_loss",
    interval: str = "epoch",
    frequency: int = 1,
    strict: bool = True,
    name: str | None = None,
) -> dict[str, Any]:
    """The ``"lr_scheduler"`` entry of ``configure_optimizers`` for the LR controller.

    Args:
        scheduler: The controller, built on the optimizer that ``configure_optimizers``
            returns.
        monitor: The logged metric handed to ``scheduler.step`` (log it with
            ``self.log(monitor, ...)`` in ``validation_step``).
        interval: ``"epoch"`` (after each validation run) or ``"step"``.
        frequency: Step the controller every ``frequency`` intervals.
        strict: Lightning's ``strict``: fail when ``monitor`` is not logged (else it warns
            and skips the update).
        name: The name Lightning's ``LearningRateMonitor`` shows.

    Returns:
        A dict for ``{"optimizer": optimizer, "lr_scheduler": ...}`` with
        ``reduce_on_plateau=True``, so that Lightning calls
        ``scheduler.step(<monitored value>)``.

    Raises:
        TypeError: If ``scheduler`` is not a
            :class:`~optuna_qlearn.lr.QLearningLRScheduler`.
        ValueError: If ``monitor`` is empty, ``interval`` is not ``"epoch"`` or ``"step"``,
            or ``frequency`` is not a positive integer.

    Example:
        .. code-block:: python

            def configure_optimizers(self):
                optimizer = torch.optim.AdamW(self.parameters(), lr=1e-3)
                scheduler = QLearningLRScheduler(optimizer, seed=0)
                return {"optimizer": optimizer, "lr_scheduler": lr_scheduler_config(scheduler)}
    """
    if not isinstance(scheduler, QLearningLRScheduler):
        raise TypeError(f"scheduler must be a QLearningLRScheduler, got {type(scheduler).__name__}")
    if not isinstance(monitor, str) or not monitor:
        raise ValueError(f"monitor must be the name of a logged metric, got {monitor!r}")
    if interval not in ("epoch", "step"):
        raise ValueError(f'interval must be "epoch" or "step", got {interval!r}')
    if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
        raise ValueError(f"frequency must be a positive integer, got {frequency!r}")
    return {
        "scheduler": scheduler,
        "monitor": monitor,
        "interval": interval,
        "frequency": frequency,
        "reduce_on_plateau": True,
        "strict": strict,
        "name": name,
    }
