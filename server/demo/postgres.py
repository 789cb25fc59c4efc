"""The workflows' database on PostgreSQL: COPY into a staging table per run, then publish.

An import ``COPY``s its rows into an unlogged table of its own
(``streambind_staging_<run id>``), batch by batch, through a small connection
pool; publishing is one short transaction (record the import, ``INSERT … SELECT``
its rows into ``people``, drop the staging table). Readers therefore see all of
an import or none of it, and a failure, cancellation or crash before the commit
leaves no row in ``people``, only a staging table.

The publish is the one part of an import nothing overlaps, so it does as little
as it can: each staged row carries its position (``seq``, numbered by the server),
and the import's ids are drawn from ``people``'s sequence as one block just before
it, so ``INSERT … SELECT`` neither sorts nor calls ``nextval`` per row.

Each staging table's comment names the server process that owns it and when it
was made. A server starting up drops a leftover staging table only when its owner
is surely gone: the ``node_alive`` hook says so, or (when it cannot tell) the table
is older than the longest an import may run, which imports enforce on themselves.
So one server's start-up never drops another live server's import in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import psycopg
import psycopg_pool
from psycopg import sql

from streambind.server.node import PID_SPACE, PROCESS_ID, ended_here

from .backend import INDEXES, DatabaseUnavailable, ExportRow, NodeAlive, ReportFacts, Row, scrub
from .copy_text import copy_text
from .threads import whole, whole_to_the_end

__all__ = ["PROCESS_ID", "STAGING_PREFIX", "ImportTooLong", "PostgresDatabase", "staging_owner"]

log = logging.getLogger("streambind.server.database")

STAGING_PREFIX = "streambind_staging_"

_POOL_MAX = 8
_CONNECT_TIMEOUT_S = 5
_HEALTH_TIMEOUT_S = 3.0


class ImportTooLong(RuntimeError):
    """An import ran past the longest allowed; its staging table may be cleaned up by now."""


class PostgresDatabase:
    """The ``Database`` interface over a PostgreSQL schema, through psycopg 3's async pool."""

    backend = "postgresql"
    description: str | None = None

    def __init__(
        self,
        pool: psycopg_pool.AsyncConnectionPool,
        url: str,
        schema: str,
        limit: float,
        id_sequence: str | None = None,
    ) -> None:
        self.pool = pool
        self.schema = schema
        self.import_time_limit = limit
        self._url = url
        #: ``people.id``'s sequence when this role may draw blocks of ids from it.
        self.id_sequence = id_sequence

    @classmethod
    async def open(
        cls,
        url: str,
        schema: str = "public",
        *,
        import_time_limit: float,
        node_alive: NodeAlive | None = None,
    ) -> PostgresDatabase:
        """Connect, create the schema on first use, drop dead runs' staging tables, open a pool."""
        try:
            # One plain connection first: when the server cannot be reached, its error
            # says why (a pool would only time out).
            conn = await psycopg.AsyncConnection.connect(
                url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S
            )
        except psycopg.Error as exc:
            raise DatabaseUnavailable(
                "cannot connect to the database: " + scrub(_first_line(exc), url)
            ) from None
        try:
            async with conn:
                await _create_schema(conn, schema)
                await _drop_dead_staging(conn, schema, import_time_limit, node_alive)
                id_sequence = await _id_sequence(conn, schema)
        except psycopg.Error as exc:
            raise DatabaseUnavailable(
                f"cannot prepare the database schema {schema!r}: " + scrub(_first_line(exc), url)
            ) from None
        pool = psycopg_pool.AsyncConnectionPool(
            url,
            min_size=1,
            max_size=_POOL_MAX,
            kwargs={"autocommit": True, "connect_timeout": _CONNECT_TIMEOUT_S},
            check=(check := _PoolCheck()),
            open=False,
            name="streambind",
        )
        check.pool = pool
        await pool.open()
        return cls(pool, url, schema, import_time_limit, id_sequence)

    def _table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """A lost or unreachable database becomes one readable DatabaseUnavailable."""
        try:
            yield
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise DatabaseUnavailable(
                "the database connection was lost: " + scrub(_first_line(exc), self._url)
            ) from None
        except psycopg_pool.PoolTimeout:
            raise DatabaseUnavailable(
                "the database cannot be reached: no connection could be made in time"
            ) from None

    async def stage(self, run_id: str) -> _PostgresStaging:
        staging = _PostgresStaging(self, run_id)
        with self._errors():
            await whole(staging.create())
        return staging

    @contextlib.asynccontextmanager
    async def export_rows(self, run_id: str) -> AsyncIterator[_PostgresExport]:
        people = self._table("people")
        where: sql.Composable = sql.SQL("")
        if "\0" in run_id:
            # No text value holds NUL (PostgreSQL refuses one even to compare): no import
            # has that id, as SQLite answers.
            where = sql.SQL("WHERE false")
        elif run_id:
            where = sql.SQL("WHERE run_id = {}").format(sql.Literal(run_id))
        with self._errors():
            async with self.pool.connection() as conn, conn.transaction():
                # COUNT and COPY read one snapshot, as a reader of the file expects.
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cur = await conn.execute(
                    sql.SQL("SELECT count(*) FROM {} {}").format(people, where)
                )
                (total,) = await cur.fetchone()  # type: ignore[misc]
                query = sql.SQL(
                    "COPY (SELECT id, run_id, name, born, birthplace FROM {} {} ORDER BY id) "
                    "TO STDOUT"
                ).format(people, where)
                yield _PostgresExport(conn, total, query)

    async def report_facts(self) -> ReportFacts:
        people = self._table("people")
        imports = self._table("imports")
        with self._errors():
            async with self.pool.connection() as conn, conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")

                async def one(query: sql.Composed | sql.SQL, *args: Any) -> Any:
                    return await (await conn.execute(query, args)).fetchone()

                (n_people, n_names) = await one(
                    sql.SQL("SELECT count(*), count(DISTINCT name) FROM {}").format(people)
                )
                (n_imports,) = await one(sql.SQL("SELECT count(*) FROM {}").format(imports))
                latest = await one(
                    sql.SQL(
                        "SELECT source, rows, imported_at FROM {} ORDER BY imported_at DESC, "
                        "seq DESC LIMIT 1"
                    ).format(imports)
                )
                earliest, last, mean = await one(
                    sql.SQL(
                        "SELECT min(born), max(born), avg(born) FROM {} WHERE born IS NOT NULL"
                    ).format(people)
                )
                cur = await conn.execute(
                    sql.SQL(
                        "SELECT birthplace, count(*) AS n FROM {} WHERE birthplace IS NOT NULL "
                        "GROUP BY birthplace ORDER BY n DESC, birthplace LIMIT 3"
                    ).format(people)
                )
                places = [(place, n) for place, n in await cur.fetchall()]
                oldest = None
                if earliest is not None:
                    (oldest,) = await one(
                        sql.SQL("SELECT name FROM {} WHERE born = %s ORDER BY id LIMIT 1").format(
                            people
                        ),
                        earliest,
                    )
        return ReportFacts(
            people=n_people,
            imports=n_imports,
            distinct_names=n_names,
            latest=(
                (latest[0], latest[1], latest[2].astimezone(UTC).isoformat(timespec="seconds"))
                if latest
                else None
            ),
            earliest_born=earliest,
            latest_born=last,
            mean_born=float(mean) if mean is not None else None,
            oldest=oldest,
            places=places,
        )

    async def counts(self) -> tuple[int, int]:
        with self._errors():
            async with self.pool.connection() as conn, conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cur = await conn.execute(
                    sql.SQL("SELECT (SELECT count(*) FROM {}), (SELECT count(*) FROM {})").format(
                        self._table("people"), self._table("imports")
                    )
                )
                people, imports = await cur.fetchone()  # type: ignore[misc]
        return people, imports

    async def create_indexes(self) -> AsyncIterator[str]:
        for name, column in INDEXES:
            with self._errors():
                await whole(self._create_index(name, column))
            yield name

    async def _create_index(self, name: str, column: str) -> None:
        # CONCURRENTLY: imports keep publishing while the index is built. It cannot
        # run in a transaction; the pool's connections are in autocommit mode.
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s",
                (self.schema, name),
            )
            found = await cur.fetchone()
            if found is not None and not found[0]:
                # A build interrupted by a crash leaves an invalid index behind.
                await conn.execute(
                    sql.SQL("REINDEX INDEX CONCURRENTLY {}").format(self._table(name))
                )
                return
            # Another server may build the same index at the same moment.
            with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
                await conn.execute(
                    sql.SQL("CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} ({})").format(
                        sql.Identifier(name), self._table("people"), sql.Identifier(column)
                    )
                )

    async def health(self) -> dict[str, Any]:
        try:
            with self._errors():
                async with self.pool.connection(timeout=_HEALTH_TIMEOUT_S) as conn:
                    await conn.execute("SELECT 1")
        except DatabaseUnavailable as exc:
            return {"backend": self.backend, "ok": False, "error": str(exc)}
        return {"backend": self.backend, "ok": True}

    async def close(self) -> None:
        await self.pool.close()


