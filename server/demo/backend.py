"""The workflows' database: one interface, a SQLite file or a PostgreSQL server behind it.

The demo's workflows reach the open database as ``ctx.resource(database)``
(``resources.db(ctx)``). Both backends promise the
same things: an import's rows are staged apart and published in one short
transaction (readers see all of an import or none of it), a failed or cancelled
import leaves no row, and what a crash leaves behind is removed at a later start
only when its owner is surely gone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from streambind.server.database_url import passwords_in, redact_url
from streambind.server.node import NodeAlive
from streambind.server.resources import ResourceUnavailable

__all__ = [
    "INDEXES",
    "Database",
    "DatabaseUnavailable",
    "ExportRows",
    "NodeAlive",
    "ReportFacts",
    "Staging",
    "scrub",
]

Row = tuple[str, int | None, str | None]
#: A batch of rows in the form one backend's ``Staging.add`` stores (``Staging.encode``'s).
EncodedBatch = Any
#: One exported row: id, import id, name, born, birthplace.
ExportRow = tuple[int, str, str, int | None, str | None]


#: The ``people`` table's indexes (name, column) that ``pipeline`` builds, on either backend.
INDEXES = (("people_name", "name"), ("people_run_id", "run_id"), ("people_born", "born"))


class DatabaseUnavailable(ResourceUnavailable):
    """The database cannot be reached or was lost; the message never holds a password."""


class Staging(Protocol):
    """One import's rows, kept apart from the ``people`` table until ``publish``."""

    @property
    def rows(self) -> int:
        """How many rows are staged so far."""

    def encode(self, rows: Sequence[Row]) -> EncodedBatch:
        """One batch in the form ``add`` takes. Blocking work, run in a worker thread.

        Called once per batch, in order, ahead of ``add``: an import encodes the next
        batch while the current one is being stored.
        """

    async def add(self, batch: EncodedBatch) -> int:
        """Stage one encoded batch; return how many rows it added. Cancellation-safe."""

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
    #: What ``serve`` says of it at start-up (None: nothing).
    description: str | None

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


def scrub(message: str, url: str | None) -> str:
    """``message`` with the password of ``url`` (and any other it quotes) never in it."""
    message = redact_url(message)
    for password in passwords_in(url or ""):
        message = message.replace(password, "***")
    return message
