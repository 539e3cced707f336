"""``DQNSampler``: the Q-learning sampler with a deep Q-network instead of a Q-table.

The environment is the tabular sampler's, unchanged: grid states
(:mod:`optuna_qlearn._grid`), neighbour moves (:class:`~optuna_qlearn._core.qlearning.MoveSet`),
rewards and episodes (:class:`~optuna_qlearn._core.agent.QLearningAgent`), the record
stored on each trial and the replay of finished trials from storage
(:mod:`optuna_qlearn._replay`). Only the Q-function changes: :class:`DQNAgent`
pushes the transitions each replayed trial teaches into a replay memory and takes
gradient steps on a Q-network (:mod:`optuna_qlearn._core.dqn`), and the agent's
decisions read Q-values from that network, so a grid point never visited still
gets an estimate learned from its neighbours.

This module needs PyTorch (``pip install 'optuna-qlearn[torch]'``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from optuna.samplers import BaseSampler

from optuna_qlearn._core.agent import AgentConfig, QLearningAgent, Step
from optuna_qlearn._core.dqn import DQNConfig, DQNLearner, StateEncoder
from optuna_qlearn._core.qlearning import MoveSet, QTable
from optuna_qlearn._grid import Grid, State
from optuna_qlearn.sampler import QLearningSampler

#: DQNSampler's discount factor: 0 ranked best at 100 trials (0.2, 0.5, 0.9 were worse).
DEFAULT_GAMMA = 0.0
#: DQNSampler's walk bound (``AgentConfig.max_walk``): QLearningSampler's default of 4
#: is cheaper, but with the network's scores 8 did better (48 problems x 5 seeds x
#: 100 trials: 4 better in 65 studies, worse in 83; ``benchmarks.agent_variants
#: --sampler dqn``), and the network, not the walk, dominates DQNSampler's cost.
DEFAULT_MAX_WALK = 8
#: DQNSampler's episode length: one trial. With ``gamma=0`` the network learns the
#: expected reward of a move, so episodes only decide where a move starts; starting
#: every trial afresh (from one of the best points, or from the global model) ranked
#: far better on the benchmark suite than continuing 5-trial episodes (docs/dqn.md).
DEFAULT_EPISODE_LENGTH = 1
#: DQNSampler's global model: joint (``AgentConfig.model_joint``, Optuna's multivariate
#: TPE density ratio, :class:`~optuna_qlearn._core.prior.JointGridPrior`) rather than
#: QLearningSampler's per-axis one. It costs more per trial, but little next to the
#: network's training, and it ranked better on the benchmark suite (docs/dqn.md).
DEFAULT_MODEL_JOINT = True
#: The environment settings DQNSampler starts from when no ``agent_config`` is given.
DEFAULT_AGENT_CONFIG = AgentConfig(
    max_walk=DEFAULT_MAX_WALK,
    episode_length=DEFAULT_EPISODE_LENGTH,
    model_joint=DEFAULT_MODEL_JOINT,
)


class NetworkQTable(QTable):
    """A Q-network seen through the :class:`~optuna_qlearn._core.qlearning.QTable` interface.

    :meth:`get` evaluates the network at any state; :attr:`q` holds a row for each
    state learned from so far (as a Q-table would) with the network's current
    values, and :attr:`visits` counts the transitions learned per state and action.
    So everything that reads a Q-table (the agent's decisions, ``q_table``,
    ``greedy_policy``, ``save_q_table``, the dashboard) reads the network unchanged.
    Values are cached until :meth:`invalidate` (called after each training round).

    Args:
        n_actions: Size of the action space.
        q_fn: Q-values ``(n, n_actions)`` of a list of states.
    """

    def __init__(self, n_actions: int, q_fn: Callable[[list[State]], np.ndarray]) -> None:
        super().__init__(n_actions)
        self._q_fn = q_fn
        self._cache: dict[State, np.ndarray] = {}
        self._rows: dict[State, np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.visits: dict[State, np.ndarray] = {}
        self.n_updates = 0

    @property
    def q(self) -> dict[State, np.ndarray]:
        """State -> Q-values of the network, for every state learned from."""
        if self._rows is None:
            states = list(self.visits)
            values = self._q_fn(states) if states else np.zeros((0, self.n_actions))
            self._rows = {s: values[i] for i, s in enumerate(states)}
        return self._rows

    @q.setter
    def q(self, value: dict[State, np.ndarray]) -> None:
        raise AttributeError("The Q-values of a NetworkQTable come from its network.")

    def get(self, state: State) -> np.ndarray:
        """The network's Q-values at ``state`` (visited or not; do not mutate)."""
        row = self._cache.get(state)
        if row is None:
            row = self._cache[state] = self._q_fn([state])[0]
        return row

    def record(self, state: State, action: int) -> None:
        """Count one learned transition from ``state`` by ``action``."""
        visits = self.visits.get(state)
        if visits is None:
            visits = self.visits[state] = np.zeros(self.n_actions, dtype=np.int64)
            self._rows = None
        visits[action] += 1
        self.n_updates += 1

    def invalidate(self) -> None:
        """Forget cached values (the network changed)."""
        self._cache.clear()
        self._rows = None

    def update(self, *args: Any, **kwargs: Any) -> float:
        """Not available: the network learns in :meth:`DQNAgent.learn`.

        Raises:
            TypeError: Always.
        """
        raise TypeError("A NetworkQTable is trained by gradient steps, not Bellman updates.")

    def set(self, state: State, values: np.ndarray, visits: np.ndarray | None = None) -> None:
        """Not available: a network cannot be warm-started row by row.

        Raises:
            TypeError: Always.
        """
        raise TypeError("DQNSampler cannot be warm-started from a saved Q-table.")

    def __len__(self) -> int:
        return len(self.visits)


