"""One worker of a QLearningSampler study shared by many processes and machines.

Create the study once, then start this script as often as you like, on any machine
that reaches the database; every worker learns the same Q-table from the shared
trials::

    URL=postgresql+psycopg2://user:password@db-host:5432/optuna
    python docs/examples/distributed_worker.py --storage $URL --study demo --create
    for i in 1 2 3 4; do
        python docs/examples/distributed_worker.py --storage $URL --study demo --n-trials 50 &
    done
    wait

``--storage`` may also be a journal file on a shared file system
(``--storage ./demo.journal``). ``--heartbeat 60`` (RDB storage only) fails the trials
of a worker that died, after two missed heartbeats, and re-queues them once.
``--sampler dqn`` runs a DQNSampler instead; its workers must share one ``--seed``
(the seed sets the network's initial weights; see docs/distributed.md).
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import optuna
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from optuna_qlearn import QLearningSampler


def objective(trial: optuna.Trial) -> float:
    """A stand-in for training a model: three hyperparameters, about 0.1 s of work."""
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    layers = trial.suggest_int("layers", 1, 8)
    activation = trial.suggest_categorical("activation", ["relu", "tanh", "gelu"])
    time.sleep(0.1)
    penalty = {"relu": 0.0, "tanh": 0.2, "gelu": 0.1}[activation]
    return (math.log10(lr) + 2.5) ** 2 + 0.05 * (layers - 4) ** 2 + penalty


def retry_stale_trials(max_retry: int) -> dict[str, Any]:
    """The RDBStorage argument that re-queues a dead worker's trial, in this Optuna's names.

    Optuna 4.9 renamed ``failed_trial_callback=RetryFailedTrialCallback(...)`` to
    ``heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(...)`` and
    deprecates the old names (``FutureWarning``); the package supports Optuna 4.5+.
    """
    try:
        from optuna.storages import RetryHeartbeatStaleTrialCallback
    except ImportError:  # Optuna < 4.9
        from optuna.storages import RetryFailedTrialCallback

        return {"failed_trial_callback": RetryFailedTrialCallback(max_retry=max_retry)}
    callback = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    return {"heartbeat_stale_trial_callback": callback}


def make_storage(target: str, heartbeat: int | None) -> BaseStorage:
    """An RDB storage for a database URL, a journal storage for a file path."""
    if "://" in target:
        if heartbeat is None:
            return RDBStorage(target)
        return RDBStorage(
            target,
            heartbeat_interval=heartbeat,
            grace_period=2 * heartbeat,
            **retry_stale_trials(max_retry=1),
        )
    if heartbeat is not None:
        raise SystemExit("--heartbeat needs an RDB URL; journal storage has no heartbeat")
    return JournalStorage(JournalFileBackend(target))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--storage", required=True, help="RDB URL or journal file path")
    parser.add_argument("--study", required=True, help="study name")
    parser.add_argument("--create", action="store_true", help="create the study and exit")
    parser.add_argument("--n-trials", type=int, default=20, help="trials this worker runs")
    parser.add_argument("--heartbeat", type=int, default=None, help="seconds (RDB only)")
    parser.add_argument("--sampler", choices=["qlearning", "dqn"], default="qlearning")
    parser.add_argument(
        "--seed", type=int, default=None, help="dqn: the same in every worker (default 0)"
    )
    args = parser.parse_args()
    if args.n_trials < 1:
        parser.error(f"--n-trials must be at least 1, got {args.n_trials}")
    if args.heartbeat is not None and args.heartbeat < 1:
        parser.error(f"--heartbeat must be a positive number of seconds, got {args.heartbeat}")
    storage = make_storage(args.storage, args.heartbeat)
    if args.create:
        # Once, before any worker: concurrent creation of a new schema races in Optuna.
        optuna.create_study(study_name=args.study, storage=storage, load_if_exists=True)
        return
    # Every worker uses the same sampler settings (they define the grid and the agent).
    # QLearningSampler: the seed only drives this worker's exploration (None or varied).
    # DQNSampler: the seed also sets the network's initial weights, so it must be the
    # same in every worker, or the workers rebuild different networks.
    sampler: BaseSampler
    if args.sampler == "dqn":
        from optuna_qlearn import DQNSampler

        sampler = DQNSampler(seed=args.seed)
    else:
        sampler = QLearningSampler(seed=args.seed)
    study = optuna.load_study(study_name=args.study, storage=storage, sampler=sampler)
    study.optimize(objective, n_trials=args.n_trials)
    print(f"best so far: {study.best_value:.4f} with {study.best_params}")


if __name__ == "__main__":
    main()
