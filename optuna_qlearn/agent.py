"""The Q-learning agent that walks the grid: learning from transitions, proposing moves.

Pure Python + NumPy, no Optuna. :mod:`optuna_qlearn.replay` feeds it the
study's trials in trial-number order (:meth:`QLearningAgent.learn`) and tells
it what other workers are evaluating; :meth:`QLearningAgent.propose` picks the
next grid point.

One *trial* is one *step*. A step starts from a *parent* point (the previous
step of the same episode, or a restart point) and follows a *path* of moves. In
the original design the path is one move. With ``walk_known=True`` the agent
never spends a trial on a point that was already evaluated: when a move lands on
a known point it keeps walking, and the transitions through known points are
learned from their stored values exactly like real ones (replay applies them).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from optuna_qlearn.qlearning import MoveSet, QTable, State, epsilon_at, epsilon_greedy
from optuna_qlearn.rewards import RewardModel


@dataclass(frozen=True)
class AgentConfig:
    """Every hyperparameter of the agent, with its default in one place.

    Args:
        alpha: Learning rate of the Bellman update.
        gamma: Discount factor.
        epsilon: Initial exploration rate.
        epsilon_min: Floor of the exploration rate.
        epsilon_decay: Multiplicative decay of epsilon per completed trial.
        episode_length: Trials per episode; the last step does not bootstrap.
        reward: Reward mode, see :class:`~optuna_qlearn.rewards.RewardModel`.
        q_init: Q-value of never-tried actions.
        walk_known: Walk on through already-evaluated points instead of
            re-evaluating them (their stored values give the rewards).
        dyna: Score an untried move into a known point by the reward its stored
            value would give, instead of ``q_init`` (Dyna-style planning).
        restart_best_prob: Probability that a new episode restarts from one of the
            ``restart_top_k`` best points instead of a uniformly random point.
        restart_top_k: How many of the best points restarts choose among.
        max_walk: Longest walk through known points before a random restart.
    """

    alpha: float = 0.5
    gamma: float = 0.9
    epsilon: float = 0.3
    epsilon_min: float = 0.05
    epsilon_decay: float = 0.98
    episode_length: int = 10
    reward: str = "rank"
    q_init: float = 0.0
    walk_known: bool = True
    dyna: bool = True
    restart_best_prob: float = 0.8
    restart_top_k: int = 5
    max_walk: int = 64

    def __post_init__(self) -> None:
        checks = {
            "alpha": 0.0 < self.alpha <= 1.0,
            "gamma": 0.0 <= self.gamma <= 1.0,
            "epsilon": 0.0 <= self.epsilon <= 1.0,
            "epsilon_min": 0.0 <= self.epsilon_min <= 1.0,
            "epsilon_decay": 0.0 < self.epsilon_decay <= 1.0,
            "episode_length": self.episode_length >= 1,
            "restart_best_prob": 0.0 <= self.restart_best_prob <= 1.0,
            "restart_top_k": self.restart_top_k >= 1,
            "max_walk": self.max_walk >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            k = bad[0]
            raise ValueError(f"Invalid {k}={getattr(self, k)!r} (see AgentConfig for ranges).")
        RewardModel(self.reward)  # validates the mode


@dataclass
class Step:
    """One trial as the agent sees it.

    Args:
        number: Trial number (replay order).
        state: The grid point evaluated.
        value: Its objective value; ``None`` for failed trials and NaN/inf values.
        path: ``(state, action)`` pairs from the parent point to ``state``; empty for
            a point not reached by a move (episode start, enqueued trial).
        step: Index of the step within its episode.
    """

    number: int
    state: State
    value: float | None
    path: Sequence[tuple[State, int]] = ()
    step: int = 0


@dataclass(frozen=True)
class Transition:
    """One learnable move: ``(s, a, r, s', done)``."""

    state: State
    action: int
    reward: float
    next_state: State
    done: bool


@dataclass
class Proposal:
    """The agent's choice for the next trial."""

    state: State
    parent: int | None
    episode_start: bool
    step: int
    path: list[tuple[State, int]] = field(default_factory=list)
    epsilon: float = 0.0
    q_value: float | None = None
    explored: bool = False
    reason: str = "move"


class QLearningAgent:
    """Tabular Q-learning over grid points with neighbour moves.

    Args:
        moves: The action space.
        config: Hyperparameters.
        minimize: Whether lower objective values are better.
    """

    def __init__(self, moves: MoveSet, config: AgentConfig, minimize: bool = True) -> None:
        self.moves = moves
        self.config = config
        self.table = QTable(moves.n_actions, q_init=config.q_init)
        self.rewards = RewardModel(config.reward, minimize=minimize)
        self.sign = 1.0 if minimize else -1.0
        #: Number of trials learned from (drives the epsilon schedule).
        self.n_steps = 0
        #: state -> value of the earliest learned trial there (deterministic).
        self.learned_values: dict[State, float] = {}
        # Decision-side knowledge (may run ahead of learning, not part of the Q-table).
        self.known: dict[State, float] = {}
        self.failed: set[State] = set()
        self._best: list[tuple[float, int, State]] = []  # (sign * value, number, state)

    # ----------------------------------------------------------------- learning
    @property
    def epsilon(self) -> float:
        """The current exploration rate."""
        c = self.config
        return epsilon_at(self.n_steps, c.epsilon, c.epsilon_min, c.epsilon_decay)

    def transitions(self, step: Step) -> list[Transition]:
        """The transitions ``(s, a, r, s', done)`` one finished trial teaches.

        Rewards are computed against the values learned so far, so call this in
        trial-number order, before :meth:`finish_step` of the same trial.

        Args:
            step: The trial. Its path's moves through known points are learned from
                those points' stored values, its last move from ``step.value``.

        Returns:
            One transition per learnable move of the path, in path order.
        """
        c = self.config
        path = list(step.path)
        out: list[Transition] = []
        for i, (s, a) in enumerate(path):
            last = i == len(path) - 1
            s_next = step.state if last else path[i + 1][0]
            previous = self.learned_values.get(s)
            if last:
                value = step.value
                done = value is None or step.step >= c.episode_length - 1
            else:
                value = self.learned_values.get(s_next)
                if value is None:  # a point learned out of order elsewhere: skip
                    continue
                done = False
            if value is None:
                r = self.rewards.failure_reward()
            else:
                r = self.rewards.reward(value, previous)
            out.append(Transition(s, a, r, s_next, done))
        return out

    def learn(self, step: Step) -> None:
        """Apply the Bellman updates of one finished trial (call in trial-number order).

        Args:
            step: The trial (see :meth:`transitions`).
        """
        c = self.config
        for t in self.transitions(step):
            mask = self.moves.valid_mask(t.next_state)
            self.table.update(
                t.state, t.action, t.reward, t.next_state, mask, c.alpha, c.gamma, t.done
            )
        self.finish_step(step)

    def finish_step(self, step: Step) -> None:
        """Record a learned trial's value (rewards, epsilon schedule, decisions)."""
        if step.value is not None:
            self.rewards.observe(step.value)
            self.learned_values.setdefault(step.state, step.value)
        self.n_steps += 1
        self.note_finished(step.number, step.state, step.value)

    def note_finished(self, number: int, state: State, value: float | None) -> None:
        """Record a finished evaluation for decisions (may precede :meth:`learn`)."""
        if value is None:
            if state not in self.known:
                self.failed.add(state)
            return
        self.failed.discard(state)
        if state not in self.known:
            self.known[state] = value
            bisect.insort(self._best, (self.sign * value, number, state))

    # ---------------------------------------------------------------- deciding
    def best_states(self, k: int) -> list[State]:
        """The ``k`` best evaluated points, best first."""
        return [s for _, _, s in self._best[:k]]

    def _scores(self, state: State) -> list[float]:
        """Q-values used to choose at ``state``; with ``dyna``, an untried move into a
        known point scores the reward that point's stored value would give."""
        scores: list[float] = self.table.get(state).tolist()
        if self.config.dyna:
            visits = self.table.visits.get(state)
            prev = self.known.get(state)
            for a, nxt in self.moves.neighbours(state):
                if visits is None or visits[a] == 0:
                    value = self.known.get(nxt)
                    if value is not None:
                        scores[a] = self.rewards.reward(value, prev)
        return scores

    def _random_unvisited(
        self, rng: np.random.RandomState, busy: set[State], shape: Sequence[int]
    ) -> State:
        state = tuple(int(rng.randint(n)) for n in shape)
        for _ in range(200):
            if state not in self.known and state not in busy and state not in self.failed:
                break
            state = tuple(int(rng.randint(n)) for n in shape)
        return state

    def propose(
        self,
        rng: np.random.RandomState,
        head: tuple[int, State, int] | None,
        busy: Iterable[State] = (),
    ) -> Proposal:
        """Choose the next point to evaluate.

        Args:
            rng: Random number generator.
            head: ``(trial number, state, step)`` of the finished trial to continue the
                episode from, or ``None`` to start a new episode.
            busy: Points other workers are evaluating right now (never proposed).

        Returns:
            The proposal, including the path of moves that reaches it.
        """
        c = self.config
        eps = self.epsilon
        busy_set = set(busy)
        shape = tuple(int(n) for n in self.moves.shape)
        if head is not None and head[2] + 1 < c.episode_length:
            parent: int | None = head[0]
            current, step_index, reason = head[1], head[2] + 1, "move"
        else:
            parent, step_index = None, 0
            if self.known and rng.random_sample() < c.restart_best_prob:
                top = self.best_states(c.restart_top_k)
                current, reason = top[rng.randint(len(top))], "restart-best"
            else:
                state = self._random_unvisited(rng, busy_set, shape)
                return Proposal(state, None, True, 0, [], eps, None, True, "restart-random")

        path: list[tuple[State, int]] = []
        on_path = {current}
        for _ in range(c.max_walk):
            allowed = []
            for a, nxt in self.moves.neighbours(current):
                if c.walk_known and (a == 0 or nxt in on_path):
                    continue  # "stay" or a loop would re-evaluate a known point
                if nxt not in busy_set and nxt not in self.failed:
                    allowed.append(a)
            if not allowed:
                break
            scores = self._scores(current)
            action, explored = epsilon_greedy(scores, allowed, eps, rng)
            nxt = self.moves.apply(current, action)
            path.append((current, action))
            if c.walk_known and nxt in self.known:
                current = nxt
                on_path.add(nxt)
                continue
            q = float(scores[action])
            return Proposal(nxt, parent, parent is None, step_index, path, eps, q, explored, reason)
        state = self._random_unvisited(rng, busy_set, shape)
        return Proposal(state, None, True, 0, [], eps, None, True, "restart-random")

    def greedy_action(self, state: State) -> int:
        """The greedy valid action at ``state`` (ties: lowest index)."""
        mask = self.moves.valid_mask(state)
        q = np.where(mask, self.table.get(state), -math.inf)
        return int(np.argmax(q))
