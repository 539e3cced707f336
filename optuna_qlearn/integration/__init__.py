"""Glue for training frameworks (each submodule imports only what it needs).

- :mod:`optuna_qlearn.integration.lightning`: ``lr_scheduler_config``, the
  ``configure_optimizers`` entry that makes PyTorch Lightning hand the monitored metric to
  :class:`~optuna_qlearn.lr.QLearningLRScheduler`.
- :mod:`optuna_qlearn.integration.huggingface`: ``QLearningLRCallback``, a ``transformers``
  ``TrainerCallback`` that feeds ``eval_loss`` to the controller.

See ``docs/integrations.md``.
"""
