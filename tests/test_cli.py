"""The main job (``optuna-qlearn demo``), the command-line dispatcher and its errors.

Every error of the command line is one or two lines on stderr without a traceback,
exit status 2 for a wrong argument and 1 otherwise, and creates nothing.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from optuna_qlearn._cli_checks import CommandError, check_port, check_readable_storage
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


def error_of(capsys: pytest.CaptureFixture[str], command: str) -> str:
    """The one error the command printed: on stderr, prefixed, at most two lines."""
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert captured.err.startswith(f"optuna-qlearn {command}: error: "), captured.err
    assert len(captured.err.strip().splitlines()) <= 2, captured.err
    assert "optuna-dashboard: http" not in captured.out  # nothing announced
    return captured.err


def test_bad_demo_arguments_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "demo.db"
    url = f"sqlite:///{db}"
    assert main(["demo", "--objective", "seed-grid", "--trials", "0", "--storage", url]) == 2
    assert "--trials must be at least 1" in error_of(capsys, "demo")
    assert main(["demo", "--objective", "seed-grid", "--samplers", "cma", "--storage", url]) == 2
    assert "--samplers" in error_of(capsys, "demo")
    assert not db.exists()


@pytest.fixture
def study_db(tmp_path: Path) -> Path:
    """A SQLite file with one finished study in it."""
    path = tmp_path / "study.db"
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{path}")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    return path


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another server listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_dashboard_refuses_a_missing_sqlite_file_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "typo.db"
    assert main(["dashboard", f"sqlite:///{typo}"]) == 2
    assert "no SQLite file" in error_of(capsys, "dashboard")
    assert main(["dashboard", str(typo)]) == 2
    assert "not a file" in error_of(capsys, "dashboard")
    assert not typo.exists()
    assert list(tmp_path.iterdir()) == []


def test_dashboard_refuses_a_sqlite_file_without_optuna_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    conn.close()
    before = other.read_bytes()
    for storage in (f"sqlite:///{other}", str(other)):
        assert main(["dashboard", storage]) == 2
        assert "without Optuna's tables" in error_of(capsys, "dashboard")
    assert other.read_bytes() == before  # no Optuna schema written into it


def test_dashboard_refuses_a_text_file_as_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("meeting at ten\n{}\n")
    assert main(["dashboard", str(notes)]) == 2
    assert "line 1 is not a journal record" in error_of(capsys, "dashboard")
    notes.write_text('{"op_code": 0, "worker_id": "w"}\n[1, 2]\n')
    assert main(["dashboard", str(notes)]) == 2
    assert "line 2 is not a journal record" in error_of(capsys, "dashboard")
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    assert main(["dashboard", str(empty)]) == 2
    assert "is empty" in error_of(capsys, "dashboard")


def test_real_storages_pass_the_checks(tmp_path: Path, study_db: Path) -> None:
    journal = tmp_path / "journal.log"
    storage = JournalStorage(JournalFileBackend(str(journal)))
    optuna.create_study(study_name="j", storage=storage).optimize(
        lambda t: t.suggest_int("x", 0, 3), n_trials=2
    )
    # A worker may be half-way through writing the last record.
    with journal.open("ab") as f:
        f.write(b'{"op_code": 5, "worker_')
    for accepted in (str(journal), str(study_db), f"sqlite:///{study_db}"):
        check_readable_storage(accepted)
    with pytest.raises(CommandError, match="not a journal record"):
        journal.write_bytes(b"garbage\n" + journal.read_bytes())
        check_readable_storage(str(journal))


def test_dashboard_checks_the_port_before_announcing_it(
    study_db: Path, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["dashboard", f"sqlite:///{study_db}", "--port", str(busy_port)]
    assert main(args) == 1
    assert f"port {busy_port} on 127.0.0.1 is already in use" in error_of(capsys, "dashboard")
    assert main([*args[:2], "--port", "70000"]) == 2
    assert "--port must be in 1..65535" in error_of(capsys, "dashboard")
    assert main([*args[:2], "--host", "no-such-host.invalid"]) == 2
    assert "--host" in error_of(capsys, "dashboard")


def test_a_free_port_passes() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    check_port("127.0.0.1", port)


@pytest.mark.parametrize(
    ("storage", "status", "expected"),
    [
        ("sqlite:/x.db", 2, "is a malformed URL"),
        ("postgresql://u@localhost:abc/db", 2, "is not a valid storage URL"),
        ("foo://bar", 2, "unknown database 'foo'"),
        ("sqlite://", 2, "in-memory database"),
        ("postgresql+psycopg2://postgres@127.0.0.1:1/test", 1, "cannot connect"),
        ("redis://127.0.0.1:1/0", 1, "cannot connect to Redis"),
    ],
)
def test_malformed_or_unreachable_storages_get_one_line(
    storage: str,
    status: int,
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["dashboard", storage]) == status
    assert expected in error_of(capsys, "dashboard")
    assert list(tmp_path.iterdir()) == []


def test_study_commands_check_their_storage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["demo", "--objective", "seed-grid", "--trials", "1", "--storage"]
    assert main([*args, f"sqlite:///{tmp_path / 'no' / 'dir.db'}"]) == 2
    assert "does not exist; create it first" in error_of(capsys, "demo")
    assert main([*args, "sqlite:/demo.db"]) == 2
    assert "is not a valid storage URL" in error_of(capsys, "demo")
    assert main([*args, "redis://127.0.0.1:6379/0"]) == 2
    assert "takes a database URL" in error_of(capsys, "demo")
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    assert main([*args, f"sqlite:///{text}"]) == 2
    assert "is not a SQLite database" in error_of(capsys, "demo")
    assert text.read_text() == "not a database\n"


def test_missing_vision_extra_gets_an_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if scikit-learn were absent
    db = tmp_path / "demo.db"
    assert main(["--storage", f"sqlite:///{db}"]) == 1  # the default command: demo vae
    err = error_of(capsys, "demo")
    assert "needs sklearn" in err and "pip install 'optuna-qlearn[vision]'" in err
    assert "--objective seed-grid" in err
    assert main(["fid", "--storage", f"sqlite:///{db}"]) == 1
    assert "pip install 'optuna-qlearn[vision]'" in error_of(capsys, "fid")
    assert not db.exists()


def test_fid_options_are_checked_in_cli_terms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'fid.db'}"
    assert main(["fid", "--extractor", "inception", "--storage", url]) == 2
    assert "needs --weights FILE" in error_of(capsys, "fid")
    assert main(["fid", "--weights", "w.pth", "--storage", url]) == 2
    assert "--weights is used only with --extractor" in error_of(capsys, "fid")
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    args = ["fid", "--extractor", "inception", "--weights", str(weights), "--storage", url]
    assert main([*args, "--sha256", "xyz"]) == 2
    assert "--sha256 must be 8 to 64 hex digits" in error_of(capsys, "fid")
    assert main(["fid", "dgmm", "--data", str(tmp_path / "none.mat"), "--storage", url]) == 2
    assert "--data" in error_of(capsys, "fid")
    assert main(["fid", "--trials", "0", "--storage", url]) == 2
    assert "--trials must be at least 1" in error_of(capsys, "fid")
    assert not (tmp_path / "fid.db").exists()


def test_lr_errors_name_the_cli_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPTUNA_QLEARN_DATA", str(tmp_path / "cache"))  # an empty cache
    url = f"sqlite:///{tmp_path / 'lr.db'}"
    assert main(["lr", "--storage", url]) == 2
    err = error_of(capsys, "lr")
    assert "pass --download to fetch it" in err and "download_if_missing" not in err
    assert main(["lr", "--corpus", "enwik8", "--storage", url]) == 2
    assert "pass --download" in error_of(capsys, "lr")
    assert main(["lr", "--data", str(tmp_path / "nope.txt"), "--storage", url]) == 2
    assert "--data" in error_of(capsys, "lr")
    for bad in ("0", "1,x", ","):
        assert main(["lr", "--phases", bad, "--storage", url]) == 2
        assert "--phases must be" in error_of(capsys, "lr")
    assert main(["lr", "--n-trials", "0", "--storage", url]) == 2
    assert "--n-trials must be at least 1" in error_of(capsys, "lr")
    assert not (tmp_path / "lr.db").exists()


def test_the_process_prints_no_traceback(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "optuna_qlearn", "dashboard", "sqlite:///typo.db"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert out.returncode == 2
    assert (
        out.stderr.startswith("optuna-qlearn dashboard: error: ") and "Traceback" not in out.stderr
    )
    assert not (tmp_path / "typo.db").exists()


def test_every_subcommand_is_wired() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {"demo", "fid", "lr", "dashboard", "train-policy"}  # type: ignore[union-attr]


def test_python_dash_m_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "optuna_qlearn", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "demo" in out.stdout
