"""docs/deployment.md's commands and SQL: the one-node command serves as documented (on
loopback, a free port and a temporary data directory), every `streambind` line parses as
the command line reads it, and a schema a DBA creates from the page's SQL is one the demo
imports into, with the columns the demo itself makes."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import sys
from pathlib import Path

import httpx
from conftest import StartServer
from databases import PG_URL, fresh_schema, require_postgres
from deployment import serving_url
from docblocks import commands, example, streambind_arguments

from streambind.app.cli import build_parser


def _exports(lines: list[str]) -> dict[str, str]:
    return dict(shlex.split(line)[1].split("=", 1) for line in lines if line.startswith("export "))


async def test_the_one_node_command_serves_with_its_token(tmp_path: Path) -> None:
    lines = commands(example("deploy-one-node"))
    environment = _exports(lines)
    assert set(environment) == {"STREAMBIND_TOKEN"}
    [serve] = [streambind_arguments(line) for line in lines if not line.startswith("export ")]
    assert serve is not None
    build_parser().parse_args(serve)  # exits 2 on anything the parser refuses
    here = " ".join(serve)
    for documented, substitute in (
        ("--host 0.0.0.0", "--host 127.0.0.1"),  # the tests listen on loopback only
        ("--port 8787", "--port 0"),
        ("/srv/streambind", str(tmp_path)),
        ("mypkg.flows", "examples.checksums"),
    ):
        assert documented in here
        here = here.replace(documented, substitute)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streambind.app.cli", *here.split(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parent.parent, env={**os.environ, **environment},
    )  # fmt: skip
    try:
        _, url = await serving_url(process)
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/api/endpoints")).status_code == 401
            token = {"Authorization": f"Bearer {environment['STREAMBIND_TOKEN']}"}
            answer = await client.get("/api/endpoints", headers=token)
            assert [e["name"] for e in answer.json()["endpoints"]] == ["checksums"]
            assert (await client.get("/healthz")).json()["status"] == "ok"
    finally:
        process.terminate()
        await process.wait()
    assert process.returncode == 0


def test_the_postgresql_commands_parse_and_share_the_database() -> None:
    lines = commands(example("deploy-postgres"))
    environment = _exports(lines)
    assert set(environment) == {"STREAMBIND_DATABASE"}
    assert environment["STREAMBIND_DATABASE"].startswith("postgresql://")
    assert '"STREAMBIND_DATABASE"' in (Path(__file__).parent.parent / "app" / "cli.py").read_text()
    serves = [streambind_arguments(line) for line in lines if not line.startswith("export ")]
    assert len(serves) == 2
    for serve in serves:
        assert serve is not None
        build_parser().parse_args(serve)


def _columns(schema: str) -> set[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(PG_URL) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, is_identity"
            " FROM information_schema.columns WHERE table_schema = %s",
            (schema,),
        ).fetchall()
    return set(rows)


def _indexes(schema: str) -> set[str]:
    import psycopg

    with psycopg.connect(PG_URL) as conn:
        rows = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (schema,)
        ).fetchall()
    return {name for (name,) in rows}


async def _import(start: StartServer, schema: str, data_dir: Path) -> None:
    server = await start(database_url=PG_URL, database_schema=schema, data_dir=data_dir)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        answer = await client.post("/api/endpoints/import", json={"rows": 10, "delay_ms": 0})
        assert '"status":"succeeded"' in answer.text
        await client.post("/api/endpoints/pipeline", json={"rows": 10, "delay_ms": 0})
    await server.close()


async def test_a_schema_made_from_the_pages_sql_is_the_demos_own(
    start: StartServer, tmp_path: Path
) -> None:
    require_postgres()
    import psycopg

    sql = example("deploy-postgres-schema")
    with fresh_schema() as by_hand, fresh_schema() as by_server:
        here = re.sub(r"--[^\n]*", "", re.sub(r"\bpublic\b", by_hand, sql))
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            # One statement at a time: CREATE INDEX CONCURRENTLY runs in no transaction.
            for statement in filter(str.strip, here.split(";")):
                conn.execute(statement)
        made_by_hand = _columns(by_hand)
        await _import(start, by_hand, tmp_path / "a")
        await _import(start, by_server, tmp_path / "b")
        assert _columns(by_hand) == made_by_hand
        assert made_by_hand == _columns(by_server)
        assert _indexes(by_hand) == _indexes(by_server)
        assert _indexes(by_hand) >= {"people_name", "people_run_id", "people_born"}
