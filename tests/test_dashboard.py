"""optuna_qlearn.dashboard: what publish writes, the callback, the command.

The figures themselves are tested in test_visualization.py (publish writes those).
The Q-table views are the tabular agent's (``policy="table"``); the decision figure,
the correction table and the trial notes are the learned policy's (the default).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import wsgiref.util
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
    plot_correction,
    plot_decision,
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
    study = make_study(25, policy="table")
    optuna_dashboard.save_note(study, "My own notes.")
    ids = dash.publish(study, params=["x"])
    assert ids == list(dash.TABLE_GRAPH_IDS)
    objs = graphs(study)
    assert set(objs) == set(dash.TABLE_GRAPH_IDS)
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
    assert set(graphs(study)) == set(dash.TABLE_GRAPH_IDS)
    heat = graphs(study)["qlearn-greedy-value"]
    z = heat["data"][0]["z"]
    assert (len(z), len(z[0])) == (13, 16)  # default axes: lr (16 points) across, x (13) up
    assert graphs(study)["qlearn-greedy-value"] == json.loads(plot_greedy_value(study).to_json())
    stored = study._storage.get_study_system_attrs(study._study_id)[dash.KEY_SETTINGS]
    assert stored["class"] == "QLearningSampler" and stored["kwargs"]["n_bins"] == 16
    assert stored["kwargs"]["policy"] == "table"
    # The tabular agent stores no decisions: no trial gets a note.
    assert all(note_of(study, t) == "" for t in study.trials)


def note_of(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
    """A trial's note, read back with optuna-dashboard's public get_note."""
    return optuna_dashboard.get_note(optuna.trial.Trial(study, trial._trial_id))


def check_trial_note(note: str, trial: optuna.trial.FrozenTrial) -> None:
    """The note names every stored candidate, sorted by total Q, marks the chosen one and
    lists its features (computed here from the trial's ``qlearn:decision`` attribute)."""
    attrs = trial.system_attrs["qlearn:decision"]
    assert note.startswith(dash.NOTE_BEGIN) and note.count(dash.NOTE_END) == 1
    assert f"### Why trial {trial.number} went to {attrs['label']}" in note
    assert "| action | Q (network) | Q (total) |" in note
    rows = re.findall(r"^\| (\*\*▶ )?(.+?)( \(chosen\)\*\*)? \| \**(\S+?)\** \| \**(\S+?)\** \|$",
                      note.split("| action |")[1].split("#### Features")[0], re.M)  # fmt: skip
    rows = rows[1:]  # the header's separator
    stored = attrs["candidates"]
    assert len(rows) == len(stored)
    shown = sorted((re.sub(r" #\d+$", "", r[1]), float(r[3]), float(r[4])) for r in rows)
    want = sorted((c[0], float(f"{c[1]:.4g}"), float(f"{c[2]:.4g}")) for c in stored)
    assert shown == want
    totals = [float(r[4]) for r in rows]
    assert totals == sorted(totals, reverse=True)
    [chosen] = [r for r in rows if r[0]]
    assert chosen[2] and re.sub(r" #\d+$", "", chosen[1]) == attrs["label"]
    assert float(chosen[4]) == pytest.approx(attrs["q"], rel=1e-3, abs=1e-4)
    how = "at random" if attrs["explored"] else "greedily"
    assert f"**{attrs['label']}** (kind `{attrs['kind']}`) {how}" in note
    features = note.split("#### Features of ")[1]
    for name, value in attrs["features"].items():
        assert f"| {name} | {value:.4g} |" in features, name


def test_publish_with_the_learned_policy_writes_decisions_and_trial_notes() -> None:
    def noting(trial: Trial) -> float:
        if trial.number == 3:  # a note of the objective's own: kept below the section
            optuna_dashboard.save_note(trial, "The objective's own note.")
        return objective(trial)

    study = optuna.create_study(sampler=QLearningSampler(seed=0))
    study.optimize(noting, n_trials=20)
    optuna_dashboard.save_note(study, "My own notes.")
    ids = dash.publish(study)
    assert ids == list(dash.POLICY_GRAPH_IDS)
    objs = graphs(study)
    assert set(objs) == set(dash.POLICY_GRAPH_IDS)
    plots = {
        "qlearn-decision": plot_decision(study),
        "qlearn-correction": plot_correction(study),
        "qlearn-epsilon-reward": plot_epsilon_reward(study),
    }
    for graph_id, fig in plots.items():
        assert objs[graph_id] == json.loads(fig.to_json()), graph_id
    assert "decision of trial 19" in objs["qlearn-decision"]["layout"]["title"]["text"]
    # The study note: the policy, the correction table and the settings.
    note = optuna_dashboard.get_note(study)
    assert "My own notes." in note and "after 20 finished trials" in note
    assert "| policy | default |" in note and "| epsilon | 0.05 |" in note
    sampler = study.sampler
    assert isinstance(sampler, QLearningSampler)
    for kind, entry in sampler.correction_table(study).items():
        assert f"| {kind} | {entry['q']:.4g} | {entry['updates']} |" in note
    assert "- trials chosen by the policy: 19 (" in note
    # Every trial the policy chose has its note: candidates, Q-values, features.
    assert note_of(study, study.trials[0]) == ""  # sampled independently: no decision
    for trial in study.trials[1:]:
        note = note_of(study, trial)
        check_trial_note(note, trial)
        assert note.endswith("The objective's own note.") == (trial.number == 3)
    # A refresh writes the notes of the new trials only (cost bounded); a note edited
    # in the browser since (the section moved down) is not rewritten.
    edited = study.trials[5]
    page = optuna.trial.Trial(study, edited._trial_id)
    optuna_dashboard.save_note(page, "Edited first.\n\n" + note_of(study, edited))
    study.optimize(objective, n_trials=4)
    written: list[str] = []
    storage = study._storage
    original = storage.set_study_system_attr

    def spy(study_id: int, key: str, value: Any) -> None:
        written.append(key)
        original(study_id, key, value)

    storage.set_study_system_attr = spy  # type: ignore[method-assign]
    try:
        dash.publish(study)
    finally:
        storage.set_study_system_attr = original  # type: ignore[method-assign]
    noted = {int(k.split(":")[1]) for k in written if re.match(r"dashboard:\d+:note", k)}
    assert noted == {t._trial_id for t in study.trials[20:]}
    for trial in study.trials[20:]:
        check_trial_note(note_of(study, trial), trial)
    assert note_of(study, edited).startswith("Edited first.")
    assert note_of(study, edited).count(dash.NOTE_BEGIN) == 1
    # Publishing again writes no trial note at all.
    written.clear()
    storage.set_study_system_attr = spy  # type: ignore[method-assign]
    try:
        dash.publish(study)
    finally:
        storage.set_study_system_attr = original  # type: ignore[method-assign]
    assert not [k for k in written if re.match(r"dashboard:\d+:note", k)]


def test_trial_notes_are_read_by_the_dashboard_server(tmp_path: Path) -> None:
    """What the dashboard's own API serves for a trial (its note) after publish."""
    from optuna_dashboard._app import create_app

    url = f"sqlite:///{tmp_path / 'notes.db'}"
    study = make_study(8, storage=url)
    dash.publish(study)
    app = create_app(optuna.storages.get_storage(url))
    environ: dict[str, Any] = {"PATH_INFO": f"/api/studies/{study._study_id}"}
    wsgiref.util.setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    assert status == ["200 OK"]
    detail = json.loads(body)
    notes = {t["number"]: t["note"]["body"] for t in detail["trials"]}
    assert notes[0] == ""
    for trial in study.trials[1:]:
        check_trial_note(notes[trial.number], trial)


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
    study = make_study(12, policy="table", n_bins=5, max_bins=9, alpha=0.25, max_walk=7)
    dash.publish(study)
    stored = study._storage.get_study_system_attrs(study._study_id)[dash.KEY_SETTINGS]
    sampler = study.sampler
    assert isinstance(sampler, QLearningSampler)
    assert stored == {"class": "QLearningSampler", "kwargs": sampler.parameters}
    assert stored["kwargs"]["policy"] == "table"
    loaded = optuna.load_study(study_name=study.study_name, storage=study._storage)
    view = agent_view(loaded)
    assert view.sampler is not sampler and view.sampler.config == sampler.config
    assert view.sampler.parameters == sampler.parameters and view.settings["max_walk"] == 7
    assert view.sampler.policy == "table" and not view.learned
    # Settings stored before the learned policy existed have no "policy": the tabular
    # agent's, and rebuilt as such (the default is now a learned policy, which refuses
    # tabular settings such as max_walk).
    legacy = {k: v for k, v in sampler.parameters.items() if k != "policy"}
    study._storage.set_study_system_attr(
        study._study_id, dash.KEY_SETTINGS, {"class": "QLearningSampler", "kwargs": legacy}
    )
    view = agent_view(optuna.load_study(study_name=study.study_name, storage=study._storage))
    assert view.sampler.parameters == sampler.parameters and not view.warnings
    # Settings this version refuses are ignored (with a warning) for a default sampler,
    # which does not fit this study's grid: refused, by name.
    study._storage.set_study_system_attr(
        study._study_id, dash.KEY_SETTINGS, {"class": "QLearningSampler", "kwargs": {"nope": 1}}
    )
    with pytest.raises(ValueError, match="n_bins/max_bins"):
        agent_view(optuna.load_study(study_name=study.study_name, storage=study._storage))


@pytest.mark.parametrize("policy", ["default", None])
def test_stored_settings_rebuild_the_learned_policy(policy: str | None) -> None:
    study = make_study(12, policy=policy, n_bins=5, alpha=0.25, epsilon=0.2, gamma=0.5)
    dash.publish(study)
    stored = study._storage.get_study_system_attrs(study._study_id)[dash.KEY_SETTINGS]
    sampler = study.sampler
    assert isinstance(sampler, QLearningSampler)
    assert stored == {"class": "QLearningSampler", "kwargs": sampler.parameters}
    assert stored["kwargs"]["policy"] == policy
    loaded = optuna.load_study(study_name=study.study_name, storage=study._storage)
    view = agent_view(loaded)
    assert view.sampler is not sampler and view.sampler.config == sampler.config
    assert view.sampler.parameters == sampler.parameters and view.sampler.policy == policy
    assert view.learned and not view.warnings
    # The same agent: the same correction table, from the stored settings alone.
    assert view.correction == sampler.correction_table(study)
    assert view.sampler.correction_table(loaded) == sampler.correction_table(study)
    assert graphs(loaded) == graphs(study)
    dash.publish(loaded)  # without the sampler: the same figures again
    assert graphs(loaded) == graphs(study)


def test_mismatched_moves_are_refused() -> None:
    study = make_study(15, policy="table", moves="joint")
    with pytest.raises(ValueError, match="moves/step_sizes differ"):
        dash.publish(study, QLearningSampler(policy="table"))
    # Same number of actions, other moves: caught by the trials' recorded move labels.
    study = make_study(15, policy="table", step_sizes=(1,))
    with pytest.raises(ValueError, match="moves/step_sizes differ"):
        dash.publish(study, QLearningSampler(policy="table", step_sizes=(2,)))
    assert dash.publish(study, QLearningSampler(policy="table", step_sizes=(1,))) == list(
        dash.TABLE_GRAPH_IDS
    )
    # A study of the tabular agent given a learned policy, and the reverse: refused.
    with pytest.raises(ValueError, match=r"proposed by the tabular agent \(policy='table'\)"):
        dash.publish(study, QLearningSampler())
    learned = make_study(15)
    with pytest.raises(ValueError, match="proposed by a learned policy"):
        dash.publish(learned, QLearningSampler(policy="table"))


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
    # The trials finished by the last refresh have their notes (trials 0 and 1 have no
    # decision: 0 failed before its first suggest, 1 was sampled independently).
    for trial in study.trials[2:8]:
        check_trial_note(note_of(study, trial), trial)
    assert [note_of(study, t) for t in study.trials[:2] + study.trials[8:]] == [""] * 4
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


def test_dqn_sampler_learned_policy_is_shown_with_its_fine_tuning() -> None:
    pytest.importorskip("torch")
    from optuna_qlearn import DQNSampler

    study = optuna.create_study(sampler=DQNSampler(seed=0))
    study.optimize(objective, n_trials=25)
    dash.publish(study)
    note = optuna_dashboard.get_note(study)
    assert "## DQNSampler on" in note and "| warmup | 10 |" in note
    assert "| optimizer | sgd |" in note and "| hidden_sizes |" not in note


def test_dqn_sampler_table_is_shown_and_not_rebuilt_as_a_table() -> None:
    pytest.importorskip("torch")
    from optuna_qlearn import DQNSampler

    study = optuna.create_study(sampler=DQNSampler(policy="table", seed=0))
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
