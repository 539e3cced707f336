"""optuna_qlearn.visualization: every figure draws the agent's own data, in Plotly and Matplotlib.

The expected data is computed here from the sampler's public views (``q_table``,
``greedy_policy``, ``correction_table``, the trials' ``qlearn:*`` attributes) and, for
rewards, from a spy on the agent's own reward calls (or, for the learned policy, from
the trial values), not from the view the figures are built with. The Q-table views
are the tabular agent's (``policy="table"``); the decision and correction views are
the learned policy's (the default).

``OPTUNA_QLEARN_UPDATE_IMAGES=1`` also writes the PNGs of ``docs/visualization.md``
into ``docs/images/``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from conftest import REPO_ROOT, require
from optuna.trial import Trial

from optuna_qlearn import QLearningSampler
from optuna_qlearn import visualization as vis
from optuna_qlearn._core.agent import QLearningAgent
from optuna_qlearn._core.policy import CORRECTION_KINDS
from optuna_qlearn.visualization import matplotlib as vis_mpl
from optuna_qlearn.visualization._plotly import DECISION_COLORS
from optuna_qlearn.visualization._view import KEY_SETTINGS, agent_view

optuna.logging.set_verbosity(optuna.logging.WARNING)
for _module in ("plotly", "matplotlib"):
    require(importlib.util.find_spec(_module) is not None, f"{_module} is not installed")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

UPDATE_DOCS = os.environ.get("OPTUNA_QLEARN_UPDATE_IMAGES") == "1"
ARROW = {
    (1, 0): "→", (-1, 0): "←", (0, 1): "↑", (0, -1): "↓",
    (1, 1): "↗", (-1, 1): "↖", (1, -1): "↘", (-1, -1): "↙",
}  # fmt: skip


def objective(trial: Trial) -> float:
    x = trial.suggest_int("x", -6, 6)
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    act = trial.suggest_categorical("act", ["relu", "tanh"])
    return (x - 2) ** 2 + (np.log10(lr) + 2.5) ** 2 + (0.0 if act == "relu" else 1.0)


def make_study(n_trials: int = 40, **kwargs: Any) -> optuna.Study:
    study = optuna.create_study(sampler=QLearningSampler(seed=0, **kwargs))
    study.optimize(objective, n_trials=n_trials)
    return study


@pytest.fixture(scope="module")
def study() -> optuna.Study:
    """A study of the tabular agent."""
    return make_study(40, policy="table", step_sizes=(1, 2))


@pytest.fixture(scope="module")
def learned() -> optuna.Study:
    """A study of the learned policy (the default), with in-study learning on."""
    return make_study(40, alpha=0.1)


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    yield
    plt.close("all")


def parse_move(label: str) -> dict[str, int]:
    """``"lr+1,x-2"`` -> ``{"lr": 1, "x": -2}``; ``"stay"`` -> ``{}``."""
    if label == "stay":
        return {}
    out = {}
    for part in label.split(","):
        m = re.fullmatch(r"(.+?)([+-]\d+)", part)
        assert m is not None, label
        out[m.group(1)] = int(m.group(2))
    return out


def expected(study: optuna.Study, params: tuple[str, ...]) -> dict[str, Any]:
    """Per cell ``(y, x)``: max Q, visits and the best state's greedy move on the axes."""
    sampler = study.sampler
    assert isinstance(sampler, QLearningSampler)
    rows = sampler.q_table(study)
    greedy = {tuple(g["params"].items()): g for g in sampler.greedy_policy(study)}
    names = list(rows[0]["params"])
    ix = [names.index(p) for p in params]
    value: dict[tuple[int, int], float] = {}
    visits: dict[tuple[int, int], int] = {}
    move: dict[tuple[int, int], tuple[int, int]] = {}
    stays: dict[tuple[int, int], bool] = {}
    for row in rows:
        cell = (row["state"][ix[1]] if len(ix) > 1 else 0, row["state"][ix[0]])
        q = max(row["q"].values())
        visits[cell] = visits.get(cell, 0) + sum(row["visits"].values())
        if cell not in value or q > value[cell]:
            value[cell] = q
            steps = parse_move(greedy[tuple(row["params"].items())]["action"])
            move[cell] = (steps.get(params[0], 0), steps.get(params[1], 0) if len(ix) > 1 else 0)
            stays[cell] = not steps
    return {"value": value, "visits": visits, "move": move, "stay": stays}


