"""optuna_qlearn.dashboard: the agent's view, what publish writes, the command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import Trial

from optuna_qlearn import QLearningSampler
from optuna_qlearn import dashboard as dash
from optuna_qlearn._core.agent import QLearningAgent
from optuna_qlearn.cli import build_parser

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytest.importorskip("optuna_dashboard")
pytest.importorskip("plotly")
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


def test_view_matches_the_q_table() -> None:
    study = make_study()
    sampler = study.sampler
    assert isinstance(sampler, QLearningSampler)
    view = dash.agent_view(study)
    grid, agent = sampler.agent(study)
    # Default axes: the two with most points (x: 13, lr: 16, act: 2).
    assert view.params == ("lr", "x")
    ix = [grid.names.index(p) for p in view.params]
    expected: dict[tuple[int, int], float] = {}
    visits: dict[tuple[int, int], int] = {}
    rows = sampler.q_table(study)
    assert view.n_visited == len(rows) > 0
    for row in rows:
        cell = (row["state"][ix[1]], row["state"][ix[0]])
        q = max(row["q"].values())
        expected[cell] = max(q, expected.get(cell, -np.inf))
        visits[cell] = visits.get(cell, 0) + sum(row["visits"].values())
    for y, row_values in enumerate(view.value):
        for x, v in enumerate(row_values):
            if (y, x) in expected:
                assert v == pytest.approx(expected[(y, x)])
                assert view.visits[y][x] == visits[(y, x)]
                assert view.arrows[y][x] in {"→", "←", "↑", "↓", "↗", "↖", "↘", "↙", "·", "•"}
            else:
                assert v is None and view.visits[y][x] == 0 and view.arrows[y][x] == ""
    assert sum(map(sum, view.visits)) == sum(sum(r["visits"].values()) for r in rows)
    # The policy table agrees with the sampler's greedy policy, best first.
    greedy = {json.dumps(p["params"], sort_keys=True): p for p in sampler.greedy_policy(study)}
    qs = [e["q"] for e in view.policy]
    assert qs == sorted(qs, reverse=True) and len(view.policy) == min(20, len(rows))
    for e in view.policy:
        g = greedy[json.dumps(e["params"], sort_keys=True)]
        assert (e["action"], e["next_params"]) == (g["action"], g["next_params"])
        assert e["q"] == pytest.approx(g["q"])
    assert view.x_labels == [dash._fmt(v) for v in grid.axes[ix[0]].values]
    with_eps = [t for t in study.trials if "qlearn:epsilon" in t.user_attrs]
    assert len(with_eps) == len(study.trials) - 1  # the first trial is sampled independently
    assert view.trial_numbers == [t.number for t in with_eps]
    assert view.epsilon == [t.user_attrs["qlearn:epsilon"] for t in with_eps]
    assert view.epsilon_now == pytest.approx(agent.epsilon)
    assert view.best is not None and view.best[0] == study.best_value


def test_arrow_points_along_the_greedy_move() -> None:
    study = make_study(30)
    view = dash.agent_view(study, params=["x", "lr"])  # x horizontal, lr vertical
    assert view.params == ("x", "lr")
    seen = 0
    for y, row in enumerate(view.arrows):
        for x, arrow in enumerate(row):
            hover = view.hover[y][x]
            if not arrow:
                assert hover.endswith("not visited")
                continue
            move = hover.split("greedy move: ")[1].split("<br>")[0]
            want = {"x+": "→", "x-": "←", "lr+": "↑", "lr-": "↓"}
            for prefix, glyph in want.items():
                if move.startswith(prefix):
                    assert arrow == glyph, (move, arrow)
                    seen += 1
            if move.startswith("act"):
                assert arrow == "•"
    assert seen > 0


class _SpySampler(QLearningSampler):
    """Records the reward of each trial's own (last) move as the agent learns it."""

    def __init__(self) -> None:
        super().__init__()
        self.learned: dict[int, float] = {}

    def _make_agent(self, *args: Any, **kwargs: Any) -> QLearningAgent:
        agent = super()._make_agent(*args, **kwargs)
        current: list[int] = []
        reward_fn, learn_fn = agent.rewards.reward, agent.learn

        def reward(new: float, previous: float | None = None) -> float:
            r = reward_fn(new, previous)
            self.learned[current[-1]] = r  # the last call of a trial is its own move
            return r

        def learn(step: Any) -> None:
            current.append(step.number)
            learn_fn(step)

        agent.rewards.reward = reward  # type: ignore[method-assign]
        agent.learn = learn  # type: ignore[method-assign]
        return agent


