"""The ``slow`` list in conftest.py names tests that exist (a renamed test would leave it)."""

from __future__ import annotations

import ast

import conftest
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


class _Item:
    """What the collection hook reads of a test item."""

    def __init__(self, nodeid: str, fixturenames: tuple[str, ...] = ()) -> None:
        self.nodeid = nodeid
        self.fixturenames = fixturenames
        self.markers: list[str] = []

    def add_marker(self, marker: pytest.MarkDecorator) -> None:
        self.markers.append(marker.name)


def test_the_hook_marks_slow_tests_and_shared_data() -> None:
    listed = "tests/test_cli.py::test_demo_runs_three_samplers_into_sqlite"
    assert listed in SLOW_TESTS
    items = [
        _Item(listed),
        _Item("tests/test_robustness.py::test_one_huge_value_does_not_brick_the_study[value]"),
        _Item("tests/test_cli.py::test_python_dash_m_entry_point"),
        _Item("tests/test_chargpt.py::test_shakespeare_char", ("shakespeare_path", "tmp_path")),
    ]
    conftest.pytest_collection_modifyitems(None, items)  # type: ignore[arg-type]
    assert [i.markers for i in items] == [["slow"], ["slow"], [], ["shared_data"]]
