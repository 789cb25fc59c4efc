"""`streambind serve` as a real process: start-up, user workflows, SIGTERM with open streams."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from deployment import serving_url
from wire import Comment, Event, events

from streambind.app.cli import exposure_warning

TESTS = Path(__file__).parent


async def _serve(
    *args: str, data_dir: Path, max_file_bytes: int | None = None
) -> tuple[asyncio.subprocess.Process, str]:
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    env.pop("STREAMBIND_TOKEN", None)
    env.pop("STREAMBIND_DATABASE", None)  # the database is what args say: SQLite unless given
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streambind.app.cli", "serve", "--port", "0",
        "--data-dir", str(data_dir), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        preexec_fn=None if max_file_bytes is None else lambda: _limit_file_size(max_file_bytes),
    )  # fmt: skip
    return await serving_url(process)


def _limit_file_size(max_bytes: int) -> None:
    """A disk that is full for every file past ``max_bytes`` (writes fail; signal ignored)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, resource.RLIM_INFINITY))


DEMO_ENDPOINTS = ["import", "pipeline", "export", "write-text", "flaky", "silent", "firehose"]


async def _endpoint_names(*args: str, data_dir: Path) -> tuple[list[str], dict[str, object]]:
    process, url = await _serve(*args, data_dir=data_dir)
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            health = (await client.get("/healthz")).json()
            endpoints = (await client.get("/api/endpoints")).json()["endpoints"]
        return [e["name"] for e in endpoints], health
    finally:
        process.terminate()
        await process.wait()


async def test_serve_alone_serves_the_demo(tmp_path: Path) -> None:
    names, health = await _endpoint_names(data_dir=tmp_path)
    assert names == DEMO_ENDPOINTS
    assert health["status"] == "ok"
    assert health["database"] == {"backend": "sqlite", "ok": True}  # the demo's resource
    assert (tmp_path / "imports" / "presidents.csv").exists()  # the demo's layout


async def test_serve_with_workflows_serves_only_those(tmp_path: Path) -> None:
    names, health = await _endpoint_names("--workflows", "flows", data_dir=tmp_path)
    assert {"hold", "echo", "tidy"} <= set(names)
    assert not set(DEMO_ENDPOINTS) & set(names)
    assert "not_an_endpoint" not in names
    assert "database" not in health  # no demo database opened
    assert not (tmp_path / "imports").exists()  # nor its data directory laid out


async def test_naming_the_demo_among_the_workflows_serves_both(tmp_path: Path) -> None:
    names, _ = await _endpoint_names(
        "--workflows", "streambind.server.demo", "flows", data_dir=tmp_path
    )
    assert names[:7] == DEMO_ENDPOINTS
    assert {"hold", "echo"} <= set(names)


