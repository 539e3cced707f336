"""Train and screen policy variants: the discount, the density model, suite training,
ensembles of training seeds (the second step of issue 14; see this folder's README).

``train`` pre-trains one network as ``optuna_qlearn._core.training.train`` does, with
the variant's settings; ``screen`` runs policies straight on the suite's tables (as
``suite_eval`` does, study seeds ``[seed, 7]``) and ranks them against the harness
curves of Optuna's samplers and of the previous default (``results/curves``). Several
files given to ``--policy`` (comma-separated) are one ensemble (mean Q). The library now
uses the joint model; ``--model per-axis`` puts back the per-axis ``GridPrior`` of the
previous default (``MODEL_GAMMA`` 0.15), for the rows that compare the two:

    python -m experiments.learned_policy.variants train --gamma 0.97 --seed 1 --out s1.npz
    python -m experiments.learned_policy.variants train --gamma 0.9 --model per-axis \
        --out g90.npz
    python -m experiments.learned_policy.variants screen --policy s0.npz,s1.npz --name ens01
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.learned_policy.common import parse_seeds, suite_problems
from experiments.learned_policy.suite_eval import policy_curves, print_comparison
from optuna_qlearn._core import policy as core_policy
from optuna_qlearn._core.policy import PolicyEnsemble, PolicyNetwork, member_keys
from optuna_qlearn._core.prior import GridPrior
from optuna_qlearn._core.training import TrainingConfig, TrainingLog, generate_task, train

RESULTS = Path(__file__).resolve().parent / "results" / "curves"
#: Harness curves screened against: method -> file.
BASELINES = {
    "tpe": "optuna_samplers.json.gz",
    "dqn": "dqn.json.gz",
    "dqn-table": "optuna_samplers.json.gz",
    "cmaes": "optuna_samplers.json.gz",
    "qlearn-previous": "qlearn.json.gz",
    "qlearn-rule": "qlearn.json.gz",
}


def use_per_axis_model() -> None:
    """Put back the previous default's per-axis density model (this process only)."""
    core_policy.MODEL_GAMMA = 0.15
    original = core_policy.SearchState.__init__

    def init(self: Any, shape: Sequence[int], categorical: Sequence[bool]) -> None:
        original(self, shape, categorical)
        self.prior = GridPrior(self.shape, self.cat.tolist())

    core_policy.SearchState.__init__ = init  # type: ignore[method-assign]


def never_offer_evaluated_points() -> None:
    """Leave evaluated points out of the candidates, as busy ones are (this process only)."""
    original = core_policy.SearchState.candidates

    def candidates(self: Any, rng: np.random.Generator, busy: Any = None) -> Any:
        return original(self, rng, {*(busy or ()), *self.values})

    core_policy.SearchState.candidates = candidates  # type: ignore[method-assign]


def read_networks(spec: str) -> PolicyEnsemble:
    """Comma-separated ``.npz`` files as one ensemble (the weights of every member of
    each, whatever the file's version: screens also read files written before it)."""
    members = []
    for path in spec.split(","):
        with np.load(path, allow_pickle=False) as data:
            count = int(data["members"]) if "members" in data.files else 1
            for k in range(count):
                members.append(PolicyNetwork([data[key] for key in member_keys(k)]))
    return PolicyEnsemble(members)


def train_variant(args: argparse.Namespace) -> int:
    tasks: Any = generate_task
    if args.suite:
        from experiments.learned_policy.train_suite import MixedTasks, suite_tasks

        tasks = MixedTasks(suite_tasks(args.exclude))
    config = TrainingConfig(episodes=args.episodes, gamma=args.gamma)

    def progress(episode: int, log: TrainingLog) -> None:
        if (episode + 1) % 200 == 0:
            ret = log.mean_return(slice(-200, None))
            print(f"{episode + 1} {ret:.4f} {log.wall_s:.0f}s", flush=True)

    q, log = train(tasks, seed=args.seed, config=config, progress=progress)
    q.save(args.out)
    print(f"wrote {args.out} in {log.wall_s:.0f} s")
    return 0


