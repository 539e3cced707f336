"""The documentation builds with Sphinx, warnings as errors, into a temporary folder, and
its example scripts run with warnings as errors."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import REPO_ROOT, require

DOCS = REPO_ROOT / "docs"


def test_docs_build_without_warnings(tmp_path: Path) -> None:
    for module in ("sphinx", "myst_parser", "furo"):
        require(importlib.util.find_spec(module) is not None, f"{module} (the docs extra)")
    out = tmp_path / "html"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *sys.path])}
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, f"sphinx failed:\n{proc.stdout}\n{proc.stderr}"
    # The guide, the API reference generated from docstrings, and the screenshots.
    for page in ("index", "quickstart", "how-it-works", "dashboard", "api", "examples"):
        assert (out / f"{page}.html").is_file(), page
    api = (out / "api.html").read_text(encoding="utf-8")
    for anchor in (
        "optuna_qlearn.QLearningSampler",
        "optuna_qlearn.QLearningSampler.seed_design_parameters",
        "optuna_qlearn.dashboard.publish",
        "optuna_qlearn.visualization.plot_policy",
        "optuna_qlearn.fid.frechet_distance",
        "optuna_qlearn.lr.QLearningLRScheduler",
        "optuna_qlearn.cli.main",
    ):
        assert f'id="{anchor}"' in api, anchor
    # The reference documents public names only: nothing of the private modules.
    private = re.findall(r'id="(optuna_qlearn(?:\.\w+)*\._\w+[^"]*)"', api)
    assert not private, private
    # Every guide page on disk is reachable from the table of contents.
    index = (out / "index.html").read_text(encoding="utf-8")
    for md in DOCS.glob("*.md"):
        if md.stem != "index":
            assert f'href="{md.stem}.html"' in index, f"{md.name} is not in the toctree"
    assert (out / "_images" / "dashboard.png").is_file()


# Runs an example as ``python docs/examples/NAME.py ARGS`` would, with every warning an
# error except Optuna's ExperimentalWarning (heartbeat is experimental in Optuna, which
# the examples cannot change; pyproject's pytest settings ignore it as well).
_STRICT_RUNNER = """
import runpy, sys, warnings
import optuna
warnings.simplefilter("error")
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_example(name: str, *args: str, cwd: Path) -> str:
    """Run ``docs/examples/<name>`` with warnings as errors; return its output."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", _STRICT_RUNNER, str(DOCS / "examples" / name), *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, f"{name} {args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def test_distributed_worker_example_runs_without_warnings(tmp_path: Path) -> None:
    worker = "distributed_worker.py"
    # A journal file: the study created once, then a worker.
    journal = str(tmp_path / "demo.journal")
    run_example(worker, "--storage", journal, "--study", "j", "--create", cwd=tmp_path)
    run_example(worker, "--storage", journal, "--study", "j", "--n-trials", "3", cwd=tmp_path)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    assert len(optuna.load_study(study_name="j", storage=storage).trials) == 3
    # SQLite with heartbeat and the retry callback (no FutureWarning), DQN workers.
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    run_example(worker, "--storage", url, "--study", "h", "--create", cwd=tmp_path)
    out = run_example(
        worker, "--storage", url, "--study", "h", "--n-trials", "3", "--heartbeat", "5",
        "--sampler", "dqn", "--seed", "3", cwd=tmp_path,
    )  # fmt: skip
    assert "best so far" in out
    trials = optuna.load_study(study_name="h", storage=url).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3


def test_the_runner_turns_deprecations_into_errors(tmp_path: Path) -> None:
    script = tmp_path / "old_api.py"
    script.write_text("import warnings\nwarnings.warn('old name', FutureWarning)\n")
    with pytest.raises(AssertionError, match="FutureWarning: old name"):
        run_example(str(script), cwd=tmp_path)


def test_fid_study_example_runs_without_warnings(tmp_path: Path) -> None:
    out = run_example("fid_study.py", "--trials", "2", cwd=tmp_path)
    assert "best Frechet distance" in out


def test_lr_schedule_example_runs_without_warnings(shakespeare_path: Path, tmp_path: Path) -> None:
    out = run_example(
        "lr_schedule.py", "--data", str(shakespeare_path), "--iters", "10", "--trials", "1",
        cwd=tmp_path,
    )  # fmt: skip
    assert "best controller" in out


def _split_cell(cell: str) -> list[str]:
    """Split a table cell on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for ch in cell:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    parts.append(current.strip())
    return [p for p in parts if p]


#: A seed-design cell for a setting the seed design leaves unused (so refuses).
UNUSED = object()
#: A default-column cell for a setting of the tabular agent only (a learned policy refuses it).
TABULAR_ONLY = object()


def _literal(token: str) -> Any:
    if token.strip() == "unused":
        return UNUSED
    if token.strip() == "tabular only":
        return TABULAR_ONLY
    value = ast.literal_eval(token.strip("`"))
    return list(value) if isinstance(value, tuple) else value


def _values(cell: str, n: int) -> list[Any]:
    """A cell's values, one per setting of the row (``tabular only`` stands for all)."""
    values = [_literal(v) for v in _split_cell(cell)]
    return values * n if values == [TABULAR_ONLY] else values


def test_settings_table_matches_the_code() -> None:
    """The defaults in how-it-works.md are those of the code: of the default learned
    policy, of the tabular agent and of the seed preset; and the settings marked
    *tabular only* are refused by a learned policy, by name."""
    from optuna_qlearn import QLearningSampler

    defaults = QLearningSampler().parameters
    table = QLearningSampler(policy="table").parameters
    seed = QLearningSampler(**QLearningSampler.seed_design_parameters()).parameters
    signature = inspect.signature(QLearningSampler.__init__).parameters
    text = (DOCS / "how-it-works.md").read_text(encoding="utf-8")
    header = '| setting | default | `policy="table"` | seed design | meaning |'
    rows = text[text.index(header) :].split("\n\n")[0].splitlines()[2:]
    checked, tabular_only = [], []
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        names = [n.strip("`") for n in _split_cell(cells[0])]
        learned = _values(cells[1], len(names))
        tabular = _values(cells[2], len(names))
        presets = _values(cells[3], len(names)) if cells[3] else []
        assert len(learned) == len(tabular) == len(names), row
        for i, name in enumerate(names):
            if learned[i] is TABULAR_ONLY:
                assert name not in defaults, f"{name} is said to be tabular only"
                probe: Any = "q.json" if tabular[i] is None else tabular[i]
                with pytest.raises(ValueError, match=rf"^{name}=.* needs policy='table'"):
                    QLearningSampler(**{name: probe})
                tabular_only.append(name)
            elif name in defaults:
                assert defaults[name] == learned[i], f"{name}: docs say {learned[i]!r}"
            else:
                assert signature[name].default == learned[i], name
            if name in table:
                assert table[name] == tabular[i], f"{name} with policy='table'"
            else:
                assert signature[name].default == tabular[i], name
            expected_seed = presets[i] if i < len(presets) else tabular[i]
            if expected_seed is UNUSED:
                assert name not in seed, f"{name} is unused by the seed design"
            else:
                assert seed.get(name, signature[name].default) == expected_seed, name
            checked.append(name)
    assert len(checked) >= 20 and "policy" in checked
    # Every argument a learned policy uses with a value is in the table.
    assert set(defaults) - {"stale_after", "decision_timeout"} <= set(checked)
    assert len(tabular_only) >= 13
