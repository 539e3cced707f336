"""Learning-rate control with Q-learning on a character-level GPT.

1. Train the CPU-sized GPT on tiny Shakespeare with the warmup+cosine baseline and with a
   Q-learning controller riding on top of it; print both runs and the LR the agent chose.
2. Tune the controller's own parameters with an Optuna study driven by QLearningSampler.

Run from the repository root (about 5 minutes on one CPU core)::

    python docs/examples/lr_schedule.py --data ../shared/data/shakespeare_char/input.txt
    python docs/examples/lr_schedule.py --download   # fetch the corpus (checksum verified)
"""

from __future__ import annotations

import argparse

import optuna
import torch

from optuna_qlearn import QLearningSampler
from optuna_qlearn.lr import QLearningLRScheduler
from optuna_qlearn.objectives.chargpt import GPTConfig, train_chargpt
from optuna_qlearn.objectives.lr_schedule import LRScheduleObjective
from optuna_qlearn.objectives.text_data import load_shakespeare_char


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=None, help="tiny Shakespeare input.txt")
    parser.add_argument("--download", action="store_true", help="fetch it if missing")
    parser.add_argument("--iters", type=int, default=120, help="training steps per run")
    parser.add_argument("--trials", type=int, default=4, help="Optuna trials")
    args = parser.parse_args()
    torch.set_num_threads(1)

    corpus = load_shakespeare_char(args.data, download_if_missing=args.download)
    config = GPTConfig.cpu(max_iters=args.iters, eval_interval=max(1, args.iters // 10))

    # 1. Baseline schedule vs the Q-learning controller (same seed, same data).
    baseline = train_chargpt(corpus, config, schedule="baseline", seed=0)

    def controller(optimizer: torch.optim.Optimizer, cfg: GPTConfig) -> QLearningLRScheduler:
        return QLearningLRScheduler(
            optimizer,
            base_lr_fn=cfg.base_lr_fn(),  # LR = 2e-3 * warmup_cosine(step) * agent multiplier
            actions=(0.5, 1.0, 2.0),
            reward="improvement",  # relative improvement of the loss since the last decision
            gamma=0.5,
            epsilon=0.1,
            seed=0,
        )

    q_run = train_chargpt(corpus, config, schedule=controller, seed=0)
    print(f"baseline   best_val_loss={baseline.best_val_loss:.4f}")
    print(f"Q-learning best_val_loss={q_run.best_val_loss:.4f}")
    assert q_run.scheduler_state is not None
    multipliers = [h["multiplier"] for h in q_run.scheduler_state["history"]]
    print("agent's LR multipliers after each evaluation:", multipliers)
    print("LR of the first steps:", [f"{lr:.2e}" for lr in q_run.lrs[:: config.eval_interval]])

    # 2. Tune the controller's alpha, gamma, epsilon, action set and reward with Optuna.
    objective = LRScheduleObjective(corpus, config=config, search_space="qlearning")
    study = optuna.create_study(
        sampler=QLearningSampler(seed=0), pruner=optuna.pruners.MedianPruner()
    )
    study.optimize(objective, n_trials=args.trials)
    print("best controller:", study.best_params, f"best_val_loss={study.best_value:.4f}")


if __name__ == "__main__":
    main()
