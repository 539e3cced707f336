"""LR-schedule study on shakespeare_char: warmup+cosine baseline vs Q-learning LR controllers.

Part 1 (``--part table``) reproduces the seed experiment's table with the CPU config: the
baseline schedule (linear warmup, cosine decay) and Q-controller runs 1-4 (then variants
5-27: other rewards, learned tables, decisions on a control batch, Monte-Carlo returns
against the base schedule, ablations, and the training phase in the state), each over
``--seeds`` training seeds (confirmation rows: fresh seeds 5-19; runs 26-27: selection on
seeds 150-159, then a pre-registered final evaluation on fresh seeds 20-29), with
final_train_loss, best_val_loss, total_train_time and inference tokens/s (mean ± sd over
seeds), the per-seed paired difference of best_val_loss against the baseline, and the plots
``train_loss_shakespeare_char.png``, ``val_loss_shakespeare_char.png`` and
``lr_shakespeare_char.png``. Every Q-controller really drives the optimizer: the plotted LR is
read from ``optimizer.param_groups`` at each step.

Part 2 (``--part study``) tunes the controller's parameters (alpha, gamma, epsilon, action
set, reward mode) with Optuna: QLearningSampler against TPE at an equal number of trials.

Runs are saved after each training run to ``experiments/lr_schedule/results/
lr_runs_<corpus>.json`` and a rerun skips what is already there (``--fresh`` starts over).
``--part report`` rewrites ``results/lr_schedule.md`` and the plots from the stored JSON
alone (no training). The controller is :class:`~experiments.lr_schedule.controller.
ExperimentLRScheduler`: the library's, plus the reward modes and epsilon decay that only
these runs use.

Usage (from the repository root)::

    python -m experiments.lr_schedule.run --part report   # tables and plots from the JSON
    python -m experiments.lr_schedule.run --part table --seeds 5
    python -m experiments.lr_schedule.run --part table --runs NAME [NAME ...]  # some rows only
    python -m experiments.lr_schedule.run --part study --trials 12
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from experiments.lr_schedule.controller import ExperimentLRObjective, ExperimentLRScheduler
from optuna_qlearn.objectives.chargpt import GPTConfig, SchedulerFactory, train_chargpt
from optuna_qlearn.objectives.text_data import CharCorpus, load_corpus

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "shakespeare_char"

#: The controller every Q run shares unless it says otherwise.
Q_DEFAULTS: dict[str, Any] = {
    "actions": (0.5, 1.0, 2.0),
    "min_multiplier": 0.125,
    "max_multiplier": 8.0,
    "alpha": 0.5,
    "gamma": 0.9,
    "epsilon": 0.1,
    "reward": "neg_val_loss",
}
#: Seeds of the training runs that pre-train the warm-started table of run 6.
PRETRAIN_SEEDS = (100, 101)
#: Seeds of the table-learning runs of run 8 (disjoint from the evaluation seeds 0..).
TABLE_SEEDS = (100, 101, 102, 103, 104)
#: Seeds of the base-schedule runs whose mean control-loss curve is the reference of a
#: reward ``"improvement_vs_reference"`` (disjoint from the evaluation seeds).
REFERENCE_SEEDS = (100, 101, 102, 103, 104)
#: Seeds of the table-learning runs of the Monte-Carlo controllers (runs 20-).
MC_TABLE_SEEDS = tuple(range(100, 110))
#: Run 24: the same chain of table-learning runs, continued on seeds 110-119.
MC_TABLE_SEEDS_20 = tuple(range(100, 120))
#: Fresh evaluation seeds of the confirmation rows (never used before the choice of variant).
CONFIRM_SEEDS = (5, 6, 7, 8, 9)
#: Fresh seeds of the second confirmation (run 24, chosen after run 20's confirmation).
CONFIRM2_SEEDS = (10, 11, 12, 13, 14)
#: Fresh seeds of the third confirmation (run 25, chosen after run 24's confirmation).
CONFIRM3_SEEDS = (15, 16, 17, 18, 19)
#: Learning seeds of the table of runs 26-27 (40 chained runs; disjoint from every other use).
PHASE_TABLE_SEEDS = tuple(range(200, 240))
#: Seeds on which runs 26 and 27 are compared, to choose the primary variant (never 0-29).
SELECT_SEEDS = tuple(range(150, 160))
#: Fresh seeds of the pre-registered final evaluation (used by nothing before it).
FINAL_SEEDS = tuple(range(20, 30))
#: An action set symmetric in log space (ties between x2/3 and x1.5 are broken at random).
SYM_ACTIONS = (2 / 3, 1.0, 1.5)
#: Multiplier bounds of runs 14-15: within [1/2, 2], one LR level per factor sqrt(2).
BOUNDED: dict[str, Any] = {"min_multiplier": 0.5, "max_multiplier": 2.0, "n_lr_levels": 5}
#: The controller of runs 7-9 (decisions every 4 iterations on a control batch).
CTL_KWARGS: dict[str, Any] = {
    "reward": "improvement_delta",
    "gamma": 0.5,
    "actions": (0.67, 1.0, 1.5),
}

#: The controller of run 16 (symmetric actions, reward improvement_ema), the base of runs 18-.
EMA_KWARGS: dict[str, Any] = {**CTL_KWARGS, "actions": SYM_ACTIONS, "reward": "improvement_ema"}

#: The Monte-Carlo controller of runs 20-: whole-run returns against the base schedule.
MC_KWARGS: dict[str, Any] = {
    **BOUNDED,
    "actions": SYM_ACTIONS,
    "reward": "improvement_vs_reference",
    "gamma": 1.0,
    "n_step": 40,
    "alpha": 0.3,
    "epsilon": 0.0,
}

#: The controller of runs 26-27, fixed before any of their runs: the state is the training
#: phase (4 quarters of the run) and the LR level only (one trend bucket), Monte-Carlo returns
#: (gamma 1, n_step to the end of the 10 decisions) of improvement_vs_reference, and sample
#: averages (step size max(1/n, 0.05)) instead of alpha 0.3, to average out run-to-run noise.
PHASE_KWARGS: dict[str, Any] = {
    "actions": SYM_ACTIONS,
    "reward": "improvement_vs_reference",
    "trend_thresholds": (),
    "n_phases": 4,
    "gamma": 1.0,
    "n_step": 10,
    "alpha": 0.05,
    "sample_average": True,
    "epsilon": 0.0,
}
#: Run 26: multiplier within [1/2, 2] (5 levels); run 27: within [1, 2] (3 levels).
PHASE_WIDE: dict[str, Any] = {**PHASE_KWARGS, **BOUNDED}
PHASE_FLOOR1: dict[str, Any] = {
    **PHASE_KWARGS,
    "min_multiplier": 1.0,
    "max_multiplier": 2.0,
    "n_lr_levels": 3,
}
#: What the table-learning runs of runs 26-27 share.
PHASE_RUN: dict[str, Any] = {
    "control_interval": 16,
    "warm_start": True,
    "pretrain_seeds": PHASE_TABLE_SEEDS,
    "pretrain_overrides": {"epsilon": 0.3},
    "reference": True,
    "paired_reference": True,
}
PHASE_WIDE_DESC = (
    "training phase in the state: (phase, LR level) with 4 phases (quarters of the 160 "
    "iterations) and one trend bucket; decisions every 16 iterations on the control batches "
    "(10 per run), actions x2/3, x1, x1.5, multiplier within [1/2, 2] (5 levels); Monte-Carlo "
    "returns (gamma 1, n_step 10: to the end of the run) of improvement_vs_reference, where "
    "each table-learning run's reference is the base schedule's control-loss curve on the same "
    "seed (paired: same initialization and batches), and sample-average updates (step size "
    "max(1/n, 0.05)); table learned over 40 chained runs on seeds 200-239 (eps 0.3), then "
    "greedy (eps 0) and frozen on the evaluation seeds (with n_step 10 no update falls before "
    "the end of a run)"
)
PHASE_FLOOR1_DESC = (
    "run 26 with the multiplier within [1, 2] (3 levels): the LR never goes below the "
    "baseline's; own table (seeds 200-239, eps 0.3)"
)


@dataclasses.dataclass
class Run:
    """One row of the table."""

    name: str
    description: str
    q_kwargs: dict[str, Any] | None  # None = the baseline schedule
    warm_start: bool = False
    lr_scale: float = 1.0  # reference rows: the baseline at another LR
    #: Steps between the controller's decisions on a small control batch (0: at evaluations).
    control_interval: int = 0
    #: Seeds of the table-learning runs of a warm start (default: ``PRETRAIN_SEEDS``).
    pretrain_seeds: tuple[int, ...] = ()
    #: Controller settings overridden in the table-learning runs (default: eps 1.0).
    pretrain_overrides: dict[str, Any] | None = None
    #: Which table the row belongs to: ``"first"`` (runs 1-6), ``"second"`` (runs 7-17),
    #: ``"third"`` (runs 18-) or ``"confirm"`` (fresh seeds); ``"both"`` for the baseline and
    #: the reference, shown in every table but the confirmation.
    group: str = "first"
    #: Training seeds of the row (default: ``0 .. --seeds - 1``).
    eval_seeds: tuple[int, ...] | None = None
    #: Reward against the base schedule: ``reference_losses`` is the mean control-loss curve
    #: of the base schedule alone on ``REFERENCE_SEEDS`` (never an evaluation seed).
    reference: bool = False
    #: Take the learned table (and its table-learning runs) from this row: a confirmation row
    #: uses the very table of the row it confirms.
    table_from: str | None = None
    #: Table-learning runs take as reference the base schedule's control-loss curve on their
    #: own seed (paired), instead of the mean curve of ``REFERENCE_SEEDS``.
    paired_reference: bool = False


RUNS: list[Run] = [
    Run("baseline", "linear warmup + cosine decay (LambdaLR), LR 2e-3 -> 2e-4", None, group="both"),
    Run(
        "run1_qlearn",
        "Q-controller on top of warmup+cosine, baseline's initial LR, reward -val_loss, eps 0.1",
        {},
    ),
    Run(
        "run2_initial_lr",
        "run 1 with a different initial LR: multiplier 0.5 (LR 1e-3)",
        {"initial_multiplier": 0.5, "min_multiplier": 0.0625, "max_multiplier": 4.0},
    ),
    Run(
        "run3_improvement",
        "run 1 with reward = relative val-loss improvement (%)",
        {"reward": "improvement"},
    ),
    Run(
        "run4_eps_decay",
        "run 3 with epsilon decaying 0.5 -> 0.02 over 10 decisions",
        {
            "reward": "improvement",
            "epsilon": 0.5,
            "epsilon_end": 0.02,
            "epsilon_decay_decisions": 10,
        },
    ),
    Run(
        "run5_delta",
        "reward = change of the relative improvement across the decision "
        "(improvement_delta), gamma 0.5, eps 0.1",
        {"reward": "improvement_delta", "gamma": 0.5},
    ),
    Run(
        "run6_warm_start",
        "run 5 with its Q-table warm-started from 2 pure-exploration (eps 1.0) pre-training "
        "runs on seeds 100, 101",
        {"reward": "improvement_delta", "gamma": 0.5},
        warm_start=True,
    ),
    Run(
        "run7_ctl4",
        "more decisions at equal iterations: the controller decides every 4 iterations (40 "
        "decisions) on the loss of 2 fixed control batches of the validation split (not the "
        "reported evaluation batches); reward improvement_delta, gamma 0.5, eps 0.1, actions "
        "x0.67, x1, x1.5",
        CTL_KWARGS,
        control_interval=4,
        group="second",
    ),
    Run(
        "run8_ctl4_warm",
        "run 7 with a learned table: the table is learned over 5 chained runs on seeds "
        "100-104 (eps 0.3) and loaded for the evaluation runs on seeds 0-4, which act greedily "
        "(eps 0) and keep updating it within the run",
        {**CTL_KWARGS, "epsilon": 0.0},
        control_interval=4,
        warm_start=True,
        pretrain_seeds=TABLE_SEEDS,
        pretrain_overrides={"epsilon": 0.3},
        group="second",
    ),
    Run(
        "run9_ctl4_optimistic",
        "run 7 with an optimistic prior for raising the LR: the x1.5 column of the Q-table "
        "starts at +1 (the others at 0), so the agent tries raising first and keeps doing so "
        "only while the Bellman updates support it",
        {**CTL_KWARGS, "q_init_by_action": (0.0, 0.0, 1.0)},
        control_interval=4,
        group="second",
    ),
    Run(
        "run10_ctl4_sym",
        "run 7 with the symmetric action set x2/3, x1, x1.5, so that ties in unseen states "
        "are broken at random instead of towards x0.67 (|log 0.67| < |log 1.5|)",
        {**CTL_KWARGS, "actions": SYM_ACTIONS},
        control_interval=4,
        group="second",
    ),
    Run(
        "run11_ctl4_improvement_warm",
        "decisions every 4 iterations on the control batch, reward = relative improvement "
        "(%), gamma 0.5, actions x2/3, x1, x1.5; table learned over 5 chained runs on seeds "
        "100-104 (eps 0.3), then loaded for the evaluation seeds 0-4, greedy (eps 0)",
        {**CTL_KWARGS, "actions": SYM_ACTIONS, "reward": "improvement", "epsilon": 0.0},
        control_interval=4,
        warm_start=True,
        pretrain_seeds=TABLE_SEEDS,
        pretrain_overrides={"epsilon": 0.3},
        group="second",
    ),
    Run(
        "run12_ctl4_improvement",
        "run 11 without the learned table: a fresh table per run, eps 0.1",
        {**CTL_KWARGS, "actions": SYM_ACTIONS, "reward": "improvement"},
        control_interval=4,
        group="second",
    ),
    Run(
        "run13_ctl4_sym_warm",
        "run 10 with a learned table: learned over 5 chained runs on seeds 100-104 (eps 0.3), "
        "then loaded for the evaluation seeds 0-4, greedy (eps 0)",
        {**CTL_KWARGS, "actions": SYM_ACTIONS, "epsilon": 0.0},
        control_interval=4,
        warm_start=True,
        pretrain_seeds=TABLE_SEEDS,
        pretrain_overrides={"epsilon": 0.3},
        group="second",
    ),
    Run(
        "run14_ctl4_sym_bounded",
        "run 10 with the multiplier kept within [1/2, 2] (5 LR levels, one per factor "
        "sqrt 2) instead of [1/8, 8]",
        {**CTL_KWARGS, **BOUNDED, "actions": SYM_ACTIONS},
        control_interval=4,
        group="second",
    ),
    Run(
        "run15_ctl4_sym_bounded_warm",
        "run 14 with a learned table (seeds 100-104, eps 0.3; evaluation seeds 0-4, eps 0)",
        {**CTL_KWARGS, **BOUNDED, "actions": SYM_ACTIONS, "epsilon": 0.0},
        control_interval=4,
        warm_start=True,
        pretrain_seeds=TABLE_SEEDS,
        pretrain_overrides={"epsilon": 0.3},
        group="second",
    ),
    Run(
        "run16_ctl4_ema",
        "run 10 with reward improvement_ema: the relative improvement minus an exponential "
        "moving average (decay 0.7) of the earlier improvements",
        {**CTL_KWARGS, "actions": SYM_ACTIONS, "reward": "improvement_ema"},
        control_interval=4,
        group="second",
    ),
    Run(
        "run17_ctl4_ema_warm",
        "run 16 with a learned table (seeds 100-104, eps 0.3; evaluation seeds 0-4, eps 0)",
        {**CTL_KWARGS, "actions": SYM_ACTIONS, "reward": "improvement_ema", "epsilon": 0.0},
        control_interval=4,
        warm_start=True,
        pretrain_seeds=TABLE_SEEDS,
        pretrain_overrides={"epsilon": 0.3},
        group="second",
    ),
    Run(
        "run18_ctl4_ema_init2",
        "run 16 started at multiplier 2 (LR 4e-3, the 2x reference's LR) instead of 1",
        {**EMA_KWARGS, "initial_multiplier": 2.0},
        control_interval=4,
        group="third",
    ),
    Run(
        "run19_ctl4_ema_init1.5",
        "run 16 started at multiplier 1.5 (LR 3e-3)",
        {**EMA_KWARGS, "initial_multiplier": 1.5},
        control_interval=4,
        group="third",
    ),
    Run(
        "run20_mc_ref_warm",
        "Monte-Carlo returns against the base schedule: reward improvement_vs_reference (the "
        "relative improvement minus the base schedule's over the same 4 iterations, its "
        "control-loss curve averaged over seeds 100-104), gamma 1 and n_step 40, so each "
        "decision is credited with what the run gains on the base schedule from then to the "
        "end; multiplier within [1/2, 2], actions x2/3, x1, x1.5, alpha 0.3; table learned "
        "over 10 chained runs on seeds 100-109 (eps 0.3), then greedy (eps 0) on the "
        "evaluation seeds",
        MC_KWARGS,
        control_interval=4,
        warm_start=True,
        pretrain_seeds=MC_TABLE_SEEDS,
        pretrain_overrides={"epsilon": 0.3},
        reference=True,
        group="third",
    ),
    Run(
        "run21_onestep_ref_warm",
        "ablation of run 20's horizon: the same reward, bounds, actions and learned table "
        "(seeds 100-109, eps 0.3), but one-step targets with gamma 0.5 as in runs 7-17",
        {**MC_KWARGS, "n_step": 1, "gamma": 0.5},
        control_interval=4,
        warm_start=True,
        pretrain_seeds=MC_TABLE_SEEDS,
        pretrain_overrides={"epsilon": 0.3},
        reference=True,
        group="third",
    ),
    Run(
        "run22_mc_improvement_warm",
        "ablation of run 20's counterfactual: Monte-Carlo returns of the plain relative "
        "improvement (reward improvement, no reference curve), otherwise run 20",
        {**MC_KWARGS, "reward": "improvement"},
        control_interval=4,
        warm_start=True,
        pretrain_seeds=MC_TABLE_SEEDS,
        pretrain_overrides={"epsilon": 0.3},
        group="third",
    ),
    Run(
        "run23_random_bounded",
        "control for run 20's bounds: no learning, a random walk (eps 1) of x2/3, x1, x1.5 "
        "within [1/2, 2]",
        {**MC_KWARGS, "epsilon": 1.0, "reward": "improvement", "n_step": 1},
        control_interval=4,
        group="third",
    ),
    Run(
        "run24_mc_ref_warm20",
        "run 20 with twice the table-learning: its chained table-learning runs continue on "
        "seeds 110-119 (20 runs in all, eps 0.3), then greedy (eps 0) on the evaluation seeds",
        MC_KWARGS,
        control_interval=4,
        warm_start=True,
        pretrain_seeds=MC_TABLE_SEEDS_20,
        pretrain_overrides={"epsilon": 0.3},
        reference=True,
        table_from="run20_mc_ref_warm",
        group="third",
    ),
    Run(
        "run25_mc_ref_ctl16_warm",
        "run 20 with a quarter of the decisions: every 16 iterations (10 per run, n_step 10), "
        "so that each decision's return carries less noise from the other decisions; own "
        "reference curve and table (seeds 100-104 and 100-109)",
        {**MC_KWARGS, "n_step": 10},
        control_interval=16,
        warm_start=True,
        pretrain_seeds=MC_TABLE_SEEDS,
        pretrain_overrides={"epsilon": 0.3},
        reference=True,
        group="third",
    ),
    Run(
        "ref_baseline_1.5x_lr",
        "reference, not a controller: the baseline schedule at 1.5x the LR (3e-3 -> 3e-4)",
        None,
        lr_scale=1.5,
        group="third",
    ),
    Run(
        "ref_baseline_2x_lr",
        "reference, not a controller: the baseline schedule at twice the LR (4e-3 -> 4e-4)",
        None,
        lr_scale=2.0,
        group="both",
    ),
]


def on_seeds(source: str, name: str, description: str, group: str, seeds: tuple[int, ...]) -> Run:
    """Row ``source`` again on other seeds, in another table: the same settings and, for a
    controller with a learned table, the very table ``source`` learned (never re-learned)."""
    run = next(r for r in RUNS if r.name == source)
    table_from = (run.table_from or run.name) if run.warm_start else None
    return dataclasses.replace(
        run, name=name, description=description, group=group, eval_seeds=seeds,
        table_from=table_from,
    )  # fmt: skip


def on_group(group: str, seeds: tuple[int, ...], rows: dict[str, str]) -> list[Run]:
    """:func:`on_seeds` of each ``source -> description`` in ``rows``, all in table
    ``group`` on ``seeds``, each named ``{source}_{group}``."""
    return [on_seeds(src, f"{src}_{group}", desc, group, seeds) for src, desc in rows.items()]


RUNS += on_group("confirm", CONFIRM_SEEDS, {
    "baseline": "the baseline on fresh seeds 5-9",
    "run20_mc_ref_warm":
        "run 20 on fresh seeds 5-9, with the very table it learned on seeds 100-109",
    "run24_mc_ref_warm20":
        "run 24 on seeds 5-9 (already seen with run 20 when run 24 was designed)",
    "ref_baseline_2x_lr": "the 2x-LR reference on fresh seeds 5-9",
})  # fmt: skip
RUNS += on_group("confirm2", CONFIRM2_SEEDS, {
    "baseline": "the baseline on fresh seeds 10-14",
    "run24_mc_ref_warm20":
        "run 24 on fresh seeds 10-14, with the very table it learned on seeds 100-119",
    "run20_mc_ref_warm":
        "run 20 on fresh seeds 10-14, with the very table it learned on seeds 100-109",
    "ref_baseline_2x_lr": "the 2x-LR reference on fresh seeds 10-14",
})  # fmt: skip
RUNS += on_group("confirm3", CONFIRM3_SEEDS, {
    "baseline": "the baseline on fresh seeds 15-19",
    "run25_mc_ref_ctl16_warm":
        "run 25 on fresh seeds 15-19, with the very table it learned on seeds 100-109",
    "ref_baseline_2x_lr": "the 2x-LR reference on fresh seeds 15-19",
})  # fmt: skip
RUNS += [
    *on_group("select", SELECT_SEEDS,
              {"baseline": "the baseline on the selection seeds 150-159"}),
    Run(
        "run26_phase_mc_paired",
        PHASE_WIDE_DESC + "; here on the selection seeds 150-159",
        PHASE_WIDE,
        **PHASE_RUN,
        group="select",
        eval_seeds=SELECT_SEEDS,
    ),
    Run(
        "run27_phase_mc_paired_floor1",
        PHASE_FLOOR1_DESC + "; here on the selection seeds 150-159",
        PHASE_FLOOR1,
        **PHASE_RUN,
        group="select",
        eval_seeds=SELECT_SEEDS,
    ),
    Run(
        "control_random_floor1_select",
        "control for run 27's bounds, not a candidate: no learning, a random walk (eps 1) of "
        "x2/3, x1, x1.5 within [1, 2], decisions every 16 iterations, on seeds 150-159",
        {**PHASE_FLOOR1, "epsilon": 1.0, "reward": "improvement", "n_step": 1},
        control_interval=16,
        group="select",
        eval_seeds=SELECT_SEEDS,
    ),
]  # fmt: skip
RUNS += on_group("final", FINAL_SEEDS, {
    "baseline": "the baseline on the fresh seeds 20-29",
    "run26_phase_mc_paired":
        "run 26 on the fresh seeds 20-29, with the very table it learned on seeds 200-239",
    "run27_phase_mc_paired_floor1":
        "run 27 on the fresh seeds 20-29, with the very table it learned on seeds 200-239",
    "ref_baseline_2x_lr": "the 2x-LR reference on the fresh seeds 20-29",
})  # fmt: skip


def q_factory(
    kwargs: dict[str, Any],
    seed: int,
    q_table: torch.Tensor | None,
    made: list[ExperimentLRScheduler] | None = None,
    q_visits: torch.Tensor | None = None,
) -> SchedulerFactory:
    """Factory of a Q-controller with the run's settings over the config's warmup+cosine.

    Every scheduler it builds is appended to ``made`` (if given), so the caller can end the
    episode and read the learned table. A controller with phases gets ``total_steps =
    config.max_iters`` unless the settings give it.
    """
    merged = {**Q_DEFAULTS, **kwargs}
    by_action = merged.pop("q_init_by_action", None)

    def factory(optimizer: torch.optim.Optimizer, config: GPTConfig) -> ExperimentLRScheduler:
        extra: dict[str, Any] = {}
        if merged.get("n_phases", 1) > 1 and merged.get("total_steps") is None:
            extra["total_steps"] = config.max_iters
        sched = ExperimentLRScheduler(
            optimizer, base_lr_fn=config.base_lr_fn(), seed=seed, q_table=q_table,
            q_visits=q_visits, **merged, **extra,
        )  # fmt: skip
        if by_action is not None and q_table is None:
            # A per-action prior: every state starts with these Q-values.
            sched.q_table[:] = torch.tensor(by_action, dtype=torch.float64)
        if made is not None:
            made.append(sched)
        return sched

    return factory


def _mean_sd(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0


def _load(path: Path) -> dict[str, Any]:
    if path.is_file():
        return dict(json.loads(path.read_text()))
    return {}


def _save(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def _one_run(
    corpus: CharCorpus,
    config: GPTConfig,
    run: Run,
    seed: int,
    q_table: torch.Tensor | None = None,
    q_visits: torch.Tensor | None = None,
) -> tuple[dict[str, Any], torch.Tensor | None, torch.Tensor | None]:
    made: list[ExperimentLRScheduler] = []
    schedule: SchedulerFactory | str = (
        "baseline"
        if run.q_kwargs is None
        else q_factory(run.q_kwargs, seed, q_table, made, q_visits)
    )
    if run.lr_scale != 1.0:
        config = dataclasses.replace(
            config,
            learning_rate=config.learning_rate * run.lr_scale,
            min_lr=config.min_lr * run.lr_scale,
        )
    res = train_chargpt(
        corpus, config, schedule=schedule, seed=seed, control_interval=run.control_interval
    )
    out = res.to_dict()
    table = visits = None
    if run.q_kwargs is not None and res.scheduler_state is not None:
        # End the episode: n-step updates still waiting are done (none with n_step=1).
        made[-1].end_episode()
        table = made[-1].q_table.clone()
        visits = made[-1].q_visits.clone()
        out["multipliers"] = [h["multiplier"] for h in res.scheduler_state["history"]]
        out["actions"] = [h["action"] for h in res.scheduler_state["history"]]
        out["states"] = [h["state"] for h in res.scheduler_state["history"]]
    return out, table, visits


def run_table(args: argparse.Namespace, corpus: CharCorpus, config: GPTConfig) -> dict[str, Any]:
    """Train every run on every seed (resuming from the JSON file) and return the data."""
    path = RESULTS / f"lr_runs_{corpus.name}.json"
    data = {} if args.fresh else _load(path)
    if data.get("config") not in (None, dataclasses.asdict(config)):
        print(f"{path} holds another config; pass --fresh to start over", file=sys.stderr)
        raise SystemExit(2)
    data["config"] = dataclasses.asdict(config)
    data.setdefault("runs", {})
    selected = [r for r in RUNS if args.runs is None or r.name in args.runs]
    for run in selected:
        entry = data["runs"].setdefault(run.name, {"description": run.description, "seeds": {}})
        q_table = q_visits = None
        if run.reference:
            curve = reference_curve(data, path, corpus, config, run.control_interval)
            kwargs = {**(run.q_kwargs or {}), "reference_losses": curve}
            run = dataclasses.replace(run, q_kwargs=kwargs)
        if run.warm_start:
            owner = data["runs"].setdefault(
                run.table_from or run.name, {"description": run.description, "seeds": {}}
            )
            pre = owner.setdefault("pretrain", {})
            overrides = (
                {"epsilon": 1.0, "epsilon_end": None}
                if run.pretrain_overrides is None
                else run.pretrain_overrides
            )
            for s in run.pretrain_seeds or PRETRAIN_SEEDS:
                if str(s) in pre:
                    q_table = torch.tensor(pre[str(s)]["q_table"], dtype=torch.float64)
                    if "q_visits" in pre[str(s)]:
                        q_visits = torch.tensor(pre[str(s)]["q_visits"], dtype=torch.float64)
                    continue
                t0 = time.perf_counter()
                learn_kwargs = {**(run.q_kwargs or {}), **overrides}
                if run.paired_reference:
                    learn_kwargs["reference_losses"] = reference_curve(
                        data, path, corpus, config, run.control_interval, seeds=(s,)
                    )
                explore = dataclasses.replace(run, q_kwargs=learn_kwargs)
                out, q_table, q_visits = _one_run(corpus, config, explore, s, q_table, q_visits)
                assert q_table is not None and q_visits is not None
                out["q_table"] = q_table.tolist()
                out["q_visits"] = q_visits.tolist()
                pre[str(s)] = out
                _save(path, data)
                print(f"{run.name} pretrain seed {s}: best_val_loss={out['best_val_loss']:.4f} "
                      f"({time.perf_counter() - t0:.0f}s)", flush=True)  # fmt: skip
        for seed in run.eval_seeds or range(args.seeds):
            if str(seed) in entry["seeds"]:
                continue
            t0 = time.perf_counter()
            out, _, _ = _one_run(corpus, config, run, seed, q_table, q_visits)
            entry["seeds"][str(seed)] = out
            _save(path, data)
            print(
                f"{run.name} seed {seed}: best_val_loss={out['best_val_loss']:.4f} "
                f"final_train_loss={out['final_train_loss']:.4f} "
                f"train_time={out['train_time']:.1f}s ({time.perf_counter() - t0:.0f}s)",
                flush=True,
            )
    return data


def reference_curve(
    data: dict[str, Any],
    path: Path,
    corpus: CharCorpus,
    config: GPTConfig,
    interval: int,
    seeds: tuple[int, ...] = REFERENCE_SEEDS,
) -> list[float]:
    """Mean control-loss curve of the base schedule alone on ``seeds`` (each run cached)."""
    ref = data.setdefault("reference_control_losses", {}).setdefault(str(interval), {})
    # A controller whose only action is x1 follows the base schedule exactly (tested) and
    # records the control losses at its decisions.
    alone = Run("reference", "base schedule alone", {"actions": (1.0,), "epsilon": 0.0},
                control_interval=interval)  # fmt: skip
    for s in seeds:
        if str(s) not in ref:
            out, _, _ = _one_run(corpus, config, alone, s)
            ref[str(s)] = out["control_losses"]
            _save(path, data)
            print(f"reference seed {s}: final control loss {out['control_losses'][-1]:.4f}")
    curves = [ref[str(s)] for s in seeds]
    return [statistics.fmean(v) for v in zip(*curves, strict=True)]


GROUP_TITLES = {
    "first": "### First attempt (runs 1-6): one decision per evaluation (20 per run)",
    "second": "### Second attempt (runs 7-17): 40 decisions per run on a control batch, "
    "learned-table warm start, optimistic prior",
    "third": "### Third attempt (runs 18-): higher initial LR, Monte-Carlo returns against the "
    "base schedule",
    "confirm": "### Confirmation on fresh seeds 5-9",
    "confirm2": "### Second confirmation on fresh seeds 10-14",
    "confirm3": "### Third confirmation on fresh seeds 15-19",
    "select": "### Fourth attempt (runs 26-27): training phase in the state, paired "
    "references, sample averages; selection on seeds 150-159",
    "final": "### Pre-registered final evaluation on fresh seeds 20-29",
}


#: The baseline and 2x-LR reference rows each group's rows are paired with.
GROUP_BASES = {
    "confirm": ("baseline_confirm", "ref_baseline_2x_lr_confirm"),
    "confirm2": ("baseline_confirm2", "ref_baseline_2x_lr_confirm2"),
    "confirm3": ("baseline_confirm3", "ref_baseline_2x_lr_confirm3"),
    "select": ("baseline_select", "ref_baseline_2x_lr_select"),
    "final": ("baseline_final", "ref_baseline_2x_lr_final"),
}

GROUP_NOTES = {
    "first": "",
    "second": (
        "All rows use the same 160 iterations, the same reported evaluations (every 8 "
        "iterations on the same 6 fixed batches per split) and the same training seeds 0-4; "
        "the baseline and reference rows are the runs of the first table. Learned tables "
        "come from seeds 100-104 only, never from an evaluation seed. The controller's "
        "control-batch evaluations are not part of total_train_time (evaluations never "
        "are). Train time and tokens/s of this table were measured at another time of day "
        "than the first table, on a shared 2-core machine under a different load: compare "
        "them only within a table. Runs 7-17 are eleven variants tried one after another "
        "on the same evaluation seeds, each designed after seeing the previous ones' "
        "results: a variant that crossed the bar here would still need new seeds to confirm."
    ),
    "third": (
        "Same 160 iterations, reported evaluations and evaluation seeds 0-4 as above; the "
        "baseline and reference rows are those of the first table, the 1.5x-LR reference "
        "is new. The last column pairs each row with the 2x-LR reference: how much of a gain "
        "a plain higher LR already gives. Tables and reference curves come from seeds "
        "100-119 only. Run 20 is the first Monte-Carlo variant; runs 21-23 are ablations "
        "run after it; run 24 was designed after run 20's confirmation on seeds 5-9, run 25 "
        "after run 24's on seeds 10-14. Runs 18-25 were designed after runs 1-17 had been "
        "seen on seeds 0-4, so they are confirmed on fresh seeds in the next tables. Train "
        "time and tokens/s: another load again, compare within this table's new rows only."
    ),
    "confirm": (
        "Fresh seeds 5-9, never used before run 20 was chosen, for the baseline, the 2x-LR "
        "reference and run 20 (which loads the very table it learned on seeds 100-109; "
        "nothing is re-learned). Same config and iterations. The spread and the paired "
        "differences are over these 5 seeds. Run 24 was designed after this table's run-20 "
        "row had been seen, so its row here is not a confirmation."
    ),
    "confirm2": (
        "Fresh seeds 10-14, used by nothing before run 24 was designed: the baseline, the "
        "2x-LR reference, run 24 (the candidate chosen before these seeds were run) and "
        "run 20 again (same learned table)."
    ),
    "confirm3": (
        "Fresh seeds 15-19, used by nothing before run 25 was designed (after every result "
        "above): the baseline, run 25 and the 2x-LR reference."
    ),
    "select": (
        "Protocol, fixed and committed with this script before any run of runs 26-27. Runs "
        "1-25 did not meet the target on fresh seeds; the diagnosis: the learned tables are "
        "noise-dominated -- many states (trend x LR level), a Monte-Carlo return per decision "
        "that is a noisy end-of-run outcome, and a constant step size (0.3) that keeps only "
        "the last few returns. Runs 26-27 attack each part: (1) the state is the training "
        "phase and the LR level only (4 x 5 cells in run 26, 4 x 3 in run 27, plus the start "
        'state), so the table can say "high LR early, hold mid-run, lower late" without a '
        "trend bucket to split its evidence; (2) each table-learning run's return is measured "
        "against the base schedule on the same seed (same initialization and batches until "
        "the LR differs), so the seed's own luck cancels; (3) sample averages over 40 chained "
        "runs (seeds 200-239, eps 0.3) instead of an exponential average over 10. Both designs "
        "were fixed a priori, nothing in them was tuned, and run 27's floor at the baseline's "
        "LR uses what runs 1-25 showed (a higher constant LR helps). Selection: both run "
        "greedily (eps 0, table frozen) on seeds 150-159 next to the baseline; the one with "
        "the lower mean paired Δ is the primary variant. The random walk within [1, 2] is a "
        "control for run 27's bounds, not a candidate. Final evaluation, once, on seeds 20-29 "
        "(used by nothing before): baseline, 2x-LR reference, runs 26 and 27 with their "
        "frozen tables; the target is judged on the primary variant only, by the rule of "
        "every table above (mean paired gain larger than the larger sd of the two rows); the "
        "other is reported as secondary. Seeds: 200-239 learning (and the base schedule on "
        "the same seeds as paired references), 150-159 selection, 20-29 final evaluation; "
        "100-104 give the mean reference curve handed to the evaluation runs, which a frozen "
        "greedy table never uses (with n_step 10 no update comes before the end of a run)."
    ),
    "final": (
        "Run once, after the selection table above, with the tables learned on seeds 200-239 "
        "(frozen, greedy); same config and 160 iterations. Plot: "
        "`final_shakespeare_char.png` (validation loss, mean ± sd over seeds 20-29, and the "
        "LR used on seed 20)."
    ),
}


def summarize(data: dict[str, Any], corpus_name: str, seeds: int) -> str:
    """One Markdown table per group of runs, each with the baseline and the reference rows."""
    parts = []
    for group, title in GROUP_TITLES.items():
        names = [r.name for r in RUNS if r.group == group and r.name in data["runs"]]
        if names:
            note = GROUP_NOTES.get(group, "")
            body = summarize_group(data, seeds, group)
            parts.append(title + "\n\n" + (note + "\n\n" if note else "") + body)
    pooled = [pooled_line(data, *spec) for spec in POOLED]
    if any(pooled):
        parts.append("### Pooled seeds\n\n" + "\n".join(p for p in pooled if p))
    return "\n\n".join(parts)


#: Rows pooled over several confirmation tables: (label, run rows, baseline rows).
POOLED = (
    (
        "run 20 on fresh seeds 5-14",
        ("run20_mc_ref_warm_confirm", "run20_mc_ref_warm_confirm2"),
        ("baseline_confirm", "baseline_confirm2"),
    ),
    (
        "2x-LR reference on fresh seeds 5-14",
        ("ref_baseline_2x_lr_confirm", "ref_baseline_2x_lr_confirm2"),
        ("baseline_confirm", "baseline_confirm2"),
    ),
    (
        "2x-LR reference on seeds 0-19",
        (
            "ref_baseline_2x_lr",
            "ref_baseline_2x_lr_confirm",
            "ref_baseline_2x_lr_confirm2",
            "ref_baseline_2x_lr_confirm3",
        ),
        ("baseline", "baseline_confirm", "baseline_confirm2", "baseline_confirm3"),
    ),
    (
        "2x-LR reference on seeds 0-29",
        (
            "ref_baseline_2x_lr",
            "ref_baseline_2x_lr_confirm",
            "ref_baseline_2x_lr_confirm2",
            "ref_baseline_2x_lr_confirm3",
            "ref_baseline_2x_lr_final",
        ),
        (
            "baseline",
            "baseline_confirm",
            "baseline_confirm2",
            "baseline_confirm3",
            "baseline_final",
        ),
    ),
)


def pooled_line(
    data: dict[str, Any], label: str, rows: tuple[str, ...], bases: tuple[str, ...]
) -> str:
    """One Markdown bullet: a row pooled over several tables against the pooled baseline."""
    runs = data["runs"]
    if not all(r in runs for r in (*rows, *bases)):
        return ""
    run_v = {k: v["best_val_loss"] for r in rows for k, v in runs[r]["seeds"].items()}
    base_v = {k: v["best_val_loss"] for b in bases for k, v in runs[b]["seeds"].items()}
    keys = sorted(set(run_v) & set(base_v), key=int)
    d_mean, d_sd = _mean_sd([run_v[k] - base_v[k] for k in keys])
    r_mean, r_sd = _mean_sd([run_v[k] for k in keys])
    b_mean, b_sd = _mean_sd([base_v[k] for k in keys])
    beats, spread = beats_spread(d_mean, r_sd, b_sd)
    lower = sum(run_v[k] < base_v[k] for k in keys)
    return (
        f"- {label} ({len(keys)} seeds): {r_mean:.4f} ± {r_sd:.4f} against the baseline's "
        f"{b_mean:.4f} ± {b_sd:.4f}; paired Δ {d_mean:+.4f} ± {d_sd:.4f}, lower on {lower} "
        f"of {len(keys)} seeds; beats it by more than the spread ({spread:.4f}): "
        f"{'yes' if beats else 'no'}"
    )


def beats_spread(paired_mean: float, run_sd: float, base_sd: float) -> tuple[bool, float]:
    """The issue's target: the mean paired gain exceeds the seed-to-seed spread (the larger
    sd of the two rows). Returns ``(met, spread)``."""
    spread = max(run_sd, base_sd)
    return -paired_mean > spread, spread


def _paired(runs: dict[str, Any], name: str, other: str, keys: list[str]) -> list[float]:
    """Per-seed differences of best_val_loss, ``name - other``, on the seeds both have."""
    a, b = runs[name]["seeds"], runs.get(other, {}).get("seeds", {})
    return [a[k]["best_val_loss"] - b[k]["best_val_loss"] for k in keys if k in b]


def summarize_group(data: dict[str, Any], seeds: int, group: str) -> str:
    """The Markdown table (mean ± sd over seeds) and the paired comparison with the baseline.

    The baseline and 2x-LR reference rows of a group are ``GROUP_BASES[group]`` (default:
    ``baseline`` and ``ref_baseline_2x_lr``, seeds 0..); every row is paired with them seed
    by seed.
    """
    runs = data["runs"]
    base_name, ref_name = GROUP_BASES.get(group, ("baseline", "ref_baseline_2x_lr"))
    base = runs.get(base_name, {}).get("seeds", {})
    lines = [
        "| run | best_val_loss | final_train_loss | total_train_time (s) | inference tok/s "
        "| Δ best_val vs baseline (paired) | Δ vs 2x-LR reference (paired) | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    _, base_sd = _mean_sd([base[k]["best_val_loss"] for k in sorted(base)])
    shared = None if group in GROUP_BASES else "both"
    selected = [r for r in RUNS if r.group in (group, shared)]
    for run in selected:
        if run.name not in runs:
            continue
        per_seed = runs[run.name]["seeds"]
        keys = sorted(per_seed, key=int)
        if run.eval_seeds is None:
            keys = keys[:seeds]
        cols = []
        for metric, fmt in (
            ("best_val_loss", "{:.4f} ± {:.4f}"),
            ("final_train_loss", "{:.4f} ± {:.4f}"),
            ("train_time", "{:.1f} ± {:.1f}"),
            ("tokens_per_sec", "{:.0f} ± {:.0f}"),
        ):
            cols.append(fmt.format(*_mean_sd([per_seed[k][metric] for k in keys])))
        paired = _paired(runs, run.name, base_name, keys)
        vs_ref = _paired(runs, run.name, ref_name, keys)
        if run.name == base_name or not paired:
            cols.append("—")
        else:
            d_mean, d_sd = _mean_sd(paired)
            cols.append(f"{d_mean:+.4f} ± {d_sd:.4f}")
            run_sd = _mean_sd([per_seed[k]["best_val_loss"] for k in keys])[1]
            beats, spread = beats_spread(d_mean, run_sd, base_sd)
            verdict = (
                f"beats it by more than the spread: {'yes' if beats else 'no'}"
                if run.q_kwargs is None
                else f"target {'MET' if beats else 'not met'}"
            )
            lower = sum(d < 0 for d in paired)
            verdicts.append(
                f"- {run.name}: mean best_val_loss {'lower' if d_mean < 0 else 'higher'} than "
                f"{base_name} by {abs(d_mean):.4f} (lower on {lower} of {len(paired)} seeds); "
                f"seed-to-seed spread (larger sd of the two) {spread:.4f} -> {verdict}"
            )
        if run.name == ref_name or not vs_ref:
            cols.append("—")
        else:
            cols.append("{:+.4f} ± {:.4f}".format(*_mean_sd(vs_ref)))
        lines.append(f"| {run.name} | " + " | ".join(cols) + f" | {len(keys)} |")
    desc = [f"- **{r.name}**: {r.description}" for r in selected if r.name in runs]
    extra = GROUP_EXTRAS[group](data) if group in GROUP_EXTRAS else []
    return "\n".join([*desc, "", *lines, "", *verdicts, *extra])


def _paired_mean(data: dict[str, Any], name: str, base: str) -> float:
    runs = data["runs"]
    if name not in runs or base not in runs:
        return math.nan
    keys = sorted(runs[name]["seeds"], key=int)
    paired = _paired(runs, name, base, keys)
    return _mean_sd(paired)[0] if paired else math.nan


#: The candidates of the selection on seeds 150-159 and the rows of the final evaluation.
SELECT_CANDIDATES = {
    "run26_phase_mc_paired": "run26_phase_mc_paired_final",
    "run27_phase_mc_paired_floor1": "run27_phase_mc_paired_floor1_final",
}


def primary_variant(data: dict[str, Any]) -> str | None:
    """The pre-registered choice: the candidate with the lower mean paired Δ on 150-159."""
    deltas = {c: _paired_mean(data, c, "baseline_select") for c in SELECT_CANDIDATES}
    if any(math.isnan(d) for d in deltas.values()):
        return None
    return min(deltas, key=lambda c: deltas[c])


def _greedy_label(row: torch.Tensor, actions: tuple[float, ...]) -> str:
    """The greedy action of a Q-table row as the scheduler picks it (ties: the most neutral)."""
    best = [int(i) for i in torch.nonzero(row == row.max()).flatten()]
    nearest = min(abs(math.log(actions[i])) for i in best)
    picks = [i for i in best if math.isclose(abs(math.log(actions[i])), nearest)]
    label = " or ".join(f"x{actions[i]:.2g}" for i in picks)
    return label + (" (tie)" if len(best) > 1 else "")


def policy_lines(data: dict[str, Any]) -> list[str]:
    """The learned tables of runs 26-27: greedy action per phase and LR level (and counts)."""
    out = []
    for run in RUNS:
        if run.name not in SELECT_CANDIDATES or run.q_kwargs is None:
            continue
        pre = data["runs"].get(run.name, {}).get("pretrain", {})
        if not pre:
            continue
        last = pre[max(pre, key=int)]
        q = torch.tensor(last["q_table"], dtype=torch.float64)
        n = torch.tensor(last["q_visits"], dtype=torch.float64)
        kw = {**Q_DEFAULTS, **run.q_kwargs}
        levels, trends, actions = kw["n_lr_levels"], len(kw["trend_thresholds"]) + 2, kw["actions"]
        lo, hi = kw["min_multiplier"], kw["max_multiplier"]
        mults = [lo * (hi / lo) ** (i / (levels - 1)) for i in range(levels)]
        head = " | ".join(f"level x{m:.2g}" for m in mults)
        rows = [f"| phase | {head} |", "|---" * (levels + 1) + "|"]
        for phase in range(kw["n_phases"]):
            cells = []
            for level in range(levels):
                st = (phase * trends + 0) * levels + level  # the single (non-start) trend
                if n[st].sum() == 0:
                    cells.append("unseen")
                    continue
                cells.append(f"{_greedy_label(q[st], actions)} ({int(n[st].sum())})")
            rows.append(f"| {phase + 1} | " + " | ".join(cells) + " |")
        start = (trends - 1) * levels + min(range(levels), key=lambda i: abs(math.log(mults[i])))
        first = _greedy_label(q[start], actions)
        out += [
            "",
            f"Greedy action of {run.name}'s table after its {len(pre)} learning runs, by phase "
            f"(quarter of the run) and LR level (updates of the state in brackets); at the "
            f"first decision (the start state, multiplier 1): {first}.",
            "",
            *rows,
        ]
    return out


def final_lines(data: dict[str, Any]) -> list[str]:
    """Which variant the selection made primary, and the verdict on it."""
    primary = primary_variant(data)
    if primary is None:
        return []
    final = SELECT_CANDIDATES[primary]
    line = (
        f"- Primary variant, chosen on seeds 150-159 by the pre-registered rule (lower mean "
        f"paired Δ vs the baseline): {primary} "
        f"({_paired_mean(data, 'run26_phase_mc_paired', 'baseline_select'):+.4f} for run 26, "
        f"{_paired_mean(data, 'run27_phase_mc_paired_floor1', 'baseline_select'):+.4f} for "
        f"run 27); its row here is {final}, and its verdict above is the answer to the target."
    )
    out = ["", line]
    for name in SELECT_CANDIDATES.values():
        seeds = data["runs"].get(name, {}).get("seeds", {})
        paths = {tuple(round(m, 3) for m in v["multipliers"]) for v in seeds.values()}
        if len(paths) == 1:
            path = ", ".join(f"x{m:.2g}" for m in next(iter(paths)))
            out.append(
                f"- {name}: the same multipliers after each of its 10 decisions (iterations "
                f"16, 32, ..., 160) on all {len(seeds)} seeds: {path}"
            )
        elif paths:
            out.append(f"- {name}: {len(paths)} different multiplier paths over the seeds")
    return [*out, "", FINAL_READING]


#: How to read the final evaluation, written after it had been run (the protocol above was
#: not changed).
FINAL_READING = (
    "Reading (written after the final run; the protocol above is unchanged). The state of "
    "runs 26-27 holds no loss feedback (phase and LR level only), so a greedy table is a "
    "fixed schedule: the controller learned, from its own trial-and-error runs on seeds "
    "200-239, an open-loop multiplier path -- the baseline's LR for the first 16 (run 27) "
    "or 32 (run 26) iterations, then 1.5x, then 2x from iteration 48 (run 27) or 80 (run "
    "26) to the end (see the paths above and `final_shakespeare_char.png`). That path beats "
    "the baseline by more than the spread on the fresh seeds. Three caveats: (1) part of "
    "the gain needs no learning -- the random walk within [1, 2] gained too on seeds "
    "150-159, more than half as much as runs 26-27; (2) run 27's floor at 1x encodes the "
    "earlier finding that a higher LR helps (run 26, whose bounds reach down to 1/2, "
    "learned the same direction and is reported as secondary); (3) the constant 2x LR "
    "gained less on seeds 20-29 than on seeds 0-19 (pooled rows below), so the margin of "
    "runs 26-27 over it here is partly these seeds' draw. One config, one corpus, 160 "
    "iterations: nothing here says the learned path transfers to longer runs."
)


#: Lines added after a group's verdicts.
GROUP_EXTRAS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "select": policy_lines,
    "final": final_lines,
}


#: The rows drawn in the plots (all rows would make them unreadable).
PLOT_RUNS = (
    "baseline",
    "ref_baseline_2x_lr",
    "run16_ctl4_ema",
    "run20_mc_ref_warm",
    "run21_onestep_ref_warm",
)


def _mean_band(
    ax: Any, name: str, seeds: dict[str, Any], key: str, start: int, alpha: float
) -> None:
    """Plot the mean ± sd over ``seeds`` of curve ``key`` of row ``name``, from point ``start``."""
    import numpy as np

    curves = np.array([seeds[k][key] for k in sorted(seeds, key=int)], dtype=float)
    iters = seeds[next(iter(seeds))]["iters"]
    mean, sd = curves.mean(0), curves.std(0)
    ax.plot(iters[start:], mean[start:], label=f"{name} (n={len(curves)})")
    ax.fill_between(iters[start:], (mean - sd)[start:], (mean + sd)[start:], alpha=alpha)


def _save_figure(fig: Any, out: Path) -> Path:
    """Write ``fig`` to ``out`` and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot(data: dict[str, Any], corpus_name: str) -> list[Path]:
    """Mean ± sd loss curves and the LR used (seed 0) of the ``PLOT_RUNS`` rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for key, title in (("train_losses", "train"), ("val_losses", "val")):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for run in RUNS:
            if run.name not in data["runs"] or run.name not in PLOT_RUNS:
                continue
            seeds = data["runs"][run.name]["seeds"]
            if seeds:
                _mean_band(ax, run.name, seeds, key, 1, 0.2)
        ax.set_xlabel("iteration")
        ax.set_ylabel(f"{title} loss (fixed eval batches)")
        ax.set_title(f"{corpus_name}: {title} loss, mean ± sd over seeds")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        paths.append(_save_figure(fig, RESULTS / f"{title}_loss_{corpus_name}.png"))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run in RUNS:
        seeds = data["runs"].get(run.name, {}).get("seeds", {})
        if "0" in seeds and run.name in PLOT_RUNS:
            ax.plot(seeds["0"]["lrs"], label=run.name, lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate in optimizer.param_groups")
    ax.set_title(f"{corpus_name}: learning rate actually used (seed 0)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    paths.append(_save_figure(fig, RESULTS / f"lr_{corpus_name}.png"))
    return paths


def plot_final(data: dict[str, Any], corpus_name: str) -> Path | None:
    """The final evaluation's rows: validation loss (mean ± sd) and the LR used on seed 20."""
    names = [r.name for r in RUNS if r.group == "final" and r.name in data["runs"]]
    if not names:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=(12, 4.5))
    first = str(FINAL_SEEDS[0])
    for name in names:
        seeds = data["runs"][name]["seeds"]
        if not seeds:
            continue
        _mean_band(ax_loss, name, seeds, "val_losses", 4, 0.15)
        if first in seeds:
            ax_lr.plot(seeds[first]["lrs"], label=name, lw=1)
    ax_loss.set_xlabel("iteration")
    ax_loss.set_ylabel("val loss (fixed eval batches)")
    ax_loss.set_title(f"{corpus_name}: final evaluation, seeds 20-29 (from iteration 32)")
    ax_lr.set_yscale("log")
    ax_lr.set_xlabel("optimizer step")
    ax_lr.set_ylabel("learning rate in optimizer.param_groups")
    ax_lr.set_title(f"LR actually used (seed {first})")
    for ax in (ax_loss, ax_lr):
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return _save_figure(fig, RESULTS / f"final_{corpus_name}.png")


