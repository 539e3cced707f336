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
"""

from __future__ import annotations

import argparse
import math
import time

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryFailedTrialCallback
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


def make_storage(target: str, heartbeat: int | None) -> BaseStorage:
    """An RDB storage for a database URL, a journal storage for a file path."""
    if "://" in target:
        if heartbeat is None:
            return RDBStorage(target)
        return RDBStorage(
            target,
            heartbeat_interval=heartbeat,
            grace_period=2 * heartbeat,
            failed_trial_callback=RetryFailedTrialCallback(max_retry=1),
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
    args = parser.parse_args()
    storage = make_storage(args.storage, args.heartbeat)
    if args.create:
        # Once, before any worker: concurrent creation of a new schema races in Optuna.
        optuna.create_study(study_name=args.study, storage=storage, load_if_exists=True)
        return
    # Every worker uses the same sampler settings (they define the grid and the agent);
    # the seed only drives this worker's exploration, so leave it None or vary it.
    study = optuna.load_study(study_name=args.study, storage=storage, sampler=QLearningSampler())
    study.optimize(objective, n_trials=args.n_trials)
    print(f"best so far: {study.best_value:.4f} with {study.best_params}")


if __name__ == "__main__":
    main()
