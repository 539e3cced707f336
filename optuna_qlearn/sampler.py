"""``QLearningSampler``: the Optuna glue around the tabular Q-learning agent."""

from __future__ import annotations

import functools
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.samplers._base import _INDEPENDENT_SAMPLING_WARNING_TEMPLATE
from optuna.storages import InMemoryStorage
from optuna.trial import FrozenTrial, TrialState

from optuna_qlearn._core.agent import AgentConfig, Proposal, QLearningAgent
from optuna_qlearn._core.checks import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_int_tuple,
)
from optuna_qlearn._core.learned import PolicyAgent, PolicyConfig, PolicyProposal
from optuna_qlearn._core.policy import PolicyEnsemble, PolicyNetwork
from optuna_qlearn._core.qlearning import MoveSet, SavedTable, load_table, save_table
from optuna_qlearn._grid import Grid, State
from optuna_qlearn._replay import (
    KEY_DECISION,
    KEY_RECORD,
    Record,
    StudyReplay,
    TrialFeed,
    record_attrs,
)

if TYPE_CHECKING:
    from optuna.study import Study

# Under the ``optuna`` logger, so that optuna.logging.set_verbosity() silences it too.
_logger = optuna.logging.get_logger(f"optuna.{__name__}")

#: Prefix of the human-readable user attributes (shown by optuna-dashboard).
USER_ATTR_PREFIX = "qlearn:"

#: The original design (joint -1/0/+1 moves, negative-value reward, re-evaluation
#: allowed, random restarts, no global model, no start-up trials, 10-trial episodes):
#: ``QLearningSampler(**QLearningSampler.seed_design_parameters())``.
_SEED_DESIGN: dict[str, Any] = {
    "policy": "table",
    "moves": "joint",
    "reward": "value",
    "walk_known": False,
    "dyna": False,
    "restart_best_prob": 0.0,
    "episode_length": 10,
    "n_startup": 0,
    "model_scores": False,
    "model_restart_prob": 0.0,
}


#: The agent settings every configuration uses (AgentConfig fields and arguments alike);
#: the settings of :data:`_CONDITIONS` are used only when others need them.
_AGENT_ARGS = (
    "alpha",
    "gamma",
    "epsilon",
    "epsilon_min",
    "epsilon_decay",
    "episode_length",
    "reward",
    "q_init",
    "walk_known",
    "dyna",
    "restart_best_prob",
    "n_startup",
    "model_scores",
    "model_restart_prob",
)


#: Settings both agents use (their defaults differ: see the class docstring).
_SHARED = ("alpha", "gamma", "epsilon", "epsilon_min", "epsilon_decay")
#: Settings of the tabular agent only (``policy="table"``).
_TABLE_ONLY = (
    *(name for name in _AGENT_ARGS if name not in _SHARED),
    "moves",
    "step_sizes",
    "max_walk",
    "restart_top_k",
    "model_joint",
    "model_candidates",
    "model_gamma",
    "model_max_good",
    "model_scale",
    "model_bandwidth",
    "warm_start",
)
#: The ``policy`` names that are not files.
_POLICY_NAMES = ("default", "table")


def default_policy_path() -> Path:
    """The shipped pre-trained policy's file (``policy="default"``)."""
    return Path(__file__).resolve().parent / "policies" / "default.npz"


@functools.lru_cache(maxsize=1)
def _default_network() -> PolicyEnsemble:
    """The shipped networks, read and validated once per process (samplers only run
    them, they never train them, so one instance serves them all)."""
    return PolicyEnsemble.load(default_policy_path())


def _resolve_policy(
    policy: str | os.PathLike[str] | None,
) -> tuple[str | None, PolicyEnsemble | None]:
    """``(the policy as parameters reports it, its network or None for the table)``.

    Raises:
        TypeError: If ``policy`` is not a string, a path or ``None``.
        PolicyFileError: If the file cannot be used (naming it and why).
    """
    if policy is None:
        return None, PolicyEnsemble([PolicyNetwork.initial(seed=0)])
    if not isinstance(policy, (str, os.PathLike)):
        raise TypeError(
            "policy must be 'default', 'table', None or the path of a policy file, got "
            f"{type(policy).__name__}."
        )
    if policy == "table":
        return "table", None
    if policy == "default":
        return "default", _default_network()
    path = os.fspath(policy)
    return path, PolicyEnsemble.load(path)


def _model_on(env: dict[str, Any]) -> bool:
    return bool(env["model_scores"]) or env["model_restart_prob"] > 0


