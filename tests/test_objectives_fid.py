"""The FID workload's objectives (VAE on 8x8 digits, DGMM on digit69) and their CLI."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pytest

from optuna_qlearn.fid import FIDSampleSizeWarning, calculate_fid
from optuna_qlearn.objectives._reconstruction import (
    SEED_GRID,
    check_params,
    suggest_seed_grid,
)
from optuna_qlearn.objectives.dgmm import (
    DGMMReconstruction,
    FMRIView,
    knn_similarity,
    load_digit69,
)
from optuna_qlearn.objectives.vae import VAEReconstruction

TINY = {"K": 2, "intermediate_dim": 64, "batch_size": 32, "maxiter": 10}


def recorder(into: list[tuple[int, float]]) -> Callable[[float, int], bool]:
    """A ``report`` callback that records ``(step, value)`` and never prunes."""

    def report(value: float, step: int) -> bool:
        into.append((step, value))
        return False

    return report


def test_seed_grid_is_the_issues_grid() -> None:
    assert SEED_GRID == {
        "K": [2, 3, 4, 5, 6, 7, 8, 9, 10],
        "intermediate_dim": [64, 128, 256],
        "batch_size": [8, 16, 32],
        "maxiter": [10, 20, 40],
    }
    trial = optuna.trial.FixedTrial(dict(TINY))
    assert suggest_seed_grid(trial) == TINY
    with pytest.raises(ValueError, match="missing parameter 'maxiter'"):
        check_params({"K": 2, "intermediate_dim": 64, "batch_size": 8})
    with pytest.raises(ValueError, match="positive integer"):
        check_params({**TINY, "batch_size": 0})


@pytest.fixture(scope="module")
def vae() -> VAEReconstruction:
    return VAEReconstruction(train_images=64)


def test_vae_value_is_calculate_fid_of_written_folders(tmp_path: Path) -> None:
    objective = VAEReconstruction(train_images=64, image_dir=tmp_path)
    reports: list[tuple[int, float]] = []
    value = objective.run(TINY, recorder(reports), name="run1")
    assert len(list((tmp_path / "stimuli").glob("*.png"))) == 360
    assert len(list((tmp_path / "run1").glob("*.png"))) == 360
    assert value == pytest.approx(calculate_fid(tmp_path / "stimuli", tmp_path / "run1"), abs=0)
    assert [s for s, _ in reports] == [5, 10]
    assert reports[-1][1] == value
    assert np.isfinite(value) and value > 0


def test_vae_is_deterministic_and_caches(vae: VAEReconstruction) -> None:
    first = VAEReconstruction(train_images=64, cache=False).run(TINY)
    seen: list[tuple[int, float]] = []
    assert vae.run(TINY, recorder(seen)) == first
    replayed: list[tuple[int, float]] = []
    assert vae.run(TINY, recorder(replayed)) == first
    assert replayed == seen and len(vae._cache) >= 1


def test_more_training_improves_the_vae(vae: VAEReconstruction) -> None:
    short = vae.run({**TINY, "batch_size": 32, "maxiter": 10})
    longer = vae.run({**TINY, "K": 6, "batch_size": 8, "maxiter": 20})
    assert longer < short


def test_vae_in_a_study_with_qlearning_sampler_and_pruner(vae: VAEReconstruction) -> None:
    from optuna_qlearn import QLearningSampler

    study = optuna.create_study(sampler=QLearningSampler(seed=0))
    study.enqueue_trial(TINY)
    study.optimize(vae, n_trials=2)
    first = study.trials[0]
    assert first.state == optuna.trial.TrialState.COMPLETE
    assert set(first.intermediate_values) == {5, 10}
    assert first.value == first.intermediate_values[10]
    assert all(set(t.params) == set(SEED_GRID) for t in study.trials)

    pruned = optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.ThresholdPruner(upper=0.0),
    )
    pruned.enqueue_trial(TINY)
    pruned.optimize(vae, n_trials=1)
    assert pruned.trials[0].state == optuna.trial.TrialState.PRUNED
    assert list(pruned.trials[0].intermediate_values) == [5]


def test_vae_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="train_images"):
        VAEReconstruction(train_images=1)
    with pytest.raises(ValueError, match="report_every"):
        VAEReconstruction(report_every=0)


# --------------------------------------------------------------------------------------------
# DGMM
# --------------------------------------------------------------------------------------------


def test_fmri_view_recovers_latents_on_synthetic_data() -> None:
    rng = np.random.default_rng(0)
    n, k, c, d = 200, 3, 2, 400
    z = rng.standard_normal((n, k))
    b_true = rng.standard_normal((k, d))
    h_true = rng.standard_normal((c, d)) * 0.3
    y = z @ b_true + rng.standard_normal((n, c)) @ h_true + 0.1 * rng.standard_normal((n, d))
    view = FMRIView(y, k, c, rng)
    for _ in range(30):
        view.update(z, np.full((n, k), 1e-4))
    assert view.gamma > 10.0  # noise precision learned (true 100, plus the r-part)
    z_new = rng.standard_normal((20, k))
    y_new = z_new @ b_true + rng.standard_normal((20, c)) @ h_true
    predicted = np.stack([view.latent_posterior(yy, z, np.zeros(n), rho=0.0)[0] for yy in y_new])
    assert np.corrcoef(predicted.ravel(), z_new.ravel())[0, 1] > 0.95


def test_knn_similarity_keeps_the_k_nearest() -> None:
    y = np.array([[0.0], [1.0], [2.0], [5.0]])
    s = knn_similarity(y, np.array([0.9]), k=2, t=1.0)
    assert np.count_nonzero(s) == 2 and s[1] > s[0] > 0 and s[2] == s[3] == 0


def test_load_digit69_errors(tmp_path: Path) -> None:
    from scipy.io import savemat

    with pytest.raises(FileNotFoundError, match="not shipped"):
        load_digit69(tmp_path / "missing.mat")
    savemat(tmp_path / "bad.mat", {"stimTrn": np.zeros((2, 784))})
    with pytest.raises(ValueError, match="lacks the keys"):
        load_digit69(tmp_path / "bad.mat")


def test_load_digit69_is_upright(digit69_path: Path) -> None:
    from scipy.io import loadmat

    data = load_digit69(digit69_path)
    raw = loadmat(digit69_path)["stimTest"]
    np.testing.assert_allclose(data.x_test[3], raw[3].reshape(28, 28).T / 255.0, atol=1e-6)
    assert data.x_train.shape == (90, 28, 28) and data.y_train.shape == (90, 3092)
    assert data.y_train.min() == 0.0 and data.y_train.max() == 1.0


def test_dgmm_trial_writes_folders_and_scores_them(digit69_path: Path, tmp_path: Path) -> None:
    objective = DGMMReconstruction(digit69_path, image_dir=tmp_path, mc_samples=8)
    study = optuna.create_study()
    study.enqueue_trial(TINY)
    with pytest.warns(FIDSampleSizeWarning):
        study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    folder = tmp_path / "trial_00000"
    assert len(list(folder.glob("*.png"))) == 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FIDSampleSizeWarning)
        assert trial.value == pytest.approx(calculate_fid(tmp_path / "stimuli", folder), abs=0)
    assert set(trial.intermediate_values) == {5, 10}


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _parse(argv: list[str]) -> argparse.Namespace:
    from optuna_qlearn.objectives import fid_cli

    parser = argparse.ArgumentParser()
    fid_cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_runs_a_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from optuna_qlearn.objectives import fid_cli

    storage = f"sqlite:///{tmp_path / 'fid.db'}"
    # random sampler seed 5 draws a cheap configuration (batch_size 32, maxiter 10)
    args = _parse(
        ["vae", "--trials", "1", "--storage", storage, "--sampler", "random", "--seed", "5"]
    )
    assert fid_cli.run(args) == 0
    out = capsys.readouterr().out
    assert "best params: K=" in out
    assert f"optuna-qlearn dashboard {storage}" in out
    study = optuna.load_study(study_name="fid-vae-random", storage=storage)
    assert len(study.trials) == 1


def test_cli_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from optuna_qlearn._cli_checks import CommandError
    from optuna_qlearn.objectives import fid_cli

    def status(args: argparse.Namespace) -> int:
        """The exit status the CLI gives (it reports a CommandError in one line)."""
        try:
            return fid_cli.run(args)
        except CommandError as exc:
            print(exc.message, file=sys.stderr)
            return exc.status

    args = _parse(["dgmm", "--data", str(tmp_path / "none.mat"), "--trials", "1"])
    assert status(args) == 2
    assert "digit69_28x28.mat" in capsys.readouterr().err
    assert status(_parse(["--trials", "0"])) == 2