def agent_curves(
    q: PolicyEnsemble,
    problems: Sequence[str],
    seeds: Sequence[int],
    trials: int,
    epsilon: float,
    fine_tune: dict[str, Any] | None,
) -> dict[str, dict[str, list[float]]]:
    """Regret curves of the sampler's agent run on the tables: ``PolicyAgent`` (the
    frozen networks, ``fine_tune=None``) or ``FineTunedPolicyAgent`` (DQNSampler's, with
    these ``FineTuneConfig`` settings), proposing and learning trial by trial."""
    import torch

    from benchmarks.problems import get_problem
    from optuna_qlearn._core.dqn import FineTuneConfig, FineTunedPolicy, FineTunedPolicyAgent
    from optuna_qlearn._core.learned import PolicyAgent, PolicyConfig

    torch.set_num_threads(1)
    out: dict[str, dict[str, list[float]]] = {}
    for name in problems:
        problem = get_problem(name)
        table, opt = problem.table, problem.optimum
        cat = [a.kind == "cat" for a in problem.axes]
        names = [f"x{i}" for i in range(table.ndim)]
        for seed in seeds:
            config = PolicyConfig(epsilon=epsilon)
            agent: PolicyAgent
            if fine_tune is None:
                agent = PolicyAgent(q, config, table.shape, cat, names)
            else:
                tuner = FineTunedPolicy(q, FineTuneConfig(**fine_tune), 0.97)
                agent = FineTunedPolicyAgent(tuner, config, table.shape, cat, names)
            rng = np.random.RandomState([seed, 7])
            values = []
            for number in range(trials):
                prop = agent.propose(rng)
                values.append(float(table[prop.state]))
                agent.learn(number, prop.state, values[-1], prop.decision)
            best = np.minimum.accumulate(np.array(values))
            out.setdefault(name, {})[str(seed)] = [max(0.0, float(v - opt)) for v in best]
    return out


def screen(args: argparse.Namespace) -> int:
    from benchmarks.problems import family_of

    seeds = parse_seeds(args.seeds)
    problems = suite_problems()
    curves: dict[str, Any] = {}
    for method, name in BASELINES.items():
        with gzip.open(RESULTS / name, "rt") as f:
            per = json.load(f)["curves"][method]
        curves[method] = {p: {str(s): per[p][str(s)] for s in seeds} for p in problems}
    for other in args.compare:
        curves[Path(other).stem] = json.loads(Path(other).read_text())
    t0 = time.perf_counter()
    q = read_networks(args.policy)
    if args.agent == "table-episode":
        curves[args.name] = policy_curves(q, problems, seeds, args.trials, args.epsilon)
    else:
        fine_tune = json.loads(args.fine_tune) if args.agent == "fine-tuned" else None
        curves[args.name] = agent_curves(q, problems, seeds, args.trials, args.epsilon, fine_tune)
    print(f"{args.name}: {time.perf_counter() - t0:.0f} s", flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps(curves[args.name]))
    families = {p: family_of(p) for p in problems}
    for budget in (50, 100, 200):
        if budget <= args.trials:
            print_comparison(curves, families, budget, args.name)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="pre-train one network")
    tr.add_argument("--out", type=Path, required=True)
    tr.add_argument("--gamma", type=float, default=0.97)
    tr.add_argument("--episodes", type=int, default=2000)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--suite", action="store_true", help="half the studies on suite tables")
    tr.add_argument("--exclude", default=None, help="with --suite: a family to leave out")
    sc = sub.add_parser("screen", help="rank policies on the suite's tables")
    sc.add_argument("--policy", required=True, help="a file, or files of one ensemble")
    sc.add_argument("--name", required=True)
    sc.add_argument("--seeds", default="0-9")
    sc.add_argument("--trials", type=int, default=200)
    sc.add_argument("--epsilon", type=float, default=0.05, help="exploration rate (0.05)")
    sc.add_argument("--compare", nargs="*", default=[], help="curve files of earlier screens")
    sc.add_argument("--out", type=Path, default=None, help="write this policy's curves")
    sc.add_argument("--no-reevaluation", action="store_true", help="never offer an evaluated point")
    sc.add_argument(
        "--agent",
        choices=("table-episode", "frozen", "fine-tuned"),
        default="table-episode",
        help="run_episode (default), the sampler's frozen agent or DQNSampler's fine-tuned one",
    )
    sc.add_argument("--fine-tune", default="{}", help="FineTuneConfig settings as JSON")
    sc.add_argument("--model-top", type=int, default=None, help="model candidates per trial (3)")
    sc.add_argument("--model-draws", type=int, default=None, help="model draws per trial (24)")
    for p in (tr, sc):
        p.add_argument("--model", choices=("joint", "per-axis"), default="joint")
    args = parser.parse_args(argv)
    if args.model == "per-axis":
        use_per_axis_model()
    if getattr(args, "no_reevaluation", False):
        never_offer_evaluated_points()
    if getattr(args, "model_top", None) is not None:
        core_policy.MODEL_TOP = args.model_top
    if getattr(args, "model_draws", None) is not None:
        core_policy.MODEL_DRAWS = args.model_draws
    return train_variant(args) if args.command == "train" else screen(args)


if __name__ == "__main__":
    raise SystemExit(main())
