"""The documentation builds with Sphinx, warnings as errors, into a temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"


def test_docs_build_without_warnings(tmp_path: Path) -> None:
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
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
        "optuna_qlearn.dashboard.publish",
        "optuna_qlearn.grid.Grid",
        "optuna_qlearn.qlearning.QTable",
        "optuna_qlearn.rewards.RewardModel",
        "optuna_qlearn.agent.QLearningAgent",
        "optuna_qlearn.replay.StudyReplay",
    ):
        assert f'id="{anchor}"' in api, anchor
    # Every guide page on disk is reachable from the table of contents.
    index = (out / "index.html").read_text(encoding="utf-8")
    for md in DOCS.glob("*.md"):
        if md.stem != "index":
            assert f'href="{md.stem}.html"' in index, f"{md.name} is not in the toctree"
    assert (out / "_images" / "dashboard.png").is_file()
