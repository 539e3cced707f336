"""Checks the command line runs before it touches a storage, a port or an optional extra.

Each check raises :class:`CommandError` with a one- or two-line message that says what
is wrong and what to do; :func:`optuna_qlearn.cli.main` prints it and exits with its
status (:data:`USAGE` for a wrong argument, :data:`FAILURE` for anything else). The
checks create nothing: a missing SQLite file is reported, not created, and a file is
only opened read-only.
"""

from __future__ import annotations

import argparse
import errno
import functools
import importlib.util
import json
import os
import socket
import sqlite3
import sys
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

#: Exit status of a wrong argument (argparse uses the same).
USAGE = 2
#: Exit status of every other error.
FAILURE = 1

#: The samplers the commands offer by name (``--sampler``; built in ``_demo.SAMPLERS``).
SAMPLER_NAMES = ("qlearning", "tpe", "random")

SQLITE_HEADER = b"SQLite format 3\x00"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
# What installs the driver of a SQLAlchemy backend (others: "the <driver> driver").
# SQLAlchemy 2.1 reads postgresql:// as psycopg (3); the postgres extra installs psycopg2.
_DRIVER_HINTS = {
    "postgresql": "it, or name the driver the postgres extra installs: "
    "postgresql+psycopg2://... (pip install 'optuna-qlearn[postgres]')"
}
# Backends whose drivers take a connect_timeout (seconds), so that a check cannot hang.
_CONNECT_TIMEOUT = {"postgresql", "mysql"}