def grid_values(study: optuna.Study, name: str) -> list[Any]:
    sampler = study.sampler
    assert isinstance(sampler, QLearningSampler)
    grid, _ = sampler.agent(study)
    return list(grid.axes[grid.names.index(name)].values)


# ---------------------------------------------------------------------- Plotly
def test_greedy_value_heatmap(study: optuna.Study) -> None:
    fig = vis.plot_greedy_value(study, params=["lr", "x"])
    assert [t.type for t in fig.data] == ["heatmap"]
    z, text = fig.data[0].z, fig.data[0].text
    want = expected(study, ("lr", "x"))
    assert (len(z), len(z[0])) == (13, 16)  # x has 13 grid points (rows), lr 16 (columns)
    assert len(want["value"]) > 10
    for y, row in enumerate(z):
        for x, v in enumerate(row):
            if (y, x) not in want["value"]:
                assert v is None and text[y][x] == ""
                continue
            assert v == pytest.approx(want["value"][(y, x)])
            dx, dy = want["move"][(y, x)]
            if (dx, dy) != (0, 0):
                assert text[y][x] == ARROW[(int(np.sign(dx)), int(np.sign(dy)))]
            else:
                assert text[y][x] == ("·" if want["stay"][(y, x)] else "•")
    labels = list(fig.layout.xaxis.ticktext)
    assert labels == [f"{v:.4g}" for v in grid_values(study, "lr")]
    assert fig.layout.xaxis.title.text == "lr" and fig.layout.yaxis.title.text == "x"
    assert fig.layout.title.text == "Q-learning: greedy value max_a Q(s, a) over lr × x"


def test_default_axes_and_one_parameter(study: optuna.Study) -> None:
    # Default axes: the two with most grid points (lr: 16, x: 13, act: 2).
    assert vis.plot_greedy_value(study).layout.xaxis.title.text == "lr"
    fig = vis.plot_visits(study, params=["x"])
    z = fig.data[0].z
    want = expected(study, ("x",))
    assert len(z) == 1 and len(z[0]) == 13
    assert [v or 0 for v in z[0]] == [want["visits"].get((0, x), 0) for x in range(13)]


def test_visits_heatmap(study: optuna.Study) -> None:
    fig = vis.plot_visits(study, params=["lr", "x"])
    z = fig.data[0].z
    want = expected(study, ("lr", "x"))
    got = {(y, x): v for y, row in enumerate(z) for x, v in enumerate(row) if v is not None}
    assert got == {cell: n for cell, n in want["visits"].items() if n > 0}
    sampler = study.sampler
    assert isinstance(sampler, QLearningSampler)
    total = sum(sum(r["visits"].values()) for r in sampler.q_table(study))
    assert sum(got.values()) == total > 0


def test_policy_arrows(study: optuna.Study) -> None:
    fig = vis.plot_policy(study, params=["lr", "x"])
    want = expected(study, ("lr", "x"))
    [scatter] = fig.data
    cells = {(y, x) for x, y in zip(scatter.x, scatter.y)}
    assert cells == set(want["value"])
    for x, y, q in zip(scatter.x, scatter.y, scatter.marker.color):
        assert q == pytest.approx(want["value"][(y, x)])
    arrows = {(a.ay, a.ax): (a.x - a.ax, a.y - a.ay) for a in fig.layout.annotations}
    along = {cell: m for cell, m in want["move"].items() if m != (0, 0)}
    assert arrows == along and len(arrows) > 5
    assert all(a.axref == "x" and a.ayref == "y" and a.showarrow for a in fig.layout.annotations)
    symbols = dict(zip(zip(scatter.y, scatter.x), scatter.marker.symbol))
    for cell, m in want["move"].items():
        if m != (0, 0):
            assert symbols[cell] == "circle"
        else:
            assert symbols[cell] == ("circle-open" if want["stay"][cell] else "x-thin-open")
    # Moves of 2 grid steps exist in this study (step_sizes=(1, 2)): arrows keep their length.
    assert {max(abs(dx), abs(dy)) for dx, dy in arrows.values()} <= {1, 2}


