"""Deep Q-network building blocks: state encoding, Q-network, replay memory, the DQN update.

Pure PyTorch + NumPy, no Optuna; it reads top to bottom like CleanRL's ``dqn.py``.
A grid state (one index per parameter axis) is encoded as a feature vector
(:class:`StateEncoder`), a :class:`QNetwork` maps it to one Q-value per action,
transitions go into a :class:`ReplayMemory`, and :func:`dqn_update` takes one
gradient step of the DQN algorithm (Mnih et al., 2015) on a minibatch:

.. math::

    y = r + \\gamma \\, (1 - \\mathrm{done}) \\max_{a' \\text{ valid}} Q_{\\bar\\theta}(s', a'),
    \\qquad
    L(\\theta) = \\operatorname{Huber}\\bigl(Q_\\theta(s, a) - y\\bigr),

with the *target network* :math:`Q_{\\bar\\theta}` synchronized with the policy
network every ``target_update`` steps (softly with ``tau < 1``), and, for double
DQN, :math:`a'` chosen by the policy network and valued by the target network.
:class:`DQNLearner` bundles the pieces with their optimizer and random streams.

The replay memory is a small ring buffer of NumPy arrays written here rather than
taken from TorchRL or Stable-Baselines3: both are heavy dependencies, and the
sampler needs exact control of its contents (they are rebuilt from the study's
trials in every process) and of its seeded minibatch sampling.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from optuna_qlearn._core.agent import AgentConfig, QLearningAgent, Step
from optuna_qlearn._core.checks import check_bool, check_float, check_int, check_int_tuple
from optuna_qlearn._core.learned import Decision, PolicyAgent, PolicyConfig
from optuna_qlearn._core.policy import (
    FEATURE_NAMES,
    MAX_CANDIDATES,
    N_FEATURES,
    PolicyEnsemble,
    PolicyNetwork,
)
from optuna_qlearn._core.qlearning import MoveSet, QTable, State


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class DQNConfig:
    """Hyperparameters of the deep Q-network learner, with their defaults in one place.

    Args:
        hidden_sizes: Widths of the hidden layers of the MLP.
        learning_rate: Adam learning rate.
        batch_size: Transitions per minibatch (sampled with replacement).
        replay_capacity: Transitions the replay memory holds; the oldest are dropped.
        learning_starts: Transitions in memory before the first gradient step.
        n_updates_per_step: Gradient steps per learned trial.
        target_update: Optimization steps between target-network synchronizations.
        tau: Synchronization weight: ``1`` copies the policy network (a hard update),
            ``tau < 1`` moves the target ``tau`` of the way (a soft update).
        double_dqn: Choose ``a'`` with the policy network, value it with the target.
        max_grad_norm: Gradient-norm clipping threshold (``None``: no clipping).
        device: Torch device, ``"cpu"`` or ``"cuda"`` (``"cuda:0"``, ...).
    """

    hidden_sizes: tuple[int, ...] = (64, 64)
    learning_rate: float = 1e-3
    batch_size: int = 32
    replay_capacity: int = 10_000
    learning_starts: int = 1
    n_updates_per_step: int = 4
    target_update: int = 10
    tau: float = 1.0
    double_dqn: bool = False
    max_grad_norm: float | None = 10.0
    device: str = "cpu"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "hidden_sizes", check_int_tuple("hidden_sizes", self.hidden_sizes, 1))
        set_(self, "double_dqn", check_bool("double_dqn", self.double_dqn))
        check_training(self)


def check_training(config: Any) -> None:
    """Validate, in place, the training settings a frozen config of either learner has
    (``learning_rate``, ``batch_size``, ``replay_capacity``, ``learning_starts``,
    ``n_updates_per_step``, ``target_update``, ``tau``, ``max_grad_norm``, ``device``).

    Raises:
        TypeError, ValueError: Naming the setting.
    """
    set_ = object.__setattr__
    rate = check_float("learning_rate", config.learning_rate, 0.0, low_open=True)
    set_(config, "learning_rate", rate)
    for name, low in (
        ("batch_size", 1),
        ("replay_capacity", 1),
        ("learning_starts", 0),
        ("n_updates_per_step", 0),
        ("target_update", 1),
    ):
        set_(config, name, check_int(name, getattr(config, name), low))
    set_(config, "tau", check_float("tau", config.tau, 0.0, 1.0, low_open=True))
    if config.max_grad_norm is not None:
        norm = check_float("max_grad_norm", config.max_grad_norm, 0.0, low_open=True)
        set_(config, "max_grad_norm", norm)
    if not isinstance(config.device, str):
        raise TypeError(f"device must be a string such as 'cpu', got {config.device!r}.")
    resolve_device(config.device)


def resolve_device(device: str) -> torch.device:
    """Turn a device name into a :class:`torch.device`, checking that it exists.

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns:
        The device.

    Raises:
        ValueError: For an unknown device name, or CUDA when it is not available.
    """
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"Unknown torch device {device!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f'device={device!r} but CUDA is not available; use device="cpu".')
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f'device must be "cpu" or "cuda", got {device!r}.')
    return dev


# --------------------------------------------------------------------------- state encoding
class StateEncoder:
    """Grid states -> network inputs.

    An ordered axis with ``n`` points gives one feature, the index scaled to
    ``[-1, 1]`` (``0`` for a one-point axis); a categorical axis gives a one-hot
    block of ``n`` features, since its choice indices have no order.

    Args:
        shape: Points per axis.
        categorical: Whether each axis is categorical.

    Example:

        .. code-block:: python

            from optuna_qlearn._core.dqn import StateEncoder

            enc = StateEncoder(shape=(5, 3), categorical=(False, True))
            enc([(0, 2), (4, 0)])  # [[-1, 0, 0, 1], [1, 1, 0, 0]]
    """

    def __init__(self, shape: Sequence[int], categorical: Sequence[bool]) -> None:
        if len(shape) != len(categorical):
            raise ValueError(f"Got {len(categorical)} categorical flags for {len(shape)} axes.")
        if any(int(n) < 1 for n in shape):
            raise ValueError(f"Every axis needs at least one point, got shape {tuple(shape)}.")
        self.shape = tuple(int(n) for n in shape)
        self.categorical = tuple(bool(c) for c in categorical)
        self._offsets: list[int] = []
        offset = 0
        for n, cat in zip(self.shape, self.categorical):
            self._offsets.append(offset)
            offset += n if cat else 1
        self.n_features = offset

    def __call__(self, states: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
        """Encode states.

        Args:
            states: ``(n, d)`` grid indices.

        Returns:
            ``(n, n_features)`` float32 features.
        """
        idx = np.asarray(states, dtype=np.int64).reshape(-1, len(self.shape))
        out = np.zeros((len(idx), self.n_features), dtype=np.float32)
        rows = np.arange(len(idx))
        for j, (n, cat, off) in enumerate(zip(self.shape, self.categorical, self._offsets)):
            if cat:
                out[rows, off + idx[:, j]] = 1.0
            elif n > 1:
                out[:, off] = 2.0 * idx[:, j] / (n - 1) - 1.0
        return out


# --------------------------------------------------------------------------- network
class QNetwork(nn.Module):
    """An MLP from state features to one Q-value per action.

    Weights are initialized like :class:`torch.nn.Linear` (uniform in
    ``±1/sqrt(fan_in)``) but from ``generator``, so that building a network does
    not touch the global torch random state; the output bias starts at ``q_init``.

    Args:
        n_features: Input size.
        n_actions: Output size.
        hidden_sizes: Hidden layer widths (ReLU activations).
        q_init: Initial output bias.
        generator: Random source of the initial weights.
    """

    def __init__(
        self,
        n_features: int,
        n_actions: int,
        hidden_sizes: Sequence[int] = (64, 64),
        q_init: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        sizes = [int(n_features), *[int(h) for h in hidden_sizes], int(n_actions)]
        layers: list[nn.Module] = []
        linear = None
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            linear = torch.nn.utils.skip_init(nn.Linear, fan_in, fan_out)
            bound = 1.0 / math.sqrt(fan_in)
            with torch.no_grad():
                nn.init.uniform_(linear.weight, -bound, bound, generator=generator)
                nn.init.uniform_(linear.bias, -bound, bound, generator=generator)
            layers.append(linear)
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        assert linear is not None
        with torch.no_grad():
            linear.bias.fill_(q_init)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Q-values ``(n, n_actions)`` of a batch of features ``(n, n_features)``."""
        return self.net(x)


