"""The workflows' database: imports all-or-nothing under load on each backend, and PostgreSQL's own
promises (crash leftovers, several servers on one database, a lost database, no credential shown).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import random
import secrets
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cutter import CuttingProxy
from databases import PG_URL, Backend
from polling import run_record, wait_for
from test_cli_serve import _serve, open_slow_imports
from wire import Event, events, split_events

from streambind.server import ServerConfig
from streambind.server.database_url import passwords_in, redact_url
from streambind.server.demo import DemoSettings
from streambind.server.demo import database as demo_database
from streambind.server.demo.backend import scrub
from streambind.server.node import PID_SPACE
from streambind.server.resources import ResourceContext

TESTS = Path(__file__).parent
IMPORTS = 20


async def test_readers_see_all_of_an_import_or_none_while_half_of_20_imports_are_cancelled(
    start,  # type: ignore[no-untyped-def]
    backend: Backend,
) -> None:
    server = await start(**backend.settings)
    rng = random.Random(20261129)
    sizes = [2_000 + i for i in range(IMPORTS)]  # 21 batches of 100 each
    cancel_after = {i: rng.randint(1, 18) for i in rng.sample(range(IMPORTS), IMPORTS // 2)}
    snapshots: list[tuple[int, int]] = []
    stop = threading.Event()

    def poll_counts() -> None:
        # A reader beside the imports: in every snapshot, people holds exactly the
        # rows of the imports published so far, never part of one.
        while not stop.is_set():
            snapshots.append(backend.snapshot_counts())

    async def one_import(client: httpx.AsyncClient, i: int) -> tuple[str, int]:
        body = {"rows": sizes[i], "batch_size": 100, "delay_ms": 1}
        async with client.stream("POST", "/api/endpoints/import", json=body) as response:
            run_id = response.headers["x-run-id"]
            seen = 0
            async for event in events(response):
                seen += isinstance(event, Event)
                if seen == cancel_after.get(i):
                    await client.delete(f"/api/runs/{run_id}")
        return run_id, sizes[i]

    reader = asyncio.create_task(asyncio.to_thread(poll_counts))
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            runs = await asyncio.gather(*(one_import(client, i) for i in range(IMPORTS)))
            statuses = {
                run_id: (await client.get(f"/api/runs/{run_id}")).json()["status"]
                for run_id, _ in runs
            }
    finally:
        stop.set()
        await reader
    assert len(snapshots) > 5, "the reader polled while the imports ran"
    assert all(people == claimed for people, claimed in snapshots), [
        s for s in snapshots if s[0] != s[1]
    ][:5]
    assert sorted(set(statuses.values())) == ["cancelled", "succeeded"]
    expected = 0
    for run_id, size in runs:
        if statuses[run_id] == "succeeded":
            expected += size
            assert backend.count_people(run_id) == size
        else:
            assert statuses[run_id] == "cancelled"
            assert backend.count_people(run_id) == 0
    assert backend.snapshot_counts() == (expected, expected)
    assert backend.staging_leftovers() == []


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
async def test_the_export_hash_equals_one_computed_independently_from_the_table(
    start,  # type: ignore[no-untyped-def]
    backend: Backend,
    fmt: str,
) -> None:
    server = await start(**backend.settings)
    tricky = 'name,born,birthplace\n"Quote "" and, comma",1900,"Line\nbreak"\nÅsa Ünïcödé,,\n'
    (server.config.data_dir / "imports" / "tricky.csv").write_text(tricky)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        for body in (
            {"source": "presidents.csv"},
            {"source": "tricky.csv"},
            {"rows": 3_000, "batch_size": 1_000},
        ):
            done = await client.post("/api/endpoints/import", json={**body, "delay_ms": 0})
            assert split_events(done.text)[-1].event == "end", done.text[-300:]
        response = await client.post("/api/endpoints/export", json={"format": fmt})
    result = split_events(response.text)[-1].json()["result"]
    rows = backend.query("SELECT id, run_id, name, born, birthplace FROM people ORDER BY id")
    assert len(rows) == result["rows"] == 3_047
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(("id", "run_id", "name", "born", "birthplace"))
        writer.writerows(rows)
        expected = out.getvalue().encode()
    else:
        keys = ("id", "run_id", "name", "born", "birthplace")
        expected = b"".join(
            json.dumps(dict(zip(keys, row, strict=True)), ensure_ascii=False).encode() + b"\n"
            for row in rows
        )
    assert result["sha256"] == hashlib.sha256(expected).hexdigest()
    assert Path(result["path"]).read_bytes() == expected


async def test_healthz_names_the_database_and_reports_it_up(start, backend: Backend) -> None:  # type: ignore[no-untyped-def]
    server = await start(**backend.settings)
    async with httpx.AsyncClient(base_url=server.url) as client:
        health = (await client.get("/healthz")).json()
    assert health["database"] == {"backend": backend.name, "ok": True}


# PostgreSQL only from here on.


def _pg(schema: str) -> Backend:
    return Backend("postgresql", Path("."), schema)


def _make_staging(schema: str, name: str, comment: str | None) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        table = sql.Identifier(schema, name)
        conn.execute(sql.SQL("CREATE TABLE {} (name text)").format(table))
        if comment is not None:
            conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(table, sql.Literal(comment)))


async def test_start_up_drops_a_staging_table_only_when_its_owner_is_surely_gone(
    start,  # type: ignore[no-untyped-def]
    pg_schema: str,
    tmp_path: Path,
) -> None:
    hours_ago = time.time() - 7 * 3600  # past the default longest import (6 h)
    tables = {
        "streambind_staging_old": ("node-a:1:x", hours_ago),  # owner unknown, too old: dropped
        "streambind_staging_young": ("node-b:2:y", time.time()),  # unknown, young: kept
        "streambind_staging_alive": ("node-alive:3:z", hours_ago),  # heartbeat says alive: kept
        "streambind_staging_gone": ("node-gone:4:w", time.time()),  # heartbeat says gone: dropped
    }
    for name, (node, created) in tables.items():
        _make_staging(pg_schema, name, json.dumps({"node": node, "created": created}))
    # Owners of this host, told apart by their pid in this pid space: young tables all.
    here = socket.gethostname()
    child = await asyncio.create_subprocess_exec("true")  # once it exited, its pid is free
    await child.wait()
    local = {
        "streambind_staging_crashed": (f"{here}:{child.pid}:c", PID_SPACE),  # its pid is gone
        "streambind_staging_running": (f"{here}:{os.getppid()}:r", PID_SPACE),  # runs: kept
        "streambind_staging_elsewhere": (f"{here}:{child.pid}:e", "another/pid-space"),  # kept
    }
    for name, (node, pids) in local.items():
        owner = {"node": node, "created": time.time(), "pids": pids}
        _make_staging(pg_schema, name, json.dumps(owner))
    _make_staging(pg_schema, "streambind_staging_nameless", None)  # not ours to judge: kept
    answers = {"node-alive:3:z": True, "node-gone:4:w": False}
    asked: list[str] = []

    def node_alive(node: str) -> bool | None:
        asked.append(node)
        return answers.get(node)

    # The demo's database resource, opened as a server opens it, with the liveness answer
    # a run store would give.
    context = ResourceContext(
        ServerConfig(data_dir=tmp_path / "data"),
        node_alive,
        DemoSettings(database_url=PG_URL, database_schema=pg_schema),
    )
    async with contextlib.asynccontextmanager(demo_database.opener)(context):
        pass
    assert sorted(asked) == sorted(
        [node for node, _ in tables.values()]
        + [local[n][0] for n in ("streambind_staging_running", "streambind_staging_elsewhere")]
    )
    assert sorted(_pg(pg_schema).staging_leftovers()) == [
        "streambind_staging_alive",
        "streambind_staging_elsewhere",
        "streambind_staging_nameless",
        "streambind_staging_running",
        "streambind_staging_young",
    ]


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        await process.wait()


async def test_after_kill_9_mid_import_a_restart_finds_no_partial_import_on_postgresql(
    pg_schema: str, tmp_path: Path
) -> None:
    database = ("--database", PG_URL, "--database-schema", pg_schema)
    process, url = await _serve(*database, data_dir=tmp_path)
    try:
        async with (
            httpx.AsyncClient(base_url=url, timeout=60) as client,
            client.stream(
                "POST",
                "/api/endpoints/import",
                json={"rows": 100_000, "batch_size": 100, "delay_ms": 10_000},
            ) as response,
        ):
            stream = events(response)
            await anext(stream)
            await anext(stream)  # a batch is staged: the crash comes mid-import
            process.kill()
            await process.wait()
    finally:
        await _stop(process)
    db = _pg(pg_schema)
    (leftover,) = db.staging_leftovers()
    assert db.snapshot_counts() == (0, 0)

    assert leftover.startswith("streambind_staging_")
    # The restart runs where the crashed process ran (this host, these pids): it can tell
    # that process is gone, though the table is young and no heartbeat says so. Dropped.
    process, url = await _serve(*database, data_dir=tmp_path)
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            counts = (await client.post("/api/endpoints/silent")).json()
        assert counts == {"people": 0, "imports": 0, "streamed": False}
        assert db.staging_leftovers() == []
    finally:
        await _stop(process)

    # Older than the longest allowed import: its owner is surely gone. Dropped.
    process, url = await _serve(*database, "--import-time-limit", "0.001", data_dir=tmp_path)
    try:
        assert db.staging_leftovers() == []
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            # The limit binds this server's own imports too, or the rule would be unsound.
            done = await client.post("/api/endpoints/import", json={"rows": 50, "delay_ms": 0})
        last = split_events(done.text)[-1]
        assert last.event == "error"
        assert "longer than the longest allowed" in last.json()["error"]["message"]
        assert db.snapshot_counts() == (0, 0)
        assert db.staging_leftovers() == []
    finally:
        await _stop(process)


async def test_sigterm_mid_import_on_postgresql_publishes_nothing_and_drops_the_staging_tables(
    pg_schema: str, tmp_path: Path
) -> None:
    process, url = await _serve(
        "--database", PG_URL, "--database-schema", pg_schema, data_dir=tmp_path
    )
    db = _pg(pg_schema)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            async with contextlib.AsyncExitStack() as stack:
                streams = await open_slow_imports(stack, client, 5)
                assert len(db.staging_leftovers()) == 5
                process.send_signal(signal.SIGTERM)
                for stream in streams:
                    rest = [e async for e in stream if isinstance(e, Event)]
                    assert rest[-1].event == "cancelled"
            code = await asyncio.wait_for(process.wait(), 30)
    finally:
        await _stop(process)
    assert code == 0
    assert db.snapshot_counts() == (0, 0)
    assert db.staging_leftovers() == []


async def test_two_servers_on_one_database_import_at_once_and_neither_start_up_harms_the_other(
    start,  # type: ignore[no-untyped-def]
    pg_schema: str,
    tmp_path: Path,
) -> None:
    def settings(name: str) -> dict[str, object]:
        return {"data_dir": tmp_path / name, "database_url": PG_URL, "database_schema": pg_schema}

    first = await start(**settings("a"))
    db = _pg(pg_schema)
    async with httpx.AsyncClient(base_url=first.url, timeout=60) as a:
        slow = {"rows": 400, "batch_size": 100, "delay_ms": 300}
        async with a.stream("POST", "/api/endpoints/import", json=slow) as held:
            stream = events(held)
            await anext(stream)
            await anext(stream)  # the first server's import is staged, mid-way
            # The second server starts on the same schema while it runs.
            second = await start(**settings("b"), import_time_limit=3600)
            assert len(db.staging_leftovers()) == 1
            async with httpx.AsyncClient(base_url=second.url, timeout=60) as b:
                fast = {"rows": 1_000, "batch_size": 100, "delay_ms": 0}
                both = await asyncio.gather(
                    *(a.post("/api/endpoints/import", json=fast) for _ in range(3)),
                    *(b.post("/api/endpoints/import", json=fast) for _ in range(3)),
                )
            rest = [e async for e in stream if isinstance(e, Event)]
    assert rest[-1].event == "end", rest[-1]
    assert all(split_events(r.text)[-1].event == "end" for r in both)
    assert db.snapshot_counts() == (6_400, 6_400)
    assert db.staging_leftovers() == []
    ids = [r[0] for r in db.query("SELECT id FROM people ORDER BY id")]
    assert len(set(ids)) == 6_400


async def test_a_bad_database_url_or_an_unreachable_database_exits_2_with_one_line(
    tmp_path: Path,
) -> None:
    with socket_closed() as port:
        unreachable = f"postgresql://someone:hunter2-secret@127.0.0.1:{port}/test"
        refused = "--database must be a postgresql:// URL"
        for url, says in [
            ("mysql://someone:hunter2-secret@db/x", refused),
            ("mysql://db/x?user=someone&password=hunter2-secret", refused),
            ("host=db user=someone password=hunter2-secret", refused),
            ("host=db password='hunter2-secret and more' user=someone", refused),
            (unreachable, "cannot connect to the database"),
            (
                f"postgresql://127.0.0.1:{port}/test?user=someone&password=hunter2-secret",
                "cannot connect to the database",
            ),
        ]:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "streambind.app.cli", "serve", "--port", "0",
                "--data-dir", str(tmp_path), "--database", url,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
            assert process.returncode == 2, stderr
            lines = stderr.decode().strip().splitlines()
            assert len(lines) == 1, lines
            assert says in lines[0]
            assert "hunter2-secret" not in stdout.decode() + stderr.decode()


def test_every_form_of_password_is_hidden_from_what_is_shown() -> None:
    secret = "hunter2-secret"
    for text in [
        f"postgresql://someone:{secret}@db:5432/x",
        f"postgresql://db/x?user=someone&password={secret}&sslmode=require",
        f"mysql://someone:{secret}@db/x?password={secret}",
        f"host=db user=someone password={secret} dbname=x",
        f"host=db password='{secret} with spaces' dbname=x",
        f"redis://:{secret}@127.0.0.1:6379/0",
        f"rediss://someone:{secret}@redis.example:6380?db=1",
        f"redis://127.0.0.1:6379/0?password={secret}",
        f"unix:///run/redis.sock?password={secret}&db=2",
        f"redis://someone:{secret}/with?raw@chars@127.0.0.1",
        f"cannot connect to redis://:{secret}@h:6379: password={secret} refused",
    ]:
        shown = redact_url(text)
        assert secret not in shown, shown
        assert "***" in shown
        assert any(secret in password for password in passwords_in(text))
    # What holds no password is shown as it is.
    for text in ["postgresql://db:5432/x?sslmode=require", "redis://127.0.0.1:6379/0", "db"]:
        assert redact_url(text) == text
    # A message that quotes the password some other way loses it too.
    assert scrub(f"FATAL: password {secret} rejected", f"host=db password={secret}") == (
        "FATAL: password *** rejected"
    )


async def test_a_password_given_as_a_query_parameter_is_never_printed(
    pg_schema: str, tmp_path: Path
) -> None:
    # The shared server trusts loopback, so the password is carried but never checked.
    url = PG_URL + ("&" if "?" in PG_URL else "?") + "password=hunter2-secret"
    process, served = await _serve(
        "--database", url, "--database-schema", pg_schema, data_dir=tmp_path
    )
    try:
        async with httpx.AsyncClient(base_url=served) as client:
            health = (await client.get("/healthz")).json()
        assert health["database"] == {"backend": "postgresql", "ok": True}
    finally:
        process.terminate()
        stdout, stderr = await process.communicate()
    shown = stdout.decode() + stderr.decode()
    assert "password=***" in shown
    assert "hunter2-secret" not in shown


@contextlib.contextmanager
def socket_closed():  # type: ignore[no-untyped-def]
    """A loopback port on which nothing listens."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port