class _SpySampler(QLearningSampler):
    """Records the reward of each trial's own (last) move as the agent learns it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
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


def test_epsilon_and_reward_per_trial() -> None:
    study = make_study(50, policy="table")
    fig = vis.plot_epsilon_reward(study)
    assert [t.name for t in fig.data] == ["epsilon", "reward", "reward, mean of 10"]
    eps, reward, mean = fig.data
    with_eps = [t for t in study.trials if "qlearn:epsilon" in t.user_attrs]
    assert len(with_eps) == len(study.trials) - 1  # the first trial is sampled independently
    assert list(eps.x) == [t.number for t in with_eps]
    assert list(eps.y) == [t.user_attrs["qlearn:epsilon"] for t in with_eps]
    spy = _SpySampler(policy="table")
    spy.agent(study)  # replays the study into a fresh agent
    assert len(spy.learned) > 20
    assert list(reward.x) == sorted(spy.learned)
    assert list(reward.y) == pytest.approx([spy.learned[n] for n in sorted(spy.learned)])
    assert all(-1.0 <= r <= 1.0 for r in reward.y)  # rank rewards
    sampler = study.sampler
    assert isinstance(sampler, QLearningSampler)
    assert dict(zip(reward.x, reward.y)) == sampler.trial_rewards(study)
    rewards = np.array(reward.y)
    assert list(mean.x) == list(reward.x)[9:]
    assert list(mean.y) == pytest.approx(
        [rewards[i - 9 : i + 1].mean() for i in range(9, len(rewards))]
    )


def test_epsilon_and_reward_per_trial_of_the_learned_policy(learned: optuna.Study) -> None:
    fig = vis.plot_epsilon_reward(learned)
    assert [t.name for t in fig.data] == ["epsilon", "reward", "reward, mean of 10"]
    eps, reward, _ = fig.data
    with_eps = [t for t in learned.trials if "qlearn:epsilon" in t.user_attrs]
    assert len(with_eps) == len(learned.trials) - 1  # the first trial is sampled independently
    assert list(eps.x) == [t.number for t in with_eps]
    assert list(eps.y) == [t.user_attrs["qlearn:epsilon"] for t in with_eps]
    # The learned policy's reward: the improvement of the best value, scaled to [0, 1].
    # Every trial it chose has one, positive exactly when the trial beat all before it.
    decided = [t.number for t in learned.trials if "qlearn:decision" in t.system_attrs]
    assert list(reward.x) == decided
    values = [t.value for t in learned.trials]
    for n, r in zip(reward.x, reward.y):
        assert 0.0 <= r <= 1.0
        assert (r > 0) == (values[n] < min(values[:n])), n
    assert any(r > 0 for r in reward.y)
    sampler = learned.sampler
    assert isinstance(sampler, QLearningSampler)
    assert dict(zip(reward.x, reward.y)) == sampler.trial_rewards(learned)
    assert fig.layout.annotations[1].text == "reward of the chosen action"


# ---------------------------------------------------------------------- the learned policy
def stored_decision(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The trial's ``qlearn:decision``, read here straight from its system attributes."""
    attrs = trial.system_attrs["qlearn:decision"]
    assert isinstance(attrs, dict)
    return attrs


