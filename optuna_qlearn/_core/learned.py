"""The agent of the learned policy: a pre-trained Q-network plus a per-study Q-table.

Pure Python + NumPy, no Optuna. :mod:`optuna_qlearn._replay` feeds it the study's
finished trials in trial-number order (:meth:`PolicyAgent.learn`), and
:meth:`PolicyAgent.propose` chooses the next point:

1. :meth:`~optuna_qlearn._core.policy.SearchState.candidates` lists the actions
   (neighbour moves of the current point, a restart near one of the best points, the
   density model's best candidates, a random unevaluated point);
2. each gets ``Q(s, a) = Q_net(features) + C[kind]``: the pre-trained network's
   value plus the study's own correction, a Q-table over the action kinds of
   :data:`~optuna_qlearn._core.policy.CORRECTION_KINDS`;
3. epsilon-greedy over those values picks the action. Nothing else picks a point.

The correction table is learned within the study from trial values by the Bellman
update, with the reward a study can observe (the improvement of the best value over
the spread of the values seen; the network was pre-trained on the improvement of the
incumbent's quantile over the task's grid, which needs the whole grid):
``C[k] += alpha * (r + gamma * max_k' (Q_net'(k') + C[k']) - (Q_net(a) + C[k]))``,
where ``Q_net(a)`` is the chosen action's network value and ``Q_net'(k')`` the best
network value of kind ``k'`` at the next decision, both stored on the trials. So a
study that finds, say, model candidates paying more than the network expected
raises their kind's correction, and the table starts at 0 (the network alone).

The decision record stored on a trial (:meth:`Decision.to_attrs`) holds what
learning needs and what the dashboard shows: every candidate's label and Q-values,
and the chosen one's features.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from optuna_qlearn._core.checks import check_float
from optuna_qlearn._core.policy import (
    CORRECTION_KINDS,
    FEATURE_NAMES,
    SearchState,
    epsilon_greedy,
    improvement_reward,
)
from optuna_qlearn._core.qlearning import State, epsilon_at

#: A Q-function over candidate features: ``(n, N_FEATURES)`` rows -> ``(n,)`` values
#: (a :class:`~optuna_qlearn._core.policy.PolicyEnsemble`, or a network being fine-tuned).
QFunction = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class PolicyConfig:
    """Settings of the learned-policy agent.

    Args:
        alpha: Learning rate of the per-study correction table, in ``[0, 1]``; 0 (the
            default) turns in-study learning off. Measured on the benchmark suite, the
            table with ``alpha=0.1`` ranked below the networks alone at 50 trials and
            level at 100 and 200 (its observable reward is not the networks' currency),
            so it is off until a reward that matches is found; see
            ``experiments/learned_policy``.
        gamma: Discount factor of its Bellman update, in ``[0, 1]``.
        epsilon: Initial exploration rate.
        epsilon_min: Floor of the exploration rate.
        epsilon_decay: Multiplicative decay of epsilon per learned trial (1: constant).
    """

    alpha: float = 0.0
    gamma: float = 0.9
    epsilon: float = 0.05
    epsilon_min: float = 0.0
    epsilon_decay: float = 1.0
    #: Trials per episode: one, the study is one walk (for the replay's bookkeeping).
    episode_length: int = 1

    def __post_init__(self) -> None:
        for name in ("alpha", "gamma", "epsilon", "epsilon_min"):
            object.__setattr__(self, name, check_float(name, getattr(self, name), 0.0, 1.0))
        decay = check_float("epsilon_decay", self.epsilon_decay, 0.0, 1.0, low_open=True)
        object.__setattr__(self, "epsilon_decay", decay)


@dataclass
class Decision:
    """What one proposal chose and why (stored on the trial, shown by the dashboard).

    Args:
        kind: The chosen action's correction kind (see ``CORRECTION_KINDS``).
        label: The chosen action's readable label (``"K+2"``, ``"model"``...).
        q_net: The chosen action's network value.
        q: Its total value (network plus correction).
        kind_best: Per correction kind, the best network value among the candidates
            of that kind (absent kinds left out): the next decision's
            ``max_a' Q_net`` of the Bellman update.
        explored: Whether epsilon's random branch chose it.
        epsilon: The exploration rate used.
        candidates: ``(label, q_net, q)`` of every candidate.
        features: The chosen candidate's features by name.
        chosen: The chosen candidate's index in ``candidates`` (-1 when a stored
            record does not say).
    """

    kind: str
    label: str
    q_net: float
    q: float
    kind_best: dict[str, float]
    explored: bool
    epsilon: float
    candidates: list[tuple[str, float, float]]
    features: dict[str, float]
    chosen: int = 0

    def to_attrs(self) -> dict[str, Any]:
        """A JSON-serializable form (rounded: it is stored on every trial)."""
        return {
            "kind": self.kind,
            "label": self.label,
            "q_net": round(self.q_net, 6),
            "q": round(self.q, 6),
            "kind_best": {k: round(v, 6) for k, v in self.kind_best.items()},
            "explored": self.explored,
            "epsilon": round(self.epsilon, 6),
            "candidates": [[lab, round(a, 4), round(b, 4)] for lab, a, b in self.candidates],
            "features": {k: round(v, 4) for k, v in self.features.items()},
            "chosen": self.chosen,
        }

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Decision | None:
        """Parse :meth:`to_attrs`'s form; ``None`` when it is malformed."""
        try:
            kind = str(attrs["kind"])
            kind_best = {str(k): float(v) for k, v in dict(attrs["kind_best"]).items()}
            q_net = float(attrs["q_net"])
            candidates = [
                (str(label), float(a), float(b)) for label, a, b in attrs.get("candidates") or ()
            ]
            features = {str(k): float(v) for k, v in dict(attrs.get("features") or {}).items()}
        except (KeyError, TypeError, ValueError):
            return None
        chosen = attrs.get("chosen")
        if kind not in CORRECTION_KINDS or not math.isfinite(q_net):
            return None
        kind_best = {
            k: v for k, v in kind_best.items() if k in CORRECTION_KINDS and math.isfinite(v)
        }
        return cls(
            kind,
            str(attrs.get("label", kind)),
            q_net,
            float(attrs.get("q", q_net)),
            kind_best,
            bool(attrs.get("explored", False)),
            float(attrs.get("epsilon", 0.0)),
            candidates,
            features,
            chosen if isinstance(chosen, int) and not isinstance(chosen, bool) else -1,
        )