#: Settings that mean something only when another is set: name -> (what they need,
#: whether the resolved settings have it). Given while unused, they are refused.
_CONDITIONS: dict[str, tuple[str, Callable[[dict[str, Any]], bool]]] = {
    "step_sizes": ('moves="axis"', lambda e: e["moves"] == "axis"),
    "max_walk": ("walk_known=True", lambda e: bool(e["walk_known"])),
    "restart_top_k": ("restart_best_prob > 0", lambda e: e["restart_best_prob"] > 0),
    "model_joint": ("the global model (model_scores=True or model_restart_prob > 0)", _model_on),
    "model_gamma": ("the global model (model_scores=True or model_restart_prob > 0)", _model_on),
    "model_max_good": ("the global model (model_scores=True or model_restart_prob > 0)", _model_on),
    "model_candidates": ("model_restart_prob > 0", lambda e: e["model_restart_prob"] > 0),
    "model_scale": ("model_scores=True", lambda e: bool(e["model_scores"])),
    "model_bandwidth": (
        "the per-axis global model (model_joint=False, with model_scores=True or "
        "model_restart_prob > 0)",
        lambda e: _model_on(e) and not e["model_joint"],
    ),
}


class _StudyView:
    """What one process knows of one study: an incremental trial feed, the
    intersection search space of its finished trials, and one replay per grid."""

    def __init__(self, storage: object) -> None:
        self.storage = weakref.ref(storage)
        self.feed = TrialFeed()
        self.space: dict[str, BaseDistribution] | None = None
        self._relative: dict[str, BaseDistribution] | None = None
        self.replays: dict[str, StudyReplay] = {}
        self.own: set[int] = set()  # trials created by this process

    def poll(self, study: Study, upto: int) -> None:
        trials = self.feed.poll(study, upto)
        if not trials:
            return
        for t in trials:
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
                if self.space is None:
                    self.space = dict(t.distributions)
                    self._relative = None
                else:
                    dists = t.distributions
                    # Identity first: trials of one process usually share the objects.
                    space = {
                        k: v for k, v in self.space.items() if (d := dists.get(k)) is v or d == v
                    }
                    if len(space) != len(self.space):
                        self.space, self._relative = space, None
        for replay in self.replays.values():
            replay.update(study, trials, upto)

    def search_space(self) -> dict[str, BaseDistribution]:
        """The relative search space (the same dict until it changes; do not mutate)."""
        if self._relative is None:
            space = self.space or {}
            self._relative = {k: space[k] for k in sorted(space) if not space[k].single()}
        return self._relative


