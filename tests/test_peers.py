"""The peers outside Optuna (benchmarks/peers.py): SMAC3 and HEBO as Optuna samplers.

SMAC3 is in the ``dev`` extra, so its tests run in CI (``require`` fails there if it
is missing). HEBO 0.3.6 pins ``numpy<1.25`` and cannot share the project's
environment: its tests run only where ``hebo`` imports (its own environment, see
docs/benchmarks.md) and are skipped elsewhere, CI included.
"""

from __future__ import annotations

import gc
import math
from typing import Any

import numpy as np
import optuna
import pytest
from conftest import require
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from benchmarks import peers
from benchmarks.peers import _Axis

SPACE: dict[str, BaseDistribution] = {
    "lr": FloatDistribution(1e-4, 1.0, log=True),
    "width": IntDistribution(16, 256, step=16),
    "act": CategoricalDistribution(["relu", "tanh", None]),
}


def objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
    width = trial.suggest_int("width", 16, 256, step=16)
    act = trial.suggest_categorical("act", ["relu", "tanh", None])
    return (math.log10(lr) + 2.0) ** 2 + abs(width - 128) / 64 + (act != "tanh")


def smac(**kwargs: Any) -> peers.SMACSampler:
    require(peers.smac_available(), "smac (SMAC3) is not installed: pip install '.[peers]'")
    return peers.SMACSampler(**kwargs)


def smac_statuses(sampler: peers.SMACSampler) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in sampler._smac.runhistory.values():
        out[value.status.name] = out.get(value.status.name, 0) + 1
    return out


def hebo(**kwargs: Any) -> peers.HEBOSampler:
    if not peers.hebo_available():
        pytest.skip("hebo is not installed (it needs an environment with numpy<1.25)")
    return peers.HEBOSampler(**kwargs)


def run(sampler: optuna.samplers.BaseSampler, n_trials: int) -> optuna.Study:
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    return study


def assert_in_space(study: optuna.Study) -> None:
    for t in study.trials:
        assert t.state == TrialState.COMPLETE
        assert set(t.params) == set(SPACE)
        for name, dist in SPACE.items():
            assert t.distributions[name] == dist
            assert dist._contains(dist.to_internal_repr(t.params[name])), (name, t.params)


# ----------------------------------------------------------------------------- translation
@pytest.mark.parametrize(
    "dist",
    [
        FloatDistribution(-2.0, 3.0),
        FloatDistribution(1e-5, 10.0, log=True),
        FloatDistribution(-1.0, 1.0, step=0.1),
        FloatDistribution(0.0, 1.0, step=0.3),  # high adjusted to 0.9
        IntDistribution(-3, 7),
        IntDistribution(1, 1024, log=True),
        IntDistribution(0, 20, step=4),
        CategoricalDistribution(["a", 1, None, 2.5, True]),
    ],
)
def test_axis_maps_every_grid_value_back_to_itself(dist: BaseDistribution) -> None:
    axis = _Axis.of("p", dist)
    if isinstance(dist, CategoricalDistribution):
        values: list[Any] = list(dist.choices)
    elif isinstance(dist, FloatDistribution) and dist.step is None:
        values = list(np.linspace(dist.low, dist.high, 7))
    elif isinstance(dist, FloatDistribution):
        assert dist.step is not None
        values = [dist.low + k * dist.step for k in range(axis.n)]
        assert values[-1] == pytest.approx(dist.high)
    else:
        assert isinstance(dist, IntDistribution)
        values = list(range(dist.low, dist.high + 1, dist.step))
    for v in values:
        back = axis.from_peer(axis.to_peer(v))
        assert back == pytest.approx(v) if isinstance(v, float) else back == v
        assert dist._contains(dist.to_internal_repr(back))
    # Out-of-range proposals are clipped into the distribution.
    for far in (-1e9, 1e9):
        if axis.kind != "categorical":
            assert dist._contains(dist.to_internal_repr(axis.from_peer(far)))


def test_stepped_parameters_become_ordinal_indices() -> None:
    axis = _Axis.of("w", IntDistribution(16, 256, step=16))
    assert (axis.kind, axis.n) == ("index", 16)
    assert axis.to_peer(48) == 2 and axis.from_peer(2) == 48
    assert isinstance(axis.from_peer(2.4), int)
    f = _Axis.of("s", FloatDistribution(0.0, 1.0, step=0.25))
    assert (f.kind, f.n) == ("index", 5)
    assert f.from_peer(3) == 0.75