def test_decision_of_a_trial(learned: optuna.Study) -> None:
    last = max(t.number for t in learned.trials if "qlearn:decision" in t.system_attrs)
    assert vis.plot_decision(learned).to_json() == vis.plot_decision(learned, last).to_json()
    n_explored = 0
    for trial in learned.trials[1:]:
        attrs = stored_decision(trial)
        fig = vis.plot_decision(learned, trial_number=trial.number)
        net, total, table = fig.data
        assert (net.name, total.name, table.name) == ("Q (network)", "Q (total)", "features")
        # Every stored candidate has its two bars, sorted by total Q (best first).
        stored = attrs["candidates"]
        assert len(net.x) == len(total.x) == len(stored) > 3
        assert list(total.y) == sorted((c[2] for c in stored), reverse=True)
        labels = [re.sub(r" #\d+$", "", name) for name in net.x]
        got = sorted(zip(labels, net.y, total.y), key=lambda c: (c[0], c[1], c[2]))
        assert got == sorted((c[0], c[1], c[2]) for c in stored)
        assert len(set(net.x)) == len(net.x)  # duplicates ("model") are numbered
        # Exactly one candidate is highlighted: the chosen one, with its stored values.
        chosen_color = DECISION_COLORS["chosen_q"]
        [i] = [k for k, color in enumerate(total.marker.color) if color == chosen_color]
        assert labels[i] == attrs["label"]
        assert total.y[i] == pytest.approx(attrs["q"], abs=1e-4)
        assert net.y[i] == pytest.approx(attrs["q_net"], abs=1e-4)
        assert net.marker.color[i] == DECISION_COLORS["chosen_q_net"]
        assert list(total.marker.line.width).count(2) == 1 and total.marker.line.width[i] == 2
        [mark] = fig.layout.annotations[2:]  # after the two subplot titles
        assert (mark.text, mark.x) == ("chosen", net.x[i])
        # A greedy choice has the highest total Q; epsilon's random branch may not.
        if attrs["explored"]:
            n_explored += 1
        else:
            assert total.y[i] == max(total.y)
        # The chosen one's features, as the network saw them: a table, and its hover.
        names, shown = table.cells["values"]
        assert list(names) == list(attrs["features"]) and len(names) == 17
        assert [float(v) for v in shown] == pytest.approx(
            list(attrs["features"].values()), rel=1e-3, abs=1e-4
        )
        for k, v in zip(names, shown):
            assert f"<br>  {k} = {v}" in total.hovertext[i]
        assert sum("features:" in h for h in total.hovertext) == 1
        how = f"at random, epsilon {attrs['epsilon']:.3g}" if attrs["explored"] else "greedy"
        assert fig.layout.title.text == (
            f"Q-learning: the decision of trial {trial.number}: {attrs['label']} ({how})"
        )
    assert n_explored < len(learned.trials) // 2  # epsilon = 0.05


def test_decision_bad_input(learned: optuna.Study, study: optuna.Study) -> None:
    for plot in (vis.plot_decision, vis_mpl.plot_decision):
        with pytest.raises(ValueError, match=r"Trial 0 .* has no decision of a learned policy"):
            plot(learned, 0)  # sampled independently
        with pytest.raises(ValueError, match=r"trial_number must be the number of .* \(0 to 39\)"):
            plot(learned, 40)
        with pytest.raises(ValueError, match="trial_number must be the number"):
            plot(learned, -1)
        with pytest.raises(ValueError, match="trial_number must be a trial number"):
            plot(learned, "3")
        with pytest.raises(ValueError, match=r"No trial of study .* proposed by a learned policy"):
            plot(study)  # the tabular agent stores no decision
        with pytest.raises(TypeError, match=r"study must be an optuna\.Study"):
            plot("study.db")
        multi = optuna.create_study(directions=["minimize", "maximize"])
        with pytest.raises(ValueError, match=r"has 2 objectives; .* single-objective"):
            plot(multi)


def test_correction_table(learned: optuna.Study) -> None:
    sampler = learned.sampler
    assert isinstance(sampler, QLearningSampler)
    table = sampler.correction_table(learned)
    fig = vis.plot_correction(learned)
    [bars] = fig.data
    assert list(bars.x) == list(CORRECTION_KINDS) == list(table)
    assert list(bars.y) == [table[k]["q"] for k in bars.x]
    updates = [int(table[k]["updates"]) for k in bars.x]
    assert list(bars.text) == [f"{u} update" + ("s" if u != 1 else "") for u in updates]
    # Every decision but the last has been learned from: one update of its kind each.
    decisions = [stored_decision(t) for t in learned.trials[1:]]
    assert sum(int(table[k]["updates"]) for k in table) == len(decisions) - 1
    for kind, hover in zip(bars.x, bars.hovertext):
        chosen = sum(d["kind"] == kind for d in decisions)
        randomly = sum(d["kind"] == kind and d["explored"] for d in decisions)
        assert f"chosen by {chosen} trials ({randomly} at random)" in hover
    assert any(v != 0 for v in bars.y)
    # The Matplotlib twin draws the same bars.
    ax = vis_mpl.plot_correction(learned)
    assert [p.get_height() for p in ax.patches] == pytest.approx(list(bars.y))
    assert [t.get_text() for t in ax.get_xticklabels()] == list(bars.x)
    assert [t.get_text() for t in ax.texts] == list(bars.text)


