"""The OptunaHub package in ``optunahub-registry/package/samplers/q_learning``.

Offline: ``optunahub.load_local_module`` loads the package from this checkout (the
registry's own way of testing a package before it is registered), both samplers run a
short study through it, ``example.py`` runs, and ``README.md`` passes the checks of the
registry's CI, re-implemented here from github.com/optuna/optunahub-registry:

- ``optunahub-registry/header_confirm.py`` (run by ``.github/workflows/header-confirm.yaml``
  on every README under ``package/``): the front matter, parsed by ``python-frontmatter``
  (YAML between ``---`` lines), has ``author``, ``title``, ``description``, ``tags``,
  ``optuna_versions`` and ``license``, none empty or null;
- ``template/README.md``: every value a string ("All columns must be string"), a package
  under ``package/samplers/`` tagged ``sampler``, no HTML tags in the README, and the
  sections Abstract, APIs, Installation, Example, Others;
- ``CONTRIBUTING.md``: no binary files except the images used in ``README.md``.
"""

from __future__ import annotations

import importlib.util
import re
import types
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from conftest import REPO_ROOT, optuna_floor, require
from packaging.requirements import Requirement
from packaging.version import Version

import optuna_qlearn

REGISTRY_ROOT = REPO_ROOT / "optunahub-registry" / "package"
PACKAGE = "samplers/q_learning"
PACKAGE_DIR = REGISTRY_ROOT / PACKAGE
HEADER_KEYS = ("author", "title", "description", "tags", "optuna_versions", "license")
SECTIONS = ("Abstract", "APIs", "Installation", "Example", "Others")


def front_matter(path: Path) -> tuple[dict[str, Any], str]:
    """Split a README into its YAML front matter and body, as ``python-frontmatter`` does.

    Raises:
        ValueError: If ``path`` does not start with a ``---`` delimited YAML block.
    """
    text = path.read_text(encoding="utf-8")
    match = re.match(r"\A-{3,}\s*\n(.*?)\n-{3,}\s*\n(.*)\Z", text, flags=re.S)
    if match is None:
        raise ValueError(f"{path}: no front matter between '---' lines at the top")
    meta = yaml.safe_load(match.group(1))
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: the front matter is not a mapping")
    return meta, match.group(2)


def header_confirm(path: Path) -> None:
    """``header_confirm.py``'s assertions, one for one."""
    post, _ = front_matter(path)
    for key in HEADER_KEYS:
        assert key in post, f"{key} is not found in {path}"
    for key in HEADER_KEYS:
        assert post[key] != "" and post[key] is not None, f"{key} is empty in {path}"


def template_rules(path: Path, category: str) -> None:
    """The rules ``template/README.md`` states in its comment and instructions."""
    post, body = front_matter(path)
    for key in HEADER_KEYS:
        values = post[key] if isinstance(post[key], list) else [post[key]]
        assert values, f"{key} is an empty list in {path}"
        for value in values:
            assert isinstance(value, str), f"{key}: {value!r} is not a string in {path}"
    required_tag = {"samplers": "sampler", "pruners": "pruner", "visualization": "visualization"}
    assert required_tag[category] in post["tags"], f"tags lack {required_tag[category]!r}"
    html = re.findall(r"<(?!!--)/?[A-Za-z][^>]*>", body)
    assert html == [], f"HTML tags are removed by the registry: {html}"
    headings = re.findall(r"^## (.+?)\s*$", body, flags=re.M)
    missing = [s for s in SECTIONS if s not in headings]
    assert missing == [], f"sections missing from {path}: {missing}"


def load_package() -> types.ModuleType:
    require(
        importlib.util.find_spec("optunahub") is not None,
        "optunahub is not installed (pip install 'optuna-qlearn[hub]')",
    )
    import optunahub

    return optunahub.load_local_module(package=PACKAGE, registry_root=str(REGISTRY_ROOT))


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -3.0, 3.0)
    k = trial.suggest_int("k", 0, 9)
    c = trial.suggest_categorical("c", ["a", "b"])
    return (x - 0.5) ** 2 + (k - 4) ** 2 + (c == "b")


def test_front_matter_passes_the_registry_checks() -> None:
    readme = PACKAGE_DIR / "README.md"
    header_confirm(readme)
    template_rules(readme, PACKAGE.split("/")[0])
    post, _ = front_matter(readme)
    # The versions claimed are ones this project supports (its optuna lower bound).
    for v in post["optuna_versions"]:
        assert Version(v) >= Version(optuna_floor()), v
    assert post["license"] == "MIT License"


