"""optuna_qlearn.visualization: every figure draws the agent's own data, in Plotly and Matplotlib.

The expected data is computed here from the sampler's public views (``q_table``,
``greedy_policy``, the trials' ``qlearn:*`` attributes) and, for rewards, from a
spy on the agent's own reward calls, not from the view the figures are built with.

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
from optuna_qlearn.visualization import matplotlib as vis_mpl
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
    return make_study(40, step_sizes=(1, 2))


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
    study = make_study(50)
    fig = vis.plot_epsilon_reward(study)
    assert [t.name for t in fig.data] == ["epsilon", "reward", "reward, mean of 10"]
    eps, reward, mean = fig.data
    with_eps = [t for t in study.trials if "qlearn:epsilon" in t.user_attrs]
    assert len(with_eps) == len(study.trials) - 1  # the first trial is sampled independently
    assert list(eps.x) == [t.number for t in with_eps]
    assert list(eps.y) == [t.user_attrs["qlearn:epsilon"] for t in with_eps]
    spy = _SpySampler()
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


def test_dqn_sampler() -> None:
    require(importlib.util.find_spec("torch") is not None, "torch is not installed")
    from optuna_qlearn import DQNSampler

    study = optuna.create_study(sampler=DQNSampler(seed=0))
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


DOCS_IMAGES = {
    "visualization-greedy-value.png": vis_mpl.plot_greedy_value,
    "visualization-visits.png": vis_mpl.plot_visits,
    "visualization-policy.png": vis_mpl.plot_policy,
    "visualization-epsilon-reward.png": vis_mpl.plot_epsilon_reward,
}


def test_docs_page_images(tmp_path: Path) -> None:
    """The PNGs of docs/visualization.md, rendered from the study the page runs."""
    study = optuna.create_study(sampler=QLearningSampler(seed=0))
    study.optimize(docs_objective, n_trials=150)
    page = (REPO_ROOT / "docs" / "visualization.md").read_text(encoding="utf-8")
    assert "n_trials=150" in page and "QLearningSampler(seed=0)" in page
    for name, plot in DOCS_IMAGES.items():
        drawn = plot(study)
        ax = drawn[0] if isinstance(drawn, np.ndarray) else drawn
        path = tmp_path / name
        ax.figure.savefig(path, dpi=100)
        assert path.stat().st_size > 10_000, f"{name} looks empty"
        assert f"images/{name}" in page, f"docs/visualization.md does not show {name}"
        if UPDATE_DOCS:
            shutil.copy(path, REPO_ROOT / "docs" / "images" / name)
        assert (REPO_ROOT / "docs" / "images" / name).is_file(), name