TABLE_VIEWS: list[Callable[..., Any]] = [
    vis.plot_greedy_value,
    vis.plot_visits,
    vis.plot_policy,
    vis_mpl.plot_greedy_value,
    vis_mpl.plot_visits,
    vis_mpl.plot_policy,
]


@pytest.mark.parametrize(
    "plot", TABLE_VIEWS, ids=lambda f: f"{f.__module__.split('.')[-1]}.{f.__name__}"
)
def test_table_views_refuse_a_learned_policy(
    plot: Callable[..., Any], learned: optuna.Study
) -> None:
    message = (
        rf"{plot.__name__} draws the tabular agent's Q-table .* needs "
        r"QLearningSampler\(policy='table'\), .* policy='default', a learned policy\. Use "
        r"plot_decision\(study\)"
    )
    with pytest.raises(ValueError, match=message):
        plot(learned)
    untrained = make_study(5, policy=None)
    with pytest.raises(ValueError, match="policy=None, a learned policy"):
        plot(untrained)


def test_correction_refuses_the_table(study: optuna.Study) -> None:
    for plot in (vis.plot_correction, vis_mpl.plot_correction):
        with pytest.raises(ValueError, match=r"policy='table'\. Use plot_greedy_value"):
            plot(study)


def test_a_sampler_of_the_other_kind_is_refused(learned: optuna.Study, study: optuna.Study) -> None:
    with pytest.raises(ValueError, match="proposed by a learned policy, and this QLearningSampler"):
        vis.plot_epsilon_reward(learned, QLearningSampler(policy="table"))
    with pytest.raises(ValueError, match=r"proposed by the tabular agent \(policy='table'\)"):
        vis.plot_epsilon_reward(study, QLearningSampler())
    # Without the sampler, a loaded study is rebuilt with the default: the learned policy
    # (the fixture's alpha=0.1 is not the default, so its sampler must be passed).
    loaded = optuna.load_study(study_name=learned.study_name, storage=learned._storage)
    own = QLearningSampler(seed=0, alpha=0.1)
    assert vis.plot_correction(loaded, own).to_json() == vis.plot_correction(learned).to_json()
    default = make_study(12)
    again = optuna.load_study(study_name=default.study_name, storage=default._storage)
    assert vis.plot_correction(again).to_json() == vis.plot_correction(default).to_json()


# ---------------------------------------------------------------------- Matplotlib twins
def test_matplotlib_twins_draw_the_same_data(study: optuna.Study) -> None:
    params = ["lr", "x"]
    heat = vis.plot_greedy_value(study, params=params).data[0]
    ax = vis_mpl.plot_greedy_value(study, params=params)
    image = ax.get_images()[0].get_array()
    assert image.shape == (13, 16)
    for y, row in enumerate(heat.z):
        for x, v in enumerate(row):
            assert bool(image.mask[y, x]) == (v is None)
            if v is not None:
                assert image[y, x] == pytest.approx(v)
    texts = {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts
    }
    want = {(y, x): s for y, row in enumerate(heat.text) for x, s in enumerate(row) if s}
    assert texts == want
    assert ax.get_title() == "Q-learning: greedy value max_a Q(s, a) over lr × x"

    visits = vis.plot_visits(study, params=params).data[0].z
    image = vis_mpl.plot_visits(study, params=params).get_images()[0].get_array()
    got = {(y, x): int(image[y, x]) for y, x in zip(*np.nonzero(~np.ma.getmaskarray(image)))}
    want_v = {(y, x): v for y, row in enumerate(visits) for x, v in enumerate(row) if v}
    assert got == want_v

    policy = vis.plot_policy(study, params=params)
    ax = vis_mpl.plot_policy(study, params=params)
    markers = ax.collections[0]
    offsets = {(int(y), int(x)) for x, y in markers.get_offsets()}
    assert offsets == {(y, x) for x, y in zip(policy.data[0].x, policy.data[0].y)}
    [quiver] = [c for c in ax.collections if type(c).__name__ == "Quiver"]
    drawn = {
        (int(y), int(x)): (int(u), int(v))
        for (x, y), u, v in zip(quiver.get_offsets(), quiver.U, quiver.V)
    }
    assert drawn == {(a.ay, a.ax): (a.x - a.ax, a.y - a.ay) for a in policy.layout.annotations}

    curves = vis.plot_epsilon_reward(study).data
    top, bottom = vis_mpl.plot_epsilon_reward(study)
    assert list(top.lines[0].get_xdata()) == list(curves[0].x)
    assert list(top.lines[0].get_ydata()) == pytest.approx(list(curves[0].y))
    points = bottom.collections[0].get_offsets()
    assert list(points[:, 0]) == list(curves[1].x)
    assert list(points[:, 1]) == pytest.approx(list(curves[1].y))
    assert list(bottom.lines[0].get_ydata()) == pytest.approx(list(curves[2].y))


