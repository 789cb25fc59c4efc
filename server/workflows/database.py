"""The workflows' database: one interface, a SQLite file or a PostgreSQL server behind it.

Workflows reach the open database as ``ctx.database``. Both backends promise the
same things: an import's rows are staged apart and published in one short
transaction (readers see all of an import or none of it), a failed or cancelled
import leaves no row, and what a crash leaves behind is removed at a later start
only when its owner is surely gone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "INDEXES",
    "Database",
    "DatabaseUnavailable",
    "ExportRows",
    "NodeAlive",
    "ReportFacts",
    "Staging",
    "check_database_url",
    "open_database",
    "redact_url",
    "scrub",
]

Row = tuple[str, int | None, str | None]
#: One exported row: id, import id, name, born, birthplace.
ExportRow = tuple[int, str, str, int | None, str | None]

#: Asked at start-up about the server node that owns a leftover staging table:
#: True (it runs: keep the table), False (it is surely gone: drop it) or None (cannot
#: tell: drop the table only if it is older than the longest allowed import). The run
#: store's heartbeats plug in here; without one every answer is None.
NodeAlive = Callable[[str], bool | None]

_POSTGRES_SCHEMES = ("postgresql", "postgres")

#: The ``people`` table's indexes (name, column) that ``pipeline`` builds, on either backend.
INDEXES = (("people_name", "name"), ("people_run_id", "run_id"), ("people_born", "born"))


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or was lost; the message never holds a password."""


class Staging(Protocol):
    """One import's rows, kept apart from the ``people`` table until ``publish``."""

    rows: int

    async def add(self, rows: Sequence[Row]) -> int:
        """Stage one batch; return how many rows it added. Cancellation-safe."""

    async def publish(self, source: str) -> int:
        """Move every staged row into ``people`` in one transaction (a point of no return)."""

    async def discard(self) -> None:
        """Throw the staged rows away; never raises."""


@dataclass(frozen=True)
class ReportFacts:
    """What ``write-text`` says about the ``people`` table, read from one snapshot."""

    people: int
    imports: int
    distinct_names: int
    latest: tuple[str, int, str] | None  # source, rows, imported_at
    earliest_born: int | None
    latest_born: int | None
    mean_born: float | None
    oldest: str | None
    places: list[tuple[str, int]]


class ExportRows(Protocol):
    """An export's rows from one snapshot: ``total`` first, then the rows in id order."""

    total: int

    def batches(self, size: int) -> AsyncIterator[list[ExportRow]]: ...


class Database(Protocol):
    #: "sqlite" or "postgresql", for /healthz and messages.
    backend: str

    async def stage(self, run_id: str) -> Staging: ...

    def export_rows(self, run_id: str) -> Any:
        """An async context manager giving ``ExportRows`` (all rows, or one import's)."""

    async def report_facts(self) -> ReportFacts: ...

    async def counts(self) -> tuple[int, int]:
        """Rows in ``people`` and published imports."""

    def create_indexes(self) -> AsyncIterator[str]:
        """Build the ``people`` table's indexes, yielding each name once it is built."""

    async def health(self) -> dict[str, Any]:
        """``{"backend", "ok"}`` and, when not ok, a readable ``error``."""

    async def close(self) -> None: ...


def check_database_url(url: str) -> None:
    """Raise ValueError (with the password hidden) unless ``url`` is a PostgreSQL URL."""
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    if scheme not in _POSTGRES_SCHEMES:
        raise ValueError(
            f"--database must be a postgresql:// URL (got {redact_url(url)!r}); "
            "without --database the SQLite file in the data directory is used"
        )


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "(an unparsable URL)"
    if not password:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def scrub(message: str, url: str | None) -> str:
    """``message`` with the password of ``url`` (and the URL itself) never in it."""
    if not url:
        return message
    message = message.replace(url, redact_url(url))
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        message = message.replace(password, "***")
    return message


async def open_database(
    data_dir: Path,
    url: str | None,
    schema: str = "public",
    import_time_limit: float = 6 * 3600,
    node_alive: NodeAlive | None = None,
) -> Database:
    """Open (and on first use create) the workflows' database; clean up after dead runs.

    Without ``url`` it is the SQLite file in ``data_dir``. Raises DatabaseUnavailable
    when PostgreSQL cannot be reached.
    """
    if url is None:
        from .store import SqliteDatabase

        return await SqliteDatabase.open(data_dir)
    check_database_url(url)
    from .postgres import PostgresDatabase

    return await PostgresDatabase.open(
        url, schema, import_time_limit=import_time_limit, node_alive=node_alive
    )
