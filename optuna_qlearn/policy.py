"""Train a search policy of your own for ``QLearningSampler(policy=PATH)``.

:class:`~optuna_qlearn.QLearningSampler`'s default policy is a Q-network pre-trained
by deep Q-learning on thousands of generated tasks (random functions on random
grids). A team that tunes one kind of model again and again can fit a policy to
that kind instead: give :func:`train_policy` tasks that look like its studies,
either as a generator of :class:`GridTask` or as cheap objectives turned into
tasks with :meth:`GridTask.from_objective`, and pass the written file to the
sampler. Training is NumPy only and deterministic given ``seed``.

Example:

    .. code-block:: python

        import optuna
        from optuna_qlearn import QLearningSampler
        from optuna_qlearn.policy import GridTask, train_policy


        def cheap(trial):
            x = trial.suggest_int("x", 0, 30)
            lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
            return (x - 17) ** 2 / 100 + abs(lr - 3e-3)


        tasks = [GridTask.from_objective(cheap, n_bins=16)]
        train_policy("my_policy.npz", tasks=tasks, episodes=200, seed=0)
        sampler = QLearningSampler(policy="my_policy.npz")
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from optuna_qlearn._core.checks import check_int
from optuna_qlearn._core.policy import MAX_MEMBERS, PolicyEnsemble
from optuna_qlearn._core.training import Task, TrainingConfig, generate_task, train

__all__ = ["GridTask", "TrainingReport", "generate_task", "train_policy"]


class GridTask(Task):
    """A training task: the value of every point of a grid, and an observation noise.

    Args:
        table: True values (minimized), one per grid point; its shape is the grid's
            (one axis per parameter).
        categorical: Per axis, whether its values are unordered.
        noise: Standard deviation of the Gaussian noise added to each observation.
        kinds: Free-form tags (for logs).
    """

    @classmethod
    def from_objective(
        cls,
        objective: Callable[[Any], float],
        *,
        n_bins: int = 16,
        max_bins: int = 64,
        max_points: int = 50_000,
        direction: str = "minimize",
        noise: float = 0.0,
    ) -> GridTask:
        """Evaluate a cheap Optuna objective on the whole grid the sampler would use.

        The search space is read from one random trial in a throwaway in-memory
        study, discretized as :class:`~optuna_qlearn.QLearningSampler` discretizes it
        (``n_bins``, ``max_bins``), and every grid point is evaluated through
        :class:`optuna.trial.FixedTrial`.

        Args:
            objective: ``objective(trial) -> float`` with a fixed search space.
            n_bins: Grid points of a float parameter without ``step``.
            max_bins: Most grid points of an int or stepped-float parameter.
            max_points: Refuse grids larger than this (each point is one call).
            direction: ``"minimize"`` or ``"maximize"``.
            noise: Observation noise of the task.

        Raises:
            ValueError: If the grid has more than ``max_points`` points, the direction
                is unknown, or the objective returns a non-finite value.
        """
        import optuna

        from optuna_qlearn._grid import Grid

        if direction not in ("minimize", "maximize"):
            raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}.")
        check_int("max_points", max_points, 2)
        probe = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        probe.optimize(objective, n_trials=1)
        space = probe.trials[0].distributions
        if not space:
            raise ValueError("The objective suggests no parameter.")
        grid = Grid(space, check_int("n_bins", n_bins, 2), check_int("max_bins", max_bins, 2))
        n_points = int(np.prod(grid.shape))
        if n_points > max_points:
            raise ValueError(
                f"The objective's grid has {n_points} points, more than max_points="
                f"{max_points}; lower n_bins/max_bins or raise max_points."
            )
        sign = 1.0 if direction == "minimize" else -1.0
        table = np.empty(grid.shape)
        for index in np.ndindex(*grid.shape):
            value = float(objective(optuna.trial.FixedTrial(grid.decode(index))))
            if not np.isfinite(value):
                raise ValueError(f"The objective returned {value} at {grid.decode(index)}.")
            table[index] = sign * value
        return cls(table, tuple(bool(c) for c in grid.categorical), noise, ("objective",))


@dataclass(frozen=True)
class TrainingReport:
    """What :func:`train_policy` did.

    Args:
        path: The policy file written.
        episodes: Training studies run per network.
        wall_s: Seconds it took.
        first_fifth_return: Mean return of the first fifth of the episodes (over the
            networks).
        last_fifth_return: Mean return of the last fifth.
        members: Networks trained (from seeds ``seed``, ``seed + 1``, ...).
    """

    path: str
    episodes: int
    wall_s: float
    first_fifth_return: float
    last_fifth_return: float
    members: int = 1


def train_policy(
    path: str | os.PathLike[str],
    *,
    tasks: Callable[[np.random.Generator], Task] | Sequence[Task] | None = None,
    episodes: int = 1000,
    seed: int = 0,
    members: int = 2,
    budgets: Sequence[int] = (50, 100, 150, 200),
    verbose: bool = False,
) -> TrainingReport:
    """Pre-train a policy by deep Q-learning and write it for ``policy=PATH``.

    Args:
        path: The ``.npz`` file to write.
        tasks: A function drawing a :class:`GridTask` from a NumPy generator, or a
            sequence of tasks (one is drawn per pair of episodes); the built-in
            generator of random functions on random grids (:func:`generate_task`)
            when ``None``.
        episodes: Training studies per network.
        seed: Seeds everything; the same seed gives the same weights.
        members: Networks to train, from seeds ``seed``, ``seed + 1``, ...; the policy's
            Q-value is their mean (:class:`~optuna_qlearn._core.policy.PolicyEnsemble`),
            which varies less from seed to seed than one network's.
        budgets: Trials of a training study, drawn per episode.
        verbose: Print the mean return every 100 episodes.

    Returns:
        A summary of the run.

    Raises:
        ValueError: For an empty ``tasks`` sequence or a bad setting (named).
    """
    check_int("episodes", episodes, 1)
    check_int("seed", seed, 0)
    check_int("members", members, 1, MAX_MEMBERS)
    draw: Callable[[np.random.Generator], Task]
    if tasks is None:
        draw = generate_task
    elif callable(tasks):
        draw = tasks
    else:
        pool = list(tasks)
        if not pool or not all(isinstance(t, Task) for t in pool):
            raise ValueError("tasks must be a non-empty sequence of GridTask.")

        def draw(rng: np.random.Generator) -> Task:
            return pool[int(rng.integers(len(pool)))]

    config = TrainingConfig(episodes=episodes, budgets=tuple(int(b) for b in budgets))
    t0 = time.perf_counter()

    def progress(episode: int, log: Any) -> None:
        if verbose and (episode + 1) % 100 == 0:
            recent = log.mean_return(slice(-100, None))
            print(f"episode {episode + 1}: mean return (last 100) {recent:.3f}", flush=True)

    networks, first, last = [], [], []
    k = max(1, episodes // 5)
    for member in range(members):
        if verbose and members > 1:
            print(f"network {member + 1} of {members} (seed {seed + member})", flush=True)
        network, log = train(draw, seed=seed + member, config=config, progress=progress)
        networks.append(network)
        first.append(log.mean_return(slice(0, k)))
        last.append(log.mean_return(slice(-k, None)))
    PolicyEnsemble(networks).save(path)
    return TrainingReport(
        os.fspath(path),
        episodes,
        time.perf_counter() - t0,
        float(np.mean(first)),
        float(np.mean(last)),
        members,
    )