class _PoolCheck:
    """Each connection is checked (an empty query) before the pool hands it out.

    After PostgreSQL restarts every pooled connection is dead: without the check the
    next runs, as many as the pool holds, would each fail on one. The pool tries its
    connections one by one, waiting longer after each dead one (a second, then two, …),
    so once one is found dead the others idle beside it are checked at once
    (``pool.check()``), and the next try finds a fresh one.
    """

    def __init__(self) -> None:
        self.pool: psycopg_pool.AsyncConnectionPool | None = None
        self._sweep: asyncio.Task[None] | None = None

    async def __call__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        try:
            await psycopg_pool.AsyncConnectionPool.check_connection(conn)
        except psycopg.Error:
            if self.pool is not None and (self._sweep is None or self._sweep.done()):
                self._sweep = asyncio.get_running_loop().create_task(self._check_all(self.pool))
            raise

    @staticmethod
    async def _check_all(pool: psycopg_pool.AsyncConnectionPool) -> None:
        # The pool may close meanwhile (shutdown); a failure here only leaves the pool
        # to find its dead connections one by one, as it would anyway.
        with contextlib.suppress(psycopg.Error, psycopg_pool.PoolClosed):
            await pool.check()


@dataclass(frozen=True)
class _CopyBatch:
    """A batch as ``COPY`` text: its rows, numbered in the import (``seq``)."""

    rows: int
    data: bytes