class QLearningSampler(BaseSampler):
    """Sampler whose every proposal is chosen by a Q-function learned by Q-learning.

    Each trial is one step of an agent on a grid: every parameter is discretized
    into an axis and the grid point is the *state*. With the default
    ``policy="default"``, before every trial the agent lists candidate *actions*:
    neighbour moves from the last evaluated point (one parameter up or down by 1, 2
    or 4 grid steps), a restart next to one of the best points, the best candidates
    of a TPE-like density model of good points, and a random unevaluated point. Each
    candidate is described by features that do not depend on the grid's size or the
    number of parameters (the density ratio at its target, whether and how well the
    target was evaluated, distances to the best and current points, the move's size,
    the study's progress and stagnation, how crowded its neighbourhood is), and its
    Q-value is

    ``Q(s, a) = Q_net(features) + C[kind of a]``:

    small Q-networks pre-trained by deep Q-learning over thousands of whole studies
    on generated tasks (two, from two seeds, their Q-values averaged; shipped with
    the package, NumPy only), plus the study's own Q-table over action kinds, learned
    from this study's trial values by the Bellman update
    ``C[k] += alpha * (r + gamma * max_k' Q(s', k') - Q(s, a))``. Epsilon-greedy over
    those values picks the action; no other rule picks a point. The density model is
    one input and one kind of action, not the decider.

    ``policy=None`` starts from nothing (the network at its initialization: the
    untrained ablation), ``policy=PATH`` loads a policy trained with
    :func:`optuna_qlearn.policy.train_policy`, and ``policy="table"`` is the earlier
    tabular agent: a Q-table over (grid point, neighbour move) with its walks,
    restarts and model-scored moves, configured by the settings marked *table*
    below (``QLearningSampler(**QLearningSampler.seed_design_parameters())`` is the
    original design).

    The sampler keeps no learning state of its own: each trial's state and decision
    are stored on the trial (system attributes ``qlearn:record`` and
    ``qlearn:decision``: every candidate with its Q-values, and the chosen one's
    features), and the learning state is rebuilt by replaying finished trials in
    trial-number order, incrementally. Workers sharing a storage therefore learn the
    same table, a resumed study continues exactly, and crashed workers lose nothing.
    Human-readable ``qlearn:*`` user attributes (state, action, epsilon, Q-value)
    appear in optuna-dashboard.

    The first trial of a study, and parameters outside the relative search space
    (conditional or dynamic ones), are sampled by ``independent_sampler``, as with
    every relative sampler in Optuna.

    Example:

        .. testcode::

            import optuna
            from optuna_qlearn import QLearningSampler


            def objective(trial):
                k = trial.suggest_int("K", 2, 10)
                dim = trial.suggest_categorical("intermediate_dim", [64, 128, 256])
                return (k - 6) ** 2 + abs(dim - 128) / 64


            study = optuna.create_study(sampler=QLearningSampler(seed=0))
            study.optimize(objective, n_trials=30)

    Args:
        policy: ``"default"`` (the shipped pre-trained Q-networks), ``None`` (one
            network untrained), the path (``str`` or ``os.PathLike``) of an ``.npz``
            policy file written by :func:`optuna_qlearn.policy.train_policy`, or
            ``"table"`` (the tabular agent).
        alpha: Learning rate of the Bellman update, in ``[0, 1]``: of the per-study
            correction table (default 0: off; on the benchmark suite ``alpha=0.1``
            ranked below the pre-trained networks alone at 50 trials and level with
            them at 100 and 200, see the README), or of the Q-table with
            ``policy="table"`` (in ``(0, 1]``, default 0.5).
        gamma: Discount factor, in ``[0, 1]`` (default 0.9).
        epsilon: Initial probability of a random action, in ``[0, 1]`` (default 0.05;
            0.3 with ``policy="table"``).
        epsilon_min: Floor of epsilon, in ``[0, 1]`` (default 0; 0.05 with
            ``policy="table"``); above ``epsilon`` it is the rate from the start.
        epsilon_decay: Epsilon is multiplied by this after each finished trial, in
            ``(0, 1]`` (default 1: constant; 0.98 with ``policy="table"``).
        episode_length: *table*: trials per episode before a restart (at least 1;
            default 5).
        reward: *table*: ``"rank"`` (default; scale-free, in ``[-1, 1]``),
            ``"improvement"`` (previous minus new value, for minimization) or
            ``"value"`` (negative value, centred on the median); the last two are
            divided by the interquartile range of the values so far. The study
            direction is respected. (The learned policy's reward is fixed: the
            improvement of the best value so far over the spread of the values seen.)
        moves: *table*: ``"axis"`` (one parameter per move; ``1 + 2 * d *
            len(step_sizes)`` actions; default) or ``"joint"`` (every combination of
            -1/0/+1; ``3**d`` actions, refused above 8 parameters).
        step_sizes: *table*: grid steps of an axis move (``moves="axis"`` only;
            default ``(1, 2, 4)``).
        n_bins: Grid points of a float parameter without ``step`` (at least 2).
        max_bins: Most grid points of an int or stepped-float parameter (at least 2).
        q_init: *table*: Q-value of untried actions (finite; default 0).
        walk_known: *table*: walk on through evaluated points instead of re-evaluating them.
            The "stay" move (re-evaluate the current point) exists only when this is
            ``False``: with it, staying would land on a known point.
        max_walk: *table*: most known points a walk passes through before it takes the best
            move into an unvisited point seen on the way (``walk_known=True`` only;
            default 4).
        dyna: *table*: score an untried move into an evaluated point by its stored value.
        restart_best_prob: *table*: probability that an episode restarts from one of the
            ``restart_top_k`` best points instead of a random one.
        restart_top_k: *table*: number of best points restarts choose among
            (``restart_best_prob > 0`` only; default 5).
        n_startup: *table*: new episodes are one-step episodes at random points until this
            many points are evaluated.
        model_scores: *table*: score untried moves into unvisited points by a global model of
            where good points lie (a good-vs-rest density ratio over the grid).
        model_restart_prob: *table*: probability that an episode restarts at the point the
            global model rates best among candidates it draws.
        model_joint: *table*: model the points jointly, as Optuna's multivariate TPE does,
            instead of axis by axis (needs the global model; default ``False``).
        model_candidates: *table*: candidates a model restart draws (``model_restart_prob > 0``
            only; default 24).
        model_gamma: *table*: fraction of evaluated points the model counts as good, in
            ``(0, 1]`` (needs the global model; default 0.15).
        model_max_good: *table*: most points the model counts as good (needs the global model;
            default 25).
        model_scale: *table*: temperature of the model's predicted reward
            ``tanh(model_scale * score)`` (``model_scores=True`` only; default 0.5).
        model_bandwidth: *table*: kernel width of the per-axis model on ordered axes, as a
            fraction of the axis (per-axis model only; default 0.1).
        warm_start: *table*: path (``str`` or ``os.PathLike``) of a Q-table saved by
            :meth:`save_q_table` (``.json`` or ``.npz``) whose values initialize the
            table; states are matched by parameter values and actions by label, so
            the grid may differ.
        independent_sampler: Sampler for parameters outside the relative search
            space; :class:`~optuna.samplers.RandomSampler` by default.
        warn_independent_sampling: Log a warning when the independent sampler is used.
        stale_after: Later finished trials after which a trial still RUNNING (a
            worker killed on a storage without heartbeat) is skipped for learning
            (at least 1).
        decision_timeout: Seconds a trial waits at most for earlier trials that other
            workers are still sampling. Trials choose their points in trial-number
            order, so concurrent workers never continue the same episode or evaluate
            the same point at once; ``0`` turns the wait off.
        seed: Seed of the random number generator.

    Raises:
        TypeError: For an argument of the wrong type.
        ValueError: For an argument out of range, one given where the other settings
            make it unused (e.g. ``max_walk`` with ``walk_known=False``), or a *table*
            setting given with a learned policy.
        PolicyFileError: If a policy file is missing or malformed (a ``ValueError``
            naming the file and the problem).
    """

    #: Defaults of the settings in :data:`_CONDITIONS` (used when they are needed).
    _CONDITIONAL_DEFAULTS: ClassVar[dict[str, Any]] = {
        "step_sizes": (1, 2, 4),
        "max_walk": 4,
        "restart_top_k": 5,
        "model_joint": False,
        "model_gamma": 0.15,
        "model_max_good": 25,
        "model_candidates": 24,
        "model_scale": 0.5,
        "model_bandwidth": 0.1,
    }

    def __init__(
        self,
        *,
        policy: str | os.PathLike[str] | None = "default",
        alpha: float | None = None,
        gamma: float | None = None,
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
        max_walk: int | None = None,
        dyna: bool | None = None,
        restart_best_prob: float | None = None,
        restart_top_k: int | None = None,
        n_startup: int | None = None,
        model_scores: bool | None = None,
        model_restart_prob: float | None = None,
        model_joint: bool | None = None,
        model_candidates: int | None = None,
        model_gamma: float | None = None,
        model_max_good: int | None = None,
        model_scale: float | None = None,
        model_bandwidth: float | None = None,
        warm_start: str | os.PathLike[str] | None = None,
        independent_sampler: BaseSampler | None = None,
        warn_independent_sampling: bool = True,
        stale_after: int = 64,
        decision_timeout: float = 2.0,
        seed: int | None = None,
    ) -> None:
        given = locals()  # the arguments, before any other local is bound
        self._policy, self._network = _resolve_policy(policy)
        self._n_bins = check_int("n_bins", n_bins, 2)
        self._max_bins = check_int("max_bins", max_bins, 2)
        self._stale_after = check_int("stale_after", stale_after, 1)
        self._decision_timeout = check_float("decision_timeout", decision_timeout, 0.0)
        self._warn_independent_sampling = check_bool(
            "warn_independent_sampling", warn_independent_sampling
        )
        if seed is not None:
            seed = check_int("seed", seed, 0, 2**32 - 1)
        if independent_sampler is not None and not isinstance(independent_sampler, BaseSampler):
            raise TypeError(
                "independent_sampler must be an optuna.samplers.BaseSampler, got "
                f"{type(independent_sampler).__name__}."
            )
        self._config: AgentConfig | PolicyConfig
        if self._network is not None:
            for name in _TABLE_ONLY:
                if given[name] is not None:
                    raise ValueError(
                        f"{name}={given[name]!r} is a setting of the tabular agent: it needs "
                        f"policy='table' (policy is {policy!r})."
                    )
            learned = {n: given[n] for n in _SHARED if given[n] is not None}
            self._config = PolicyConfig(**learned)
            self._moves_kind = "policy"
            self._step_sizes: tuple[int, ...] = ()
            self._in_use: tuple[str, ...] = ()
            self._warm_start: SavedTable | None = None
            self._allow_stay = False
        else:
            self._init_table(given)
        self._seed = seed
        self._rng = np.random.RandomState(seed)
        self._independent_sampler = independent_sampler or RandomSampler(seed=seed)
        self._lock = threading.RLock()
        self._views: dict[tuple[int, int], _StudyView] = {}
        self._grids: dict[tuple[tuple[str, BaseDistribution], ...], Grid] = {}
        self._last_grid: tuple[dict[str, BaseDistribution], Grid] | None = None

    def _init_table(self, given: dict[str, Any]) -> None:
        """Resolve and check the tabular agent's settings (``policy="table"``)."""
        defaults = AgentConfig()
        env: dict[str, Any] = {
            name: getattr(defaults, name) if given[name] is None else given[name]
            for name in _AGENT_ARGS
        }
        conditional: dict[str, Any] = {name: given[name] for name in _CONDITIONS}
        moves = "axis" if given["moves"] is None else given["moves"]
        self._moves_kind = check_choice("moves", moves, ("axis", "joint"))
        # What the settings resolve to, for the conditions (validated right after).
        resolved = {**env, "moves": self._moves_kind}
        model_joint = given["model_joint"]
        resolved["model_joint"] = (
            self._CONDITIONAL_DEFAULTS["model_joint"] if model_joint is None else model_joint
        )
        in_use: dict[str, Any] = {}  # the conditional settings the others need
        for name, value in conditional.items():
            need, needed = _CONDITIONS[name]
            if not needed(resolved):
                if value is not None:
                    raise ValueError(
                        f"{name}={value!r} is unused: it needs {need}. Leave it out, or "
                        "change the setting it depends on."
                    )
                continue
            in_use[name] = self._CONDITIONAL_DEFAULTS[name] if value is None else value
        self._in_use = tuple(in_use)
        sizes = in_use.pop("step_sizes", (1,))
        self._step_sizes = check_int_tuple("step_sizes", sizes)
        self._config = AgentConfig(**env, **in_use)
        self._allow_stay = not self._config.walk_known  # see walk_known above
        warm_start = given["warm_start"]
        self._warm_start = load_table(warm_start) if warm_start is not None else None

    @staticmethod
    def seed_design_parameters() -> dict[str, Any]:
        """The original design's arguments: joint -1/0/+1 moves, negative-value reward,
        re-evaluation allowed, random restarts, no global model.

        Returns:
            Keyword arguments, in the style of
            :meth:`optuna.samplers.TPESampler.hyperopt_parameters`.

        Example:

            .. testcode::

                from optuna_qlearn import QLearningSampler

                sampler = QLearningSampler(**QLearningSampler.seed_design_parameters(), seed=0)
        """
        return dict(_SEED_DESIGN)

    @property
    def parameters(self) -> dict[str, Any]:
        """The keyword arguments that rebuild an equivalent sampler (JSON-serializable).

        ``type(sampler)(**sampler.parameters)`` learns and proposes as this one does,
        given the same ``seed``; ``seed``, ``independent_sampler``, ``warm_start`` and
        ``warn_independent_sampling`` are not included.
        """
        c = self._config
        common = {
            "n_bins": self._n_bins,
            "max_bins": self._max_bins,
            "stale_after": self._stale_after,
            "decision_timeout": self._decision_timeout,
        }
        if isinstance(c, PolicyConfig):
            learned = {name: getattr(c, name) for name in _SHARED}
            return {"policy": self._policy, **learned, **common}
        out: dict[str, Any] = {"policy": "table"}
        out.update((name, getattr(c, name)) for name in _AGENT_ARGS)
        out.update(moves=self._moves_kind, **common)
        for name in self._in_use:
            out[name] = list(self._step_sizes) if name == "step_sizes" else getattr(c, name)
        return out

    @property
    def policy(self) -> str | None:
        """``"default"``, ``"table"``, ``None`` (the untrained network) or a file path."""
        return self._policy

    @property
    def moves(self) -> str:
        """The kind of neighbour moves of the tabular agent: ``"axis"`` or ``"joint"``
        (``"policy"`` for a learned policy, whose actions are its own)."""
        return self._moves_kind

    @property
    def step_sizes(self) -> tuple[int, ...]:
        """Grid steps of an axis move."""
        return self._step_sizes

    @property
    def n_bins(self) -> int:
        """Grid points of a float parameter without ``step``."""
        return self._n_bins

    @property
    def max_bins(self) -> int:
        """Most grid points of an int or stepped-float parameter."""
        return self._max_bins

    @property
    def config(self) -> AgentConfig | PolicyConfig:
        """The agent's hyperparameters (:class:`PolicyConfig` for a learned policy)."""
        return self._config

    # ------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        state["_views"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def reseed_rng(self) -> None:
        self._rng.seed()
        self._independent_sampler.reseed_rng()

    # ------------------------------------------------------------ Optuna API
    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        self._raise_error_if_multi_objective(study)
        with self._lock:
            view = self._view(study)
            view.poll(study, trial.number)
            return view.search_space()

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        self._raise_error_if_multi_objective(study)
        if not search_space:
            return {}
        grid = self._grid(search_space)
        # Only other processes need ordering: threads of this one share the lock and
        # see each other's claims (and an in-memory storage has no other processes).
        timeout = 0.0 if isinstance(study._storage, InMemoryStorage) else self._decision_timeout
        delay = 0.001
        while True:
            with self._lock:
                view = self._view(study)
                view.poll(study, trial.number)
                replay = self._replay(study, view, grid, trial.number)
                # Other workers' earlier trials decide first (see undecided_before), so
                # concurrent workers never continue the same episode or pick the same point.
                if not timeout or not replay.undecided_before(trial.number, timeout):
                    agent = replay.agent
                    proposal: Proposal | PolicyProposal
                    if isinstance(agent, PolicyAgent):
                        proposal = agent.propose(self._rng, busy=replay.in_flight.values())
                    else:
                        proposal = agent.propose(
                            self._rng, replay.pick_head(), busy=replay.in_flight.values()
                        )
                    proposal = self._apply_fixed_params(grid, trial, proposal)
                    episode = self._episode_of(replay, proposal, trial.number)
                    record = Record(
                        proposal.state,
                        episode,
                        proposal.step,
                        proposal.parent,
                        tuple(proposal.path),
                    )
                    replay.claim(trial.number, record)
                    view.feed.add_own(trial.number)
                    break
            time.sleep(delay)  # outside the lock: other threads of this process go on
            delay = min(2 * delay, 0.02)
        self._write(study, trial, grid, replay, proposal, record)
        with self._lock:
            replay.stored(trial.number, record)
        return grid.decode(proposal.state)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        self._raise_error_if_multi_objective(study)
        if self._warn_independent_sampling and not param_distribution.single():
            # Warn only when the parameter falls outside a search space the finished
            # trials already share (conditional or dynamic), not while none has finished.
            with self._lock:
                shared = bool(self._view(study).search_space())
            if shared:
                _logger.warning(
                    _INDEPENDENT_SAMPLING_WARNING_TEMPLATE.format(
                        param_name=param_name,
                        trial_number=trial.number,
                        independent_sampler_name=type(self._independent_sampler).__name__,
                        sampler_name=type(self).__name__,
                        fallback_reason=(
                            "the parameter is not in the search space shared by all trials "
                            "(conditional or dynamic search space)"
                        ),
                    )
                )
        return self._independent_sampler.sample_independent(
            study, trial, param_name, param_distribution
        )

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        # Trials this process creates are never waited for as another worker's
        # undecided trials (e.g. several ``study.ask()`` before their first suggest).
        with self._lock:
            self._view(study).own.add(trial.number)
        self._independent_sampler.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        # Learning state is rebuilt from storage, never kept from this callback: it
        # is not called for crashed workers.
        self._independent_sampler.after_trial(study, trial, state, values)

    # ------------------------------------------------------------ internals
    def _grid(self, search_space: dict[str, BaseDistribution]) -> Grid:
        last = self._last_grid
        if last is not None and last[0] is search_space:
            # The view's unchanged search space (see _StudyView): no hashing of
            # distributions (a categorical's choices) on every trial.
            return last[1]
        key = tuple(sorted(search_space.items()))
        grid = self._grids.get(key)
        if grid is None:
            grid = self._grids[key] = Grid(search_space, self._n_bins, self._max_bins)
        self._last_grid = (search_space, grid)
        return grid

    def _view(self, study: Study) -> _StudyView:
        key = (id(study._storage), study._study_id)
        view = self._views.get(key)
        if view is None or view.storage() is not study._storage:
            view = self._views[key] = _StudyView(study._storage)
        return view

    def _replay(self, study: Study, view: _StudyView, grid: Grid, upto: int) -> StudyReplay:
        replay = view.replays.get(grid.signature)
        if replay is None:
            minimize = study.direction == optuna.study.StudyDirection.MINIMIZE
            agent: QLearningAgent | PolicyAgent
            if self._network is not None:
                agent = self._make_policy_agent(grid, minimize)
            else:
                moves = MoveSet(
                    grid.shape, self._moves_kind, self._step_sizes, grid.names, self._allow_stay
                )
                agent = self._make_agent(moves, minimize, grid)
                if self._warm_start is not None:
                    _load_into(agent, grid, self._warm_start)
            replay = view.replays[grid.signature] = StudyReplay(grid, agent, self._stale_after)
            replay.own = view.own  # shared: trials this process created or claimed
            # A new grid starts from the whole history once; the feed keeps it current.
            history = study._storage.get_all_trials(study._study_id, deepcopy=False)
            replay.update(study, [t for t in history if t.number < upto], upto)
        return replay

    def _make_policy_agent(self, grid: Grid, minimize: bool) -> PolicyAgent:
        """Create the learned-policy agent for one study and grid (DQNSampler's
        fine-tunes its networks)."""
        assert self._network is not None and isinstance(self._config, PolicyConfig)
        return PolicyAgent(
            self._network,
            self._config,
            grid.shape,
            grid.categorical.tolist(),
            grid.names,
            minimize=minimize,
        )

    def _make_agent(self, moves: MoveSet, minimize: bool, grid: Grid) -> QLearningAgent:
        """Create the tabular learner for one study and grid (subclasses swap the
        Q-function)."""
        assert isinstance(self._config, AgentConfig)
        return QLearningAgent(
            moves, self._config, minimize=minimize, categorical=grid.categorical.tolist()
        )

    @staticmethod
    def _apply_fixed_params(
        grid: Grid, trial: FrozenTrial, proposal: Proposal | PolicyProposal
    ) -> Proposal | PolicyProposal:
        fixed = trial.system_attrs.get("fixed_params") or {}
        fixed = {k: v for k, v in fixed.items() if k in grid.names}
        if not fixed:
            return proposal
        state = list(proposal.state)
        for i, axis in enumerate(grid.axes):
            if axis.name in fixed:
                state[i] = axis.encode(fixed[axis.name])
        if tuple(state) == proposal.state:
            return proposal
        # An enqueued point is not reached by a move: it starts an episode.
        return Proposal(tuple(state), None, True, 0, [], proposal.epsilon, None, False, "fixed")

    @staticmethod
    def _episode_of(replay: StudyReplay, proposal: Proposal | PolicyProposal, number: int) -> int:
        if proposal.parent is None:
            return number
        rec = replay.records.get(proposal.parent)
        return rec.episode if rec is not None else proposal.parent

    @staticmethod
    def _write(
        study: Study,
        trial: FrozenTrial,
        grid: Grid,
        replay: StudyReplay,
        proposal: Proposal | PolicyProposal,
        record: Record,
    ) -> None:
        storage = study._storage
        storage.set_trial_system_attr(trial._trial_id, KEY_RECORD, record_attrs(grid, record))
        if isinstance(proposal, PolicyProposal):
            attrs = proposal.decision.to_attrs()
            storage.set_trial_system_attr(trial._trial_id, KEY_DECISION, attrs)
            action = proposal.decision.label + (" (random)" if proposal.explored else "")
        elif proposal.path:
            agent = replay.agent
            assert isinstance(agent, QLearningAgent)  # only the tabular agent moves by paths
            action = " > ".join(agent.moves.label(a) for _, a in proposal.path)
            if proposal.explored:
                action += " (random)"  # a move of the epsilon branch
        else:
            action = proposal.reason  # an episode start, or a (partly) enqueued point
        # Few keys: each is one storage write (one transaction on an RDB).
        user = {
            "state": list(proposal.state),
            "action": action,
            "epsilon": round(proposal.epsilon, 6),
            "q": None if proposal.q_value is None else round(proposal.q_value, 6),
            "episode": record.episode,
            "step": record.step,
        }
        for key, value in user.items():
            storage.set_trial_user_attr(trial._trial_id, USER_ATTR_PREFIX + key, value)

    # ------------------------------------------------------------ policy views
    def agent(self, study: Study) -> tuple[Grid, QLearningAgent | PolicyAgent]:
        """The study's grid and its agent, brought up to date with every finished trial.

        Args:
            study: A study this sampler (or any worker with the same settings) ran.

        Returns:
            ``(grid, agent)``.

        Raises:
            ValueError: If the study has no trials with a common search space.
        """
        n = len(study._storage.get_all_trials(study._study_id, deepcopy=False))
        with self._lock:
            view = self._view(study)
            view.poll(study, n)
            space = view.search_space()
            if not space:
                raise ValueError(
                    f"Study {study.study_name!r} has no finished trials with a shared search "
                    "space; run some trials first."
                )
            grid = self._grid(space)
            replay = self._replay(study, view, grid, n)
        return grid, replay.agent

    def _table_agent(self, study: Study) -> tuple[Grid, QLearningAgent]:
        grid, agent = self.agent(study)
        if not isinstance(agent, QLearningAgent):
            raise ValueError(
                "The Q-table over grid points is the tabular agent's (policy='table'). This "
                f"sampler's policy is {self._policy!r}: its per-study table is "
                "correction_table(study)."
            )
        return grid, agent

    def correction_table(self, study: Study) -> dict[str, dict[str, float]]:
        """The learned policy's per-study Q-table: the correction of the network's
        Q-values per action kind, learned from this study's trial values.

        Args:
            study: The study.

        Returns:
            ``{kind: {"q": correction, "updates": n}}`` for each action kind.

        Raises:
            ValueError: With ``policy="table"`` (see :meth:`q_table`).
        """
        _, agent = self.agent(study)
        if not isinstance(agent, PolicyAgent):
            raise ValueError("policy='table' has no correction table; see q_table(study).")
        return {
            k: {"q": float(v), "updates": int(agent.updates[k])}
            for k, v in agent.correction.items()
        }

    def trial_rewards(self, study: Study) -> dict[int, float]:
        """The reward each trial's own move received, as the agent learned it.

        Args:
            study: The study.

        Returns:
            Trial number -> reward, for the trials reached by a move (episode starts,
            enqueued trials and other samplers' trials have none).
        """
        _, agent = self.agent(study)
        return dict(agent.step_rewards)

    def q_table(self, study: Study) -> list[dict[str, Any]]:
        """The learned Q-table in readable form.

        Args:
            study: The study.

        Returns:
            One entry per visited state, sorted by state:
            ``{"params": {...}, "state": [...], "q": {action: value}, "visits": {action: n}}``,
            with actions labelled like ``"K+1"`` or ``"stay"`` and only the actions
            valid at that state.
        """
        grid, agent = self._table_agent(study)
        labels = agent.moves.labels()
        rows = []
        for state in sorted(agent.table.q):
            mask = agent.moves.valid_mask(state)
            q, visits = agent.table.q[state], agent.table.visits[state]
            rows.append(
                {
                    "params": grid.decode(state),
                    "state": list(state),
                    "q": {labels[a]: float(q[a]) for a in np.flatnonzero(mask)},
                    "visits": {labels[a]: int(visits[a]) for a in np.flatnonzero(mask)},
                }
            )
        return rows

    def greedy_policy(self, study: Study) -> list[dict[str, Any]]:
        """The best action in every visited state.

        Args:
            study: The study.

        Returns:
            ``{"params", "action", "q", "next_params"}`` per visited state.
        """
        grid, agent = self._table_agent(study)
        out = []
        for state in sorted(agent.table.q):
            a = agent.greedy_action(state)
            out.append(
                {
                    "params": grid.decode(state),
                    "action": agent.moves.label(a),
                    "q": float(agent.table.q[state][a]),
                    "next_params": grid.decode(agent.moves.apply(state, a)),
                }
            )
        return out

    def save_q_table(self, study: Study, path: str | os.PathLike[str]) -> None:
        """Save the study's learned Q-table as ``.json`` or ``.npz`` (never pickle).

        Args:
            study: The study.
            path: Destination file; its suffix picks the format.
        """
        grid, agent = self._table_agent(study)
        axes = grid.to_dict()["axes"]
        save_table(path, SavedTable.from_table(agent.table, agent.moves.labels(), axes))


