"""A real wheel: built, checked, installed into a fresh venv and used from there.

``python -m build`` (sdist, then the wheel from the unpacked sdist, as PyPI users get
it) runs on a copy of the checkout; ``twine check --strict`` passes on both files; the
wheel carries the ``optuna_qlearn`` package and its metadata only (no tests, benchmarks,
experiments, results or shared data). Then it is installed with ``pip --no-deps
--no-index`` into a fresh venv that has no system site packages. Its dependencies come
from the development venv through a ``.pth`` file naming a folder of links to that venv's
packages *without* this project's editable install (its finder, ``.pth`` and
``dist-info``), so the code under test can only be the wheel's. Everything runs with
``python -I`` (no ``PYTHONPATH``, no user site, no script folder on ``sys.path``) from a
temporary folder: a short study with each sampler, ``optuna-qlearn --help`` through the
installed console script, and loading every data file the package ships.

Building needs ``build``, ``twine``, ``setuptools`` and ``wheel`` in the running
environment (the ``dev`` extra); the build is offline (``--no-isolation``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import REPO_ROOT, optuna_floor

import optuna_qlearn

pytestmark = pytest.mark.slow

PROJECT = "optuna_qlearn"
# Never part of a distribution, and not needed to build one.
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "*.db"
)
# What the development venv has that must not reach the fresh one.
LEAKS = ("__editable__", "optuna_qlearn", "optuna-qlearn", "distutils-precedence.pth")

IN_VENV = r"""
import importlib.metadata, importlib.resources, json, subprocess, sys
from pathlib import Path

import numpy as np
import optuna
import optuna_qlearn
from optuna_qlearn import DQNSampler, QLearningSampler

repo = Path(sys.argv[1]).resolve()
out = {"file": optuna_qlearn.__file__, "version": optuna_qlearn.__version__}
out["repo_on_path"] = [p for p in sys.path if p and Path(p).resolve() == repo]
dist = importlib.metadata.distribution("optuna-qlearn")
out["dist_at"] = str(Path(dist.locate_file("")).resolve())
out["direct_url"] = dist.read_text("direct_url.json")
out["n_dists"] = sum(1 for d in importlib.metadata.distributions() if d.name == "optuna-qlearn")

def objective(trial):
    x = trial.suggest_float("x", -2.0, 2.0)
    k = trial.suggest_int("k", 0, 7)
    c = trial.suggest_categorical("c", ["a", "b", "c"])
    return (x - 0.5) ** 2 + (k - 3) ** 2 + {"a": 0.0, "b": 0.5, "c": 1.0}[c]

optuna.logging.set_verbosity(optuna.logging.WARNING)
studies = {}
for cls, n in ((QLearningSampler, 25), (DQNSampler, 15)):
    study = optuna.create_study(sampler=cls(seed=0))
    study.optimize(objective, n_trials=n)
    studies[cls.__name__] = {
        "n_complete": sum(t.state.name == "COMPLETE" for t in study.trials),
        "n_agent": sum("qlearn:record" in t.system_attrs for t in study.trials),
        "module": sys.modules[cls.__module__].__file__,
    }
out["studies"] = studies

# Every data file the package ships, loaded the way the package would load it.
loaded = {}
def walk(node, prefix=""):
    for child in node.iterdir():
        name = prefix + child.name
        if child.is_dir():
            if child.name != "__pycache__":
                walk(child, name + "/")
            continue
        if name.endswith(".py"):
            continue
        data = child.read_bytes()
        if name.endswith("py.typed"):
            loaded[name] = "marker"
        elif name.endswith(".json"):
            loaded[name] = type(json.loads(data)).__name__
        elif name.endswith((".npz", ".npy")):
            with child.open("rb") as f:
                loaded[name] = type(np.load(f, allow_pickle=False)).__name__
        elif name.endswith((".pt", ".pth")):
            import io, torch
            loaded[name] = type(torch.load(io.BytesIO(data), weights_only=True)).__name__
        else:
            raise SystemExit(f"shipped data file {name} has no loader in test_wheel.py")
walk(importlib.resources.files("optuna_qlearn"))
out["data_files"] = loaded
print(json.dumps(out))
"""


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist and wheel built from a copy of this checkout."""
    tmp = tmp_path_factory.mktemp("dist")
    src = tmp / "src"
    shutil.copytree(REPO_ROOT, src, ignore=COPY_IGNORE)
    out = tmp / "out"
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)], tmp)
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


