"""optuna_qlearn.dashboard: what publish writes, the callback, the command.

The figures themselves are tested in test_visualization.py (publish writes those).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from conftest import require
from optuna.trial import Trial

from optuna_qlearn import QLearningSampler
from optuna_qlearn import dashboard as dash
from optuna_qlearn.cli import build_parser
from optuna_qlearn.visualization import (
    plot_epsilon_reward,
    plot_greedy_value,
    plot_policy,
    plot_visits,
)
from optuna_qlearn.visualization._view import agent_view

optuna.logging.set_verbosity(optuna.logging.WARNING)
for _module in ("optuna_dashboard", "plotly"):
    require(importlib.util.find_spec(_module) is not None, f"{_module} is not installed")
import optuna_dashboard  # noqa: E402
from optuna_dashboard._custom_plot_data import get_plotly_graph_objects  # noqa: E402


def objective(trial: Trial) -> float:
    x = trial.suggest_int("x", -6, 6)
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    act = trial.suggest_categorical("act", ["relu", "tanh"])
    return (x - 2) ** 2 + (np.log10(lr) + 2.5) ** 2 + (0.0 if act == "relu" else 1.0)


def make_study(n_trials: int = 40, storage: Any = None, **kwargs: Any) -> optuna.Study:
    study = optuna.create_study(storage=storage, sampler=QLearningSampler(seed=0, **kwargs))
    study.optimize(objective, n_trials=n_trials)
    return study


def graphs(study: optuna.Study) -> dict[str, dict[str, Any]]:
    attrs = study._storage.get_study_system_attrs(study._study_id)
    return {k: json.loads(v) for k, v in get_plotly_graph_objects(attrs).items()}


def test_publish_writes_the_visualization_figures_and_keeps_the_users_note() -> None:
    study = make_study(25)
    optuna_dashboard.save_note(study, "My own notes.")
    ids = dash.publish(study, params=["x"])
    assert ids == list(dash.GRAPH_IDS)
    objs = graphs(study)
    assert set(objs) == set(dash.GRAPH_IDS)
    # One implementation: what publish stores is what optuna_qlearn.visualization draws.
    plots = {
        "qlearn-greedy-value": plot_greedy_value(study, params=["x"]),
        "qlearn-visits": plot_visits(study, params=["x"]),
        "qlearn-policy": plot_policy(study, params=["x"]),
        "qlearn-epsilon-reward": plot_epsilon_reward(study),
    }
    for graph_id, fig in plots.items():
        assert objs[graph_id] == json.loads(fig.to_json()), graph_id
    assert {k: f.to_json() for k, f in dash.figures(study, params=["x"]).items()} == {
        k: f.to_json() for k, f in plots.items()
    }
    heat = objs["qlearn-greedy-value"]
    assert "greedy value max_a Q(s, a) over x" in heat["layout"]["title"]["text"]
    assert len(heat["data"][0]["z"]) == 1  # one parameter: a single row
    note = optuna_dashboard.get_note(study)
    assert "My own notes." in note and "| moves | axis |" in note
    assert "after 25 finished trials" in note
    # Re-publishing replaces the section and the figures instead of adding more.
    study.optimize(objective, n_trials=5)
    dash.publish(study)
    note = optuna_dashboard.get_note(study)
    assert note.count(dash.NOTE_BEGIN) == 1 and "after 30 finished trials" in note
    assert "My own notes." in note
    assert set(graphs(study)) == set(dash.GRAPH_IDS)
    heat = graphs(study)["qlearn-greedy-value"]
    z = heat["data"][0]["z"]
    assert (len(z), len(z[0])) == (13, 16)  # default axes: lr (16 points) across, x (13) up
    assert graphs(study)["qlearn-greedy-value"] == json.loads(plot_greedy_value(study).to_json())
    stored = study._storage.get_study_system_attrs(study._study_id)[dash.KEY_SETTINGS]
    assert stored["class"] == "QLearningSampler" and stored["kwargs"]["n_bins"] == 16


def test_publish_without_the_sampler_uses_stored_settings() -> None:
    study = make_study(20, **QLearningSampler.seed_design_parameters(), n_bins=8)
    storage = study._storage  # a fresh load_study gets Optuna's default sampler

    def load() -> optuna.Study:
        return optuna.load_study(study_name=study.study_name, storage=storage)

    reference = agent_view(study)
    # A default sampler does not match this study's grid and moves: refused, by name.
    with pytest.raises(ValueError, match="n_bins/max_bins"):
        dash.publish(load())
    # Once published with the right sampler, the settings travel with the study.
    dash.publish(study)
    again = agent_view(load())
    assert again.value == reference.value and again.settings["moves"] == "joint"
    assert again.policy == reference.policy and not again.warnings


def test_stored_settings_rebuild_the_sampler() -> None:
    study = make_study(12, n_bins=5, max_bins=9, alpha=0.25, max_walk=7)
    dash.publish(study)
    stored = study._storage.get_study_system_attrs(study._study_id)[dash.KEY_SETTINGS]
    sampler = study.sampler
    assert isinstance(sampler, QLearningSampler)
    assert stored == {"class": "QLearningSampler", "kwargs": sampler.parameters}
    loaded = optuna.load_study(study_name=study.study_name, storage=study._storage)
    view = agent_view(loaded)
    assert view.sampler is not sampler and view.sampler.config == sampler.config
    assert view.sampler.parameters == sampler.parameters and view.settings["max_walk"] == 7
    # Settings this version refuses are ignored (with a warning) for a default sampler,
    # which does not fit this study's grid: refused, by name.
    study._storage.set_study_system_attr(
        study._study_id, dash.KEY_SETTINGS, {"class": "QLearningSampler", "kwargs": {"nope": 1}}
    )
    with pytest.raises(ValueError, match="n_bins/max_bins"):
        agent_view(optuna.load_study(study_name=study.study_name, storage=study._storage))


def test_mismatched_moves_are_refused() -> None:
    study = make_study(15, moves="joint")
    with pytest.raises(ValueError, match="moves/step_sizes differ"):
        dash.publish(study, QLearningSampler())
    # Same number of actions, other moves: caught by the trials' recorded move labels.
    study = make_study(15, step_sizes=(1,))
    with pytest.raises(ValueError, match="moves/step_sizes differ"):
        dash.publish(study, QLearningSampler(step_sizes=(2,)))
    assert dash.publish(study, QLearningSampler(step_sizes=(1,))) == list(dash.GRAPH_IDS)


def test_bad_arguments() -> None:
    study = make_study(10)
    with pytest.raises(ValueError, match=r"among \['act', 'lr', 'x'\]"):
        dash.publish(study, params=["nope"])
    with pytest.raises(ValueError, match="one or two"):
        dash.figures(study, params=["x", "lr", "act"])
    with pytest.raises(TypeError, match="QLearningSampler"):
        dash.publish(study, optuna.samplers.RandomSampler())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="top_k"):
        dash.publish(study, top_k=0)
    for every in (0, 2.5, "3"):
        with pytest.raises(ValueError, match="every"):
            dash.DashboardCallback(every=every)  # type: ignore[arg-type]
    empty = optuna.create_study()
    with pytest.raises(ValueError, match="no finished trials"):
        dash.publish(empty, QLearningSampler())


def test_callback_refreshes_during_optimize_and_skips_young_studies() -> None:
    study = optuna.create_study(sampler=QLearningSampler(seed=1), direction="maximize")
    calls: list[int] = []

    def failing_first(trial: Trial) -> float:
        if trial.number == 0:
            raise RuntimeError("boom")  # no parameters: no shared search space yet
        return -objective(trial)

    callback = dash.DashboardCallback(every=4)
    orig = dash.publish

    def counting(*args: Any, **kwargs: Any) -> list[str]:
        calls.append(len(args[0].trials))
        return orig(*args, **kwargs)

    dash.publish = counting
    try:
        study.optimize(failing_first, n_trials=10, callbacks=[callback], catch=(RuntimeError,))
    finally:
        dash.publish = orig
    assert calls == [4, 8]
    assert "after 8 finished trials" in optuna_dashboard.get_note(study)
    young = optuna.create_study(sampler=QLearningSampler())
    young.optimize(failing_first, n_trials=1, callbacks=[dash.DashboardCallback(every=1)],
                   catch=(RuntimeError,))  # fmt: skip
    assert optuna_dashboard.get_note(young) == ""


def test_resolve_storage(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    optuna.create_study(storage=f"sqlite:///{db}")
    assert dash.resolve_storage(str(db)) == f"sqlite:///{db}"
    assert dash.resolve_storage("postgresql://u@h/db") == "postgresql://u@h/db"
    journal = tmp_path / "j.log"
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    optuna.create_study(storage=storage, study_name="j")
    resolved = dash.resolve_storage(str(journal))
    assert isinstance(resolved, optuna.storages.JournalStorage)
    assert [s.study_name for s in optuna.get_all_study_summaries(resolved)] == ["j"]
    with pytest.raises(FileNotFoundError, match="neither a URL"):
        dash.resolve_storage(str(tmp_path / "missing.db"))


def test_command_publishes_then_serves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    make_study(8, storage=url)
    optuna.create_study(storage=url, study_name="other").optimize(objective, n_trials=2)
    served: list[tuple[Any, str, int]] = []
    monkeypatch.setattr(
        optuna_dashboard, "run_server", lambda s, host, port: served.append((s, host, port))
    )
    args = build_parser().parse_args(["dashboard", url, "--port", "8123", "--publish"])
    assert args._module is dash
    assert dash.run(args) == 0
    assert served == [(url, "127.0.0.1", 8123)]
    names = {s.study_name: s for s in optuna.get_all_study_summaries(url)}
    for name in names:
        loaded = optuna.load_study(study_name=name, storage=url)
        attrs = loaded._storage.get_study_system_attrs(loaded._study_id)
        # Only the study the Q-learning sampler ran gets the views.
        assert (dash.KEY_SETTINGS in attrs) == (name != "other")
    bad = argparse.Namespace(
        storage=str(tmp_path / "nope"), port=1, host="127.0.0.1", publish=False, study=None,
        params=None,
    )  # fmt: skip
    assert dash.run(bad) == 2
    bad.storage, bad.port = url, 0
    assert dash.run(bad) == 2
    bad.port, bad.publish, bad.study = 8000, True, "missing"
    assert dash.run(bad) == 2


def test_dqn_sampler_is_shown_and_not_rebuilt_as_a_table() -> None:
    pytest.importorskip("torch")
    from optuna_qlearn import DQNSampler

    study = optuna.create_study(sampler=DQNSampler(seed=0))
    study.optimize(objective, n_trials=25)
    dash.publish(study)
    note = optuna_dashboard.get_note(study)
    assert "## DQNSampler on" in note and "| hidden_sizes |" in note
    view = agent_view(study)
    sampler = study.sampler
    assert isinstance(sampler, DQNSampler)
    assert view.n_visited == len(sampler.q_table(study)) > 0
    # Without the sampler, a tabular rebuild of a DQN study is refused, by name.
    loaded = optuna.load_study(study_name=study.study_name, storage=study._storage)
    with pytest.raises(ValueError, match="published with a DQNSampler"):
        dash.publish(loaded)
