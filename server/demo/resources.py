"""The demo's resources: its database (SQLite or PostgreSQL) and its exports folder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streambind.server import RunContext, resource
from streambind.server.database_url import redact_url
from streambind.server.resources import ResourceContext

from .backend import Database, DatabaseUnavailable
from .export_files import prune_exports
from .settings import DemoSettings
from .sqlite import SqliteDatabase, exports_dir, prepare_layout, tidy_up

__all__ = ["Exports", "database", "db", "exports"]


def _settings(context: ResourceContext) -> DemoSettings:
    options = context.options
    return options if isinstance(options, DemoSettings) else DemoSettings()


async def _health(opened: Database) -> dict[str, Any]:
    return await opened.health()


def _describe(opened: Database) -> str | None:
    return opened.description


@resource("database", health=_health, describe=_describe)
async def database(context: ResourceContext) -> AsyncIterator[Database]:
    """The ``people`` table's database, with the data directory laid out (``imports/``,
    ``exports/``, the sample CSV). Raises ``DatabaseUnavailable`` when PostgreSQL cannot
    be reached."""
    settings = _settings(context)
    data_dir = context.config.data_dir
    await asyncio.to_thread(prepare_layout, data_dir)
    opened: Database
    if settings.database_url is None:
        opened = await SqliteDatabase.open(data_dir)
    else:
        # Imported only when asked for, so a server without PostgreSQL never loads psycopg.
        from .postgres import PostgresDatabase

        opened = await PostgresDatabase.open(
            settings.database_url,
            settings.database_schema,
            import_time_limit=settings.import_time_limit,
            node_alive=context.node_alive,
        )
        opened.description = (
            f"database: {redact_url(settings.database_url)} (schema {settings.database_schema})"
        )
    try:
        yield opened
    finally:
        await opened.close()
        await asyncio.to_thread(tidy_up, data_dir)


@dataclass(frozen=True)
class Exports:
    """Where exports go, and how many (and how long) finished ones are kept."""

    folder: Path
    keep: int
    keep_seconds: float

    def prune(self) -> list[Path]:
        return prune_exports(self.folder, self.keep, self.keep_seconds)


@resource("exports")
async def exports(context: ResourceContext) -> AsyncIterator[Exports]:
    """The exports folder, pruned at start (and by ``export`` after each export)."""
    settings = _settings(context)
    folder = exports_dir(context.config.data_dir)
    kept = Exports(folder, settings.keep_exports, settings.keep_exports_seconds)
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(kept.prune)
    yield kept


def db(ctx: RunContext) -> Database:
    """The demo's database, as a workflow of the demo reaches it."""
    return ctx.resource(database)


__all__ += ["DatabaseUnavailable"]
