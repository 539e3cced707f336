"""``DQNSampler``: the Q-learning sampler with a deep Q-network instead of a Q-table.

The environment is the tabular sampler's, unchanged: grid states, neighbour moves,
rewards and episodes, the record stored on each trial and the replay of finished
trials from storage. Only the Q-function changes: the agent pushes the transitions
each replayed trial teaches into a replay memory and takes gradient steps on a
Q-network (the private RL core, ``optuna_qlearn/_core/dqn.py``), and its decisions
read Q-values from that network, so a grid point never visited still gets an estimate
learned from its neighbours. This module is the Optuna glue only.

This module needs PyTorch (``pip install 'optuna-qlearn[torch]'``).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from optuna.samplers import BaseSampler

from optuna_qlearn._core.agent import AgentConfig
from optuna_qlearn._core.dqn import DQNAgent, DQNConfig, StateEncoder
from optuna_qlearn._core.qlearning import MoveSet
from optuna_qlearn._grid import Grid
from optuna_qlearn.sampler import QLearningSampler

#: DQNSampler's discount factor: 0 ranked best at 100 trials (0.2, 0.5, 0.9 were worse).
DEFAULT_GAMMA = 0.0
#: DQNSampler's walk bound (``max_walk``): QLearningSampler's default of 4
#: is cheaper, but with the network's scores 8 did better (48 problems x 5 seeds x
#: 100 trials: 4 better in 65 studies, worse in 83; ``experiments.agent_variants.run
#: --sampler dqn``), and the network, not the walk, dominates DQNSampler's cost.
DEFAULT_MAX_WALK = 8
#: DQNSampler's episode length: one trial. With ``gamma=0`` the network learns the
#: expected reward of a move, so episodes only decide where a move starts; starting
#: every trial afresh (from one of the best points, or from the global model) ranked
#: far better on the benchmark suite than continuing 5-trial episodes (docs/dqn.md).
DEFAULT_EPISODE_LENGTH = 1
#: DQNSampler's global model: joint (``model_joint``, Optuna's multivariate
#: TPE density ratio) rather than
#: QLearningSampler's per-axis one. It costs more per trial, but little next to the
#: network's training, and it ranked better on the benchmark suite (docs/dqn.md).
DEFAULT_MODEL_JOINT = True


if TYPE_CHECKING:
    from typing_extensions import TypedDict, Unpack

    class _Environment(TypedDict, total=False):
        """QLearningSampler's keyword arguments but ``alpha`` (checked there)."""

        gamma: float
        epsilon: float
        epsilon_min: float
        epsilon_decay: float
        episode_length: int
        reward: str
        moves: str
        step_sizes: Sequence[int] | None
        n_bins: int
        max_bins: int
        q_init: float
        walk_known: bool
        max_walk: int | None
        dyna: bool
        restart_best_prob: float
        restart_top_k: int | None
        n_startup: int
        model_scores: bool
        model_restart_prob: float
        model_joint: bool | None
        model_candidates: int | None
        model_gamma: float | None
        model_max_good: int | None
        model_scale: float | None
        model_bandwidth: float | None
        independent_sampler: BaseSampler | None
        warn_independent_sampling: bool
        stale_after: int
        decision_timeout: float
        seed: int | None


#: The environment's keyword arguments (QLearningSampler's, but ``alpha``).
_ENVIRONMENT_ARGS = frozenset(inspect.signature(QLearningSampler.__init__).parameters) - {
    "self",
    "policy",
    "alpha",
    "warm_start",
}
_NOT_FOR_THE_NETWORK = {
    "alpha": "the network learns at learning_rate",
    "warm_start": "a network is not warm-started from a Q-table",
}