class CommandError(Exception):
    """An error of ``optuna-qlearn`` that is reported without a traceback.

    Args:
        message: What is wrong and what to do, in one or two lines.
        status: The exit status: :data:`USAGE` (2) for a wrong argument, :data:`FAILURE`
            (1) otherwise.
    """

    def __init__(self, message: str, status: int = FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def report(command: str, error: CommandError) -> int:
    """Print ``error`` as ``optuna-qlearn COMMAND: error: ...`` on stderr.

    Args:
        command: The subcommand (``"dashboard"``).
        error: The error.

    Returns:
        The error's exit status.
    """
    print(f"optuna-qlearn {command}: error: {error.message}", file=sys.stderr)
    return error.status


def reports_errors(
    command: str,
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Decorate a subcommand's ``run(args)`` to print its :class:`CommandError` and
    return its status, also when the function is called without :func:`main`.

    Args:
        command: The subcommand's name, for the message.

    Returns:
        The decorator.
    """

    def decorate(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        @functools.wraps(run)
        def wrapper(args: argparse.Namespace) -> int:
            try:
                return run(args)
            except CommandError as exc:
                return report(command, exc)

        return wrapper

    return decorate


def require_extra(extra: str, modules: Sequence[str], what: str, alternative: str = "") -> None:
    """Refuse to run ``what`` when one of the ``extra``'s modules is not installed.

    Args:
        extra: The pip extra that installs the modules (``"vision"``).
        modules: Top-level import names (``"torch"``, ``"sklearn"``).
        what: What needs them, for the message (``"the 'vae' objective"``).
        alternative: An optional second sentence, such as a way to run without them.

    Raises:
        CommandError: Naming the missing modules and the ``pip install`` command.
    """
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        hint = f"install it with: pip install 'optuna-qlearn[{extra}]'"
        raise CommandError(
            f"{what} needs {', '.join(missing)} (the '{extra}' extra), which is not installed; "
            f"{hint}" + (f"\n{alternative}" if alternative else ""),
            FAILURE,
        )


def check_study_storage(storage: str, option: str = "--storage") -> None:
    """Check a storage URL that a command will create or resume studies in.

    The URL must parse, name an installed database driver and, for a server database,
    accept a connection. A SQLite file may be missing (the command creates it, as asked),
    but its folder must exist, and an existing file must be a SQLite database.

    Args:
        storage: An RDB URL, as :func:`optuna.create_study` takes it.
        option: The option that gave it, for the message.

    Raises:
        CommandError: If the URL cannot be used.
    """
    if storage.startswith(REDIS_SCHEMES):
        raise CommandError(
            f"{option} {storage!r}: this command takes a database URL (sqlite:///study.db, "
            "postgresql://...); Redis journals are opened with the Python API",
            USAGE,
        )
    _check_rdb_url(storage, option, must_exist=False)


def check_readable_storage(storage: str, option: str = "STORAGE") -> None:
    """Check a storage that a command will only read studies from (``dashboard``).

    Accepts an RDB URL whose database exists (a SQLite file must exist and hold Optuna's
    tables), a ``redis://`` URL that answers, or the path of a SQLite file or an Optuna
    journal file (every line a journal record).

    Args:
        storage: The URL or path.
        option: The argument that gave it, for the message.

    Raises:
        CommandError: If the storage is missing, malformed or unreachable.
    """
    if storage.startswith(REDIS_SCHEMES):
        _check_redis(storage, option)
        return
    if "://" in storage:
        _check_rdb_url(storage, option, must_exist=True)
        return
    if not os.path.isfile(storage):
        looks_like_url = ":" in storage.split("/", 1)[0]
        what = "a malformed URL" if looks_like_url else "not a file"
        raise CommandError(
            f"{option} {storage!r} is {what}; pass a storage URL (sqlite:///study.db, "
            "postgresql://..., redis://...) or an existing SQLite or journal file",
            USAGE,
        )
    with open(storage, "rb") as f:
        head = f.read(len(SQLITE_HEADER))
    if head == SQLITE_HEADER:
        _check_optuna_sqlite(storage, option)
    else:
        check_journal_file(storage, option)


def check_journal_file(path: str, option: str = "STORAGE") -> None:
    """Check that ``path`` is an Optuna journal file (``JournalFileBackend``).

    Every complete line must be a JSON object with an integer ``op_code``, as Optuna
    writes them; a last line without its newline (a worker writing) is allowed.

    Args:
        path: The file.
        option: The argument that gave it, for the message.

    Raises:
        CommandError: If the file is empty or a line is not a journal record.
    """
    n_records = 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                break  # being written
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (UnicodeDecodeError, ValueError):
                record = None
            if not isinstance(record, dict) or not isinstance(record.get("op_code"), int):
                raise CommandError(
                    f"{option} {path!r} is neither a SQLite database nor an Optuna journal "
                    f"file (line {number} is not a journal record); pass a storage URL or "
                    "the file Optuna's JournalFileBackend wrote",
                    USAGE,
                )
            n_records += 1
    if n_records == 0:
        raise CommandError(
            f"{option} {path!r} is empty: no Optuna journal records and no SQLite database; "
            "pass the file a study was written to",
            USAGE,
        )


def check_port(host: str, port: int) -> None:
    """Check that a server can listen on ``host:port`` (before announcing its URL).

    Args:
        host: The address to bind (``--host``).
        port: The port (``--port``).

    Raises:
        CommandError: If the port is out of range, the host is not an address of this
            machine, the port is taken or needs privileges.
    """
    if not 0 < port < 65536:
        raise CommandError(f"--port must be in 1..65535, got {port}", USAGE)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As the server does (http.server sets allow_reuse_address).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except socket.gaierror as exc:
            raise CommandError(
                f"--host {host!r} is not a known address ({exc.strerror}); "
                "use 127.0.0.1 (the default)",
                USAGE,
            ) from None
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"port {port} on {host} is already in use (another dashboard?); "
                    "stop that server or pick another port with --port",
                    FAILURE,
                ) from None
            if exc.errno == errno.EACCES:
                raise CommandError(
                    f"port {port} needs administrator rights; use a port above 1023 with --port",
                    FAILURE,
                ) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise CommandError(
                    f"--host {host!r} is not an address of this machine; "
                    "use 127.0.0.1 (the default)",
                    USAGE,
                ) from None
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}", FAILURE) from None


# ------------------------------------------------------------------------------ helpers
def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_rdb_url(storage: str, option: str, *, must_exist: bool) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    try:
        url = make_url(storage)
    except (ArgumentError, ValueError) as exc:
        raise CommandError(
            f"{option} {storage!r} is not a valid storage URL ({_first_line(exc)}); "
            "expected e.g. sqlite:///study.db or postgresql://user:password@host/db",
            USAGE,
        ) from None
    shown = url.render_as_string(hide_password=True)
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        raise CommandError(
            f"{option} {shown!r}: unknown database {url.drivername!r}; "
            "expected e.g. sqlite:///study.db or postgresql://user:password@host/db",
            USAGE,
        ) from None
    # import_dbapi() since SQLAlchemy 2.0, dbapi() in 1.4 (Optuna allows both).
    import_dbapi: Any = getattr(dialect, "import_dbapi", None) or getattr(dialect, "dbapi", None)
    try:
        import_dbapi()
    except ImportError as exc:
        hint = _DRIVER_HINTS.get(url.get_backend_name(), f"the {url.drivername} driver")
        raise CommandError(
            f"{option} {shown!r} needs the database driver {exc.name or url.drivername!r}, "
            f"which is not installed;\ninstall {hint}",
            FAILURE,
        ) from None
    if url.get_backend_name() == "sqlite":
        _check_sqlite_url(url.database, url.query, option, shown, must_exist=must_exist)
        return
    connect_args = {"connect_timeout": 10} if url.get_backend_name() in _CONNECT_TIMEOUT else {}
    try:
        engine = create_engine(url, connect_args=connect_args)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:
        raise CommandError(
            f"{option} {shown!r}: cannot connect: {_first_line(exc)}\n"
            "check that the server runs, the database exists and the credentials are right",
            FAILURE,
        ) from None


def _check_sqlite_url(
    database: str | None, query: object, option: str, shown: str, *, must_exist: bool
) -> None:
    if query and "uri" in query:  # type: ignore[operator]
        return  # sqlite:///file:...?uri=true: SQLite parses it
    in_memory = not database or database == ":memory:"
    if in_memory:
        if must_exist:
            raise CommandError(
                f"{option} {shown!r} is an in-memory database, which holds no study; "
                "pass the database file, e.g. sqlite:///study.db",
                USAGE,
            )
        return
    assert database is not None
    if os.path.isdir(database):
        raise CommandError(f"{option} {shown!r}: {database!r} is a folder, not a file", USAGE)
    if not os.path.exists(database):
        if must_exist:
            raise CommandError(
                f"{option} {shown!r}: no SQLite file {os.path.abspath(database)!r} "
                "(nothing was created); check the path",
                USAGE,
            )
        folder = os.path.dirname(os.path.abspath(database))
        if not os.path.isdir(folder):
            raise CommandError(
                f"{option} {shown!r}: the folder {folder!r} does not exist; create it first",
                USAGE,
            )
        return
    with open(database, "rb") as f:
        head = f.read(len(SQLITE_HEADER))
    if head and head != SQLITE_HEADER:
        raise CommandError(
            f"{option} {shown!r}: {database!r} is not a SQLite database; check the path",
            USAGE,
        )
    if must_exist:
        _check_optuna_sqlite(database, option)


def _check_optuna_sqlite(path: str, option: str) -> None:
    uri = f"file:{quote(os.path.abspath(path))}?mode=ro"  # read-only: changes nothing
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            rows = conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name='studies'"
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise CommandError(
            f"{option} {path!r} is not a readable SQLite database ({exc}); check the path",
            USAGE,
        ) from None
    if not rows:
        raise CommandError(
            f"{option} {path!r} is a SQLite database without Optuna's tables (no study was "
            "ever stored in it); check the path",
            USAGE,
        )


def _check_redis(storage: str, option: str) -> None:
    try:
        import redis
    except ImportError:
        raise CommandError(
            f"{option} {storage!r} needs the redis client, which is not installed; "
            "install it with: pip install 'optuna-qlearn[redis]'",
            FAILURE,
        ) from None
    try:
        client = redis.Redis.from_url(storage, socket_connect_timeout=5)
    except ValueError as exc:
        raise CommandError(
            f"{option} {storage!r} is not a valid Redis URL ({exc}); expected redis://host:port/db",
            USAGE,
        ) from None
    try:
        client.ping()
    except redis.RedisError as exc:
        raise CommandError(
            f"{option} {storage!r}: cannot connect to Redis: {_first_line(exc)}\n"
            "check that the server runs and the URL is right",
            FAILURE,
        ) from None
    finally:
        client.close()