def test_twine_check_passes(dists: dict[str, Path]) -> None:
    out = _run(
        [
            sys.executable,
            "-m",
            "twine",
            "check",
            "--strict",
            str(dists["wheel"]),
            str(dists["sdist"]),
        ],
        dists["wheel"].parent,
    )
    assert out.count("PASSED") == 2, out


def test_wheel_carries_the_package_only(dists: dict[str, Path]) -> None:
    with zipfile.ZipFile(dists["wheel"]) as zf:
        names = zf.namelist()
        metadata = zf.read(f"{PROJECT}-{optuna_qlearn.__version__}.dist-info/METADATA").decode()
    info = f"{PROJECT}-{optuna_qlearn.__version__}.dist-info/"
    stray = [n for n in names if not n.startswith((f"{PROJECT}/", info))]
    assert stray == [], f"files outside the package: {stray}"
    banned = ("tests/", "benchmarks/", "experiments/", "results/", "shared/", "docs/")
    assert [n for n in names if any(b in n for b in banned)] == []
    assert [n for n in names if n.endswith((".db", ".journal", ".log", ".png", ".pyc"))] == []
    # Every module of the source package is in the wheel.
    source = {
        p.relative_to(REPO_ROOT).as_posix()
        for p in (REPO_ROOT / PROJECT).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert source <= set(names), sorted(source - set(names))
    assert f"{info}licenses/LICENSE" in names
    assert f"{info}entry_points.txt" in names
    assert f"Requires-Dist: optuna>={optuna_floor()}" in metadata
    assert "Provides-Extra: torch" in metadata
    assert "License-Expression: MIT" in metadata


def test_sdist_has_no_results_or_shared_data(dists: dict[str, Path]) -> None:
    import tarfile

    with tarfile.open(dists["sdist"]) as tf:
        names = [m.name.split("/", 1)[1] for m in tf.getmembers() if "/" in m.name]
    for needed in ("pyproject.toml", "README.md", "LICENSE", f"{PROJECT}/__init__.py"):
        assert needed in names
    banned = ("benchmarks/results", "experiments/", "shared/", ".git/", ".venv/")
    assert [n for n in names if n.startswith(banned)] == []


def _deps_view(root: Path) -> Path:
    """Links to the running environment's packages, minus this project's install."""
    view = root / "deps"
    view.mkdir()
    purelib = Path(sysconfig.get_paths()["purelib"])
    for entry in purelib.iterdir():
        if entry.name.startswith(LEAKS) or entry.suffix == ".pth":
            continue
        (view / entry.name).symlink_to(entry)
    return view


def test_wheel_works_in_a_fresh_venv(dists: dict[str, Path], tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    site = Path(
        _run(
            [str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            tmp_path,
        ).strip()
    )
    (site / "_test_wheel_deps.pth").write_text(f"{_deps_view(tmp_path)}\n")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--no-cache-dir",
            "-q",
            str(dists["wheel"]),
        ],
        tmp_path,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONNOUSERSITE"] = "1"
    work = tmp_path / "work"
    work.mkdir()
    out = _run([str(python), "-I", "-c", IN_VENV, str(REPO_ROOT)], work, env)
    result = json.loads(out.strip().splitlines()[-1])

    assert Path(result["file"]).resolve().is_relative_to(site.resolve()), result["file"]
    assert result["repo_on_path"] == []
    assert Path(result["dist_at"]).resolve() == site.resolve()
    assert result["n_dists"] == 1, "another optuna-qlearn distribution is visible"
    direct = json.loads(result["direct_url"])
    assert direct["url"].endswith(".whl") and not direct.get("dir_info", {}).get("editable")
    assert result["version"] == optuna_qlearn.__version__
    for name, n in (("QLearningSampler", 25), ("DQNSampler", 15)):
        study = result["studies"][name]
        assert study["n_complete"] == n
        assert study["n_agent"] > 0, f"{name} never proposed a trial"
        assert Path(study["module"]).resolve().is_relative_to(site.resolve())
    with zipfile.ZipFile(dists["wheel"]) as zf:
        shipped = {
            n.removeprefix(f"{PROJECT}/")
            for n in zf.namelist()
            if n.startswith(f"{PROJECT}/") and not n.endswith(".py")
        }
    assert set(result["data_files"]) == shipped
    assert "py.typed" in shipped

    # The console script pip generated, and python -m, both from the wheel.
    help_text = _run([str(venv / "bin" / "optuna-qlearn"), "--help"], work, env)
    assert "usage: optuna-qlearn" in help_text
    for command in ("demo", "fid", "lr", "dashboard"):
        assert command in help_text
    assert "usage: optuna-qlearn" in _run([str(python), "-I", "-m", PROJECT, "--help"], work, env)