def test_rewards_are_those_the_agent_learned() -> None:
    study = make_study(50)
    view = dash.agent_view(study)
    spy = _SpySampler()
    spy.agent(study)  # replays the study into a fresh agent
    assert len(spy.learned) > 20
    assert view.reward_numbers == sorted(spy.learned)
    assert view.rewards == pytest.approx([spy.learned[n] for n in sorted(spy.learned)])
    assert all(-1.0 <= r <= 1.0 for r in view.rewards)  # rank rewards


def test_publish_writes_figures_and_keeps_the_users_note() -> None:
    study = make_study(25)
    optuna_dashboard.save_note(study, "My own notes.")
    ids = dash.publish(study, params=["x"])
    assert ids == list(dash.GRAPH_IDS)
    objs = graphs(study)
    assert set(objs) == set(dash.GRAPH_IDS)
    heat = objs["qlearn-greedy-value"]
    assert heat["data"][0]["type"] == "heatmap"
    assert "greedy value max_a Q(s, a) over x" in heat["layout"]["title"]["text"]
    assert len(heat["data"][0]["z"]) == 1  # one parameter: a single row
    curves = objs["qlearn-epsilon-reward"]
    assert [t["name"] for t in curves["data"]][:2] == ["epsilon", "reward"]
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
    stored = study._storage.get_study_system_attrs(study._study_id)[dash.KEY_SETTINGS]
    assert stored["class"] == "QLearningSampler" and stored["kwargs"]["n_bins"] == 16


def test_publish_without_the_sampler_uses_stored_settings() -> None:
    study = make_study(20, **QLearningSampler.seed_design_parameters(), n_bins=8)
    storage = study._storage  # a fresh load_study gets Optuna's default sampler

    def load() -> optuna.Study:
        return optuna.load_study(study_name=study.study_name, storage=storage)

    reference = dash.agent_view(study)
    # A default sampler does not match this study's grid and moves: refused, by name.
    with pytest.raises(ValueError, match="n_bins/max_bins"):
        dash.publish(load())
    # Once published with the right sampler, the settings travel with the study.
    dash.publish(study)
    again = dash.agent_view(load())
    assert again.value == reference.value and again.settings["moves"] == "joint"
    assert again.policy == reference.policy and not again.warnings


def test_settings_round_trip() -> None:
    seed_design = QLearningSampler.seed_design_parameters()
    sampler = QLearningSampler(**seed_design, n_bins=5, max_bins=9, alpha=0.25)
    settings = dash.sampler_settings(sampler)
    json.dumps(settings)  # stored as a JSON study attribute
    clone = dash.sampler_from_settings(settings)
    assert clone.config == sampler.config and clone.moves == "joint"
    assert dash.sampler_settings(clone) == settings
    sampler = QLearningSampler(max_walk=7, model_bandwidth=0.2)
    settings = dash.sampler_settings(sampler)
    json.dumps(settings)  # stored as a JSON study attribute
    clone = dash.sampler_from_settings(settings)
    assert clone.config == sampler.config and clone.config.max_walk == 7
    assert dash.sampler_settings(clone) == settings
    with pytest.raises(ValueError, match="Unknown sampler settings"):
        dash.sampler_from_settings({**settings, "nope": 1})


def test_mismatched_moves_are_refused() -> None:
    study = make_study(15, moves="joint")
    with pytest.raises(ValueError, match="moves/step_sizes differ"):
        dash.agent_view(study, QLearningSampler())


def test_bad_arguments() -> None:
    study = make_study(10)
    with pytest.raises(ValueError, match=r"among \['act', 'lr', 'x'\]"):
        dash.agent_view(study, params=["nope"])
    with pytest.raises(ValueError, match="one or two"):
        dash.agent_view(study, params=["x", "lr", "act"])
    with pytest.raises(TypeError, match="QLearningSampler"):
        dash.agent_view(study, optuna.samplers.RandomSampler())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="every"):
        dash.DashboardCallback(every=0)
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
    assert dash.command_hint("sqlite:///a.db", 9000) == (
        "optuna-qlearn dashboard sqlite:///a.db --port 9000"
    )


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
    assert "## DQNSampler on" in note and "| dqn." in note
    view = dash.agent_view(study)
    sampler = study.sampler
    assert isinstance(sampler, DQNSampler)
    assert view.n_visited == len(sampler.q_table(study)) > 0
    # Without the sampler, a tabular rebuild of a DQN study is refused, by name.
    loaded = optuna.load_study(study_name=study.study_name, storage=study._storage)
    with pytest.raises(ValueError, match="published with a DQNSampler"):
        dash.publish(loaded)