# --------------------------------------------------------------------------- replay memory
class Batch(NamedTuple):
    """A minibatch of transitions as tensors (first dimension: the batch)."""

    states: torch.Tensor  # float32 (b, n_features)
    actions: torch.Tensor  # int64 (b,)
    rewards: torch.Tensor  # float32 (b,)
    next_states: torch.Tensor  # float32 (b, n_features)
    next_masks: torch.Tensor  # bool (b, n_actions): valid actions at s'
    dones: torch.Tensor  # bool (b,)


class ReplayMemory:
    """A ring buffer of transitions ``(s, a, r, s', valid actions at s', done)``.

    Args:
        capacity: Most transitions held; pushing more overwrites the oldest.
        n_features: Size of an encoded state.
        n_actions: Size of the action space.
    """

    def __init__(self, capacity: int, n_features: int, n_actions: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}.")
        self.capacity = int(capacity)
        self.states = np.zeros((capacity, n_features), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.next_states = np.zeros((capacity, n_features), dtype=np.float32)
        self.next_masks = np.zeros((capacity, n_actions), dtype=bool)
        self.dones = np.zeros(capacity, dtype=bool)
        self.n_pushed = 0

    def __len__(self) -> int:
        return min(self.n_pushed, self.capacity)

    def push(
        self,
        state: np.ndarray,
        action: int,
        reward: float,
        next_state: np.ndarray,
        next_mask: np.ndarray,
        done: bool,
    ) -> None:
        """Store one transition (features already encoded)."""
        i = self.n_pushed % self.capacity
        self.states[i] = state
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_states[i] = next_state
        self.next_masks[i] = next_mask
        self.dones[i] = done
        self.n_pushed += 1

    def _order(self) -> np.ndarray:
        n = len(self)
        start = self.n_pushed % self.capacity if self.n_pushed > self.capacity else 0
        return (start + np.arange(n)) % self.capacity

    def contents(self) -> dict[str, np.ndarray]:
        """Every stored transition, oldest first, as arrays keyed like :class:`Batch`."""
        order = self._order()
        return {
            "states": self.states[order],
            "actions": self.actions[order],
            "rewards": self.rewards[order],
            "next_states": self.next_states[order],
            "next_masks": self.next_masks[order],
            "dones": self.dones[order],
        }

    def sample(
        self, batch_size: int, rng: np.random.Generator, device: torch.device | str = "cpu"
    ) -> Batch:
        """A minibatch drawn uniformly with replacement.

        Args:
            batch_size: Number of transitions.
            rng: The random source (seeded for reproducible training).
            device: Where the tensors go.

        Returns:
            The batch.

        Raises:
            ValueError: If the memory is empty.
        """
        if len(self) == 0:
            raise ValueError("Cannot sample from an empty replay memory.")
        idx = rng.integers(0, len(self), size=batch_size)

        def t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(a[idx]).to(device)

        return Batch(
            t(self.states),
            t(self.actions),
            t(self.rewards),
            t(self.next_states),
            t(self.next_masks),
            t(self.dones),
        )


# --------------------------------------------------------------------------- the DQN update
def td_target(
    policy: nn.Module, target: nn.Module, batch: Batch, gamma: float, double_dqn: bool = False
) -> torch.Tensor:
    """The one-step targets ``y = r + gamma * max_a' Q_target(s', a')`` of a batch.

    The max runs over the actions valid at ``s'`` only; ``done`` transitions, and
    an ``s'`` with no valid action, do not bootstrap. With ``double_dqn`` the
    policy network picks ``a'`` and the target network values it (van Hasselt et
    al., 2016).

    Args:
        policy: The network being trained.
        target: The target network.
        batch: The transitions.
        gamma: Discount factor.
        double_dqn: Use the double-DQN target.

    Returns:
        ``(b,)`` targets, detached from the graph.
    """
    with torch.no_grad():
        masks = batch.next_masks
        next_q = target(batch.next_states)
        if double_dqn:
            chooser = policy(batch.next_states).masked_fill(~masks, -math.inf)
            best = chooser.argmax(dim=1, keepdim=True)
            next_v = next_q.gather(1, best).squeeze(1)
        else:
            next_v = next_q.masked_fill(~masks, -math.inf).max(dim=1).values
        stop = batch.dones | ~masks.any(dim=1)
        next_v = torch.where(stop, torch.zeros_like(next_v), next_v)
        return batch.rewards + gamma * next_v


def dqn_update(
    policy: nn.Module,
    target: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    gamma: float,
    double_dqn: bool = False,
    max_grad_norm: float | None = 10.0,
) -> float:
    """One gradient step of DQN: Huber loss between ``Q(s, a)`` and :func:`td_target`.

    Args:
        policy: The network being trained (its parameters are in ``optimizer``).
        target: The target network (not changed).
        optimizer: The optimizer of ``policy``.
        batch: The minibatch.
        gamma: Discount factor.
        double_dqn: Use the double-DQN target.
        max_grad_norm: Clip the gradient norm to this (``None``: no clipping).

    Returns:
        The loss before the step.
    """
    y = td_target(policy, target, batch, gamma, double_dqn)
    q = policy(batch.states).gather(1, batch.actions.unsqueeze(1)).squeeze(1)
    loss = F.smooth_l1_loss(q, y)
    optimizer.zero_grad()
    loss.backward()
    if max_grad_norm is not None:
        nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm, foreach=True)
    optimizer.step()
    return float(loss.detach())