def test_matplotlib_decision_twin(learned: optuna.Study) -> None:
    fig = vis.plot_decision(learned, 7)
    net, total, table = fig.data
    bars, features = vis_mpl.plot_decision(learned, 7)
    heights = [p.get_height() for p in bars.patches]
    assert heights == pytest.approx([*net.y, *total.y])
    assert [t.get_text() for t in bars.get_xticklabels()] == list(net.x)
    [i] = [k for k, c in enumerate(total.marker.color) if c == DECISION_COLORS["chosen_q"]]
    bold = [t.get_text() for t in bars.get_xticklabels() if t.get_fontweight() == "bold"]
    assert bold == [net.x[i]]
    [mark] = [t for t in bars.texts if t.get_text() == "chosen"]
    assert mark.xy[0] == i
    cells = features.tables[0].get_celld()
    pairs = list(zip(*table.cells["values"]))
    rows = [(cells[r, 0].get_text().get_text(), cells[r, 1].get_text().get_text())
            for r in range(1, len(pairs) + 1)]  # fmt: skip
    assert rows == pairs
    assert bars.figure.get_suptitle() == fig.layout.title.text


# ---------------------------------------------------------------------- the sampler
def test_sampler_rebuilt_from_the_settings_stored_in_the_study() -> None:
    study = make_study(20, **QLearningSampler.seed_design_parameters(), n_bins=8)
    loaded = optuna.load_study(study_name=study.study_name, storage=study._storage)
    # A default sampler does not fit this study's grid: refused, by name.
    with pytest.raises(ValueError, match="n_bins/max_bins"):
        vis.plot_greedy_value(loaded)
    # The settings the dashboard stores rebuild the same agent.
    sampler = study.sampler
    assert isinstance(sampler, QLearningSampler)
    study._storage.set_study_system_attr(
        study._study_id,
        KEY_SETTINGS,
        {"class": "QLearningSampler", "kwargs": sampler.parameters},
    )
    again = vis.plot_greedy_value(loaded)
    assert again.to_json() == vis.plot_greedy_value(study).to_json()
    assert again.to_json() == vis.plot_greedy_value(loaded, sampler=sampler).to_json()
    view = agent_view(loaded)
    assert not view.warnings and view.settings["moves"] == "joint"


def test_dqn_sampler_table() -> None:
    require(importlib.util.find_spec("torch") is not None, "torch is not installed")
    from optuna_qlearn import DQNSampler

    study = optuna.create_study(sampler=DQNSampler(policy="table", seed=0))
    study.optimize(objective, n_trials=20)
    want = expected(study, ("lr", "x"))
    z = vis.plot_greedy_value(study, params=["lr", "x"]).data[0].z
    got = {(y, x): v for y, row in enumerate(z) for x, v in enumerate(row) if v is not None}
    assert got.keys() == want["value"].keys()
    assert list(got.values()) == pytest.approx([want["value"][c] for c in got])


