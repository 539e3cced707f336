"""The Q-learning agent that walks the grid: learning from transitions, proposing moves.

Pure Python + NumPy, no Optuna. :mod:`optuna_qlearn._replay` feeds it the
study's trials in trial-number order (:meth:`QLearningAgent.learn`) and tells
it what other workers are evaluating; :meth:`QLearningAgent.propose` picks the
next grid point.

One *trial* is one *step*. A step starts from a *parent* point (the previous
step of the same episode, or a restart point) and follows a *path* of moves. In
the original design the path is one move. With ``walk_known=True`` the agent
never spends a trial on a point that was already evaluated: when a move lands on
a known point it keeps walking, and the transitions through known points are
learned from their stored values exactly like real ones (replay applies them).

Q-values only generalize along tried moves, so the agent also keeps a global
model of where good points lie (:class:`~optuna_qlearn._core.prior.GridPrior`, a
factorized good-vs-rest density ratio over grid indices). It scores moves into
unvisited points (``model_scores``) and picks some episode restarts
(``model_restart_prob``). It lives on the decision side only: learning (the
Q-table) still depends only on the trials in number order.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Collection, Container, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from optuna_qlearn._core.checks import check_bool, check_choice, check_float, check_int
from optuna_qlearn._core.prior import GridPrior, JointGridPrior, n_good
from optuna_qlearn._core.qlearning import MoveSet, QTable, State, epsilon_at, epsilon_greedy
from optuna_qlearn._core.rewards import REWARD_MODES, RewardModel


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
        reward: Reward mode, see :class:`~optuna_qlearn._core.rewards.RewardModel`.
        q_init: Q-value of never-tried actions.
        walk_known: Walk on through already-evaluated points instead of
            re-evaluating them (their stored values give the rewards).
        dyna: Score an untried move into a known point by the reward its stored
            value would give, instead of ``q_init`` (Dyna-style planning).
        restart_best_prob: Probability that a new episode restarts from one of the
            ``restart_top_k`` best points instead of a uniformly random point.
        restart_top_k: How many of the best points restarts choose among.
        max_walk: Most known points a walk passes through. A walk that reaches
            it takes the best-scoring move into an unvisited point seen on the way
            (a random restart if there was none), so a decision's cost does not
            grow as the neighbourhood of the best points fills up.
        n_startup: New episodes are one-step episodes at uniformly random points
            until this many points are evaluated (0 in the original design).
        model_scores: Score an untried move into an *unvisited* point by the global
            model's prediction ``tanh(model_scale * score)`` instead of ``q_init``.
        model_restart_prob: Probability that a new episode starts at the best of
            ``model_candidates`` unvisited points drawn from the model's good-point
            density (checked before ``restart_best_prob``).
        model_candidates: Candidates drawn per model restart.
        model_gamma: Fraction of evaluated points the model counts as good.
        model_max_good: Most points the model counts as good.
        model_scale: Temperature of the model's predicted reward.
        model_bandwidth: Kernel width of the model on ordered axes (fraction of the axis).
        model_joint: Model the points jointly, as Optuna's multivariate TPE does
            (:class:`~optuna_qlearn._core.prior.JointGridPrior`: it knows which settings are
            good together, at a cost growing with the trials) instead of axis by axis
            (:class:`~optuna_qlearn._core.prior.GridPrior`; ``model_bandwidth`` is then unused).
    """

    alpha: float = 0.5
    gamma: float = 0.9
    epsilon: float = 0.3
    epsilon_min: float = 0.05
    epsilon_decay: float = 0.98
    episode_length: int = 5
    reward: str = "rank"
    q_init: float = 0.0
    walk_known: bool = True
    dyna: bool = True
    restart_best_prob: float = 0.8
    restart_top_k: int = 5
    max_walk: int = 4
    n_startup: int = 10
    model_scores: bool = True
    model_restart_prob: float = 0.5
    model_candidates: int = 24
    model_gamma: float = 0.15
    model_max_good: int = 25
    model_scale: float = 0.5
    model_bandwidth: float = 0.1
    model_joint: bool = False

    def __post_init__(self) -> None:
        unit, open_unit = {"low": 0.0, "high": 1.0}, {"low": 0.0, "high": 1.0, "low_open": True}
        floats: dict[str, dict[str, Any]] = {
            "alpha": open_unit,
            "gamma": unit,
            "epsilon": unit,
            "epsilon_min": unit,
            "epsilon_decay": open_unit,
            "q_init": {},
            "restart_best_prob": unit,
            "model_restart_prob": unit,
            "model_gamma": open_unit,
            "model_scale": {"low": 0.0, "low_open": True},
            "model_bandwidth": {"low": 0.0, "low_open": True},
        }
        ints = {
            "episode_length": 1,
            "restart_top_k": 1,
            "max_walk": 1,
            "n_startup": 0,
            "model_candidates": 1,
            "model_max_good": 1,
        }
        for name, bounds in floats.items():
            object.__setattr__(self, name, check_float(name, getattr(self, name), **bounds))
        for name, low in ints.items():
            object.__setattr__(self, name, check_int(name, getattr(self, name), low))
        for name in ("walk_known", "dyna", "model_scores", "model_joint"):
            object.__setattr__(self, name, check_bool(name, getattr(self, name)))
        check_choice("reward", self.reward, REWARD_MODES)


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


