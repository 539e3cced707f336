"""The main job (``optuna-qlearn demo``) and the command-line dispatcher."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from optuna_qlearn.cli import build_parser, main


def test_demo_runs_three_samplers_into_sqlite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    args = ["demo", "--objective", "seed-grid", "--trials", "6", "--storage", url]
    assert main(args) == 0
    out = capsys.readouterr().out
    for name in ("qlearning", "tpe", "random"):
        assert f"\n{name} " in out
        study = optuna.load_study(study_name=f"demo-seed-grid-{name}", storage=url)
        assert len(study.trials) == 6
    assert f"optuna-qlearn dashboard {url}" in out
    # Re-running resumes: the studies are topped up, not duplicated.
    assert main([*args[:4], "8", *args[5:]]) == 0
    study = optuna.load_study(study_name="demo-seed-grid-qlearning", storage=url)
    assert len(study.trials) == 8


def test_bad_demo_arguments_are_named(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    with pytest.raises(SystemExit, match="--trials must be at least 1"):
        main(["demo", "--objective", "seed-grid", "--trials", "0", "--storage", url])
    with pytest.raises(SystemExit, match="Unknown sampler"):
        main(["demo", "--objective", "seed-grid", "--samplers", "cma", "--storage", url])


def test_every_subcommand_is_wired() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {"demo", "fid", "lr", "dashboard"}  # type: ignore[union-attr]


def test_python_dash_m_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "optuna_qlearn", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "demo" in out.stdout