async def test_a_database_lost_while_serving_ends_the_run_with_a_readable_error_and_no_secret(
    start,  # type: ignore[no-untyped-def]
    pg_schema: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from urllib.parse import urlsplit

    caplog.set_level(logging.DEBUG)
    target = urlsplit(PG_URL)
    proxy = CuttingProxy(target.hostname or "127.0.0.1", target.port or 5432, cuts=[])
    port = int((await proxy.start()).rsplit(":", 1)[1])
    secret = "s3cret-pw-never-shown"
    user = target.username or "root"
    url = f"postgresql://{user}:{secret}@127.0.0.1:{port}{target.path or '/test'}"
    server = await start(database_url=url, database_schema=pg_schema)
    seen: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            body = {"rows": 1_000, "batch_size": 10, "delay_ms": 50}
            async with client.stream("POST", "/api/endpoints/import", json=body) as response:
                run_id = response.headers["x-run-id"]
                stream = events(response)
                await anext(stream)
                await anext(stream)
                await proxy.close()  # the database goes away mid-import
                rest = [e async for e in stream if isinstance(e, Event)]
            assert rest[-1].event == "error"
            message = rest[-1].json()["error"]["message"]
            assert message.startswith("the database connection was lost"), message

            async def health() -> dict[str, object]:
                return (await client.get("/healthz")).json()

            down = await wait_for(health, lambda h: not h["database"]["ok"], "healthz says down")  # type: ignore[index]
            assert down["database"]["backend"] == "postgresql"  # type: ignore[index]
            assert down["status"] == "ok"  # the server itself still answers
            record = await run_record(client, run_id, lambda r: r["status"] == "failed", "failed")
            seen += [rest[-1].data, json.dumps(down), json.dumps(record)]
            seen.append((await client.get("/api/runs")).text)
    finally:
        await proxy.close()
    seen.append(caplog.text)
    assert all(secret not in text for text in seen)
    assert "connection was lost" in seen[0]
    # An expected failure, not a bug: one line, no traceback.
    (line,) = [r for r in caplog.records if f"{run_id} (import) failed" in r.getMessage()]
    assert line.levelno == logging.WARNING and line.exc_info is None
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("streambind")]