@dataclass
class PolicyProposal:
    """The agent's choice for the next trial (the replay's ``Proposal`` fields, plus
    the decision)."""

    state: State
    decision: Decision
    parent: int | None = None
    episode_start: bool = True
    step: int = 0
    path: tuple[()] = ()
    reason: str = "policy"

    @property
    def epsilon(self) -> float:
        return self.decision.epsilon

    @property
    def q_value(self) -> float:
        return self.decision.q

    @property
    def explored(self) -> bool:
        return self.decision.explored


class PolicyAgent:
    """A pre-trained Q-network and a per-study correction table, choosing every point.

    Args:
        network: The Q-function (pre-trained networks, one at its initialization, or
            networks being fine-tuned: anything mapping feature rows to Q-values).
        config: Settings.
        shape: Points per axis of the grid.
        categorical: Per axis, whether it is unordered.
        names: Parameter names, for labels.
        minimize: Whether lower objective values are better.
    """

    def __init__(
        self,
        network: QFunction,
        config: PolicyConfig,
        shape: Sequence[int],
        categorical: Sequence[bool],
        names: Sequence[str],
        minimize: bool = True,
    ) -> None:
        self.network = network
        self.config = config
        self.names = tuple(names)
        self.search = SearchState(shape, categorical)
        self.sign = 1.0 if minimize else -1.0
        #: The per-study Q-table over action kinds (the correction of the network).
        self.correction = dict.fromkeys(CORRECTION_KINDS, 0.0)
        #: How often each kind's correction was updated.
        self.updates = dict.fromkeys(CORRECTION_KINDS, 0)
        #: trial number -> the reward its evaluation earned (as learned).
        self.step_rewards: dict[int, float] = {}
        #: Trials learned from (drives the epsilon schedule).
        self.n_steps = 0
        self._pending: tuple[Decision, float] | None = None
        # Finished trials not learned yet: trial number -> point (see note_finished).
        self._unlearned: dict[int, State] = {}

    @property
    def epsilon(self) -> float:
        """The current exploration rate."""
        c = self.config
        return epsilon_at(self.n_steps, c.epsilon, c.epsilon_min, c.epsilon_decay)

    # ----------------------------------------------------------------- learning
    def note_finished(self, number: int, state: State, value: float | None) -> None:
        """Note a finished trial that may not be learned yet (another worker's trial past
        the learning cursor): until :meth:`learn` takes it in, no decision targets its
        point. Learning still depends only on the trials in number order."""
        self._unlearned[number] = tuple(int(i) for i in state)

    def learn(
        self, number: int, state: State, value: float | None, decision: Decision | None
    ) -> None:
        """Take in one finished trial, in trial-number order.

        Args:
            number: Trial number.
            state: The grid point it evaluated.
            value: Its value (``None`` when it failed).
            decision: The decision that chose it (``None``: the point was enqueued,
                or chosen by another sampler; it is learned as data, not as an action).
        """
        self._unlearned.pop(number, None)
        before = self.search.best_value
        self.search.record(state, None if value is None else self.sign * value)
        reward = improvement_reward(before, self.search.best_value, self.search.spread())
        c = self.config
        if self._pending is not None:
            done, r = self._pending
            target = r
            if decision is not None and decision.kind_best:
                target += c.gamma * max(
                    q + self.correction[k] for k, q in decision.kind_best.items()
                )
            current = done.q_net + self.correction[done.kind]
            self.correction[done.kind] += c.alpha * (target - current)
            self.updates[done.kind] += 1
        self._pending = (decision, reward) if decision is not None else None
        if decision is not None:
            self.step_rewards[number] = reward
        self.n_steps += 1

    # ----------------------------------------------------------------- deciding
    def propose(self, rng: np.random.RandomState, busy: Iterable[State] = ()) -> PolicyProposal:
        """Choose the next point: epsilon-greedy over the candidates' Q-values.

        Args:
            rng: The sampler's generator.
            busy: Points other workers are evaluating now (finished trials not learned
                yet are avoided alike).
        """
        gen = np.random.default_rng(int(rng.randint(0, 2**31 - 1)))
        cands = self.search.candidates(gen, {*busy, *self._unlearned.values()})
        x = self.search.features(cands)
        q_net = self.network(x)
        kinds = [cands.correction_kind(i) for i in range(len(cands))]
        q = q_net + np.array([self.correction[CORRECTION_KINDS[k]] for k in kinds])
        eps = self.epsilon
        i, explored = epsilon_greedy(q, eps, gen)
        kind_best: dict[str, float] = {}
        for k, v in zip(kinds, q_net.tolist()):
            name = CORRECTION_KINDS[k]
            kind_best[name] = max(v, kind_best.get(name, -math.inf))
        labels = [cands.label(j, self.names) for j in range(len(cands))]
        decision = Decision(
            CORRECTION_KINDS[kinds[i]],
            labels[i],
            float(q_net[i]),
            float(q[i]),
            kind_best,
            explored,
            eps,
            list(zip(labels, q_net.tolist(), q.tolist())),
            dict(zip(FEATURE_NAMES, x[i].tolist())),
            i,
        )
        return PolicyProposal(tuple(int(v) for v in cands.points[i]), decision)