class _PostgresStaging:
    """One import's rows in ``streambind_staging_<run id>``, COPYed batch by batch."""

    def __init__(self, db: PostgresDatabase, run_id: str) -> None:
        self._db = db
        self.run_id = run_id
        self.table = db._table(STAGING_PREFIX + run_id)
        self.created = time.time()
        self.rows = 0
        self._encoded = 0  # rows numbered by encode, which runs ahead of add

    async def create(self) -> None:
        owner = json.dumps({"node": PROCESS_ID, "created": self.created, "pids": PID_SPACE})
        async with self._db.pool.connection() as conn, conn.transaction():
            # Table and comment in one transaction: no staging table exists without
            # the owner and age that start-up clean-up needs. ``seq`` is the row's
            # position in the import, written by the server with the row.
            await conn.execute(
                sql.SQL(
                    "CREATE UNLOGGED TABLE {} (seq bigint NOT NULL, "
                    "name text NOT NULL, born bigint, birthplace text)"
                ).format(self.table)
            )
            await conn.execute(
                sql.SQL("COMMENT ON TABLE {} IS {}").format(self.table, sql.Literal(owner))
            )

    def _check_age(self) -> None:
        limit = self._db.import_time_limit
        if time.time() - self.created > limit:
            raise ImportTooLong(
                f"the import ran longer than the longest allowed ({limit:g} s), after which "
                "a starting server may remove its staged rows; nothing was published"
            )

    def encode(self, rows: Sequence[Row]) -> _CopyBatch:
        data = copy_text(rows, self._encoded + 1)
        self._encoded += len(rows)
        return _CopyBatch(len(rows), data)

    async def add(self, batch: _CopyBatch) -> int:
        self._check_age()
        with self._db._errors():
            await whole(self._copy(batch.data))
        self.rows += batch.rows
        return batch.rows

    async def _copy(self, data: bytes) -> None:
        async with self._db.pool.connection() as conn, conn.cursor() as cur:
            statement = sql.SQL("COPY {} (seq, name, born, birthplace) FROM STDIN").format(
                self.table
            )
            async with cur.copy(statement) as copy:
                await copy.write(data)

    async def publish(self, source: str) -> int:
        self._check_age()
        with self._db._errors():
            return await whole_to_the_end(self._publish(source))

    async def _publish(self, source: str) -> int:
        people, imports = self._db._table("people"), self._db._table("imports")
        async with self._db.pool.connection() as conn:
            first_id = await self._reserve_ids(conn)
            async with conn.transaction():
                # A large INSERT … SELECT passes jit_above_cost, yet its expressions are
                # too simple for compiling them to pay: about 0.1 s of a million rows.
                await conn.execute("SET LOCAL jit = off")
                await conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (run_id, source, rows, imported_at) "
                        "VALUES (%s, %s, %s, now())"
                    ).format(imports),
                    (self.run_id, source, self.rows),
                )
                if first_id is not None:
                    # Ids in the rows' order without sorting them: row seq gets
                    # first_id + seq - 1 (seq counts from 1 with no gap).
                    await conn.execute(
                        sql.SQL(
                            "INSERT INTO {} (id, run_id, name, born, birthplace) "
                            "OVERRIDING SYSTEM VALUE "
                            "SELECT %s::bigint + seq, %s, name, born, birthplace FROM {}"
                        ).format(people, self.table),
                        (first_id - 1, self.run_id),
                    )
                else:
                    # Without the right to draw ids in a block: one nextval per row, in
                    # the rows' order, sorted in memory rather than on disk.
                    await conn.execute("SET LOCAL work_mem = '128MB'")
                    await conn.execute(
                        sql.SQL(
                            "INSERT INTO {} (run_id, name, born, birthplace) "
                            "SELECT %s, name, born, birthplace FROM {} ORDER BY seq"
                        ).format(people, self.table),
                        (self.run_id,),
                    )
                await conn.execute(sql.SQL("DROP TABLE {}").format(self.table))
        return self.rows

    async def _reserve_ids(self, conn: psycopg.AsyncConnection[Any]) -> int | None:
        """The first of ``rows`` consecutive ids drawn for this import, or None when not drawn.

        Committed before the publish starts (a sequence is not transactional anyway):
        a publish that then fails leaves a gap in ``people.id``, as any rolled-back
        insert does. The lock makes this server's and other servers' draws take turns,
        since ``setval(nextval() + n)`` is two steps; it is held for two statements.
        Anything else drawing ids one at a time (an insert by hand, a server of an
        earlier version publishing) in the microseconds between those steps could take
        an id of the block: the publish then fails on the primary key and publishes
        nothing.
        """
        sequence = self._db.id_sequence
        if sequence is None or self.rows == 0:
            return None
        async with conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", ("streambind:ids:" + sequence,)
            )
            cur = await conn.execute(
                "SELECT setval(%s::regclass, nextval(%s::regclass) + %s - 1)",
                (sequence, sequence, self.rows),
            )
            (last,) = await cur.fetchone()  # type: ignore[misc]
        return int(last) - self.rows + 1

    async def discard(self) -> None:
        try:
            with self._db._errors():
                async with self._db.pool.connection(timeout=_HEALTH_TIMEOUT_S) as conn:
                    await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self.table))
        except (DatabaseUnavailable, psycopg.Error) as exc:
            # Left for a later start-up, which drops it once its owner is surely gone.
            log.warning("could not drop staging table of run %s: %s", self.run_id, exc)


