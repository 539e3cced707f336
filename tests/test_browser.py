"""End to end: ``optuna-qlearn dashboard`` in a real headless browser.

A QLearningSampler study in SQLite is published with :func:`optuna_qlearn.dashboard.publish`
and served by the ``optuna-qlearn dashboard`` command; Debian's chromium, driven by
Playwright, checks that the trials, their ``qlearn:*`` attributes, the Q-learning figures
(those of :mod:`optuna_qlearn.visualization`) and the note are on the pages, and saves
screenshots in ``test-artifacts/``.

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
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pytest
from conftest import REPO_ROOT, require

from optuna_qlearn import QLearningSampler

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
def served_study(tmp_path: Path) -> Iterator[tuple[str, optuna.Study]]:
    """A published QLearningSampler study in SQLite, served by ``optuna-qlearn dashboard``."""
    pytest.importorskip("optuna_dashboard")
    from optuna_qlearn.dashboard import publish

    url = f"sqlite:///{tmp_path / 'qlearn.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=url, study_name="qlearn-browser", sampler=QLearningSampler(seed=0)
    )
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


def test_dashboard_shows_the_agent(served_study: tuple[str, optuna.Study]) -> None:
    require(CHROMIUM.is_file(), f"{CHROMIUM} missing: apt-get install chromium")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        require(False, "playwright is not installed")
    base, study = served_study
    expect.set_options(timeout=30_000)  # generous: CI machines can be heavily loaded
    study_url = f"{base}/dashboard/studies/{study._study_id}"
    ARTIFACTS.mkdir(exist_ok=True)
    shots = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)

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
            shots["study"] = ARTIFACTS / "dashboard-study.png"
            page.screenshot(path=str(shots["study"]), full_page=True)
            card = page.locator(".MuiCard-root").filter(has_text=heading)
            expect(card).to_have_count(1)
            shots["heatmap"] = ARTIFACTS / "dashboard-heatmap.png"
            card.screenshot(path=str(shots["heatmap"]))

            # The trial list: every trial, and a trial's qlearn:* attributes.
            page.goto(f"{study_url}/trials")
            expect(page.get_by_text(f"{len(study.trials)} Trials")).to_be_visible()
            page.get_by_text("Trial 5", exact=True).click()
            expect(page.get_by_text("Trial 5 (trial_id=")).to_be_visible()
            trial = study.trials[5]
            for key in ("qlearn:action", "qlearn:epsilon", "qlearn:episode", "qlearn:step"):
                shown = f"{key} {trial.user_attrs[key]}"  # rendered as "key value"
                expect(page.get_by_text(shown, exact=True)).to_be_visible()
            expect(page.get_by_text(re.compile(r"^qlearn:state \[\d+, \d+\]$"))).to_be_visible()
            shots["trial"] = ARTIFACTS / "dashboard-trial.png"
            page.screenshot(path=str(shots["trial"]))

            # The note: settings and the greedy-policy table.
            page.goto(f"{study_url}/note")
            expect(page.get_by_text("QLearningSampler on qlearn-browser")).to_be_visible()
            expect(page.get_by_role("cell", name="restart_best_prob")).to_be_visible()
            expect(page.get_by_text("qlearn:end")).to_have_count(0)  # markers stay invisible
            shots["note"] = ARTIFACTS / "dashboard-note.png"
            page.screenshot(path=str(shots["note"]), full_page=True)
        finally:
            browser.close()
    for path in shots.values():
        assert path.stat().st_size > 10_000, f"{path} looks empty"
    if UPDATE_DOCS:
        images = REPO_ROOT / "docs" / "images"
        images.mkdir(parents=True, exist_ok=True)
        shutil.copy(shots["study"], images / "dashboard.png")
        shutil.copy(shots["heatmap"], images / "dashboard-heatmap.png")
        shutil.copy(shots["note"], images / "dashboard-note.png")