def sync_target(target: nn.Module, policy: nn.Module, tau: float = 1.0) -> None:
    """Move the target network's weights toward the policy network's.

    Args:
        target: Updated in place: ``target = tau * policy + (1 - tau) * target``.
        policy: The source.
        tau: ``1`` copies exactly (a hard update); smaller values give a soft update.
    """
    with torch.no_grad():
        for t_param, p_param in zip(target.parameters(), policy.parameters()):
            if tau >= 1.0:
                t_param.copy_(p_param)
            else:
                t_param.lerp_(p_param, tau)


# --------------------------------------------------------------------------- learner
class DQNLearner:
    """Policy and target networks, Adam, replay memory and the training loop.

    Training is a pure function of ``seed`` and the sequence of :meth:`push` and
    :meth:`train` calls: the initial weights come from a ``torch.Generator``
    seeded with ``seed`` and the minibatches from a NumPy generator seeded with
    ``seed`` too, so two processes that push the same transitions get the same
    network on CPU (with the same number of torch threads).

    Args:
        n_features: Size of an encoded state.
        n_actions: Size of the action space.
        config: Hyperparameters.
        gamma: Discount factor.
        q_init: Initial output bias of the network.
        seed: Seed of the initial weights and of minibatch sampling.

    Example:

        .. code-block:: python

            import numpy as np
            from optuna_qlearn._core.dqn import DQNConfig, DQNLearner

            learner = DQNLearner(2, 3, DQNConfig(batch_size=1, replay_capacity=1), gamma=0.9)
            s, s2 = np.array([0.0, 1.0]), np.array([1.0, 1.0])
            learner.memory.push(s, 1, 1.0, s2, np.ones(3, bool), done=True)
            learner.train(50)  # Q(s, 1) moves toward 1.0
    """

    def __init__(
        self,
        n_features: int,
        n_actions: int,
        config: DQNConfig,
        gamma: float,
        q_init: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.config = config
        self.gamma = float(gamma)
        self.device = resolve_device(config.device)
        gen = torch.Generator().manual_seed(int(seed))
        self.policy = QNetwork(n_features, n_actions, config.hidden_sizes, q_init, gen)
        self.target = QNetwork(n_features, n_actions, config.hidden_sizes, q_init, gen)
        sync_target(self.target, self.policy, 1.0)
        self.policy.to(self.device)
        self.target.to(self.device)
        self.target.requires_grad_(False)
        # The fused kernel takes one call per step instead of a dozen per parameter.
        self.optimizer = torch.optim.Adam(
            self.policy.parameters(), lr=config.learning_rate, fused=True
        )
        self.memory = ReplayMemory(config.replay_capacity, n_features, n_actions)
        self.rng = np.random.default_rng(int(seed))
        #: Gradient steps taken so far.
        self.n_optim_steps = 0
        #: Loss of the latest gradient step (``nan`` before the first).
        self.last_loss = math.nan

    def train(self, n_updates: int) -> int:
        """Take up to ``n_updates`` gradient steps (none before ``learning_starts``).

        Args:
            n_updates: Number of minibatch updates.

        Returns:
            The number of steps taken.
        """
        c = self.config
        if len(self.memory) == 0 or self.memory.n_pushed < c.learning_starts:
            return 0
        for _ in range(n_updates):
            batch = self.memory.sample(c.batch_size, self.rng, self.device)
            self.last_loss = dqn_update(
                self.policy,
                self.target,
                self.optimizer,
                batch,
                self.gamma,
                c.double_dqn,
                c.max_grad_norm,
            )
            self.n_optim_steps += 1
            if self.n_optim_steps % c.target_update == 0:
                sync_target(self.target, self.policy, c.tau)
        return n_updates

    def q_values(self, features: np.ndarray) -> np.ndarray:
        """Policy-network Q-values ``(n, n_actions)`` (float64) of encoded states."""
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
            return self.policy(x.to(self.device)).cpu().numpy().astype(np.float64)


# --------------------------------------------------------------------------- agent
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

    def __post_init__(self) -> None:  # no ``q`` dict: the network holds the values
        self.visits: dict[State, np.ndarray] = {}

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
            self.learner.memory.push(s, t.action, t.reward, s_next, mask, t.done)
            self.table.record(t.state, t.action)
        self.finish_step(step)
        if self.learner.train(self.learner.config.n_updates_per_step):
            self.table.invalidate()


# --------------------------------------------------------------------------- the learned policy
@dataclass(frozen=True)
class FineTuneConfig:
    """Hyperparameters of fine-tuning the learned policy's networks within a study.

    Args:
        learning_rate: Step size of the optimizer.
        batch_size: Transitions per minibatch (sampled with replacement).
        replay_capacity: Transitions the replay memory holds; the oldest are dropped.
        learning_starts: Transitions in memory before the first gradient step.
        n_updates_per_step: Gradient steps per learned trial, per network.
        target_update: Gradient steps between target-network synchronizations.
        tau: Synchronization weight (``1``: copy; ``< 1``: soft update).
        warmup: Trials whose transitions are not learned from: the study-observable
            reward of the first trials is about four times the pre-training reward
            (measured on generated tasks, ``experiments/learned_policy``), later ones
            are on its scale.
        max_grad_norm: Gradient-norm clipping threshold (``None``: no clipping).
        device: Torch device, ``"cpu"`` or ``"cuda"``.
        optimizer: ``"sgd"`` (default) or ``"adam"``. SGD's steps are proportional to the
            TD errors, which are small once a pre-trained network predicts a study's
            rewards well; Adam normalizes every step to about ``learning_rate``, so the
            noise of a few hundred transitions moves the networks as much as a signal
            would. On the benchmark suite's tables, Adam (``1e-3``, ``1e-4``) made the
            policy worse than the frozen networks at 200 trials, SGD at ``0.1`` did not
            (``experiments/learned_policy``).
    """

    learning_rate: float = 0.1
    batch_size: int = 32
    replay_capacity: int = 10_000
    learning_starts: int = 16
    n_updates_per_step: int = 2
    target_update: int = 50
    tau: float = 1.0
    warmup: int = 10
    max_grad_norm: float | None = 10.0
    device: str = "cpu"
    optimizer: str = "sgd"

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}.")
        object.__setattr__(self, "warmup", check_int("warmup", self.warmup, 0))
        check_training(self)