async def test_a_nul_character_in_a_csv_fails_the_import_on_postgresql_leaving_nothing(
    start,  # type: ignore[no-untyped-def]
    pg_schema: str,
) -> None:
    server = await start(database_url=PG_URL, database_schema=pg_schema)
    rows = b"name,born,birthplace\n" + b"Ada,1815,London\n" * 30 + b"A\x00B,1900,Oslo\n"
    (server.config.data_dir / "imports" / "nul.csv").write_bytes(rows)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        response = await client.post(
            "/api/endpoints/import", json={"source": "nul.csv", "batch_size": 10, "delay_ms": 0}
        )
    last = split_events(response.text)[-1]
    assert last.event == "error"
    assert "cannot contain NUL" in last.json()["error"]["message"]
    db = _pg(pg_schema)
    assert db.snapshot_counts() == (0, 0)
    assert db.staging_leftovers() == []


async def test_each_import_gets_consecutive_ids_in_row_order_while_imports_publish_at_once(
    start,  # type: ignore[no-untyped-def]
    pg_schema: str,
) -> None:
    # A publish draws its import's ids as one block (setval under an advisory lock);
    # blocks that overlapped would fail on the primary key or interleave here.
    server = await start(database_url=PG_URL, database_schema=pg_schema)
    body = {"rows": 3_000, "batch_size": 1_000, "delay_ms": 0}
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        responses = await asyncio.gather(
            *(client.post("/api/endpoints/import", json=body) for _ in range(8))
        )
    assert all(split_events(r.text)[-1].event == "end" for r in responses)
    db = _pg(pg_schema)
    for response in responses:
        run_id = response.headers["x-run-id"]
        ids = [r[0] for r in db.query("SELECT id FROM people WHERE run_id = ? ORDER BY id", run_id)]
        assert ids == list(range(ids[0], ids[0] + 3_000))
    assert db.snapshot_counts() == (24_000, 24_000)


