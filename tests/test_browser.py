"""End to end: ``optuna-qlearn dashboard`` in a real headless browser.

A QLearningSampler study in SQLite is published with :func:`optuna_qlearn.dashboard.publish`
and served by the ``optuna-qlearn dashboard`` command; Debian's chromium, driven by
Playwright, checks that the trials, their ``qlearn:*`` attributes, the Q-learning figures
(those of :mod:`optuna_qlearn.visualization`) and the notes are on the pages, and saves
screenshots in ``test-artifacts/``: once for the learned policy (the default: the decision
figure, the correction table, and each trial's note with its candidates and features),
once for the tabular agent (``policy="table"``: the Q-table heatmaps).

``OPTUNA_QLEARN_UPDATE_SCREENSHOTS=1`` also refreshes the copies in ``docs/images/``
(with a longer study, so the heatmap has more to show).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import optuna
import pytest
from conftest import REPO_ROOT, require

from optuna_qlearn import QLearningSampler

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts"
UPDATE_DOCS = os.environ.get("OPTUNA_QLEARN_UPDATE_SCREENSHOTS") == "1"

pytestmark = pytest.mark.browser


def objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    width = trial.suggest_int("width", 16, 256, step=16)
    return float((np.log10(lr) + 2.5) ** 2 + ((width - 128) / 64) ** 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served_study(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[str, optuna.Study]]:
    """A published QLearningSampler study in SQLite, served by ``optuna-qlearn dashboard``
    (``policy`` by indirect parametrization)."""
    pytest.importorskip("optuna_dashboard")
    from optuna_qlearn.dashboard import publish

    url = f"sqlite:///{tmp_path / 'qlearn.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = QLearningSampler(policy=request.param, seed=0)
    study = optuna.create_study(storage=url, study_name="qlearn-browser", sampler=sampler)
    # Start the server first: it reads the storage per request, and starts meanwhile.
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *sys.path])}
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [sys.executable, "-m", "optuna_qlearn", "dashboard", url, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    study.optimize(objective, n_trials=150 if UPDATE_DOCS else 25)
    publish(study)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"dashboard exited: {(tmp_path / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/api/studies", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"dashboard did not start: {(tmp_path / 'server.log').read_text()}")
            time.sleep(0.2)
        yield base, study
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _browse(body: Callable[[Page], None]) -> None:
    """Run ``body`` on a page of Debian's chromium, headless."""
    require(CHROMIUM.is_file(), f"{CHROMIUM} missing: apt-get install chromium (make chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        require(False, "playwright is not installed")
    expect.set_options(timeout=30_000)  # generous: CI machines can be heavily loaded
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            body(page)
        finally:
            browser.close()


def _check_trial_attrs(page: Page, study: optuna.Study, number: int) -> None:
    """The trial list has every trial; trial ``number``'s page its ``qlearn:*`` attributes."""
    from playwright.sync_api import expect

    expect(page.get_by_text(f"{len(study.trials)} Trials")).to_be_visible()
    page.get_by_text(f"Trial {number}", exact=True).click()
    expect(page.get_by_text(f"Trial {number} (trial_id=")).to_be_visible()
    trial = study.trials[number]
    for key in ("qlearn:action", "qlearn:epsilon", "qlearn:episode", "qlearn:step"):
        shown = f"{key} {trial.user_attrs[key]}"  # rendered as "key value"
        expect(page.get_by_text(shown, exact=True)).to_be_visible()
    expect(page.get_by_text(re.compile(r"^qlearn:state \[\d+, \d+\]$"))).to_be_visible()


def _save_docs_images(shots: dict[str, Path], names: dict[str, str]) -> None:
    for path in shots.values():
        assert path.stat().st_size > 10_000, f"{path} looks empty"
    if UPDATE_DOCS:
        images = REPO_ROOT / "docs" / "images"
        images.mkdir(parents=True, exist_ok=True)
        for shot, name in names.items():
            shutil.copy(shots[shot], images / name)


@pytest.mark.parametrize("served_study", ["default"], indirect=True)
def test_dashboard_shows_the_learned_policy(served_study: tuple[str, optuna.Study]) -> None:
    base, study = served_study
    study_url = f"{base}/dashboard/studies/{study._study_id}"
    shots = {}
    last = study.trials[-1].number
    number = 5
    decision = study.trials[number].system_attrs["qlearn:decision"]

    def body(page: Page) -> None:
        from playwright.sync_api import expect

        # The study page: optuna-dashboard's own plots and the published figures.
        page.goto(study_url)
        heading = f"Q-learning: the decision of trial {last}: "
        expect(page.get_by_text(heading)).to_be_visible()
        correction = "Q-learning: the study's correction of the network's Q, per action kind"
        expect(page.get_by_text(correction)).to_be_visible()
        expect(page.get_by_text("Q-learning: epsilon and reward per trial")).to_be_visible()
        expect(page.get_by_text("reward of the chosen action")).to_be_visible()
        # The decision figure is drawn: its bars, and the chosen one's features table.
        card = page.locator(".MuiCard-root").filter(has_text=heading)
        expect(card).to_have_count(1)
        expect(card.locator(".barlayer .point").first).to_be_attached()
        expect(card.get_by_text("neighbours_evaluated")).to_be_attached()
        expect(card.get_by_text("chosen", exact=True)).to_be_visible()
        page.wait_for_timeout(500)  # let Plotly finish its transitions
        shots["study"] = ARTIFACTS / "dashboard-learned-study.png"
        page.screenshot(path=str(shots["study"]), full_page=True)
        shots["decision"] = ARTIFACTS / "dashboard-decision.png"
        card.screenshot(path=str(shots["decision"]))

        # A trial: its qlearn:* attributes, and its note (why it went there).
        page.goto(f"{study_url}/trials")
        _check_trial_attrs(page, study, number)
        why = f"Why trial {number} went to {decision['label']}"
        expect(page.get_by_role("heading", name=why)).to_be_visible()
        expect(page.get_by_role("columnheader", name="Q (network)")).to_be_visible()
        expect(page.get_by_role("columnheader", name="Q (total)")).to_be_visible()
        chosen = page.get_by_role("row").filter(has_text="(chosen)")
        expect(chosen).to_have_count(1)
        expect(chosen).to_contain_text(decision["label"])
        expect(chosen).to_contain_text(f"{decision['q']:.4g}")
        for name, value in decision["features"].items():
            row = page.get_by_role("row").filter(
                has=page.get_by_role("cell", name=name, exact=True)
            )
            expect(row).to_contain_text(f"{value:.4g}")
        expect(page.get_by_text("qlearn:begin")).to_have_count(0)  # markers stay invisible
        shots["trial"] = ARTIFACTS / "dashboard-trial-note.png"
        page.get_by_role("heading", name=why).scroll_into_view_if_needed()
        page.screenshot(path=str(shots["trial"]))

        # The study note: the policy, its correction table and the settings.
        page.goto(f"{study_url}/note")
        expect(page.get_by_text("QLearningSampler on qlearn-browser")).to_be_visible()
        expect(page.get_by_role("cell", name="policy", exact=True)).to_be_visible()
        expect(page.get_by_role("cell", name="restart-best", exact=True)).to_be_visible()
        expect(page.get_by_text("qlearn:end")).to_have_count(0)
        shots["note"] = ARTIFACTS / "dashboard-note.png"
        page.screenshot(path=str(shots["note"]), full_page=True)

    _browse(body)
    _save_docs_images(
        shots,
        {
            "study": "dashboard.png",
            "decision": "dashboard-decision.png",
            "trial": "dashboard-trial-note.png",
            "note": "dashboard-note.png",
        },
    )


@pytest.mark.parametrize("served_study", ["table"], indirect=True)
def test_dashboard_shows_the_tabular_agent(served_study: tuple[str, optuna.Study]) -> None:
    base, study = served_study
    study_url = f"{base}/dashboard/studies/{study._study_id}"
    shots = {}

    def body(page: Page) -> None:
        from playwright.sync_api import expect

        # The study page: optuna-dashboard's own plots and the published figures.
        page.goto(study_url)
        heading = "Q-learning: greedy value max_a Q(s, a) over lr × width"
        expect(page.get_by_text(heading)).to_be_visible()
        expect(page.get_by_text("Q-learning: visit counts over lr × width")).to_be_visible()
        expect(page.get_by_text("Q-learning: epsilon and reward per trial")).to_be_visible()
        expect(page.get_by_text("Q-learning: greedy policy over lr × width")).to_be_visible()
        # The heatmap is drawn: one cell text per visited state projection.
        expect(page.locator(".heatmaplayer").first).to_be_attached()
        page.wait_for_timeout(500)  # let Plotly finish its transitions
        shots["study"] = ARTIFACTS / "dashboard-table-study.png"
        page.screenshot(path=str(shots["study"]), full_page=True)
        card = page.locator(".MuiCard-root").filter(has_text=heading)
        expect(card).to_have_count(1)
        shots["heatmap"] = ARTIFACTS / "dashboard-heatmap.png"
        card.screenshot(path=str(shots["heatmap"]))

        # The trial list: every trial, and a trial's qlearn:* attributes.
        page.goto(f"{study_url}/trials")
        _check_trial_attrs(page, study, 5)
        shots["trial"] = ARTIFACTS / "dashboard-trial.png"
        page.screenshot(path=str(shots["trial"]))

        # The note: settings and the greedy-policy table.
        page.goto(f"{study_url}/note")
        expect(page.get_by_text("QLearningSampler on qlearn-browser")).to_be_visible()
        expect(page.get_by_role("cell", name="restart_best_prob")).to_be_visible()
        expect(page.get_by_role("columnheader", name="greedy move")).to_be_visible()
        expect(page.get_by_text("qlearn:end")).to_have_count(0)  # markers stay invisible
        shots["note"] = ARTIFACTS / "dashboard-table-note.png"
        page.screenshot(path=str(shots["note"]), full_page=True)

    _browse(body)
    _save_docs_images(shots, {"heatmap": "dashboard-heatmap.png"})
