"""A Q-table file is validated whole at load: every problem is named, with the file."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from optuna_qlearn import QLearningSampler
from optuna_qlearn._core.qlearning import TABLE_FORMAT, TABLE_VERSION, load_table


def _objective(trial: optuna.Trial) -> float:
    return (trial.suggest_int("x", 0, 6) - 4) ** 2 + trial.suggest_float("y", 0.0, 1.0)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    study = optuna.create_study(sampler=QLearningSampler(policy="table", seed=0))
    study.optimize(_objective, n_trials=25)
    path = tmp_path_factory.mktemp("q") / "q.json"
    study.sampler.save_q_table(study, path)  # type: ignore[attr-defined]  # a Path works
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def _write(tmp_path: Path, doc: Any, name: str = "t.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_a_saved_table_loads_from_a_path_object(saved: dict[str, Any], tmp_path: Path) -> None:
    path = _write(tmp_path, saved)
    table = load_table(path)
    assert table.q.shape == (len(saved["states"]), len(saved["actions"]))
    sampler = QLearningSampler(policy="table", warm_start=path, seed=1)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_objective, n_trials=3)
    assert len(study.trials) == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "not valid JSON"),
        ('{"format": "optuna-qlearn/q-table", "ver', "not valid JSON"),
        ("\x00\xff garbage", "not valid JSON"),
        ("[1, 2, 3]", "JSON list, not an object"),
    ],
)
def test_unreadable_json_files_are_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="latin-1")
    with pytest.raises(ValueError, match=message) as info:
        load_table(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", b"not a zip at all"])
def test_unreadable_npz_files_are_named(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"not a readable \.npz") as info:
        load_table(path)
    assert str(path) in str(info.value)


def _mutations(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    n_axes = len(doc["axes"])
    out: list[tuple[str, dict[str, Any], str]] = []
    for key in ("axes", "actions", "states", "q", "visits"):
        out.append((f"no {key}", {k: v for k, v in doc.items() if k != key}, f"no '{key}'"))
    bad_q = json.loads(json.dumps(doc))
    bad_q["q"][0][0] = math.nan
    out.append(("NaN Q-value", bad_q, "NaN or infinite"))
    inf_q = json.loads(json.dumps(doc).replace("NaN", "0"))
    inf_q["q"][-1][-1] = math.inf
    out.append(("infinite Q-value", inf_q, "NaN or infinite"))
    out.append(("version 99", {**doc, "version": 99}, "version 99"))
    out.append(("foreign format", {**doc, "format": "x"}, "not an optuna-qlearn Q-table"))
    short = {**doc, "q": [row[:-1] for row in doc["q"]]}
    out.append(("short rows", short, "'q' has shape"))
    negative = {**doc, "states": [[-1] * n_axes, *doc["states"][1:]]}
    out.append(("index -1", negative, "index -1 on axis"))
    size = len(doc["axes"][0]["values"])
    beyond = {**doc, "states": [[size] + [0] * (n_axes - 1), *doc["states"][1:]]}
    out.append(("index beyond the axis", beyond, f"index {size} on axis"))
    out.append(("fractional index", {**doc, "states": [[0.5] * n_axes]}, "non-integer"))
    out.append(("negative visits", {**doc, "visits": [[-1] * len(doc["actions"])] * len(doc["q"])},
                "negative"))  # fmt: skip
    twice = {**doc, "states": [doc["states"][0]] * len(doc["states"])}
    out.append(("a state twice", twice, "state twice"))
    out.append(("axes not a list", {**doc, "axes": {"x": 1}}, "'axes' must be"))
    out.append(("duplicate actions", {**doc, "actions": ["stay"] * len(doc["actions"])},
                "distinct labels"))  # fmt: skip
    return out


def test_every_malformed_entry_is_refused_at_load(saved: dict[str, Any], tmp_path: Path) -> None:
    assert saved["format"] == TABLE_FORMAT and saved["version"] == TABLE_VERSION
    cases = _mutations(saved)
    for i, (what, doc, message) in enumerate(cases):
        path = _write(tmp_path, doc, f"case{i}.json")
        with pytest.raises(ValueError, match=message) as info:
            load_table(path)
        assert str(path) in str(info.value), what
        # ... and at the sampler's construction, not at the first trial.
        with pytest.raises(ValueError, match=message):
            QLearningSampler(policy="table", warm_start=str(path))
    assert len(cases) >= 15


def test_npz_round_trip_and_malformed_npz(saved: dict[str, Any], tmp_path: Path) -> None:
    header = {k: saved[k] for k in ("format", "version", "axes", "actions")}
    arrays = {k: np.asarray(saved[k]) for k in ("states", "q", "visits")}
    good = tmp_path / "good.npz"
    np.savez(good, header=np.array(json.dumps(header)), **arrays)
    assert load_table(good).q.shape == arrays["q"].shape
    missing = tmp_path / "missing.npz"
    np.savez(missing, header=np.array(json.dumps(header)), states=arrays["states"])
    with pytest.raises(ValueError, match="no 'q'"):
        load_table(missing)
    nan = tmp_path / "nan.npz"
    q = arrays["q"].copy()
    q[0, 0] = np.nan
    np.savez(nan, header=np.array(json.dumps(header)), states=arrays["states"], q=q,
             visits=arrays["visits"])  # fmt: skip
    with pytest.raises(ValueError, match="NaN or infinite"):
        load_table(nan)


def test_a_path_of_the_wrong_type_or_suffix_is_named() -> None:
    with pytest.raises(TypeError, match=r"str or os\.PathLike"):
        load_table(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\.json or \.npz"):
        QLearningSampler(policy="table", warm_start="q.pkl")
    with pytest.raises(FileNotFoundError):
        QLearningSampler(policy="table", warm_start="no-such-table.json")
    # A Q-table warm-starts the tabular agent only: a learned policy refuses it by name.
    with pytest.raises(ValueError, match=r"^warm_start=.* needs policy='table'"):
        QLearningSampler(warm_start="q.json")
