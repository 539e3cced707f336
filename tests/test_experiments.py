"""The experiments' tools (``experiments/``), on top of the benchmark harness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import experiments.agent_variants.run as av


def test_agent_variants_rank_against_stored() -> None:

    stored = {
        "p:tpe:0": {"regret": [5.0, 1.0]},
        "p:random:0": {"regret": [5.0, 3.0]},
        "p:tpe:1": {"regret": [5.0, 1.0]},
        "p:random:1": {"regret": [5.0, 3.0]},
        "q:tpe:0": {"regret": [5.0]},  # too short for 2 trials: not a cell
        "q:random:0": {"regret": [5.0]},
    }
    regrets = {"p:0": 2.0, "p:1": -1e-9, "q:0": 0.0}  # a tiny negative regret counts as 0
    mine, theirs, n = av.rank_against(regrets, stored, ["tpe", "random"], trials=2)
    assert n == 2
    assert mine == 1.5 and theirs == {"tpe": 1.5, "random": 3.0}


def test_agent_variants_workers_give_the_same_regrets_as_one_process() -> None:

    args = (["default", "max_walk=2,n_bins=8"], [0, 1], 12, "qlearn", ["branin"])
    serial = av.final_regrets(*args, workers=1)
    assert set(serial) == {"default", "max_walk=2,n_bins=8"}
    assert set(serial["default"]) == {"branin:0", "branin:1"}
    assert av.final_regrets(*args, workers=2) == serial
    with pytest.raises(ValueError, match="Bad variant"):
        av.final_regrets(["no_such_field=1"], [0], 5, "qlearn", ["branin"])


def test_agent_variants_cache_keeps_finished_studies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "studies.jsonl"
    args = (["default"], [0, 1], 8, "qlearn", ["branin"])
    first = av.final_regrets(*args, cache=cache)
    assert len(cache.read_text().splitlines()) == 2

    def no_study(task: object) -> float:
        raise AssertionError(f"{task} was run again")

    monkeypatch.setattr(av, "_study", no_study)
    assert av.final_regrets(*args, cache=cache) == first  # read back, nothing re-run
    with pytest.raises(AssertionError, match="was run again"):
        av.final_regrets(["default"], [0, 1, 2], 8, "qlearn", ["branin"], cache=cache)


def test_agent_variants_writes_its_report_under_build_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["--variants", "default", "max_walk=2", "--seeds", "2", "--trials", "6",
            "--problems", "branin"]  # fmt: skip
    assert av.main(argv) == 0
    text = (tmp_path / "build" / "experiments" / "agent_variants.md").read_text()
    assert "`python -m experiments.agent_variants.run --variants default max_walk=2" in text
    assert "| `max_walk=2` |" in text
    assert av.main([*argv, "--out", str(tmp_path / "mine.md")]) == 0
    assert (tmp_path / "mine.md").read_text() == text


def test_the_harness_imports_no_experiment() -> None:
    import ast

    root = Path(__file__).resolve().parents[1] / "benchmarks"
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n.split(".")[0] == "experiments" for n in names), path.name


def test_fid_samplers_summarizes_best_so_far_per_sampler() -> None:
    import optuna

    from experiments.fid_samplers import run as fid

    def objective(trial: optuna.Trial) -> float:
        return float((trial.suggest_int("k", 2, 10) - 6) ** 2 + trial.suggest_int("m", 0, 3))

    runs = []
    for sampler in fid.SAMPLER_NAMES:
        for seed in (0, 1):
            run = fid.run_one(objective, sampler, seed, 12)
            assert run["best_so_far"] == sorted(run["best_so_far"], reverse=True)
            runs.append({**run, "objective": "toy"})
    rows = fid.summarize(runs, ["toy"], list(fid.SAMPLER_NAMES))
    assert [r["sampler"] for r in rows] == list(fid.SAMPLER_NAMES)
    best = min(r["best_so_far"][-1] for r in runs)
    for row in rows:
        assert row["seeds"] == 2 and row["trials"] == 12 and row["best_seen"] == best
        assert row["final_q1"] <= row["final_median"] <= row["final_q3"]
    with pytest.raises(ValueError, match="unknown sampler 'gp'"):
        fid.make_sampler("gp", 0)


def test_learned_policy_report_ranks_and_head_to_heads(tmp_path: Path) -> None:
    """The learned-policy report: ties share ranks, intervals bracket the means, cells are
    restricted to the seeds every method ran, and the harness runner reproduces run_task."""
    import gzip
    import json

    from experiments.learned_policy import report
    from experiments.learned_policy.stats import compare, ranks

    assert ranks(np.array([3.0, 1.0, 3.0])).tolist() == [2.5, 1.0, 2.5]
    curves = {
        "a": {"p": {"0": [2.0, 1.0], "1": [2.0, 0.0], "2": [5.0, 5.0]}},
        "b": {"p": {"0": [1.0, 1.0], "1": [1.0, 1.0]}},  # seed 2 missing: left out
    }
    path = tmp_path / "c.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump({"trials": 2, "curves": curves}, f)
    both = report.restrict(report.load([path]), ["a", "b"])
    assert set(both["a"]["p"]) == {"0", "1"}
    res = compare(both, {"p": "fam"}, 2, "a")
    h2h = res["head_to_head"]["b"]
    assert (h2h["wins"], h2h["ties"], h2h["losses"]) == (1, 1, 0)
    assert h2h["pair_mean_rank"] == pytest.approx(1.25)
    lo, hi = res["mean_rank"]["a"]["ci95"]
    assert lo <= res["mean_rank"]["a"]["mean"] <= hi
    first = compare(both, {"p": "fam"}, 1, "a")["head_to_head"]["b"]
    assert first["losses"] == 2  # at trial 1, b was ahead in both cells


def test_learned_policy_harness_runner_matches_the_harness() -> None:
    from benchmarks.run import Task, run_task
    from experiments.learned_policy.harness_eval import _factory, run

    curves = run("x", _factory("table"), ["branin"], [0], 15)
    summary, _ = run_task(Task("branin", "qlearn-rule", 0, 15, "test"))
    assert curves["branin"]["0"] == pytest.approx(summary["regret"], abs=1e-9)
    with pytest.raises(ValueError, match="Bad variant 'beta=1'"):
        _factory("default,beta=1")
    assert _factory("default,alpha=0.1")(3).config.alpha == 0.1
    dqn = _factory("default,dqn,learning_rate=0.001")(3)
    assert type(dqn).__name__ == "DQNSampler" and dqn.dqn_config.learning_rate == 0.001
    curves = run("d", _factory("table,dqn"), ["branin"], [0], 15)
    summary, _ = run_task(Task("branin", "dqn-table", 0, 15, "test"))
    assert curves["branin"]["0"] == pytest.approx(summary["regret"], abs=1e-9)


def test_learned_policy_variants_read_ensembles_and_single_networks(tmp_path: Path) -> None:
    from experiments.learned_policy.variants import read_networks
    from optuna_qlearn._core.policy import N_FEATURES, PolicyEnsemble, PolicyNetwork

    nets = [PolicyNetwork.initial(seed=s, hidden=4) for s in range(3)]
    PolicyEnsemble(nets[:2]).save(tmp_path / "two.npz")
    # A file written before the ensemble format: member 0's arrays only, version 1.
    arrays = {f"w{i}": p for i, p in enumerate(nets[2].params)}
    np.savez(tmp_path / "old.npz", version=np.array(1), **arrays)  # type: ignore[arg-type]
    ensemble = read_networks(f"{tmp_path / 'two.npz'},{tmp_path / 'old.npz'}")
    x = np.random.default_rng(0).random((4, N_FEATURES))
    assert len(ensemble.members) == 3
    assert np.allclose(ensemble(x), np.mean([n(x) for n in nets], axis=0))
