"""The built-in workflows' SQLite database: layout, schema, and imports that publish atomically.

SQLite lets one writer at a time into a file. An import therefore loads its
rows into a staging database of its own (``staging/<pid>/<run id>.db``), where it
blocks nobody however long it runs, and then publishes them into the main
database in one short transaction. Readers of the main database see all of an
import or none of it; a failure, a cancellation or a crash before publishing
leaves only a staging file, which is deleted (at the latest on the next start).

Staging files live in a folder per server process (``staging/<pid>/``), so a server
starting on a data directory that another live server uses never deletes that
server's imports in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from .backend import INDEXES, ExportRow, ReportFacts, Row
from .export_files import remove_abandoned_partials
from .processes import process_alive as _process_alive
from .threads import in_thread, in_thread_to_the_end

__all__ = [
    "COLUMNS",
    "SqliteDatabase",
    "StagedImport",
    "connect",
    "database_path",
    "exports_dir",
    "imports_dir",
    "prepare",
    "prepare_layout",
    "read_transaction",
]

#: The columns of the ``people`` table that an import fills, in CSV header order.
COLUMNS = ("name", "born", "birthplace")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS imports (
    run_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    rows INTEGER NOT NULL,
    imported_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES imports(run_id),
    name TEXT NOT NULL,
    born INTEGER,
    birthplace TEXT
);
"""
_STAGING_SCHEMA = "CREATE TABLE people (name TEXT NOT NULL, born INTEGER, birthplace TEXT)"
SAMPLE_CSV = "presidents.csv"


def database_path(data_dir: Path) -> Path:
    return data_dir / "streambind.db"


def imports_dir(data_dir: Path) -> Path:
    return data_dir / "imports"


def exports_dir(data_dir: Path) -> Path:
    return data_dir / "exports"


def _staging_dir(data_dir: Path) -> Path:
    return data_dir / "staging" / str(os.getpid())


# Staging folders this process created: a folder named after our pid that is not
# in here was left by an earlier process that happened to have the same pid.
_created_here: set[Path] = set()