async def test_a_role_with_rights_on_the_tables_only_imports_in_row_order(
    start,  # type: ignore[no-untyped-def]
    pg_schema: str,
) -> None:
    # The README's SQL for a DBA: the tables made by another role, this one given
    # USAGE and CREATE on the schema and rows' rights on the tables, but not the
    # right to set people's id sequence. Its imports draw one id per row instead.
    from urllib.parse import urlsplit, urlunsplit

    import psycopg
    from psycopg import sql

    from streambind.server.api import MANAGER
    from streambind.server.demo.backend import DatabaseUnavailable
    from streambind.server.demo.postgres import PostgresDatabase

    role = f"streambind_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        try:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        except psycopg.errors.InsufficientPrivilege:
            pytest.skip("the test database's role may not create roles")
        try:
            made = await PostgresDatabase.open(PG_URL, pg_schema, import_time_limit=60)
            await made.close()
            grants = [
                # No CREATE on the database: start-up creates the schema only if missing.
                "GRANT CONNECT ON DATABASE {db} TO {role}",
                "GRANT USAGE, CREATE ON SCHEMA {schema} TO {role}",
                "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA {schema} TO {role}",
            ]
            database = admin.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
            for grant in grants:
                admin.execute(
                    sql.SQL(grant).format(
                        db=sql.Identifier(database),
                        role=sql.Identifier(role),
                        schema=sql.Identifier(pg_schema),
                    )
                )
            parts = urlsplit(PG_URL)
            host = parts.netloc.rpartition("@")[2]
            url = urlunsplit(parts._replace(netloc=f"{role}@{host}"))
            try:
                server = await start(database_url=url, database_schema=pg_schema)
            except DatabaseUnavailable as exc:
                if "cannot connect" not in str(exc):
                    raise
                pytest.skip(f"cannot connect as a new role (a password?): {exc}")
            assert server.app[MANAGER].resources.value(demo_database).id_sequence is None
            (server.config.data_dir / "imports" / "few.csv").write_text(
                "name,born\n" + "".join(f"Person {i},{1900 + i}\n" for i in range(50))
            )
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                responses = await asyncio.gather(
                    client.post(
                        "/api/endpoints/import",
                        json={"source": "few.csv", "batch_size": 7, "delay_ms": 0},
                    ),
                    client.post(
                        "/api/endpoints/import",
                        json={"rows": 2_000, "batch_size": 500, "delay_ms": 0},
                    ),
                )
            assert all(split_events(r.text)[-1].event == "end" for r in responses)
            run_id = responses[0].headers["x-run-id"]
            rows = _pg(pg_schema).query(
                "SELECT name, born FROM people WHERE run_id = ? ORDER BY id", run_id
            )
            assert rows == [(f"Person {i}", 1900 + i) for i in range(50)]
            assert _pg(pg_schema).snapshot_counts() == (2_050, 2_050)
            await server.close()  # its connections, before the role goes
        finally:
            for statement in ("DROP OWNED BY {}", "DROP ROLE {}"):
                admin.execute(sql.SQL(statement).format(sql.Identifier(role)))


async def test_after_a_postgresql_restart_runs_succeed_and_healthz_tells_the_truth(
    start,  # type: ignore[no-untyped-def]
    private_postgres,  # type: ignore[no-untyped-def]
) -> None:
    server = await start(database_url=private_postgres.url)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:

        async def database() -> dict[str, Any]:
            return (await client.get("/healthz")).json()["database"]  # type: ignore[no-any-return]

        # Runs at once, so the pool holds several connections when the server restarts.
        body = {"rows": 2_000, "batch_size": 100, "delay_ms": 20}
        warm = await asyncio.gather(
            *(client.post("/api/endpoints/import", json=body) for _ in range(8))
        )
        assert all(split_events(r.text)[-1].event == "end" for r in warm)
        private_postgres.restart()  # every pooled connection is cut

        # The next runs, more than the pool holds, each get a working connection.
        assert await database() == {"backend": "postgresql", "ok": True}
        after = [await client.post("/api/endpoints/silent") for _ in range(10)]
        assert [r.status_code for r in after] == [200] * 10, after[-1].text
        assert after[-1].json() == {"people": 16_000, "imports": 8, "streamed": False}

        # Down is said as down.
        private_postgres.stop()
        down = await database()
        assert down["ok"] is False and "error" in down