def network_from_numpy(net: PolicyNetwork) -> QNetwork:
    """The torch twin of a NumPy policy network (same weights, same function)."""
    module = QNetwork(N_FEATURES, 1, (net.hidden, net.hidden))
    linears = [m for m in module.net if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for layer, (w, b) in zip(linears, zip(net.params[::2], net.params[1::2])):
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
            layer.bias.copy_(torch.from_numpy(b))
    return module


def network_to_numpy(module: QNetwork) -> PolicyNetwork:
    """A NumPy policy network with a torch network's weights (for a policy file)."""
    params: list[np.ndarray] = []
    for layer in (m for m in module.net if isinstance(m, nn.Linear)):
        params.append(layer.weight.detach().cpu().double().numpy().T.copy())
        params.append(layer.bias.detach().cpu().double().numpy().copy())
    return PolicyNetwork(params)


class FineTunedPolicy:
    """The learned policy's Q-function, fine-tuned by double deep Q-learning in a study.

    Each member of the pre-trained :class:`~optuna_qlearn._core.policy.PolicyEnsemble`
    becomes a torch network with a target copy and an Adam optimizer; the Q-value of a
    candidate is the members' mean, as in the ensemble. A transition is the chosen
    candidate's features, the trial's reward and the candidates' features at the next
    decision; each member takes ``n_updates_per_step`` steps on the Huber loss between
    ``Q(x)`` and ``r + gamma * Q_target(x'*)``, where ``x'*`` is the next candidate the
    member itself ranks first (double DQN, as in pre-training).

    Training is a pure function of the sequence of :meth:`push` calls (the minibatches
    after each push come from a NumPy generator seeded with the number of transitions
    pushed), so two processes replaying the same trials get the same networks on CPU,
    whatever seeds their samplers were given.

    Args:
        ensemble: The pre-trained networks (copied; they are not changed).
        config: Hyperparameters.
        gamma: Discount factor (the pre-training one keeps ``Q`` in its currency).
    """

    def __init__(self, ensemble: PolicyEnsemble, config: FineTuneConfig, gamma: float) -> None:
        self.config = config
        self.gamma = check_float("gamma", gamma, 0.0, 1.0)
        self.device = resolve_device(config.device)
        self.members = [network_from_numpy(m).to(self.device) for m in ensemble.members]
        self.targets = [network_from_numpy(m).to(self.device) for m in ensemble.members]
        for t in self.targets:
            t.requires_grad_(False)
        opt = torch.optim.SGD if config.optimizer == "sgd" else torch.optim.Adam
        self.optimizers: list[torch.optim.Optimizer] = [
            opt(m.parameters(), lr=config.learning_rate) for m in self.members
        ]
        cap = config.replay_capacity
        self._x = np.zeros((cap, N_FEATURES), dtype=np.float32)
        self._r = np.zeros(cap, dtype=np.float32)
        self._nx = np.zeros((cap, MAX_CANDIDATES, N_FEATURES), dtype=np.float32)
        self._mask = np.zeros((cap, MAX_CANDIDATES), dtype=bool)
        self.n_pushed = 0
        #: Gradient steps taken so far (per member).
        self.n_optim_steps = 0
        #: Mean loss of the latest step over the members (``nan`` before the first).
        self.last_loss = math.nan

    def __len__(self) -> int:
        return min(self.n_pushed, self.config.replay_capacity)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Q-values (float64) of feature rows ``x``: the members' mean."""
        with torch.no_grad():
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
            q = torch.stack([m(t)[..., 0] for m in self.members]).mean(0)
            return q.cpu().numpy().astype(np.float64)

    def ensemble(self) -> PolicyEnsemble:
        """The fine-tuned networks as a NumPy policy (save it to start other studies)."""
        return PolicyEnsemble([network_to_numpy(m) for m in self.members])

    def push(self, x: np.ndarray, reward: float, next_x: np.ndarray) -> None:
        """Store one transition and train (call in trial-number order).

        Args:
            x: The chosen candidate's features.
            reward: The trial's reward.
            next_x: The candidates' features at the next decision (at most
                :data:`~optuna_qlearn._core.policy.MAX_CANDIDATES` rows are kept).
        """
        i = self.n_pushed % self.config.replay_capacity
        n = min(len(next_x), MAX_CANDIDATES)
        self._x[i] = x
        self._r[i] = reward
        self._nx[i] = 0.0
        self._nx[i, :n] = next_x[:n]
        self._mask[i] = False
        self._mask[i, :n] = True
        self.n_pushed += 1
        if self.n_pushed >= max(1, self.config.learning_starts):
            self.train(self.config.n_updates_per_step)

    def train(self, n_updates: int) -> None:
        """Take ``n_updates`` gradient steps on every member."""
        c = self.config
        # One generator per push count: the minibatches of a push do not depend on how
        # many steps earlier calls took, only on the transitions stored so far.
        rng = np.random.default_rng([0, self.n_pushed])
        for _ in range(n_updates):
            idx = rng.integers(0, len(self), size=c.batch_size)
            x = torch.from_numpy(self._x[idx]).to(self.device)
            r = torch.from_numpy(self._r[idx]).to(self.device)
            nx = torch.from_numpy(self._nx[idx]).to(self.device)
            mask = torch.from_numpy(self._mask[idx]).to(self.device)
            losses = []
            for net, target, opt in zip(self.members, self.targets, self.optimizers):
                with torch.no_grad():
                    best = net(nx)[..., 0].masked_fill(~mask, -math.inf).argmax(1, keepdim=True)
                    y = r + self.gamma * target(nx)[..., 0].gather(1, best).squeeze(1)
                loss = F.smooth_l1_loss(net(x)[:, 0], y)
                opt.zero_grad()
                loss.backward()
                if c.max_grad_norm is not None:
                    nn.utils.clip_grad_norm_(net.parameters(), c.max_grad_norm, foreach=True)
                opt.step()
                losses.append(float(loss.detach()))
            self.n_optim_steps += 1
            self.last_loss = float(np.mean(losses))
            if self.n_optim_steps % c.target_update == 0:
                for target, net in zip(self.targets, self.members):
                    sync_target(target, net, c.tau)


class FineTunedPolicyAgent(PolicyAgent):
    """The learned-policy agent whose Q-function is fine-tuned within the study.

    Decisions are :class:`~optuna_qlearn._core.learned.PolicyAgent`'s (epsilon-greedy
    over the Q-values of the candidates; nothing else picks a point), read from the
    :class:`FineTunedPolicy`. Each finished trial the policy chose, after the first
    ``warmup``, becomes a transition: the chosen candidate's features as stored on the
    trial, the reward a study can observe
    (:func:`~optuna_qlearn._core.policy.improvement_reward`), and the candidates of
    the state it leads to, drawn with a generator seeded by the trial number so that
    every process replaying the study draws the same ones.

    Args:
        network: The fine-tuned Q-function.
        config: Decision settings (``alpha`` must be 0: the network learns instead).
        shape: Points per axis of the grid.
        categorical: Per axis, whether it is unordered.
        names: Parameter names, for labels.
        minimize: Whether lower objective values are better.
    """

    def __init__(
        self,
        network: FineTunedPolicy,
        config: PolicyConfig,
        shape: Sequence[int],
        categorical: Sequence[bool],
        names: Sequence[str],
        minimize: bool = True,
    ) -> None:
        if config.alpha != 0:
            raise ValueError("A fine-tuned policy learns in its network: alpha must be 0.")
        super().__init__(network, config, shape, categorical, names, minimize)

    @property
    def tuner(self) -> FineTunedPolicy:
        """The Q-function being fine-tuned (:attr:`network`, typed)."""
        assert isinstance(self.network, FineTunedPolicy)
        return self.network

    def learn(
        self, number: int, state: State, value: float | None, decision: Decision | None
    ) -> None:
        """Take in one finished trial (in trial-number order) and fine-tune on it."""
        super().learn(number, state, value, decision)
        if decision is None or self.search.n_trials <= self.tuner.config.warmup:
            return
        x = np.array([round(decision.features.get(n, 0.0), 4) for n in FEATURE_NAMES])
        gen = np.random.default_rng([0, int(number)])
        next_x = self.search.features(self.search.candidates(gen))
        self.tuner.push(x, self.step_rewards[number], next_x)