def run_study(args: argparse.Namespace, corpus: CharCorpus, config: GPTConfig) -> str:
    """QLearningSampler vs TPE over the controller's parameters, equal trials; Markdown."""
    import optuna

    from optuna_qlearn import QLearningSampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_cfg = dataclasses.replace(
        config, max_iters=args.study_iters, eval_interval=max(1, args.study_iters // 15),
        warmup_iters=max(1, args.study_iters // 20), lr_decay_iters=None,
    )  # fmt: skip
    objective = ExperimentLRObjective(corpus, config=study_cfg, search_space="qlearning", seed=0)
    path = RESULTS / "lr_study.json"
    saved = {} if args.fresh else _load(path)
    samplers: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
        "QLearningSampler": lambda: QLearningSampler(seed=args.study_seed),
        "TPESampler": lambda: optuna.samplers.TPESampler(seed=args.study_seed),
    }
    storage = f"sqlite:///{RESULTS / 'lr_study.db'}"
    for name, make in samplers.items():
        study = optuna.create_study(
            storage=storage, study_name=f"lr-{name}-{args.study_seed}", sampler=make(),
            load_if_exists=True,
        )  # fmt: skip
        done = len([t for t in study.trials if t.state.is_finished()])
        if done < args.trials:
            t0 = time.perf_counter()
            study.optimize(objective, n_trials=args.trials - done)
            print(f"{name}: {args.trials} trials, best {study.best_value:.4f} "
                  f"({time.perf_counter() - t0:.0f}s)", flush=True)  # fmt: skip
        values = [t.value for t in study.trials if t.value is not None][: args.trials]
        best_so_far = [min(values[: i + 1]) for i in range(len(values))]
        saved[name] = {
            "values": values,
            "best_so_far": best_so_far,
            "best_params": study.best_params,
            "best_value": study.best_value,
        }
        _save(path, saved)
    saved["config"] = dataclasses.asdict(study_cfg)
    if "baseline_best_val_loss" not in saved:
        ref = train_chargpt(corpus, study_cfg, schedule="baseline", seed=0, inference_tokens=0)
        saved["baseline_best_val_loss"] = ref.best_val_loss
    _save(path, saved)
    lines = [
        f"Study: {args.trials} trials per sampler, sampler seed {args.study_seed}, "
        "training seed 0, "
        f"{study_cfg.max_iters} iterations per trial (eval every {study_cfg.eval_interval}).",
        f"The baseline schedule in the same setting (seed 0): best_val_loss "
        f"{saved['baseline_best_val_loss']:.4f}.",
        "",
        "| sampler | best best_val_loss | median trial | best-so-far after 25/50/75/100% |"
        " best params |",
        "|---|---|---|---|---|",
    ]
    for name in samplers:
        s = saved[name]
        v, b = s["values"], s["best_so_far"]
        marks = [b[max(0, math.ceil(len(b) * f) - 1)] for f in (0.25, 0.5, 0.75, 1.0)]
        params = ", ".join(
            f"{k}={val:.3g}" if isinstance(val, float) else f"{k}={val}"
            for k, val in s["best_params"].items()
        )
        lines.append(
            f"| {name} | {s['best_value']:.4f} | {statistics.median(v):.4f} | "
            + " / ".join(f"{m:.4f}" for m in marks)
            + f" | {params} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--part", choices=("table", "study", "report", "all"), default="all")
    parser.add_argument("--data", default=str(DEFAULT_DATA / "input.txt"))
    parser.add_argument("--corpus", default="shakespeare_char")
    parser.add_argument("--config", choices=("cpu", "full"), default="cpu")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--runs", nargs="*", default=None, help="subset of run names")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--study-iters", type=int, default=80)
    parser.add_argument("--study-seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fresh", action="store_true", help="ignore saved results")
    parser.add_argument("--max-iters", type=int, default=None, help="override (smoke runs)")
    parser.add_argument("--out", default=None, help="results directory (default: ./results)")
    args = parser.parse_args(argv)
    global RESULTS
    if args.out is not None:
        RESULTS = Path(args.out)
    torch.set_num_threads(args.threads)
    RESULTS.mkdir(parents=True, exist_ok=True)
    corpus = load_corpus(args.corpus, args.data)
    config: GPTConfig = getattr(GPTConfig, args.config)()
    if args.max_iters is not None:
        config = dataclasses.replace(
            config, max_iters=args.max_iters, eval_interval=max(1, args.max_iters // 20)
        )
    suffix = "" if args.config == "cpu" else f"_{args.config}"
    report = RESULTS / f"lr_schedule{suffix}.md"
    sections: dict[str, str] = {}
    if args.part in ("table", "all"):
        run_table(args, corpus, config)
    if args.part in ("table", "report", "all"):
        data = _load(RESULTS / f"lr_runs_{corpus.name}.json")
        if data:
            c = data["config"]
            sections["table"] = (
                f"## {corpus.name}, {args.config} config\n\n"
                f"{c['n_layer']} layers, {c['n_head']} heads, {c['n_embd']} wide, block "
                f"{c['block_size']}, batch {c['batch_size']}, {c['max_iters']} iterations, "
                f"eval every {c['eval_interval']} on {c['eval_iters']} fixed batches per split, "
                f"LR {c['learning_rate']:g} -> {c['min_lr']:g}, warmup {c['warmup_iters']}; "
                f"torch threads {args.threads}. Mean ± sd over seeds 0..{args.seeds - 1}.\n\n"
                + summarize(data, corpus.name, args.seeds)
            )
            for p in plot(data, corpus.name):
                print("wrote", p)
            final_plot = plot_final(data, corpus.name)
            if final_plot is not None:
                print("wrote", final_plot)
    if args.part in ("study", "all"):
        sections["study"] = "## Optuna study over the controller's parameters\n\n" + run_study(
            args, corpus, config
        )
    if sections:
        old = report.read_text() if report.is_file() else ""
        parts = {k: v for k, v in _split_sections(old).items() if k not in sections}
        parts.update(sections)
        text = "# LR-schedule benchmark\n\n" + "\n\n".join(
            parts[k] for k in ("table", "study") if k in parts
        )
        report.write_text(text + "\n")
        print(text)
    return 0


def _split_sections(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for chunk in text.split("\n## ")[1:]:
        key = "study" if chunk.startswith("Optuna study") else "table"
        out[key] = "## " + chunk.strip()
    return out


if __name__ == "__main__":
    raise SystemExit(main())