# ---------------------------------------------------------------------- bad input
PLOTS: list[Callable[..., Any]] = [
    vis.plot_greedy_value,
    vis.plot_visits,
    vis.plot_policy,
    vis.plot_epsilon_reward,
    vis_mpl.plot_greedy_value,
    vis_mpl.plot_visits,
    vis_mpl.plot_policy,
    vis_mpl.plot_epsilon_reward,
]


@pytest.mark.parametrize("plot", PLOTS, ids=lambda f: f"{f.__module__.split('.')[-1]}.{f.__name__}")
def test_bad_input_gets_a_clear_error(plot: Callable[..., Any], study: optuna.Study) -> None:
    multi = optuna.create_study(directions=["minimize", "maximize"])
    multi.optimize(lambda t: (t.suggest_int("x", 0, 3), 1.0), n_trials=2)
    with pytest.raises(ValueError, match=r"has 2 objectives; .* single-objective"):
        plot(multi)
    with pytest.raises(ValueError, match="has no finished trials"):
        plot(optuna.create_study(sampler=QLearningSampler()))
    with pytest.raises(TypeError, match=r"study must be an optuna\.Study"):
        plot("study.db")
    with pytest.raises(TypeError, match="sampler must be a QLearningSampler"):
        plot(study, optuna.samplers.TPESampler())
    if plot.__name__ == "plot_epsilon_reward":
        return  # no params argument
    with pytest.raises(ValueError, match=r"among \['act', 'lr', 'x'\], got \['nope'\]"):
        plot(study, params=["nope"])
    with pytest.raises(ValueError, match=r"\['lr', 'nope'\] \(\['nope'\] not in the"):
        plot(study, params=["lr", "nope"])
    with pytest.raises(ValueError, match="params must name one or two distinct"):
        plot(study, params=["x", "lr", "act"])
    with pytest.raises(ValueError, match="params must name one or two distinct"):
        plot(study, params=["x", "x"])
    with pytest.raises(ValueError, match="params must be a list of one or two parameter names"):
        plot(study, params="x")


# ---------------------------------------------------------------------- the docs page
def docs_objective(trial: Trial) -> float:
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    width = trial.suggest_int("width", 16, 256, step=16)
    return float((np.log10(lr) + 2.5) ** 2 + ((width - 128) / 64) ** 2)


#: The PNGs of docs/visualization.md: the learned policy's study, then the tabular agent's.
DOCS_IMAGES: dict[str, dict[str, Callable[..., Any]]] = {
    "default": {
        "visualization-decision.png": vis_mpl.plot_decision,
        "visualization-correction.png": vis_mpl.plot_correction,
        "visualization-epsilon-reward.png": vis_mpl.plot_epsilon_reward,
    },
    "table": {
        "visualization-greedy-value.png": vis_mpl.plot_greedy_value,
        "visualization-visits.png": vis_mpl.plot_visits,
        "visualization-policy.png": vis_mpl.plot_policy,
    },
}


def test_docs_page_images(tmp_path: Path) -> None:
    """The PNGs of docs/visualization.md, rendered from the studies the page runs."""
    page = (REPO_ROOT / "docs" / "visualization.md").read_text(encoding="utf-8")
    assert page.count("n_trials=150") == 2
    for policy, images in DOCS_IMAGES.items():
        made = "QLearningSampler(seed=0)" if policy == "default" else (
            'QLearningSampler(policy="table", seed=0)'
        )  # fmt: skip
        assert made in page, made
        study = optuna.create_study(sampler=QLearningSampler(policy=policy, seed=0))
        study.optimize(docs_objective, n_trials=150)
        for name, plot in images.items():
            drawn = plot(study)
            ax = drawn[0] if isinstance(drawn, np.ndarray) else drawn
            path = tmp_path / name
            ax.figure.savefig(path, dpi=100)
            assert path.stat().st_size > 10_000, f"{name} looks empty"
            assert f"images/{name}" in page, f"docs/visualization.md does not show {name}"
            if UPDATE_DOCS:
                shutil.copy(path, REPO_ROOT / "docs" / "images" / name)
            assert (REPO_ROOT / "docs" / "images" / name).is_file(), name