class _PostgresExport:
    def __init__(self, conn: psycopg.AsyncConnection[Any], total: int, query: sql.Composed) -> None:
        self._conn = conn
        self.total = total
        self._query = query

    async def batches(self, size: int) -> AsyncIterator[list[ExportRow]]:
        async with self._conn.cursor() as cur, cur.copy(self._query) as copy:
            copy.set_types(["int8", "text", "text", "int8", "text"])
            batch: list[ExportRow] = []
            async for row in copy.rows():
                batch.append(row)
                if len(batch) >= size:
                    yield batch
                    batch = []
            if batch:
                yield batch


async def _create_schema(conn: psycopg.AsyncConnection[Any], schema: str) -> None:
    s = sql.Identifier(schema)
    async with conn.transaction():
        # Two servers starting at once on a new schema would race on CREATE … IF NOT
        # EXISTS (it is not atomic); a lock per schema makes them take turns.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("streambind:" + schema,))
        # Only when it is missing: CREATE SCHEMA IF NOT EXISTS asks for CREATE on the
        # database even when the schema exists, which a DBA's role need not have.
        cur = await conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        if await cur.fetchone() is None:
            await conn.execute(sql.SQL("CREATE SCHEMA {}").format(s))
        await conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                "run_id text PRIMARY KEY, source text NOT NULL, rows bigint NOT NULL, "
                "imported_at timestamptz NOT NULL, "
                "seq bigint GENERATED ALWAYS AS IDENTITY)"
            ).format(sql.Identifier(schema, "imports"))
        )
        await conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                # No foreign key to imports: publish writes an import's record and its
                # rows in one transaction, and a per-row check would double its time.
                "run_id text NOT NULL, "
                "name text NOT NULL, born bigint, birthplace text)"
            ).format(sql.Identifier(schema, "people"))
        )