def _load_into(agent: QLearningAgent, grid: Grid, saved: SavedTable) -> None:
    """Warm-start ``agent`` with a saved table, matching states by values, actions by label."""
    names = [str(a["name"]) for a in saved.axes]
    if sorted(names) != sorted(grid.names):
        raise ValueError(
            f"The warm-start Q-table has parameters {sorted(names)}, the study {list(grid.names)}."
        )
    labels = agent.moves.labels()
    col = {lab: i for i, lab in enumerate(saved.actions)}
    cols = [col.get(lab) for lab in labels]
    if all(c is None for c in cols):
        raise ValueError("The warm-start Q-table shares no action with this sampler's moves.")
    saved_values = [list(a["values"]) for a in saved.axes]  # type: ignore[call-overload]
    for row_state, q_row, v_row in zip(saved.states, saved.q, saved.visits):
        params = {n: vals[int(i)] for n, vals, i in zip(names, saved_values, row_state)}
        try:
            state: State = grid.encode(params)
        except ValueError:
            continue  # a categorical value this study does not have: no state to match
        q = np.array(agent.table.get(state), dtype=float)
        visits = np.zeros(agent.moves.n_actions, dtype=np.int64)
        for a, c in enumerate(cols):
            if c is not None:
                q[a], visits[a] = q_row[c], v_row[c]
        agent.table.set(state, q, visits)