class DQNSampler(QLearningSampler):
    """Sampler that walks a discretized search space with a deep Q-network (DQN).

    The environment is the tabular agent's (``QLearningSampler(policy="table")``: grid
    states, neighbour moves, rewards, episodes, walks through evaluated points, restarts
    from the best points, learning state rebuilt from storage), but ``Q(s, a)``
    comes from an MLP over the encoded grid point (scaled coordinate per ordered
    axis, one-hot per categorical axis) instead of a table, so it generalizes to
    points never visited. It is trained as in DQN (Mnih et al., 2015): each
    finished trial's transitions ``(s, a, r, s', done)`` go into a replay memory,
    and ``n_updates_per_step`` Adam steps on minibatches minimize the Huber loss
    between ``Q(s, a)`` and ``r + gamma * max_a' Q_target(s', a')``, with a target
    network synchronized every ``target_update`` steps (softly with ``tau < 1``).

    The replay memory and the network are rebuilt from the study's trials, so
    workers sharing a storage, and a process resuming a study, get the same network
    (on CPU, given the same ``seed``); within a process the network is cached and
    trained incrementally on new trials only. ``replay_capacity=1, batch_size=1,
    target_update=1`` is plain online Q-learning with a network.

    Untried moves into unvisited points, and model restarts, are scored by the
    agent's global model of good points; the DQN's is joint by default
    (the density ratio of Optuna's
    multivariate TPE), where the tabular sampler's is per axis. On the benchmark
    suite, at 100 trials, the network's own training changed the results less than
    seed noise with that model in charge (``docs/dqn.md``: the ``dqn-untrained``
    ablation); scoring unvisited moves by the network instead of the model is worse.

    Example:

        .. testcode::

            import optuna
            from optuna_qlearn import DQNSampler


            def objective(trial):
                x = [trial.suggest_int(f"x{i}", 0, 20) for i in range(5)]
                return sum((xi - 7) ** 2 for xi in x)


            study = optuna.create_study(sampler=DQNSampler(seed=0))
            study.optimize(objective, n_trials=30)

    Args:
        hidden_sizes: Hidden layer widths of the Q-network.
        learning_rate: Adam learning rate.
        batch_size: Transitions per minibatch.
        replay_capacity: Transitions kept in the replay memory (oldest dropped).
        learning_starts: Transitions stored before the first gradient step.
        n_updates_per_step: Gradient steps per finished trial.
        target_update: Gradient steps between target-network synchronizations.
        tau: ``1``: copy the policy network into the target network (hard update);
            ``tau < 1``: ``target += tau * (policy - target)`` (soft update).
        double_dqn: Use the double-DQN target (policy network picks ``a'``).
        max_grad_norm: Gradient-norm clipping threshold (``None``: none).
        device: ``"cpu"`` (default; deterministic with ``seed``) or ``"cuda"``.
        environment: The environment's settings, as keyword arguments: every argument
            of :class:`~optuna_qlearn.QLearningSampler` with ``policy="table"`` but
            ``policy``, ``alpha`` (the network learns at ``learning_rate``) and
            ``warm_start``, with the same meaning and checks. Four
            defaults differ: ``gamma=0`` (``Q(s, a)`` is the expected reward of the
            move, a learned local surrogate of the objective), ``episode_length=1``
            (every trial starts afresh from one of the best points or the global
            model), ``max_walk=8`` and ``model_joint=True``; each ranked best at 100
            trials on the benchmark suite (``docs/dqn.md``). Workers sharing a study
            must use the same ``seed``: the network's initial weights depend on it.

    Raises:
        TypeError: For an unknown argument (``alpha`` included) or one of the wrong type.
        ValueError: For an out-of-range argument, one the other settings leave unused,
            or ``device="cuda"`` without CUDA.
    """

    def __init__(
        self,
        *,
        hidden_sizes: Sequence[int] = DQNConfig.hidden_sizes,
        learning_rate: float = DQNConfig.learning_rate,
        batch_size: int = DQNConfig.batch_size,
        replay_capacity: int = DQNConfig.replay_capacity,
        learning_starts: int = DQNConfig.learning_starts,
        n_updates_per_step: int = DQNConfig.n_updates_per_step,
        target_update: int = DQNConfig.target_update,
        tau: float = DQNConfig.tau,
        double_dqn: bool = DQNConfig.double_dqn,
        max_grad_norm: float | None = DQNConfig.max_grad_norm,
        device: str = DQNConfig.device,
        **environment: Unpack[_Environment],
    ) -> None:
        unknown = sorted(set(environment) - _ENVIRONMENT_ARGS)
        if unknown:
            hint = _NOT_FOR_THE_NETWORK.get(unknown[0])
            why = f" ({hint})" if hint else ""
            raise TypeError(f"DQNSampler got an unexpected keyword argument {unknown[0]!r}{why}.")
        environment.setdefault("gamma", DEFAULT_GAMMA)
        environment.setdefault("episode_length", DEFAULT_EPISODE_LENGTH)
        self._dqn = DQNConfig(
            hidden_sizes=hidden_sizes,  # type: ignore[arg-type]  # validated to a tuple
            learning_rate=learning_rate,
            batch_size=batch_size,
            replay_capacity=replay_capacity,
            learning_starts=learning_starts,
            n_updates_per_step=n_updates_per_step,
            target_update=target_update,
            tau=tau,
            double_dqn=double_dqn,
            max_grad_norm=max_grad_norm,
            device=device,
        )
        super().__init__(policy="table", **environment)

    @property
    def parameters(self) -> dict[str, Any]:
        """The keyword arguments that rebuild an equivalent sampler (JSON-serializable):
        the environment's (see :attr:`QLearningSampler.parameters`, without ``alpha``)
        and the network's."""
        out = {k: v for k, v in super().parameters.items() if k in _ENVIRONMENT_ARGS}
        net = dataclasses.asdict(self._dqn)
        net["hidden_sizes"] = list(self._dqn.hidden_sizes)
        return {**out, **net}

    _CONDITIONAL_DEFAULTS: ClassVar[dict[str, Any]] = {
        **QLearningSampler._CONDITIONAL_DEFAULTS,
        "max_walk": DEFAULT_MAX_WALK,
        "model_joint": DEFAULT_MODEL_JOINT,
    }

    @property
    def dqn_config(self) -> DQNConfig:
        """The network and training hyperparameters."""
        return self._dqn

    def _make_agent(self, moves: MoveSet, minimize: bool, grid: Grid) -> DQNAgent:
        encoder = StateEncoder(grid.shape, grid.categorical.tolist())
        seed = 0 if self._seed is None else int(self._seed)
        assert isinstance(self._config, AgentConfig)  # DQNSampler's agent is never a policy
        return DQNAgent(moves, self._config, encoder, self._dqn, minimize=minimize, seed=seed)
