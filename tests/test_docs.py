"""The documentation builds with Sphinx, warnings as errors, into a temporary folder."""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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
        "optuna_qlearn._grid.Grid",
        "optuna_qlearn._core.qlearning.QTable",
        "optuna_qlearn._core.rewards.RewardModel",
        "optuna_qlearn._core.agent.QLearningAgent",
        "optuna_qlearn._replay.StudyReplay",
    ):
        assert f'id="{anchor}"' in api, anchor
    # Every guide page on disk is reachable from the table of contents.
    index = (out / "index.html").read_text(encoding="utf-8")
    for md in DOCS.glob("*.md"):
        if md.stem != "index":
            assert f'href="{md.stem}.html"' in index, f"{md.name} is not in the toctree"
    assert (out / "_images" / "dashboard.png").is_file()


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


def _literal(token: str) -> Any:
    if token.strip() == "unused":
        return UNUSED
    value = ast.literal_eval(token.strip("`"))
    return list(value) if isinstance(value, tuple) else value


def test_settings_table_matches_the_code() -> None:
    """The defaults in how-it-works.md are those of the code (and of the seed preset)."""
    from optuna_qlearn import QLearningSampler

    defaults = QLearningSampler().parameters
    seed = QLearningSampler(**QLearningSampler.seed_design_parameters()).parameters
    signature = inspect.signature(QLearningSampler.__init__).parameters
    text = (DOCS / "how-it-works.md").read_text(encoding="utf-8")
    table = text[text.index("| setting | default |") :].split("\n\n")[0].splitlines()[2:]
    checked = 0
    for row in table:
        cells = [c.strip() for c in row.strip("|").split("|")]
        names = [n.strip("`") for n in _split_cell(cells[0])]
        values = [_literal(v) for v in _split_cell(cells[1])]
        presets = [_literal(v) for v in _split_cell(cells[2])] if cells[2] else []
        assert len(values) == len(names), row
        for i, name in enumerate(names):
            if name in defaults:
                assert defaults[name] == values[i], f"{name}: docs say {values[i]!r}"
                expected_seed = presets[i] if i < len(presets) else values[i]
                if expected_seed is UNUSED:
                    assert name not in seed, f"{name} is unused by the seed design"
                else:
                    assert seed[name] == expected_seed, f"{name} in the seed design"
            else:
                assert signature[name].default == values[i], name
            checked += 1
    assert checked >= 15
