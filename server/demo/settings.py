"""The demo's own settings: its database, its imports' time limit, how long exports are kept.

``streambind serve`` makes them from ``--database``, ``--database-schema``,
``--import-time-limit``, ``--keep-exports`` and ``--keep-exports-for`` (and their environment
variables), and registers the demo with them: ``registry.add_module(demo, settings)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streambind.server.database_url import check_database_url

__all__ = ["DemoSettings"]


@dataclass(frozen=True)
class DemoSettings:
    #: A ``postgresql://`` URL, or None for the SQLite file in the data directory.
    database_url: str | None = field(default=None, repr=False)  # it may hold a password
    #: The PostgreSQL schema holding the tables (created on first use).
    database_schema: str = "public"
    #: Seconds an import may run at most. It is what lets a starting server tell that a
    #: PostgreSQL staging table whose owner it cannot ask about is abandoned.
    import_time_limit: float = 6 * 3600.0
    #: Finished export files kept: at most this many (the newest), for at most this long.
    keep_exports: int = 100
    keep_exports_seconds: float = 7 * 24 * 3600.0

    def __post_init__(self) -> None:
        if self.database_url is not None:
            check_database_url(self.database_url)
        if not self.database_schema or len(self.database_schema.encode()) > 63:
            raise ValueError("database_schema must be a PostgreSQL name of 1 to 63 bytes")
        if not self.import_time_limit > 0:
            raise ValueError("import_time_limit must be positive")
        if self.keep_exports < 1:
            raise ValueError("keep_exports must be at least 1")
        if not self.keep_exports_seconds > 0:
            raise ValueError("keep_exports_seconds must be positive")
