"""The ``slow`` list in conftest.py names tests that exist (a renamed test would leave it)."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
from conftest import REPO_ROOT, SLOW_TESTS


def _test_names(path: str) -> set[str]:
    """``name`` and ``Class::name`` of every test function defined in a test module."""
    tree = ast.parse((REPO_ROOT / path).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names.add(f"{node.name}::*")  # methods may come from Optuna's base classes
            names.update(
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef) and item.name.startswith("test")
            )
    return names


@pytest.mark.parametrize("node_id", sorted(SLOW_TESTS))
def test_every_slow_entry_names_a_test(node_id: str) -> None:
    path, _, name = node_id.partition("::")
    names = _test_names(path)
    cls = name.split("::")[0]
    assert name in names or ("::" in name and f"{cls}::*" in names), (
        f"{node_id} in conftest.SLOW_TESTS names no test; update the list"
    )


def test_the_slow_marker_selects_the_listed_tests() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist",
         "-p", "no:cacheprovider", "-m", "slow", "tests/test_cli.py"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    selected = [line for line in out.stdout.splitlines() if "::" in line]
    assert selected == ["tests/test_cli.py::test_demo_runs_three_samplers_into_sqlite"], out.stdout
