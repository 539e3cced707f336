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


def optuna_floor() -> str:
    """The lowest Optuna ``pyproject.toml`` declares (``optuna>=X``), read from the file."""
    import tomllib

    deps = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for dep in deps["project"]["dependencies"]:
        if dep.replace(" ", "").startswith("optuna>="):
            return str(dep.replace(" ", "").split(">=", 1)[1])
    raise AssertionError("pyproject.toml declares no optuna>= floor")


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


# Tests whose call took about 2.5 s or more on the 2-core CI machine (measured with
# ``pytest --durations``, under load; the first eight took 6-54 s each), marked
# ``slow`` so that ``make check``
# leaves them to ``make test``. A name without brackets covers every parametrization.
# tests/test_markers.py checks that each name still exists.
SLOW_TESTS = frozenset(
    {
        "tests/test_dqn.py::test_resume_in_new_process_rebuilds_replay_memory_and_network",
        "tests/test_docs.py::test_docs_build_without_warnings",
        "tests/test_sampler.py::test_resume_in_new_process_gives_same_q_table",
        "tests/test_cli.py::test_demo_runs_three_samplers_into_sqlite",
        "tests/test_lr.py::test_chosen_lr_is_the_lr_of_the_next_optimizer_step",
        "tests/test_dqn.py::test_online_mode_capacity_one_learns",
        "tests/test_sampler.py::test_never_repeats_and_beats_random_search",
        "tests/test_dqn.py::TestDQNSamplerConformance::test_sample_relative_numerical",
        "tests/test_objectives_fid.py::test_vae_value_is_calculate_fid_of_written_folders",
        "tests/test_objectives_fid.py::test_cli_runs_a_study",
        "tests/test_benchmarks.py::test_end_to_end_run_resume_and_report",
        "tests/test_sampler.py::test_own_batch_asks_are_not_awaited_as_other_workers",
        "tests/test_chargpt.py::test_model_is_causal_and_ties_weights",
        "tests/test_ray.py::test_optuna_search_with_qlearning_sampler",
        "tests/test_robustness.py::test_one_huge_value_does_not_brick_the_study",
        "tests/test_properties.py::test_grid_values_pass_optunas_contains_and_are_distinct",
        "tests/test_properties.py::test_qlearning_sampler_invariants",
        "tests/test_properties.py::test_qlearning_sampler_small_grids_never_repeat",
        "tests/test_properties.py::test_learned_policy_invariants",
        "tests/test_integrations.py::test_lightning_optimizer_uses_the_lr_the_controller_picks",
        "tests/test_dashboard.py::test_command_publishes_then_serves",
        "tests/test_objectives_fid.py::test_more_training_improves_the_vae",
        "tests/test_visualization.py::test_docs_page_images",
        "tests/test_fid.py::test_inception_features_match_torch_fidelity_network",
        "tests/test_docs.py::test_distributed_worker_example_runs_without_warnings",
        "tests/test_architecture.py::test_the_rl_core_runs_without_optuna",
        "tests/test_benchmarks.py::test_gp_is_a_seeded_gpsampler_in_the_main_set",
        "tests/test_benchmarks.py::"
        "test_overhead_measures_a_variant_and_refuses_arguments_of_the_other_comparison",
        "tests/test_integrations.py::test_lightning_plain_entry_never_passes_the_loss",
        "tests/test_dashboard.py::test_dqn_sampler_table_is_shown_and_not_rebuilt_as_a_table",
        "tests/test_chargpt.py::test_lr_cli_runs_a_study",
        "tests/test_properties.py::test_seed_design_invariants",
        "tests/test_objectives_fid.py::test_vae_is_deterministic_and_caches",
        "tests/test_fid.py::test_distance_rises_monotonically_with_noise",
        "tests/test_fid.py::test_torchvision_inception_variant_loads",
        "tests/test_objectives_fid.py::test_vae_in_a_study_with_qlearning_sampler_and_pruner",
        "tests/test_chargpt.py::test_training_learns_and_is_reproducible",
        "tests/test_integrations.py::test_lightning_checkpoint_resumes_the_controller_exactly",
        "tests/test_objectives_fid.py::test_dgmm_trial_writes_folders_and_scores_them",
        "tests/test_docs.py::test_fid_study_example_runs_without_warnings",
        "tests/test_docs.py::test_lr_schedule_example_runs_without_warnings",
    }
)
# Fixtures that read ../shared/data: their tests are marked ``shared_data``.
SHARED_DATA_FIXTURES = frozenset({"digit69_path", "shakespeare_path"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests of :data:`SLOW_TESTS` ``slow`` and those that read shared data."""
    for item in items:
        if item.nodeid.split("[", 1)[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
        if SHARED_DATA_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.shared_data)
