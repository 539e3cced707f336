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
import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from scipy.stats import rankdata

from benchmarks.problems import PROBLEMS, SUITE, get_problem
from optuna_qlearn import QLearningSampler
from optuna_qlearn.agent import AgentConfig

RESULTS = Path(__file__).resolve().parent / "results"


def variant_fields(text: str) -> dict[str, Any]:
    """``"max_walk=8,dyna=False"`` -> ``{"max_walk": 8, "dyna": False}`` (``"default"``: ``{}``).

    Raises:
        ValueError: For an unknown field or a malformed setting.
    """
    if text == "default":
        return {}
    names = {f.name for f in dataclasses.fields(AgentConfig)}
    kwargs: dict[str, Any] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or name not in names:
            raise ValueError(f"Bad variant {text!r}: expected field=value, an AgentConfig field.")
        default = getattr(AgentConfig(), name)
        kwargs[name] = (value == "True") if isinstance(default, bool) else type(default)(value)
    return kwargs


def parse_variant(text: str) -> AgentConfig:
    """``"max_walk=8"`` -> ``AgentConfig(max_walk=8)`` (``"default"`` for the defaults).

    Raises:
        ValueError: For an unknown field or a malformed setting.
    """
    return AgentConfig(**variant_fields(text))


def config_for(kind: str, text: str) -> AgentConfig:
    """The sampler's own default environment (QLearningSampler's or DQNSampler's) with the
    variant's fields changed: ``"default"`` is exactly what the sampler uses by default."""
    if kind == "dqn":
        from optuna_qlearn.dqn import DEFAULT_AGENT_CONFIG

        return dataclasses.replace(DEFAULT_AGENT_CONFIG, **variant_fields(text))
    return parse_variant(text)


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
    config: AgentConfig,
    seeds: int,
    trials: int,
    kind: str = "qlearn",
    problems: Sequence[str] = tuple(PROBLEMS),
) -> dict[str, float]:
    """``"problem:seed"`` -> :func:`study_regret` for every problem and seed."""
    return {
        f"{name}:{seed}": study_regret(name, seed, config, trials, kind)
        for name in problems
        for seed in range(seeds)
    }


def rank_against(
    regrets: dict[str, float], stored: dict[str, Any], samplers: Sequence[str], trials: int
) -> tuple[float, dict[str, float], int]:
    """Mean rank of a variant among stored suite studies (``results.json``'s ``studies``).

    Each ``"problem:seed"`` cell where every sampler in ``samplers`` was stored ranks the
    variant's regret with theirs (regret after ``trials`` trials, ties averaged).

    Returns:
        ``(variant's mean rank, each stored sampler's mean rank, number of cells)``.
    """
    rows = []
    for key, regret in regrets.items():
        problem, seed = key.split(":")
        names = [f"{problem}:{s}:{seed}" for s in samplers]
        if any(n not in stored or len(stored[n]["regret"]) < trials for n in names):
            continue
        rows.append(rankdata([max(0.0, regret)] + [stored[n]["regret"][trials - 1] for n in names]))
    ranks = np.array(rows).reshape(len(rows), len(samplers) + 1)
    means = ranks.mean(axis=0) if rows else np.full(len(samplers) + 1, np.nan)
    return float(means[0]), {s: float(m) for s, m in zip(samplers, means[1:])}, len(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the variants and write the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--variants", nargs="+", default=["default"], help="field=value[,...]")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--sampler", choices=("qlearn", "dqn"), default="qlearn")
    parser.add_argument(
        "--problems", choices=("all", "suite"), default="all", help="all problems or the suite's"
    )
    parser.add_argument(
        "--against",
        type=Path,
        default=None,
        help="a suite results.json: also rank each variant among its stored samplers",
    )
    parser.add_argument(
        "--against-samplers", default="tpe,cmaes,qlearn,qlearn-prototype,random,qmc"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "agent_variants.md")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if args.sampler == "dqn":
        import torch

        torch.set_num_threads(1)
    problems = SUITE if args.problems == "suite" else tuple(PROBLEMS)
    results = {
        v: final_regrets(config_for(args.sampler, v), args.seeds, args.trials, args.sampler,
                         problems)
        for v in args.variants
    }  # fmt: skip
    keys = sorted(results[args.variants[0]])
    table = np.array([[results[v][k] for v in args.variants] for k in keys])
    ranks = np.array([rankdata(row) for row in table])
    lines = [
        f"# {'DQNSampler' if args.sampler == 'dqn' else 'QLearningSampler'} variants, "
        "study by study",
        "",
        f"`python -m benchmarks.agent_variants --variants {' '.join(args.variants)} "
        f"--seeds {args.seeds} --trials {args.trials}"
        f"{' --sampler dqn' if args.sampler == 'dqn' else ''}"
        f"{' --problems suite' if args.problems == 'suite' else ''}"
        f"{f' --against {args.against}' if args.against else ''}`: {len(problems)} problems x "
        f"{args.seeds} seeds = {len(keys)} studies per variant; true regret of the best "
        "observed trial; rank 1 = lowest regret, ties averaged. `default` is the sampler's "
        "own default settings; the other variants change the named fields of those.",
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
    if args.against is not None:
        stored = json.loads(args.against.read_text())["studies"]
        others = [x for x in args.against_samplers.split(",") if x]
        lines += [
            "",
            f"Each variant ranked among the samplers stored in `{args.against}` "
            f"({', '.join(others)}), cell by cell, at {args.trials} trials:",
            "",
            "| variant | cells | variant's mean rank | " + " | ".join(others) + " |",
            "|---|---:|---:|" + "---:|" * len(others),
        ]
        for v in args.variants:
            mine, theirs, n = rank_against(results[v], stored, others, args.trials)
            cols = " | ".join(f"{theirs[x]:.2f}" for x in others)
            lines.append(f"| `{v}` | {n} | {mine:.2f} | {cols} |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
