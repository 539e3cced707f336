"""Shared test fixtures.

Tests that need a service, a browser or the shared data call :func:`require`. On a
user's machine a missing prerequisite skips the test with a clear reason; in CI
(``CI=true``) it fails instead, so nothing silently stops being tested.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def shared_data_dir() -> Path:
    """Where ``../shared/data`` is (``OPTUNA_QLEARN_SHARED_DATA`` overrides)."""
    env = os.environ.get("OPTUNA_QLEARN_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def require(condition: bool, reason: str) -> None:
    """Skip (locally) or fail (in CI) when a test prerequisite is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing in CI (CI=true forbids skipping): {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _single_torch_thread() -> None:
    """Two threads under load were 10x slower on the 2-core CI machine."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture
def digit69_path() -> Path:
    path = shared_data_dir() / "digit69" / "digit69_28x28.mat"
    require(path.is_file(), f"digit69 dataset not found at {path}")
    return path


@pytest.fixture
def shakespeare_path() -> Path:
    path = shared_data_dir() / "shakespeare_char" / "input.txt"
    require(path.is_file(), f"shakespeare_char corpus not found at {path}")
    return path
