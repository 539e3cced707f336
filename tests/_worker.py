"""One worker process of a shared QLearningSampler study (used by test_distributed.py).

Run as ``python tests/_worker.py SPEC.json``. The spec names the storage, the study,
the sampler settings and what to do; the worker writes its results (the trials it
ran, its own incrementally built Q-table and a fresh rebuild) to ``spec["out"]``.
Each worker is a real OS process with its own storage connection, as in production.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalRedisBackend
from optuna.trial import FrozenTrial, Trial

try:
    from optuna_qlearn import QLearningSampler
    from optuna_qlearn._replay import KEY_STALE
except ImportError:  # not installed: run from the checkout
    sys.path.append(str(Path(__file__).resolve().parents[1]))
    from optuna_qlearn import QLearningSampler
    from optuna_qlearn._replay import KEY_STALE

_OFFSET = {"a": 0.0, "b": 0.3, "c": 0.6, "d": 0.9}


def objective_value(x: float, y: int, c: str) -> float:
    """The deterministic part of the test objective (minimum 0 at x=1, y=7, c="a")."""
    return (x - 1.0) ** 2 + 0.1 * (y - 7) ** 2 + _OFFSET[c]


def make_storage(spec: dict[str, Any]) -> BaseStorage | str:
    """Build the storage a spec names (each process opens its own connection)."""
    kind = spec["kind"]
    if kind == "rdb":
        if spec.get("heartbeat_interval") is None:
            return RDBStorage(spec["url"])
        return RDBStorage(
            spec["url"],
            heartbeat_interval=spec["heartbeat_interval"],
            grace_period=spec["grace_period"],
        )
    if kind == "journal_file":
        return JournalStorage(JournalFileBackend(spec["path"]))
    if kind == "journal_redis":
        return JournalStorage(JournalRedisBackend(spec["url"], prefix=spec["prefix"]))
    if kind == "grpc":  # Optuna's gRPC storage proxy (tests/test_grpc.py)
        from optuna.storages import GrpcStorageProxy

        proxy = GrpcStorageProxy(host=spec["host"], port=spec["port"])
        proxy.wait_server_ready(timeout=30)
        return proxy
    raise ValueError(f"unknown storage kind {kind!r}")


def _settled(trial: FrozenTrial) -> bool:
    """Finished, or abandoned by a dead worker and marked stale by the sampler."""
    return trial.state.is_finished() or bool(trial.system_attrs.get(KEY_STALE))


def _quiet(study: optuna.Study, n_finished: int) -> bool:
    """At least ``n_finished`` trials finished and none is still running."""
    trials = study.get_trials(deepcopy=False)
    done = sum(t.state.is_finished() for t in trials)
    return done >= n_finished and all(_settled(t) for t in trials)


def make_sampler(settings: dict[str, Any], seed: int | None = None) -> QLearningSampler:
    """QLearningSampler, or DQNSampler when the settings say ``"dqn": True``."""
    settings = dict(settings)
    if settings.pop("dqn", False):
        import torch

        from optuna_qlearn import DQNSampler

        torch.set_num_threads(1)
        return DQNSampler(seed=seed, **settings)
    return QLearningSampler(seed=seed, **settings)


def learned_state(sampler: QLearningSampler, study: optuna.Study) -> Any:
    """What the sampler learned from the study: the Q-table of the tabular agent, or the
    learned policy's per-study table and the reward of every trial, and DQNSampler's
    fine-tuned weights (JSON-friendly)."""
    if sampler.policy == "table":
        return sampler.q_table(study)
    rewards = {str(n): r for n, r in sorted(sampler.trial_rewards(study).items())}
    out: dict[str, Any] = {"correction": sampler.correction_table(study), "rewards": rewards}
    tuned = getattr(sampler, "fine_tuned_policy", None)
    if tuned is not None:
        out["weights"] = [p.tolist() for m in tuned(study).members for p in m.params]
    return out


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = make_storage(spec["storage"])
    settings: dict[str, Any] = spec["sampler"]
    sampler = make_sampler(settings, spec["seed"])
    study = optuna.load_study(study_name=spec["study_name"], storage=storage, sampler=sampler)
    jitter = random.Random(spec["seed"])
    die_on: int | None = spec.get("die_on_trial")
    ran: list[int] = []

    def objective(trial: Trial) -> float:
        x = trial.suggest_float("x", -4.0, 4.0)
        y = trial.suggest_int("y", 0, 15)
        c = trial.suggest_categorical("c", ["a", "b", "c", "d"])
        ran.append(trial.number)
        if die_on is not None and len(ran) == die_on:
            Path(spec["out"] + ".killed").write_text(str(trial.number))
            os.kill(os.getpid(), signal.SIGKILL)  # dies mid-trial: no tell, no heartbeat
        time.sleep(jitter.uniform(0.005, 0.030))  # real overlap between workers
        return objective_value(x, y, str(c))

    delay = spec.get("start_at", 0.0) - time.time()
    if delay > 0:
        time.sleep(delay)

    if spec["mode"] == "fixed":
        study.optimize(objective, n_trials=spec["n_trials"])
    else:
        # Run until the study has `target` finished trials and every trial numbered below
        # this worker's latest one has finished (so a dead worker's trial gets failed by
        # heartbeat, or skipped as stale, while this worker is still running trials).
        while len(ran) < spec["max_trials"]:
            study.optimize(objective, n_trials=1)
            trials = study.get_trials(deepcopy=False)
            lower_done = all(_settled(t) for t in trials if t.number < ran[-1])
            done = sum(t.state.is_finished() for t in trials)
            # A victim worker may start late: keep going until it has died (its marker
            # file exists), so its abandoned trial lies below this worker's latest one.
            marker = spec.get("wait_for_file")
            victim_dead = marker is None or Path(marker).exists()
            if lower_done and done >= spec["target"] and victim_dead:
                break

    # Wait for the other workers to stop starting trials (each marks the end of its run;
    # a killed one has its kill marker), then for their trials to settle, and compare
    # tables over the same finished trials. Without the first wait, a worker could read
    # the study between two trials of a slower one and miss its last trial.
    Path(spec["out"] + ".ran").write_text(str(len(ran)))
    deadline = time.time() + spec.get("wait_s", 60.0)
    peers = [Path(p) for p in spec.get("peers", [])]
    while not all(Path(f"{p}.ran").exists() or Path(f"{p}.killed").exists() for p in peers):
        if time.time() > deadline:
            raise TimeoutError("another worker never finished its run")
        time.sleep(0.05)
    while not _quiet(study, spec["wait_finished"]):
        if time.time() > deadline:
            raise TimeoutError("the study never went quiet")
        time.sleep(0.05)

    # This worker's long-lived, incrementally fed agent, then a rebuild from storage alone.
    fresh_sampler = make_sampler(settings)
    result = {
        "worker": spec["seed"],
        "pid": os.getpid(),
        "ran": ran,
        "incremental": learned_state(sampler, study),
        "fresh": learned_state(fresh_sampler, study),
        # Trials learned from: falls short of the finished ones if learning got stuck.
        "n_learned": sampler.agent(study)[1].n_steps,
        "n_learned_fresh": fresh_sampler.agent(study)[1].n_steps,
    }
    Path(spec["out"]).write_text(json.dumps(result, allow_nan=True))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python tests/_worker.py SPEC.json")
    main(sys.argv[1])
