"""A client that recovers and retries: a busy server's ``Retry-After``, and a TUI started
before its server.

A ``POST`` answered ``503``/``429`` started no run, so the client sends it again after the
``Retry-After`` it was given, for at most ``busy_retry_for`` seconds in all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import flows
import httpx
import pytest
from aiohttp import ClientSession, web
from foreign import serve
from polling import newest_run
from redisdb import free_port
from test_tui import SIZE, until

from streambind.app.client import StreamClient
from streambind.app.settings import ClientSettings
from streambind.app.tui.app import StreambindApp
from streambind.server import ServerConfig, build_registry, demo, start_server
from streambind.server.api import MANAGER

TESTS = Path(__file__).parent

SEEN = web.AppKey("seen", dict[str, int])
BUSY = {"error": {"type": "shutting_down", "message": "the server is shutting down"}}


def _busy_first(upstream: str, busy_answers: int, retry_after: str = "0") -> web.Application:
    """A proxy in front of ``upstream`` that answers the first ``busy_answers`` requests of
    every path ``503 shutting_down``, then passes every request through, streams included."""
    seen: dict[str, int] = {}

    async def proxy(request: web.Request) -> web.StreamResponse:
        key = f"{request.method} {request.path}"
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= busy_answers:
            return web.json_response(BUSY, status=503, headers={"Retry-After": retry_after})
        async with (
            ClientSession() as session,
            session.request(
                request.method,
                upstream + request.path_qs,
                headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
                data=await request.read(),
            ) as answer,
        ):
            response = web.StreamResponse(status=answer.status)
            for name in ("Content-Type", "X-Run-Id", "Retry-After"):
                if name in answer.headers:
                    response.headers[name] = answer.headers[name]
            await response.prepare(request)
            async for piece in answer.content.iter_any():
                await response.write(piece)
            await response.write_eof()
            return response

    app = web.Application()
    app[SEEN] = seen
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app


async def test_a_post_answered_503_is_sent_again_and_the_run_succeeds(server) -> None:  # type: ignore[no-untyped-def]
    app = _busy_first(server.url, busy_answers=2)
    async with serve(app) as url, StreamClient(url) as client:
        waits: list[float] = []
        notices: list[str | None] = []

        async def sleep(seconds: float) -> None:
            waits.append(seconds)
            notices.append(call.state.busy)

        client.sleep = sleep
        call = client.call("import", {"rows": 20, "delay_ms": 0})
        state = await call.run()
    assert state.status == "succeeded", state.error
    assert state.result["imported"] == 20
    assert app[SEEN]["POST /api/endpoints/import"] == 3
    # Retry-After: 0 still waits the client's floor (min_retry_ms), once per busy answer.
    assert waits == [0.1, 0.1]
    assert notices == ["server busy (the server is shutting down), retrying in 0.1 s"] * 2
    assert state.busy is None  # cleared once the server answered


async def test_busy_answers_past_busy_retry_for_fail_with_the_servers_message(server) -> None:  # type: ignore[no-untyped-def]
    app = _busy_first(server.url, busy_answers=10**6)
    settings = ClientSettings(busy_retry_for=0.5)
    async with serve(app) as url, StreamClient(url, settings=settings) as client:
        state = await client.call("import", {"rows": 20}).run()
    assert state.status == "failed"
    assert state.error["type"] == "shutting_down"
    assert state.error_message().startswith("the server is shutting down (the server asked")
    assert "busy_retry_for" in state.error_message()
    # About 0.5 s of 0.1 s waits: bounded, never a loop without end.
    assert 3 <= app[SEEN]["POST /api/endpoints/import"] <= 8


async def test_the_endpoint_list_and_a_resume_are_retried_too(server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.url) as http:
        started = await http.post("/api/endpoints/import", json={"rows": 10, "delay_ms": 0})
    run_id = started.headers["x-run-id"]
    app = _busy_first(server.url, busy_answers=1)
    async with serve(app) as url, StreamClient(url) as client:
        endpoints = await client.endpoints()
        followed = await client.follow(run_id).run()
    assert "import" in [e["name"] for e in endpoints]
    assert followed.status == "succeeded"
    assert len(followed.chunks) == 3  # done 0, 10 and the publish step
    assert app[SEEN]["GET /api/endpoints"] == 2
    assert app[SEEN][f"GET /api/runs/{run_id}/events"] == 2


async def test_too_many_runs_waits_for_a_free_place(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(max_runs=1)
    async with StreamClient(server.url) as client:
        first = asyncio.create_task(client.call("hold", {"key": "busy-1"}).run())
        async with httpx.AsyncClient(base_url=server.url) as http:
            await newest_run(http, lambda r: r["events"] == 1, "the first run's message")
        second = client.call("echo", {"text": "after"})
        task = asyncio.create_task(second.run())
        for _ in range(3000):
            if second.state.busy:
                break
            await asyncio.sleep(0.01)
        assert second.state.busy is not None
        assert "1 run is already running" in second.state.busy
        flows.release("busy-1")
        assert (await first).status == "succeeded"
        state = await task
    assert state.status == "succeeded"
    assert state.chunks == [{"text": "after"}]


async def test_a_draining_server_says_so_on_its_health_check(start) -> None:  # type: ignore[no-untyped-def]
    server = await start()
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/healthz")).json()["status"] == "ok"
        started = asyncio.create_task(http.post("/api/endpoints/hold", json={"key": "drain"}))
        await newest_run(http, lambda r: r["events"] == 1, "a running run")
        draining = asyncio.create_task(server.app[MANAGER].drain(60))
        health = await http.get("/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "draining"
        assert health.headers["Retry-After"] == "1"
        refused = await http.post("/api/endpoints/echo")
        assert refused.status_code == 503
        flows.release("drain")
        await draining
        assert (await started).status_code == 200


@contextlib.asynccontextmanager
async def _server_on(port: int, modules: list[object]) -> AsyncIterator[str]:
    server = await start_server(
        ServerConfig(data_dir=Path(os.environ.get("TMPDIR", "/tmp")) / f"sb-{port}"),
        port=port,
        registry=build_registry([demo, *modules]),  # type: ignore[list-item]
    )
    try:
        yield server.url
    finally:
        await server.close()


async def test_a_tui_started_before_its_server_lists_the_endpoints_once_it_answers(
    tmp_path: Path,
) -> None:
    port = free_port()
    app = StreambindApp(f"http://127.0.0.1:{port}")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(app.query(".load-error")), "the load error is shown")
        assert "Trying again" in str(app.query_one(".load-error").render())
        assert app.endpoints == []
        async with _server_on(port, [flows]):
            await until(pilot, lambda: len(app.endpoints) > 0, "the endpoints appear")
            await until(pilot, lambda: app.form is not None, "a form is shown")
            assert not app.query(".load-error")
            assert app.form.endpoint["name"] == "import"


async def test_reload_endpoints_picks_up_a_restart_with_other_workflows(tmp_path: Path) -> None:
    port = free_port()
    app = StreambindApp(f"http://127.0.0.1:{port}")
    async with app.run_test(size=SIZE) as pilot:
        async with _server_on(port, []):
            await until(pilot, lambda: len(app.endpoints) > 0, "the endpoints appear")
            assert "hold" not in [e["name"] for e in app.endpoints]
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Reload endpoints" in titles
        async with _server_on(port, [flows]):  # restarted with other workflows
            app.action_reload_endpoints()
            await until(pilot, lambda: "hold" in [e["name"] for e in app.endpoints], "the new list")
            assert app.form is not None


@pytest.mark.parametrize("arguments", [["runs"], ["call", "echo"]])
async def test_cli_commands_retry_a_busy_server(server, arguments: list[str]) -> None:  # type: ignore[no-untyped-def]
    app = _busy_first(server.url, busy_answers=1)
    async with serve(app) as url:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streambind.app.cli", *arguments, "--url", url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(TESTS)},
        )  # fmt: skip
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
