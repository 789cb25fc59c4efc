"""The databases the workflows run on, for tests: a SQLite file, or a PostgreSQL schema of its own.

PostgreSQL is ``$STREAMBIND_TEST_DATABASE`` if set, else the server at 127.0.0.1:5432
(database ``test``) if it answers; otherwise its tests skip, saying why. Each test
gets a fresh schema, dropped afterwards: the shared server keeps only what was there.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PG_URL = os.environ.get("STREAMBIND_TEST_DATABASE") or "postgresql://127.0.0.1:5432/test"


@functools.cache
def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used for tests, or None when it can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"no PostgreSQL for tests at $STREAMBIND_TEST_DATABASE or 127.0.0.1:5432: {first}"
    return None


def require_postgres() -> None:
    if (reason := postgres_unavailable()) is not None:
        pytest.skip(reason)


@contextlib.contextmanager
def fresh_schema() -> Iterator[str]:
    """A new, empty PostgreSQL schema name; the schema is dropped afterwards if it was made."""
    import psycopg
    from psycopg import sql

    schema = f"streambind_test_{secrets.token_hex(6)}"
    try:
        yield schema
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@dataclass
class Backend:
    """One database for a test: the settings a server needs, and a reader of its own."""

    name: str
    data_dir: Path
    schema: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def query(self, text: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of one statement, read in a transaction of its own (``?`` placeholders)."""
        if self.name == "sqlite":
            path = self.data_dir / "streambind.db"
            with contextlib.closing(sqlite3.connect(path)) as db:
                return db.execute(text, args).fetchall()
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"SET search_path TO {self.schema}")  # a test-made name
            return conn.execute(text.replace("?", "%s"), args).fetchall()

    def count_people(self, run_id: str | None = None) -> int:
        if run_id is None:
            return int(self.query("SELECT COUNT(*) FROM people")[0][0])
        return int(self.query("SELECT COUNT(*) FROM people WHERE run_id = ?", run_id)[0][0])

    def snapshot_counts(self) -> tuple[int, int]:
        """Rows in ``people`` and the rows the published imports claim, in one snapshot."""
        ((people, claimed),) = self.query(
            "SELECT (SELECT COUNT(*) FROM people), (SELECT COALESCE(SUM(rows), 0) FROM imports)"
        )
        return int(people), int(claimed)

    def staging_leftovers(self) -> list[str]:
        if self.name == "sqlite":
            return [p.name for p in (self.data_dir / "staging").rglob("*.db")]
        rows = self.query(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND starts_with(tablename, 'streambind_staging_')"
        )
        return [r[0] for r in rows]

    def index_names(self) -> set[str]:
        if self.name == "sqlite":
            return {r[0] for r in self.query("SELECT name FROM sqlite_master WHERE type='index'")}
        rows = self.query("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
        return {r[0] for r in rows}


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each database the workflows support; pass ``**backend.settings`` to ``start``."""
    data_dir = tmp_path / "data"
    if request.param == "sqlite":
        yield Backend("sqlite", data_dir, settings={"data_dir": data_dir})
        return
    require_postgres()
    with fresh_schema() as schema:
        settings = {"data_dir": data_dir, "database_url": PG_URL, "database_schema": schema}
        yield Backend("postgresql", data_dir, schema, settings)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema name (the test skips without PostgreSQL)."""
    require_postgres()
    with fresh_schema() as schema:
        yield schema


def _postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


class PrivatePostgres:
    """A PostgreSQL cluster of a test's own (trust auth, loopback, a free port), which the
    test may stop, restart or kill without touching the shared server."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.data = workdir / "cluster"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._bin = {name: _postgres_bin(name) for name in ("initdb", "pg_ctl")}
        # PostgreSQL refuses to run as root: then it runs as the system's postgres user.
        self._user: tuple[int, int] | None = None
        if os.geteuid() == 0:
            import pwd

            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                entry = None
            self._user = None if entry is None else (entry.pw_uid, entry.pw_gid)

    def unavailable(self) -> str | None:
        missing = [name for name, path in self._bin.items() if path is None]
        if missing:
            return f"no private PostgreSQL: {', '.join(missing)} not found"
        if os.geteuid() == 0 and self._user is None:
            return "no private PostgreSQL: running as root and no postgres user to run it as"
        return None

    def _run(self, *args: str) -> None:
        user = self._user

        def demote() -> None:
            if user is not None:
                os.setgid(user[1])
                os.setuid(user[0])

        subprocess.run(
            args, check=True, capture_output=True, preexec_fn=demote, cwd=self.workdir, timeout=120
        )

    def start(self) -> PrivatePostgres:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            os.chown(self.workdir, *self._user)
        if not self.data.exists():
            self._run(str(self._bin["initdb"]), "-D", str(self.data), "-U", "postgres",
                      "--auth=trust", "--no-sync", "-E", "UTF8")  # fmt: skip
        self._pg_ctl("start", "-w", "-l", str(self.workdir / "log"))
        return self

    def _pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self._bin["pg_ctl"]), "-D", str(self.data), "-o", options, *args)

    def restart(self) -> None:
        """A fast restart: every connection is cut, as by a crash or an upgrade."""
        self._pg_ctl("restart", "-w", "-m", "fast", "-l", str(self.workdir / "log"))

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "-w", "-m", "immediate")


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of the test's own; the test skips, saying why, without one."""
    import tempfile

    # Not under pytest's tmp_path: the postgres user must be able to reach it.
    workdir = Path(tempfile.mkdtemp(prefix="sb-postgres-"))
    os.chmod(workdir, 0o755)
    cluster = PrivatePostgres(workdir / "pg")
    if (reason := cluster.unavailable()) is not None:
        print(reason)
        pytest.skip(reason)
    try:
        cluster.start()
    except (OSError, subprocess.SubprocessError) as exc:
        reason = f"no private PostgreSQL: it did not start: {exc}"
        print(reason)
        pytest.skip(reason)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