async def _id_sequence(conn: psycopg.AsyncConnection[Any], schema: str) -> str | None:
    """``people.id``'s sequence, if this role may draw ids from it in blocks (``setval``).

    A role given only rights on the tables (see the README's SQL for a DBA) may not;
    its imports then draw one id per row, which is slower but the same otherwise. So
    do imports on a sequence that does not count up by one, where a block drawn as
    ``setval(nextval() + n - 1)`` would not be the next ``n`` ids.
    """
    cur = await conn.execute(
        "SELECT s.seq, has_sequence_privilege(s.seq, 'UPDATE') AND q.seqincrement = 1 "
        "FROM (SELECT pg_get_serial_sequence(quote_ident(%s) || '.people', 'id') AS seq) s "
        "JOIN pg_sequence q ON q.seqrelid = s.seq::regclass",
        (schema,),
    )
    found = await cur.fetchone()
    if found is None or not found[1]:
        return None
    return str(found[0])


def staging_owner(comment: str | None) -> tuple[str, float, str | None] | None:
    """The owning process, creation time and pid space (``node.PID_SPACE``, when recorded)
    a staging table's comment names, if it names them."""
    try:
        owner = json.loads(comment or "")
        pids = owner.get("pids")
        return str(owner["node"]), float(owner["created"]), pids if isinstance(pids, str) else None
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


async def _drop_dead_staging(
    conn: psycopg.AsyncConnection[Any], schema: str, limit: float, node_alive: NodeAlive | None
) -> None:
    cur = await conn.execute(
        "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind = 'r' AND starts_with(c.relname, %s)",
        (schema, STAGING_PREFIX),
    )
    for name, comment in await cur.fetchall():
        owner = staging_owner(comment)
        if owner is None:
            log.warning("staging table %s.%s names no owner; left alone", schema, name)
            continue
        node, created, pids = owner
        if ended_here(node, pids):
            # An earlier process of this host (a crash, a restart): its pid is gone.
            alive: bool | None = False
        else:
            alive = node_alive(node) if node_alive is not None else None
        age = time.time() - created
        if alive is True or (alive is None and age <= limit):
            continue
        why = "its process is gone" if alive is False else f"older than {limit:g} s"
        await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(schema, name)))
        log.info("dropped staging table %s.%s of %s (%s)", schema, name, node, why)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