class DQNAgent(QLearningAgent):
    """The grid-walking agent of :class:`~optuna_qlearn._core.agent.QLearningAgent` with a DQN.

    :meth:`learn` turns a finished trial into transitions exactly as the tabular
    agent does (same rewards, same ``done``), pushes them into the replay memory,
    then takes ``n_updates_per_step`` gradient steps. Decisions (epsilon-greedy
    moves, Dyna scoring of moves into known points, walks, restarts) are the
    tabular agent's, reading Q-values from the network through :attr:`table`.

    Args:
        moves: The action space.
        config: The shared agent hyperparameters (``alpha`` is unused).
        encoder: Grid states -> network inputs.
        dqn: The network and training hyperparameters.
        minimize: Whether lower objective values are better.
        seed: Seed of the initial weights and of minibatch sampling; the network is
            a pure function of it and of the trials learned.
    """

    def __init__(
        self,
        moves: MoveSet,
        config: AgentConfig,
        encoder: StateEncoder,
        dqn: DQNConfig,
        minimize: bool = True,
        seed: int = 0,
    ) -> None:
        # The global model must not smooth across categorical choices (as for the table).
        super().__init__(moves, config, minimize=minimize, categorical=encoder.categorical)
        if encoder.shape != tuple(int(n) for n in moves.shape):
            raise ValueError(f"Encoder shape {encoder.shape} != move-set shape {moves.shape}.")
        self.encoder = encoder
        self.learner = DQNLearner(
            encoder.n_features, moves.n_actions, dqn, config.gamma, config.q_init, seed
        )
        self.table: NetworkQTable = NetworkQTable(moves.n_actions, self._q_of)

    def _q_of(self, states: Sequence[State]) -> np.ndarray:
        return self.learner.q_values(self.encoder(states))

    def learn(self, step: Step) -> None:
        """Store one finished trial's transitions and train (call in trial-number order).

        Args:
            step: The trial (see :meth:`QLearningAgent.transitions`).
        """
        for t in self.transitions(step):
            s, s_next = self.encoder([t.state, t.next_state])
            mask = self.moves.valid_mask(t.next_state)
            self.learner.push(s, t.action, t.reward, s_next, mask, t.done)
            self.table.record(t.state, t.action)
        self.finish_step(step)
        if self.learner.train(self.learner.config.n_updates_per_step):
            self.table.invalidate()