# ----------------------------------------------------------------------------- SMAC
def test_smac_study_completes_in_its_distributions_and_learns_every_trial() -> None:
    sampler = smac(seed=0, n_trials=20)  # an initial design of 5, then the forest
    study = run(sampler, 12)
    assert_in_space(study)
    assert len(study.trials) == 12
    # Trial 0 is random (no relative space yet); every later ask saw all finished trials.
    assert smac_statuses(sampler) == {"SUCCESS": 11, "RUNNING": 1}  # trial 11's ask
    assert len({tuple(sorted(map(str, t.params.values()))) for t in study.trials[1:]}) == 11
    assert study.best_value < 3.0  # the optimum is 0; random points average ~3.3


def test_smac_same_seed_same_trials_other_seed_other_trials() -> None:
    a = [t.params for t in run(smac(seed=3, n_trials=20), 12).trials]
    b = [t.params for t in run(smac(seed=3, n_trials=20), 12).trials]
    c = [t.params for t in run(smac(seed=4, n_trials=20), 12).trials]
    assert a == b
    assert a != c


def test_smac_learns_enqueued_and_failed_trials_and_maximizes() -> None:
    sampler = smac(seed=1, n_trials=10)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.enqueue_trial({"lr": 0.01, "width": 128, "act": "tanh"})

    def negated(trial: optuna.Trial) -> float:
        value = -objective(trial)
        if trial.number == 2:
            raise RuntimeError("an evaluation that fails")
        return value

    study.optimize(negated, n_trials=8, catch=(RuntimeError,))
    states = [t.state for t in study.trials]
    assert states.count(TrialState.FAIL) == 1 and states.count(TrialState.COMPLETE) == 7
    assert study.trials[0].params == {"lr": 0.01, "width": 128, "act": "tanh"}
    assert study.best_value == 0.0  # the enqueued optimum stays the best
    # Every finished trial but the last is in SMAC's run history, the failure as crashed.
    assert smac_statuses(sampler) == {"SUCCESS": 6, "CRASHED": 1, "RUNNING": 1}
    costs = [v.cost for v in sampler._smac.runhistory.values() if v.status.name != "RUNNING"]
    assert min(costs) == 0.0  # the enqueued trial: maximizing -0 is minimizing 0
    told = sorted(-t.value for t in study.trials if t.value is not None and t.number < 7)
    assert sorted(costs) == sorted([*told, told[-1]])  # the failure at the worst so far


def test_smac_removes_its_run_directory_and_refuses_bad_arguments() -> None:
    sampler = smac(seed=0)
    run(sampler, 3)
    directory = sampler._dir
    assert directory.is_dir()
    del sampler
    gc.collect()
    assert not directory.exists()
    with pytest.raises(ValueError, match="facade"):
        smac(facade="gp")
    with pytest.raises(ValueError, match="n_trials"):
        smac(n_trials=0)
    with pytest.raises(TypeError, match="n_trials"):
        smac(n_trials=2.5)
    with pytest.raises(ValueError, match="seed"):
        smac(seed=-1)
    with pytest.raises(TypeError, match="seed"):
        smac(seed="0")


def test_smac_refuses_multi_objective_studies() -> None:
    study = optuna.create_study(sampler=smac(seed=0), directions=["minimize", "minimize"])
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), 1)
    with pytest.raises(ValueError, match="single-objective"):
        study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), 1)


def test_smac_blackbox_facade_runs() -> None:
    study = run(smac(seed=0, facade="blackbox", n_trials=12), 6)
    assert_in_space(study)


# ----------------------------------------------------------------------------- HEBO
def test_hebo_study_completes_deterministically_in_its_distributions() -> None:
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = run(hebo(seed=0), 7)  # 4 Sobol points (1 + d), then 2 GP + MACE asks
    assert (np.random.get_state()[1] == before).all()  # the caller's generator untouched
    assert_in_space(a)
    b = run(hebo(seed=0), 7)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]


def test_hebo_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="model_name"):  # checked before the import: runs in CI
        peers.HEBOSampler(model_name="catboost")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed"):
        hebo(seed=2**31)


def test_peers_are_registered_in_the_benchmark_where_importable() -> None:
    from benchmarks.samplers import make_sampler

    require(peers.smac_available(), "smac (SMAC3) is not installed: pip install '.[peers]'")
    assert isinstance(make_sampler("smac", 5), peers.SMACSampler)