@pytest.mark.parametrize(
    "option",
    [("--database", "postgresql://x@h/db"), ("--database-schema", "s"),
     ("--import-time-limit", "60"), ("--keep-exports", "3"), ("--keep-exports-for", "60")],
)  # fmt: skip
def test_the_demos_options_are_refused_when_the_demo_is_not_served(
    option: tuple[str, str],
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streambind.app.cli", "serve", "--workflows", "flows", *option],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert f"{option[0]} is an option of the demo workflows, which are not served" in result.stderr


async def open_slow_imports(
    stack: contextlib.AsyncExitStack, client: httpx.AsyncClient, count: int
) -> list[AsyncIterator[Event | Comment]]:
    """``count`` imports slow enough to be mid-way for long, each with a first batch staged."""
    slow = {"rows": 1000, "batch_size": 10, "delay_ms": 10_000}
    streams = []
    for _ in range(count):
        response = await stack.enter_async_context(
            client.stream("POST", "/api/endpoints/import", json=slow)
        )
        stream = events(response)
        await anext(stream)
        await anext(stream)  # a first batch is staged
        streams.append(stream)
    return streams


async def test_sigterm_ends_every_open_stream_and_exits_cleanly(tmp_path: Path) -> None:
    process, url = await _serve("--max-runs", "60", data_dir=tmp_path)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        async with contextlib.AsyncExitStack() as stack:
            streams = await open_slow_imports(stack, client, 50)
            process.send_signal(signal.SIGTERM)
            for stream in streams:
                rest = [e async for e in stream if isinstance(e, Event)]
                assert rest[-1].event == "cancelled"
        signalled = time.monotonic()
        code = await asyncio.wait_for(process.wait(), 30)
    assert code == 0
    assert time.monotonic() - signalled < 5, "the process exits within 5 s"
    with contextlib.closing(sqlite3.connect(tmp_path / "streambind.db")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM people").fetchone() == (0,)
    # A clean shutdown leaves nothing at all in staging/: no file, no empty folder.
    assert list((tmp_path / "staging").iterdir()) == []


async def test_a_workflows_module_that_cannot_be_imported_is_a_clear_error(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streambind.app.cli", "serve", "--port", "0",
        "--data-dir", str(tmp_path), "--workflows", "no_such_module_here",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert b"cannot import workflows module" in stderr
    assert b"no_such_module_here" in stderr
    assert b"Traceback" not in stderr


@pytest.mark.parametrize(
    ("host", "token", "warns"),
    [
        ("127.0.0.1", None, False),
        ("127.0.0.2", None, False),
        ("::1", None, False),
        ("localhost", None, False),
        ("0.0.0.0", None, True),
        ("192.0.2.7", None, True),
        ("example.org", None, True),
        ("0.0.0.0", "tok", False),
    ],
)
def test_binding_beyond_loopback_without_a_token_warns(
    host: str, token: str | None, warns: bool
) -> None:
    warning = exposure_warning(host, token)
    assert (warning is not None) == warns
    if warning:
        assert "without --token" in warning


def test_serve_defaults_are_the_documented_ones() -> None:
    from streambind.app.cli import build_parser

    help_text = build_parser().parse_known_args(["serve"])[0]
    assert help_text.port == 8787
    assert help_text.host == "127.0.0.1"
    assert help_text.detach_grace == 30.0
    assert help_text.ping == 15.0
    assert (help_text.header_timeout, help_text.keepalive) == (10.0, 75.0)
    assert help_text.max_connections is None  # three quarters of the descriptor limit
    # The demo's own settings: their defaults, as its options' help says them.
    from streambind.server.demo import DemoSettings

    defaults = DemoSettings()
    assert (defaults.keep_exports, defaults.keep_exports_seconds) == (100, 7 * 24 * 3600)
    assert defaults.import_time_limit == 6 * 3600 and defaults.database_schema == "public"
    serve_help = subprocess.run(
        [sys.executable, "-m", "streambind.app.cli", "serve", "--help"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"},
    ).stdout  # fmt: skip
    for said in ("(default: 100)", "(default: 604800.0, a week)", "(default: 21600.0)",
                 "(default: public)"):  # fmt: skip
        assert said in serve_help


async def test_the_connection_flags_reach_the_server(tmp_path: Path) -> None:
    process, url = await _serve(
        "--max-connections", "1", "--header-timeout", "1", data_dir=tmp_path
    )
    port = int(url.rsplit(":", 1)[1])
    try:
        silent_reader, silent = await asyncio.open_connection("127.0.0.1", port)
        surplus_reader, surplus = await asyncio.open_connection("127.0.0.1", port)
        refusal = await asyncio.wait_for(surplus_reader.read(), 30)
        assert refusal.startswith(b"HTTP/1.1 503 ") or refusal == b""
        # The silent connection sent no request within --header-timeout: closed.
        assert await asyncio.wait_for(silent_reader.read(), 30) == b""
        for writer in (silent, surplus):
            writer.close()
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/healthz")).status_code == 200
    finally:
        process.terminate()
        await process.wait()


async def test_after_sigkill_mid_import_a_restart_finds_no_partial_import(tmp_path: Path) -> None:
    process, url = await _serve(data_dir=tmp_path)
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
        await anext(stream)  # rows are staged: the crash comes mid-import
        process.kill()
        await process.wait()
    staged = [p for p in (tmp_path / "staging").rglob("*.db")]
    assert staged, "the killed server left its staging file behind"
    process, url = await _serve(data_dir=tmp_path)
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/healthz")).status_code == 200
            counts = (await client.post("/api/endpoints/silent")).json()
        assert counts == {"people": 0, "imports": 0, "streamed": False}
        assert [p for p in (tmp_path / "staging").rglob("*.db")] == []
        with contextlib.closing(sqlite3.connect(tmp_path / "streambind.db")) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        process.terminate()
        await process.wait()


async def test_an_import_that_runs_out_of_room_reports_sqlites_error_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    # Room for the staging file of 20,000 rows but not for the main database's copy,
    # whose rows are wider (they carry their import's id): the publishing transaction
    # is the one that fails, and SQLite rolls it back on its own.
    process, url = await _serve(data_dir=tmp_path, max_file_bytes=800_000)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            response = await client.post(
                "/api/endpoints/import", json={"rows": 20_000, "batch_size": 5000, "delay_ms": 0}
            )
            last = [e async for e in events(response) if isinstance(e, Event)][-1]
            assert last.event == "error", last.data
            message = last.json()["error"]["message"]
            assert "no transaction is active" not in message
            assert message in ("database or disk is full", "disk I/O error"), message
            counts = (await client.post("/api/endpoints/silent")).json()
            assert counts == {"people": 0, "imports": 0, "streamed": False}
            small = await client.post("/api/endpoints/import", json={"rows": 50, "delay_ms": 0})
            assert '"imported": 50' in small.text or '"imported":50' in small.text
        assert [p for p in (tmp_path / "staging").rglob("*.db")] == []
    finally:
        process.terminate()
        await process.wait()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_serve_runs_on_the_loop_asked_for_and_says_so(tmp_path: Path, loop: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streambind.app.cli", "serve", "--port", "0", "--loop", loop,
        "--data-dir", str(tmp_path), "--workflows", "flows",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
    )  # fmt: skip
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert line.startswith("streambind serving on ") and f"loop: {loop})" in line, line
        url = line.split()[3]
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/healthz")).json()["loop"] == loop
    finally:
        process.terminate()
        await process.wait()


def test_auto_is_uvloop_when_installed_and_the_environment_may_choose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from streambind.server import loops

    monkeypatch.delenv("STREAMBIND_LOOP", raising=False)
    assert loops.resolve() == "uvloop"  # the test extra installs the fast extra
    assert loops.resolve("asyncio") == "asyncio"
    monkeypatch.setenv("STREAMBIND_LOOP", "asyncio")
    assert loops.resolve() == "asyncio"
    assert loops.resolve("uvloop") == "uvloop"  # an explicit choice wins
    with pytest.raises(ValueError, match="must be one of"):
        loops.resolve("trio")