class DQNSampler(QLearningSampler):
    """Sampler that walks a discretized search space with a deep Q-network (DQN).

    The environment is :class:`~optuna_qlearn.QLearningSampler`'s (grid states,
    neighbour moves, rewards, episodes, walks through evaluated points, restarts
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
    (:class:`~optuna_qlearn._core.prior.JointGridPrior`, the density ratio of Optuna's
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
        gamma: Discount factor, in ``[0, 1]``. The default ``0`` makes ``Q(s, a)`` the
            expected reward of the move (a learned local surrogate of the objective);
            it ranked best at 100 trials on the benchmark suite (``docs/dqn.md``).
            With ``gamma > 0`` the target network bootstraps ``max_a' Q(s', a')``.
        epsilon: Initial probability of a random move.
        epsilon_min: Floor of epsilon.
        epsilon_decay: Epsilon is multiplied by this after each finished trial.
        episode_length: Trials per episode before a restart (``1`` by default:
            every trial starts afresh from one of the best points or the global model).
        reward: ``"rank"``, ``"improvement"`` or ``"value"`` (see
            :class:`~optuna_qlearn.QLearningSampler`).
        moves: ``"axis"`` or ``"joint"`` neighbour moves.
        step_sizes: Grid steps of an axis move.
        n_bins: Grid points of a float parameter without ``step``.
        max_bins: Most grid points of an int or stepped-float parameter.
        q_init: Initial output bias of the network.
        walk_known: Walk on through evaluated points instead of re-evaluating.
        dyna: Score an untried move into an evaluated point by its stored value.
        restart_best_prob: Probability that an episode restarts from one of the
            ``restart_top_k`` best points instead of a random one.
        restart_top_k: Number of best points restarts choose among.
        independent_sampler: Sampler for parameters outside the relative search
            space; :class:`~optuna.samplers.RandomSampler` by default.
        warn_independent_sampling: Log a warning when the independent sampler is used.
        stale_after: Later finished trials after which a still-RUNNING trial is
            skipped for learning.
        seed: Seed of the proposals, the initial weights and minibatch sampling.
        agent_config: A full :class:`~optuna_qlearn._core.agent.AgentConfig` of the
            environment's settings to start from (by default
            ``AgentConfig(max_walk=8, episode_length=1, model_joint=True)``); the
            arguments above that are given, and ``gamma``, override its fields.

    Raises:
        ValueError: For an out-of-range argument, or ``device="cuda"`` without CUDA.
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
        gamma: float = DEFAULT_GAMMA,
        epsilon: float | None = None,
        epsilon_min: float | None = None,
        epsilon_decay: float | None = None,
        episode_length: int | None = None,
        reward: str | None = None,
        moves: str | None = None,
        step_sizes: Sequence[int] | None = None,
        n_bins: int = 16,
        max_bins: int = 64,
        q_init: float | None = None,
        walk_known: bool | None = None,
        dyna: bool | None = None,
        restart_best_prob: float | None = None,
        restart_top_k: int | None = None,
        independent_sampler: BaseSampler | None = None,
        warn_independent_sampling: bool = True,
        stale_after: int = 64,
        seed: int | None = None,
        agent_config: AgentConfig | None = None,
    ) -> None:
        self._dqn = DQNConfig(
            hidden_sizes=tuple(hidden_sizes),
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
        super().__init__(
            gamma=gamma,
            epsilon=epsilon,
            epsilon_min=epsilon_min,
            epsilon_decay=epsilon_decay,
            episode_length=episode_length,
            reward=reward,
            moves=moves,
            step_sizes=step_sizes,
            n_bins=n_bins,
            max_bins=max_bins,
            q_init=q_init,
            walk_known=walk_known,
            dyna=dyna,
            restart_best_prob=restart_best_prob,
            restart_top_k=restart_top_k,
            independent_sampler=independent_sampler,
            warn_independent_sampling=warn_independent_sampling,
            stale_after=stale_after,
            seed=seed,
            agent_config=agent_config or DEFAULT_AGENT_CONFIG,
        )

    @property
    def dqn_config(self) -> DQNConfig:
        """The network and training hyperparameters."""
        return self._dqn

    def _make_agent(self, moves: MoveSet, minimize: bool, grid: Grid) -> DQNAgent:
        encoder = StateEncoder(grid.shape, grid.categorical.tolist())
        seed = 0 if self._seed is None else int(self._seed)
        return DQNAgent(moves, self._config, encoder, self._dqn, minimize=minimize, seed=seed)
