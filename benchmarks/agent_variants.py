"""QLearningSampler with different AgentConfig settings, study by study, on every problem.

A quick A/B check for changes to the agent's decisions: each variant runs the
same (problem, seed) studies, and the final true regret (of the trial with the
best observed value) is compared study by study: mean rank among the variants,
and how often each variant is better, worse or equal than the first.

Run: ``python -m benchmarks.agent_variants --variants max_walk=4 max_walk=8 max_walk=64``
(``--seeds 10 --trials 100`` by default; about a minute per variant on one core).
``--sampler dqn`` runs the same variants of DQNSampler's environment settings
(about 6 ms per trial more: the network's training).
Writes ``benchmarks/results/agent_variants.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import zlib
from pathlib import Path

import numpy as np
import optuna
from scipy.stats import rankdata

from benchmarks.problems import PROBLEMS, get_problem
from optuna_qlearn import QLearningSampler
from optuna_qlearn.agent import AgentConfig

RESULTS = Path(__file__).resolve().parent / "results"


def parse_variant(text: str) -> AgentConfig:
    """``"max_walk=8"`` -> ``AgentConfig(max_walk=8)`` (``"default"`` for the defaults).

    Raises:
        ValueError: For an unknown field or a malformed setting.
    """
    if text == "default":
        return AgentConfig()
    fields = {f.name: f for f in dataclasses.fields(AgentConfig)}
    kwargs: dict[str, object] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or name not in fields:
            raise ValueError(f"Bad variant {text!r}: expected field=value, an AgentConfig field.")
        default = getattr(AgentConfig(), name)
        kwargs[name] = (value == "True") if isinstance(default, bool) else type(default)(value)
    return AgentConfig(**kwargs)  # type: ignore[arg-type]


def make_sampler(kind: str, seed: int, config: AgentConfig) -> QLearningSampler:
    """``QLearningSampler`` (``kind="qlearn"``) or ``DQNSampler`` (``"dqn"``) on ``config``.

    Raises:
        ValueError: For another ``kind``.
    """
    if kind == "qlearn":
        return QLearningSampler(seed=seed, agent_config=config)
    if kind == "dqn":
        from optuna_qlearn import DQNSampler

        return DQNSampler(seed=seed, agent_config=config)
    raise ValueError(f"Unknown sampler {kind!r}: expected 'qlearn' or 'dqn'.")


def study_regret(
    name: str, seed: int, config: AgentConfig, trials: int, kind: str = "qlearn"
) -> float:
    """True regret of the best observed trial of one study of problem ``name``."""
    problem = get_problem(name)
    salt = zlib.crc32(name.encode())

    def objective(trial: optuna.Trial) -> float:
        idx = problem.suggest(trial)
        return problem.observe(idx, np.random.default_rng([salt, seed, trial.number]))

    study = optuna.create_study(sampler=make_sampler(kind, seed, config))
    study.optimize(objective, n_trials=trials)
    return problem.true_value(problem.index_of(study.best_trial.params)) - problem.optimum


def final_regrets(
    config: AgentConfig, seeds: int, trials: int, kind: str = "qlearn"
) -> dict[str, float]:
    """``"problem:seed"`` -> :func:`study_regret` for every problem and seed."""
    return {
        f"{name}:{seed}": study_regret(name, seed, config, trials, kind)
        for name in PROBLEMS
        for seed in range(seeds)
    }


def main(argv: list[str] | None = None) -> int:
    """Run the variants and write the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--variants", nargs="+", default=["default"], help="field=value[,...]")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--sampler", choices=("qlearn", "dqn"), default="qlearn")
    parser.add_argument("--out", type=Path, default=RESULTS / "agent_variants.md")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if args.sampler == "dqn":
        import torch

        torch.set_num_threads(1)
    results = {
        v: final_regrets(parse_variant(v), args.seeds, args.trials, args.sampler)
        for v in args.variants
    }
    keys = sorted(results[args.variants[0]])
    table = np.array([[results[v][k] for v in args.variants] for k in keys])
    ranks = np.array([rankdata(row) for row in table])
    lines = [
        f"# {'DQNSampler' if args.sampler == 'dqn' else 'QLearningSampler'} variants, "
        "study by study",
        "",
        f"`python -m benchmarks.agent_variants --variants {' '.join(args.variants)} "
        f"--seeds {args.seeds} --trials {args.trials}"
        f"{' --sampler dqn' if args.sampler == 'dqn' else ''}`: {len(PROBLEMS)} problems x "
        f"{args.seeds} seeds = {len(keys)} studies per variant; true regret of the best "
        "observed trial; rank 1 = lowest regret, ties averaged.",
        "",
        f"| variant | mean rank | median regret | vs `{args.variants[0]}`: better/worse/equal |",
        "|---|---:|---:|---|",
    ]
    for j, v in enumerate(args.variants):
        col, ref = table[:, j], table[:, 0]
        vs = (
            "—"
            if j == 0
            else (
                f"{int((col < ref).sum())} / {int((col > ref).sum())} / {int((col == ref).sum())}"
            )
        )
        lines.append(f"| `{v}` | {ranks[:, j].mean():.3f} | {np.median(col):.4g} | {vs} |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