def _remove_abandoned_staging(data_dir: Path) -> None:
    """Delete the staging folders of server processes that no longer run (a crash)."""
    root = data_dir / "staging"
    root.mkdir(exist_ok=True)
    ours = _staging_dir(data_dir).resolve()
    for entry in root.iterdir():
        if entry.resolve() == ours:
            if ours in _created_here:
                continue
        elif entry.name.isdigit() and _process_alive(int(entry.name)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    ours.mkdir(exist_ok=True)
    _created_here.add(ours)


def tidy_up(data_dir: Path) -> None:
    """At a clean shutdown: remove this process's staging folder if no import is left in it.

    Another server in this process on the same data directory may still use it later:
    ``StagedImport`` creates the folder again when it is gone.
    """
    ours = _staging_dir(data_dir)
    with contextlib.suppress(OSError):  # not empty, or already gone
        ours.rmdir()


def prepare(data_dir: Path) -> None:
    """Create the data directory's layout and schema; drop staging files a crash left behind."""
    prepare_layout(data_dir)
    _remove_abandoned_staging(data_dir)
    with contextlib.closing(connect(data_dir)) as db:
        db.executescript(_SCHEMA)


def prepare_layout(data_dir: Path) -> None:
    """The folders every backend uses (imports/, exports/), the sample CSV; no stale exports."""
    for d in (data_dir, imports_dir(data_dir), exports_dir(data_dir)):
        d.mkdir(parents=True, exist_ok=True)
    remove_abandoned_partials(exports_dir(data_dir))
    sample = imports_dir(data_dir) / SAMPLE_CSV
    if not sample.exists():
        # Seeded so that the import folder shows the expected CSV format by example.
        source = resources.files(__package__).joinpath("data", SAMPLE_CSV)
        sample.write_bytes(source.read_bytes())


def connect(data_dir: Path) -> sqlite3.Connection:
    """A connection to the main database in autocommit mode (transactions are explicit)."""
    db = sqlite3.connect(
        database_path(data_dir), isolation_level=None, check_same_thread=False, timeout=30
    )
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


@contextlib.contextmanager
def read_transaction(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """A connection holding one consistent snapshot of the main database."""
    with contextlib.closing(connect(data_dir)) as db:
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("ROLLBACK")


class StagedImport:
    """Rows of one import, staged apart from the main database until ``publish``.

    Its methods block; workflows call them through ``asyncio.to_thread``, one at a time.
    """

    def __init__(self, data_dir: Path, run_id: str) -> None:
        self._data_dir = data_dir
        self.run_id = run_id
        self.path = _staging_dir(data_dir) / f"{run_id}.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # Nobody reads the staging file until publish, so it needs no durability.
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(_STAGING_SCHEMA)
        self._db.execute("BEGIN")
        self.rows = 0

    def add(self, rows: Iterable[Row]) -> int:
        before = self._db.total_changes
        self._db.executemany("INSERT INTO people VALUES (?, ?, ?)", rows)
        added = self._db.total_changes - before
        self.rows += added
        return added

    def publish(self, source: str) -> int:
        """Move every staged row into the main database in one transaction."""
        self._db.execute("COMMIT")
        self._db.close()
        with contextlib.closing(connect(self._data_dir)) as db:
            db.execute("ATTACH DATABASE ? AS staged", (str(self.path),))
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.execute(
                        "INSERT INTO imports VALUES (?, ?, ?, ?)",
                        (self.run_id, source, self.rows, _now()),
                    )
                    db.execute(
                        "INSERT INTO people (run_id, name, born, birthplace) "
                        "SELECT ?, name, born, birthplace FROM staged.people ORDER BY rowid",
                        (self.run_id,),
                    )
                    db.execute("COMMIT")
                except BaseException:
                    # A write that fails for lack of room (or any I/O error) makes
                    # SQLite roll the transaction back itself; a ROLLBACK then would
                    # fail and hide that error behind "no transaction is active".
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            finally:
                db.execute("DETACH DATABASE staged")
        self.path.unlink(missing_ok=True)
        return self.rows

    def discard(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self.path.unlink(missing_ok=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SqliteDatabase:
    """The ``Database`` interface over the SQLite file in the data directory."""

    backend = "sqlite"
    description: str | None = None

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    @classmethod
    async def open(cls, data_dir: Path) -> SqliteDatabase:
        await asyncio.to_thread(prepare, data_dir)
        return cls(data_dir)

    async def stage(self, run_id: str) -> _SqliteStaging:
        return _SqliteStaging(await in_thread(StagedImport, self.data_dir, run_id))

    @contextlib.asynccontextmanager
    async def export_rows(self, run_id: str) -> AsyncIterator[_SqliteExport]:
        with read_transaction(self.data_dir) as db:
            where, args = ("WHERE run_id = ?", (run_id,)) if run_id else ("", ())
            (total,) = await in_thread(
                lambda: db.execute(f"SELECT COUNT(*) FROM people {where}", args).fetchone()
            )
            cursor = await in_thread(
                db.execute,
                f"SELECT id, run_id, name, born, birthplace FROM people {where} ORDER BY id",
                args,
            )
            yield _SqliteExport(total, cursor)

    async def report_facts(self) -> ReportFacts:
        return await in_thread(_report_facts, self.data_dir)

    async def counts(self) -> tuple[int, int]:
        return await in_thread(_counts, self.data_dir)

    async def create_indexes(self) -> AsyncIterator[str]:
        for name, column in INDEXES:
            # Names from the fixed INDEXES table, never from a request.
            sql = f"CREATE INDEX IF NOT EXISTS {name} ON people({column})"
            await in_thread(_execute, self.data_dir, sql)
            yield name

    async def health(self) -> dict[str, Any]:
        return {"backend": self.backend, "ok": True}

    async def close(self) -> None:
        pass  # every operation opens and closes its own connection


class _SqliteStaging:
    def __init__(self, staged: StagedImport) -> None:
        self._staged = staged

    @property
    def rows(self) -> int:
        return self._staged.rows

    def encode(self, rows: Sequence[Row]) -> Sequence[Row]:
        return rows  # sqlite3 takes the rows as they are

    async def add(self, batch: Sequence[Row]) -> int:
        return await in_thread(self._staged.add, batch)

    async def publish(self, source: str) -> int:
        return await in_thread_to_the_end(self._staged.publish, source)

    async def discard(self) -> None:
        self._staged.discard()


class _SqliteExport:
    def __init__(self, total: int, cursor: sqlite3.Cursor) -> None:
        self.total = total
        self._cursor = cursor

    async def batches(self, size: int) -> AsyncIterator[list[ExportRow]]:
        while rows := await in_thread(self._cursor.fetchmany, size):
            yield rows


def _execute(data_dir: Path, sql: str) -> None:
    with contextlib.closing(connect(data_dir)) as db:
        db.execute(sql)


def _counts(data_dir: Path) -> tuple[int, int]:
    with read_transaction(data_dir) as db:
        (people,) = db.execute("SELECT COUNT(*) FROM people").fetchone()
        (imports,) = db.execute("SELECT COUNT(*) FROM imports").fetchone()
    return people, imports


def _report_facts(data_dir: Path) -> ReportFacts:
    with read_transaction(data_dir) as db:
        (people,) = db.execute("SELECT COUNT(*) FROM people").fetchone()
        (imports,) = db.execute("SELECT COUNT(*) FROM imports").fetchone()
        latest = db.execute(
            "SELECT source, rows, imported_at FROM imports ORDER BY imported_at DESC, rowid DESC"
        ).fetchone()
        earliest_born, latest_born, mean_born = db.execute(
            "SELECT MIN(born), MAX(born), AVG(born) FROM people WHERE born IS NOT NULL"
        ).fetchone()
        places = db.execute(
            "SELECT birthplace, COUNT(*) AS n FROM people WHERE birthplace IS NOT NULL "
            "GROUP BY birthplace ORDER BY n DESC, birthplace LIMIT 3"
        ).fetchall()
        (distinct_names,) = db.execute("SELECT COUNT(DISTINCT name) FROM people").fetchone()
        oldest = None
        if earliest_born is not None:
            oldest = db.execute(
                "SELECT name FROM people WHERE born = ? ORDER BY id LIMIT 1", (earliest_born,)
            ).fetchone()[0]
    return ReportFacts(
        people=people,
        imports=imports,
        distinct_names=distinct_names,
        latest=tuple(latest) if latest else None,
        earliest_born=earliest_born,
        latest_born=latest_born,
        mean_born=mean_born,
        oldest=oldest,
        places=[tuple(p) for p in places],
    )
