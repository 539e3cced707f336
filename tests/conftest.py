"""Shared test fixtures.

Tests that need a service, a browser or the shared data call :func:`require`. On a
user's machine a missing prerequisite skips the test with a clear reason; in CI
(``CI=true``) it fails instead, so nothing silently stops being tested.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CONFORMANCE_MODULE = "optuna.testing.pytest_samplers"


def _load_conformance_suite() -> None:
    """Run Optuna's sampler conformance suite on an Optuna too old to ship it.

    ``optuna.testing.pytest_samplers`` first ships with Optuna 4.8, but the package
    supports older Optuna (``make test-lowest``). There ``OPTUNA_QLEARN_CONFORMANCE_SUITE``
    names a copy of that module taken from the Optuna 4.8 wheel, and it is registered
    under its own name so that the same sampler tests run against the old Optuna. The
    module only drives the sampler through Optuna's public API. Without the variable
    nothing happens, and a missing module fails the importing test as usual.

    Raises:
        FileNotFoundError: If the variable names a file that does not exist.
    """
    path = os.environ.get("OPTUNA_QLEARN_CONFORMANCE_SUITE")
    if not path or importlib.util.find_spec("optuna.testing") is None:
        return
    try:
        importlib.import_module(CONFORMANCE_MODULE)
        return  # this Optuna ships its own
    except ModuleNotFoundError:
        pass
    if not os.path.isfile(path):
        raise FileNotFoundError(f"OPTUNA_QLEARN_CONFORMANCE_SUITE={path!r} is not a file.")
    spec = importlib.util.spec_from_file_location(CONFORMANCE_MODULE, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[CONFORMANCE_MODULE] = module
    spec.loader.exec_module(module)


_load_conformance_suite()


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
