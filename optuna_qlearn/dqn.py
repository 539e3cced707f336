"""``DQNSampler``: the learned policy with its Q-networks fine-tuned in the study by DQN.

By default (``policy="default"``) it is :class:`~optuna_qlearn.QLearningSampler`'s
learned policy, the same candidates, features and epsilon-greedy choice, with one
difference: the pre-trained networks keep learning within the study by double deep
Q-learning on the trials' transitions (replay memory, target network, Huber loss;
``optuna_qlearn/_core/dqn.py``), where QLearningSampler keeps them frozen.
``policy="table"`` is the earlier design: the tabular sampler's grid walk with a
network over encoded grid points for its Q-table. This module is the Optuna glue
only.

This module needs PyTorch (``pip install 'optuna-qlearn[torch]'``).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from optuna.samplers import BaseSampler
from optuna.study import Study

from optuna_qlearn._core.agent import AgentConfig
from optuna_qlearn._core.dqn import (
    DQNAgent,
    DQNConfig,
    FineTuneConfig,
    FineTunedPolicy,
    FineTunedPolicyAgent,
    StateEncoder,
)
from optuna_qlearn._core.learned import PolicyAgent, PolicyConfig
from optuna_qlearn._core.policy import PolicyEnsemble
from optuna_qlearn._core.qlearning import MoveSet
from optuna_qlearn._core.training import TrainingConfig
from optuna_qlearn._grid import Grid
from optuna_qlearn.sampler import QLearningSampler

#: The fine-tuning discount: pre-training's, so that ``Q`` stays in the currency the
#: networks learned (the discounted return of the rest of the study).
DEFAULT_POLICY_GAMMA = TrainingConfig.gamma
#: ``policy="table"``: the discount factor; 0 ranked best at 100 trials (0.2, 0.5, 0.9
#: were worse).
DEFAULT_GAMMA = 0.0
#: ``policy="table"``: the walk bound (``max_walk``): QLearningSampler's default of 4
#: is cheaper, but with the network's scores 8 did better (48 problems x 5 seeds x
#: 100 trials: 4 better in 65 studies, worse in 83; ``experiments.agent_variants.run
#: --sampler dqn``), and the network, not the walk, dominates DQNSampler's cost.
DEFAULT_MAX_WALK = 8
#: ``policy="table"``: the episode length: one trial. With ``gamma=0`` the network learns the
#: expected reward of a move, so episodes only decide where a move starts; starting
#: every trial afresh (from one of the best points, or from the global model) ranked
#: far better on the benchmark suite than continuing 5-trial episodes (docs/dqn.md).
DEFAULT_EPISODE_LENGTH = 1
#: ``policy="table"``: the global model: joint (``model_joint``, Optuna's multivariate
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


#: Network settings of ``policy="table"`` only (its network is built from scratch).
_TABLE_NETWORK_ARGS = ("hidden_sizes", "double_dqn")
#: Fine-tuning settings of the learned policy only.
_POLICY_NETWORK_ARGS = ("warmup", "optimizer")


class DQNSampler(QLearningSampler):
    """Sampler whose pre-trained Q-networks keep learning in the study by deep Q-learning.

    Every proposal is chosen as :class:`~optuna_qlearn.QLearningSampler` chooses it:
    the candidate actions of the current state (neighbour moves, moves from the best
    point, a restart near one of the best points, the density model's best candidates,
    a random unevaluated point), each valued by the Q-networks from its features, and
    epsilon-greedy over those values; nothing else picks a point. Where
    QLearningSampler keeps the shipped networks frozen, DQNSampler fine-tunes them on
    the study's own trials as in DQN (Mnih et al., 2015), double-DQN targets as in
    pre-training: each finished trial, after the first ``warmup``, is a transition
    (the chosen candidate's features, the reward the study observes, the candidates
    of the next state) pushed into a replay memory, and every network takes
    ``n_updates_per_step`` SGD steps on minibatches, minimizing the Huber loss
    between ``Q(x)`` and ``r + gamma * Q_target(x')`` (``x'``: the next candidate the
    network ranks first), with a target network synchronized every ``target_update``
    steps. The networks are rebuilt from the study's trials in every process, so
    workers sharing a storage and a resumed study get the same networks on CPU,
    whatever their ``seed`` (it only drives the proposals' randomness); within a
    process they are trained incrementally.
    :meth:`fine_tuned_policy` returns them, to save and start other studies from.

    ``policy="table"`` is the earlier design, kept as a baseline: the tabular
    sampler's environment (grid walk, restarts, the density model scoring untried
    moves) with ``Q(s, a)`` from an MLP over the encoded grid point.

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
        policy: ``"default"`` (the shipped pre-trained networks), ``None`` (one network
            at its initialization, then trained in the study alone), the path of a
            policy file (``str`` or ``os.PathLike``), or ``"table"`` (the earlier
            design).
        hidden_sizes: ``policy="table"``: hidden layer widths (default ``(64, 64)``; a
            policy's networks have the widths of its file).
        learning_rate: Step size (default 0.1 for SGD; Adam's ``1e-3`` with
            ``policy="table"``).
        batch_size: Transitions per minibatch (default 32).
        replay_capacity: Transitions kept in the replay memory, oldest dropped (default
            10,000).
        learning_starts: Transitions stored before the first gradient step (default 16;
            1 with ``policy="table"``).
        n_updates_per_step: Gradient steps per learned trial (default 2 per network; 4
            with ``policy="table"``).
        target_update: Gradient steps between target-network synchronizations
            (default 50; 10 with ``policy="table"``).
        tau: ``1``: copy the network into the target network (hard update, default);
            ``tau < 1``: ``target += tau * (network - target)`` (soft update).
        double_dqn: ``policy="table"``: use the double-DQN target (default ``False``;
            a policy is always fine-tuned with it, as it was pre-trained).
        max_grad_norm: Gradient-norm clipping threshold (``None``: none; default 10).
        warmup: Learned policy: trials not learned from at the start of a study
            (default 10: the observable reward of the first trials is about four
            times the pre-training reward, later ones are on its scale).
        optimizer: Learned policy: ``"sgd"`` (default) or ``"adam"`` (see
            :class:`~optuna_qlearn._core.dqn.FineTuneConfig`: with Adam the fine-tuning
            made the policy worse on the benchmark suite). ``policy="table"`` trains
            with Adam.
        device: ``"cpu"`` (default; deterministic with ``seed``) or ``"cuda"``.
        environment: The other settings, as keyword arguments: every argument of
            :class:`~optuna_qlearn.QLearningSampler` but ``alpha`` (the networks learn
            at ``learning_rate``) and ``warm_start``, with the same meaning and checks.
            For a learned policy ``gamma`` is the fine-tuning discount (default 0.97,
            pre-training's). With ``policy="table"`` four defaults differ from
            QLearningSampler's: ``gamma=0``, ``episode_length=1``, ``max_walk=8`` and
            ``model_joint=True`` (``docs/dqn.md``). With ``policy="table"``, workers
            sharing a study must use the same ``seed``: the initial weights and the
            minibatches depend on it (a learned policy's fine-tuning does not).

    Raises:
        TypeError: For an unknown argument (``alpha`` included) or one of the wrong type.
        ValueError: For an out-of-range argument, one the other settings leave unused
            (``hidden_sizes`` with a learned policy, ``warmup`` with ``"table"``...),
            or ``device="cuda"`` without CUDA.
    """

    def __init__(
        self,
        *,
        policy: str | os.PathLike[str] | None = "default",
        hidden_sizes: Sequence[int] | None = None,
        learning_rate: float | None = None,
        batch_size: int = DQNConfig.batch_size,
        replay_capacity: int = DQNConfig.replay_capacity,
        learning_starts: int | None = None,
        n_updates_per_step: int | None = None,
        target_update: int | None = None,
        tau: float = DQNConfig.tau,
        double_dqn: bool | None = None,
        max_grad_norm: float | None = DQNConfig.max_grad_norm,
        warmup: int | None = None,
        optimizer: str | None = None,
        device: str = DQNConfig.device,
        **environment: Unpack[_Environment],
    ) -> None:
        unknown = sorted(set(environment) - _ENVIRONMENT_ARGS)
        if unknown:
            hint = _NOT_FOR_THE_NETWORK.get(unknown[0])
            why = f" ({hint})" if hint else ""
            raise TypeError(f"DQNSampler got an unexpected keyword argument {unknown[0]!r}{why}.")
        given: dict[str, Any] = {
            "hidden_sizes": hidden_sizes,
            "double_dqn": double_dqn,
            "warmup": warmup,
            "optimizer": optimizer,
        }
        table = policy == "table"
        for name in _POLICY_NETWORK_ARGS if table else _TABLE_NETWORK_ARGS:
            if given[name] is not None:
                needs = "a learned policy (not policy='table')" if table else "policy='table'"
                raise ValueError(f"{name}={given[name]!r} is a setting of {needs}.")
        shared: dict[str, Any] = {
            "batch_size": batch_size,
            "replay_capacity": replay_capacity,
            "tau": tau,
            "max_grad_norm": max_grad_norm,
            "device": device,
        }
        differing = {
            "learning_rate": learning_rate,
            "learning_starts": learning_starts,
            "n_updates_per_step": n_updates_per_step,
            "target_update": target_update,
        }
        shared.update((k, v) for k, v in differing.items() if v is not None)
        self._dqn: DQNConfig | FineTuneConfig
        if table:
            environment.setdefault("gamma", DEFAULT_GAMMA)
            environment.setdefault("episode_length", DEFAULT_EPISODE_LENGTH)
            extra: dict[str, Any] = {
                k: v for k, v in given.items() if k in _TABLE_NETWORK_ARGS and v is not None
            }
            self._dqn = DQNConfig(**shared, **extra)
        else:
            environment.setdefault("gamma", DEFAULT_POLICY_GAMMA)
            tuning: dict[str, Any] = {
                k: v for k, v in given.items() if k in _POLICY_NETWORK_ARGS and v is not None
            }
            self._dqn = FineTuneConfig(**shared, **tuning)
        super().__init__(policy=policy, **environment)

    @property
    def parameters(self) -> dict[str, Any]:
        """The keyword arguments that rebuild an equivalent sampler (JSON-serializable):
        the environment's (see :attr:`QLearningSampler.parameters`, without ``alpha``)
        and the network's."""
        out = {k: v for k, v in super().parameters.items() if k != "alpha"}
        net = dataclasses.asdict(self._dqn)
        if isinstance(self._dqn, DQNConfig):
            net["hidden_sizes"] = list(self._dqn.hidden_sizes)
        return {**out, **net}

    _CONDITIONAL_DEFAULTS: ClassVar[dict[str, Any]] = {
        **QLearningSampler._CONDITIONAL_DEFAULTS,
        "max_walk": DEFAULT_MAX_WALK,
        "model_joint": DEFAULT_MODEL_JOINT,
    }

    @property
    def dqn_config(self) -> DQNConfig | FineTuneConfig:
        """The network and training hyperparameters (:class:`FineTuneConfig` for a
        learned policy)."""
        return self._dqn

    def fine_tuned_policy(self, study: Study) -> PolicyEnsemble:
        """The networks as fine-tuned on ``study``'s finished trials so far.

        Save it (``.save(path)``) and pass the file as ``policy=`` to start another
        study of the same kind from what this one learned.

        Args:
            study: A study this sampler samples (its trials are replayed if needed).

        Raises:
            ValueError: With ``policy="table"`` (no policy networks), or before the
                study has a grid (no trial yet).
        """
        if not isinstance(self._dqn, FineTuneConfig):
            raise ValueError("policy='table' has no policy networks to fine-tune.")
        _, agent = self.agent(study)
        assert isinstance(agent, FineTunedPolicyAgent)
        return agent.tuner.ensemble()

    def _make_policy_agent(self, grid: Grid, minimize: bool) -> PolicyAgent:
        # No seed: the networks are a function of the stored trials alone, so workers
        # with different seeds share them.
        assert self._network is not None and isinstance(self._config, PolicyConfig)
        assert isinstance(self._dqn, FineTuneConfig)
        tuner = FineTunedPolicy(self._network, self._dqn, self._config.gamma)
        return FineTunedPolicyAgent(
            tuner,
            self._config,
            grid.shape,
            grid.categorical.tolist(),
            grid.names,
            minimize=minimize,
        )

    def _make_agent(self, moves: MoveSet, minimize: bool, grid: Grid) -> DQNAgent:
        encoder = StateEncoder(grid.shape, grid.categorical.tolist())
        assert isinstance(self._config, AgentConfig) and isinstance(self._dqn, DQNConfig)
        seed = 0 if self._seed is None else int(self._seed)
        return DQNAgent(moves, self._config, encoder, self._dqn, minimize=minimize, seed=seed)