def test_checks_reject_what_the_registry_rejects(tmp_path: Path) -> None:
    good = (PACKAGE_DIR / "README.md").read_text(encoding="utf-8")
    empty_author = tmp_path / "empty_author.md"
    empty_author.write_text(re.sub(r"^author: .*$", "author:", good, count=1, flags=re.M))
    with pytest.raises(AssertionError, match="author is empty"):
        header_confirm(empty_author)
    no_license = tmp_path / "no_license.md"
    no_license.write_text(re.sub(r"^license: .*\n", "", good, count=1, flags=re.M))
    with pytest.raises(AssertionError, match="license is not found"):
        header_confirm(no_license)
    float_version = tmp_path / "float_version.md"
    float_version.write_text(
        re.sub(r"^optuna_versions: .*$", "optuna_versions: [4.2]", good, count=1, flags=re.M)
    )
    with pytest.raises(AssertionError, match="not a string"):
        template_rules(float_version, "samplers")
    html = tmp_path / "html.md"
    html.write_text(good + "\n<img src='x.png'>\n")
    with pytest.raises(AssertionError, match="HTML"):
        template_rules(html, "samplers")


def test_package_files_follow_the_registry_layout() -> None:
    names = {p.relative_to(PACKAGE_DIR).as_posix() for p in PACKAGE_DIR.rglob("*") if p.is_file()}
    names = {n for n in names if "__pycache__" not in n}
    for required in ("__init__.py", "README.md", "LICENSE", "example.py", "requirements.txt"):
        assert required in names
    # Binary files: only the images the README shows, and each one it shows exists.
    _, body = front_matter(PACKAGE_DIR / "README.md")
    shown = set(re.findall(r"!\[[^\]]*\]\(([^)\s]+)", body))
    assert shown, "the Others section has no figure"
    assert all((PACKAGE_DIR / s).is_file() for s in shown), shown
    text_suffixes = {".py", ".md", ".txt", ""}
    binaries = {n for n in names if Path(n).suffix not in text_suffixes}
    assert binaries == shown
    assert "MIT License" in (PACKAGE_DIR / "LICENSE").read_text()
    # requirements.txt names this distribution at a version it accepts.
    lines = (PACKAGE_DIR / "requirements.txt").read_text().splitlines()
    reqs = [Requirement(s) for s in lines if s.strip() and not s.lstrip().startswith("#")]
    ours = [r for r in reqs if r.name == "optuna-qlearn"]
    assert len(ours) == 1
    assert ours[0].specifier.contains(optuna_qlearn.__version__)


def test_load_local_module_runs_both_samplers() -> None:
    module = load_package()
    assert sorted(module.__all__) == ["DQNSampler", "QLearningSampler"]
    assert module.QLearningSampler is optuna_qlearn.QLearningSampler
    assert module.DQNSampler is optuna_qlearn.DQNSampler
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = module.Nope
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # The default learned policy (its weights ship with the package), the tabular
    # agent and the DQN.
    runs: tuple[tuple[Any, dict[str, Any], int], ...] = (
        (module.QLearningSampler, {}, 30),
        (module.QLearningSampler, {"policy": "table"}, 30),
        (module.DQNSampler, {}, 15),
    )
    for cls, kwargs, n_trials in runs:
        sampler = cls(seed=0, **kwargs)
        study = optuna.create_study(sampler=sampler)
        study.optimize(_objective, n_trials=n_trials)
        assert len(study.trials) == n_trials
        assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
        # The agent proposed the trials after the random start-up ones.
        assert any(k.startswith("qlearn:") for t in study.trials for k in t.user_attrs)
        if sampler.policy == "table":
            assert len(sampler.q_table(study)) > 0
        else:
            table = sampler.correction_table(study)
            assert sum(row["updates"] for row in table.values()) == n_trials - 2


def test_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    load_package()  # example.py needs optunahub
    spec = importlib.util.spec_from_file_location("q_learning_example", PACKAGE_DIR / "example.py")
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main(n_trials=12)
    out = capsys.readouterr().out
    assert "QLearningSampler: best value" in out
    assert "DQNSampler: best value" in out


def test_python_files_pass_the_registry_lint() -> None:
    """The registry's pre-commit runs ruff with its ``pyproject.toml`` settings."""
    import subprocess
    import sys

    settings = [
        "line-length=99",
        "lint.extend-select=['I']",
        "lint.isort.known-third-party=['optuna']",
        "lint.isort.lines-after-imports=2",
        "lint.isort.force-single-line=true",
        "lint.isort.force-sort-within-sections=true",
        "lint.isort.order-by-type=false",
    ]
    config = [arg for s in settings for arg in ("--config", s)]
    for command in (["check"], ["format", "--check"]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--isolated", *config, str(PACKAGE_DIR)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
