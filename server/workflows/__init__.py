"""The built-in workflows, in the order ``GET /api/endpoints`` lists them, and their database."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..database import Database
from . import demo, export, importing, report
from .export_files import prune_exports
from .store import SqliteDatabase, exports_dir, prepare_layout, tidy_up

if TYPE_CHECKING:
    from ..config import ServerConfig

__all__ = [
    "BUILTIN_MODULES",
    "database_health",
    "exports_dir",
    "open_database",
    "prune_exports",
    "tidy_up",
]

BUILTIN_MODULES = (importing, export, report, demo)


async def open_database(config: ServerConfig) -> Database:
    """Lay out the data directory and open the database the settings name.

    Raises ``database.DatabaseUnavailable`` when PostgreSQL cannot be reached.
    """
    await asyncio.to_thread(prepare_layout, config.data_dir)
    if config.database_url is None:
        return await SqliteDatabase.open(config.data_dir)
    # Imported only when asked for, so a server without PostgreSQL never loads psycopg.
    from .postgres import PostgresDatabase

    return await PostgresDatabase.open(
        config.database_url,
        config.database_schema,
        import_time_limit=config.import_time_limit,
        node_alive=config.node_alive,
    )


async def database_health(database: Database | None) -> dict[str, Any]:
    if database is None:
        return {"ok": False, "error": "the database is not open"}
    return await database.health()