class Transition(NamedTuple):
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
        categorical: Per axis, whether it is unordered (the global model does not
            smooth across its values); all ordered when ``None``.
    """

    def __init__(
        self,
        moves: MoveSet,
        config: AgentConfig,
        minimize: bool = True,
        categorical: Sequence[bool] | None = None,
    ) -> None:
        self.moves = moves
        self.config = config
        #: Points per axis of the grid.
        self.shape: tuple[int, ...] = tuple(int(n) for n in moves.shape)
        self.table = QTable(moves.n_actions, q_init=config.q_init)
        self.rewards = RewardModel(config.reward, minimize=minimize)
        self.sign = 1.0 if minimize else -1.0
        #: Number of trials learned from (drives the epsilon schedule).
        self.n_steps = 0
        #: state -> value of the earliest learned trial there (deterministic).
        self.learned_values: dict[State, float] = {}
        #: trial number -> reward of the trial's own (last) move, as learned.
        self.step_rewards: dict[int, float] = {}
        # Decision-side knowledge (may run ahead of learning, not part of the Q-table).
        self.known: dict[State, float] = {}
        self.failed: set[State] = set()
        self._best: list[tuple[float, int, State]] = []  # (sign * value, number, state)
        self.prior: GridPrior | JointGridPrior = (
            JointGridPrior(self.shape, categorical)
            if config.model_joint
            else GridPrior(self.shape, categorical, bandwidth=config.model_bandwidth)
        )
        self._prior_n = -1  # number of known points at the last fit
        self._prior_good: list[State] = []  # the good points at the last fit

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
            One transition per learnable move of the path, in path order. The reward
            of the last one (the trial's own move) is also kept in :attr:`step_rewards`.
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
        if path:
            self.step_rewards[step.number] = out[-1].reward
        return out

    def learn(self, step: Step) -> None:
        """Apply the Bellman updates of one finished trial (call in trial-number order).

        Args:
            step: The trial (see :meth:`transitions`).
        """
        c = self.config
        table, moves = self.table, self.moves
        for t in self.transitions(step):
            # max_a' Q(s', a') runs over the valid actions at s' (a cached mask).
            mask = moves.mask(t.next_state)
            table.update(t.state, t.action, t.reward, t.next_state, mask, c.alpha, c.gamma, t.done)
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
            self.prior.add(state)

    # ---------------------------------------------------------------- deciding
    def best_states(self, k: int) -> list[State]:
        """The ``k`` best evaluated points, best first."""
        return [s for _, _, s in self._best[:k]]

    def _candidates(
        self,
        state: State,
        exclude: Container[State] = (),
        blocked: Collection[State] = (),
        memo: dict[float, float] | None = None,
    ) -> tuple[list[int], list[State], list[float], int]:
        """The valid moves from ``state`` and the values used to choose among them.

        A tried move scores its Q-value. An untried move scores, with ``dyna``, the
        reward a known point's stored value would give and, with ``model_scores``,
        the global model's prediction ``tanh(model_scale * score)`` for an unvisited
        point (its Q-value otherwise).

        Args:
            state: The state.
            exclude: Known points not to move to (the walk's own path; only points
                in :attr:`known` are looked up here).
            blocked: Points not to move to (busy elsewhere, or failed).
            memo: Rewards of known values already computed in this decision (rank
                rewards depend on the value only, and a walk meets the same points).

        Returns:
            ``(actions, next_states, scores, best_new)``: the allowed moves in action
            order, and the index (into those lists) of the first best-scoring move
            into an unvisited point, ``-1`` if none.
        """
        c = self.config
        q = self.table.get(state).tolist()
        use_model = c.model_scores and self.prior.fitted
        prior = self.prior
        # The per-axis model scores move by move; the joint one in one batch at the end.
        additive = prior if use_model and isinstance(prior, GridPrior) else None
        pending: list[int] = []  # moves into unvisited points the joint model scores
        dyna = c.dyna
        visits_row = self.table.visits.get(state)
        visits = visits_row.tolist() if visits_row is not None else None
        known = self.known
        prev = known.get(state)
        by_value = memo if memo is not None and self.rewards.mode == "rank" else None
        if additive is not None:
            # Moves along one axis change one term of the model's additive score.
            ratios = additive.ratios
            base = additive.score(state)
            axis_of = self.moves.axis_of
            scale = c.model_scale
        valid_actions, nexts = self.moves.valid(state)
        actions: list[int] = []
        targets: list[State] = []
        scores: list[float] = []
        best_new, best_new_score = -1, -math.inf
        for a, nxt in zip(valid_actions, nexts):
            value = known.get(nxt)
            if (value is not None and nxt in exclude) or (blocked and nxt in blocked):
                continue
            score = q[a]
            if visits is None or not visits[a]:
                if value is not None:
                    if dyna:
                        if by_value is None:
                            score = self.rewards.reward(value, prev)
                        else:
                            r = by_value.get(value)
                            if r is None:
                                r = by_value[value] = self.rewards.reward(value, prev)
                            score = r
                elif additive is not None:
                    ax = axis_of[a]
                    if ax >= 0:
                        x = base - ratios[ax][state[ax]] + ratios[ax][nxt[ax]]
                    else:
                        x = additive.score(nxt)
                    score = math.tanh(scale * x)
                elif use_model:
                    pending.append(len(scores))
            if value is None and (best_new < 0 or score > best_new_score):
                best_new, best_new_score = len(scores), score
            actions.append(a)
            targets.append(nxt)
            scores.append(score)
        if pending:  # the joint model scores its moves in one batch
            for i, x in zip(pending, prior.score_many([targets[i] for i in pending])):
                scores[i] = math.tanh(c.model_scale * x)
            best_new, best_new_score = -1, -math.inf
            for i, nxt in enumerate(targets):
                if nxt not in known and (best_new < 0 or scores[i] > best_new_score):
                    best_new, best_new_score = i, scores[i]
        return actions, targets, scores, best_new

    def _fit_prior(self) -> None:
        """Refit the global model when its good points changed, or when the evaluated
        points grew by 2% since the last fit (the "rest" density moves slowly; refitting
        it every trial would make the sampler's cost grow with the study). At most one
        fit per 1% growth of the evaluated points (so one per new point below 200)."""
        c = self.config
        n = len(self._best)
        if n < 2 or not (c.model_scores or c.model_restart_prob > 0):
            return
        if n < self._prior_n + max(1, n // 100):
            return
        k = n_good(n, c.model_gamma, c.model_max_good)
        good = [s for _, _, s in self._best[:k]]
        if good == self._prior_good and n < self._prior_n * 1.02:
            return
        self.prior.fit(good)
        self._prior_n, self._prior_good = n, good

    def _model_state(self, rng: np.random.RandomState, busy: set[State]) -> State | None:
        """The best-scoring unvisited point among candidates drawn from the model."""
        best: State | None = None
        best_score = -math.inf
        fresh = [
            s
            for s in self.prior.sample(rng, self.config.model_candidates)
            if s not in self.known and s not in busy and s not in self.failed
        ]
        for s, score in zip(fresh, self.prior.score_many(fresh)):
            if score > best_score:
                best, best_score = s, score
        return best

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
        shape = self.shape
        self._fit_prior()
        if head is not None and head[2] + 1 < c.episode_length:
            parent: int | None = head[0]
            current, step_index, reason = head[1], head[2] + 1, "move"
        else:
            parent, step_index = None, 0
            if len(self.known) < c.n_startup:
                # A start-up trial is a one-step episode: its step index is the last.
                state = self._random_unvisited(rng, busy_set, shape)
                last = c.episode_length - 1
                return Proposal(state, None, True, last, [], eps, None, True, "startup")
            if self.prior.fitted and rng.random_sample() < c.model_restart_prob:
                model_state = self._model_state(rng, busy_set)
                if model_state is not None:
                    return Proposal(
                        model_state, None, True, 0, [], eps, None, False, "restart-model"
                    )
            if self.known and rng.random_sample() < c.restart_best_prob:
                top = self.best_states(c.restart_top_k)
                current, reason = top[rng.randint(len(top))], "restart-best"
            else:
                state = self._random_unvisited(rng, busy_set, shape)
                return Proposal(state, None, True, 0, [], eps, None, True, "restart-random")

        path: list[tuple[State, int]] = []
        on_path = {current}
        exclude: Container[State] = on_path if c.walk_known else ()
        memo: dict[float, float] = {}
        known = self.known
        blocked = busy_set | self.failed
        # The best move into an unvisited point seen on the walk: (score, index in
        # path, action, point), taken if the walk reaches ``max_walk`` known points.
        frontier: tuple[float, int, int, State] | None = None
        for _ in range(c.max_walk):
            actions, targets, scores, best_new = self._candidates(current, exclude, blocked, memo)
            if not actions:
                break
            i, explored = epsilon_greedy(scores, range(len(actions)), eps, rng)
            nxt = targets[i]
            path.append((current, actions[i]))
            if c.walk_known and nxt in known:
                if best_new >= 0 and (frontier is None or scores[best_new] > frontier[0]):
                    j = best_new
                    frontier = (scores[j], len(path) - 1, actions[j], targets[j])
                current = nxt
                on_path.add(nxt)
                continue
            q = float(scores[i])
            return Proposal(nxt, parent, parent is None, step_index, path, eps, q, explored, reason)
        if frontier is not None:
            score, i, a, nxt = frontier
            path = [*path[:i], (path[i][0], a)]
            start = parent is None
            return Proposal(nxt, parent, start, step_index, path, eps, score, False, reason)
        state = self._random_unvisited(rng, busy_set, shape)
        return Proposal(state, None, True, 0, [], eps, None, True, "restart-random")

    def greedy_action(self, state: State) -> int:
        """The greedy valid action at ``state`` (ties: lowest index)."""
        mask = self.moves.valid_mask(state)
        q = np.where(mask, self.table.get(state), -math.inf)
        return int(np.argmax(q))
