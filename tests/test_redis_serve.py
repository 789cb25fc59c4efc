"""`streambind serve --redis` as processes: start-up faults, a node killed, Redis lost, drain."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redisdb
from deployment import spawn_node, start_node, start_nodes
from polling import run_record, wait_for
from wire import Event, collect, events


@pytest.fixture
async def shared() -> AsyncIterator[list[str]]:
    """``--redis URL --redis-prefix P`` on the tests' Redis, with a prefix of its own."""
    url = redisdb.require_redis()
    with redisdb.fresh_prefix(url) as prefix:
        yield ["--redis", url, "--redis-prefix", prefix]


async def test_an_unreachable_redis_at_start_is_exit_2_with_one_clear_line(
    tmp_path: Path,
) -> None:
    port = redisdb.free_port()  # nothing listens there
    process = await spawn_node("--redis", f"redis://127.0.0.1:{port}", data_dir=tmp_path)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"streambind: cannot reach Redis at redis://127.0.0.1:{port}")
    assert "Traceback" not in stdout.decode()


async def test_a_killed_nodes_followers_get_node_lost_and_the_others_go_on(
    tmp_path: Path, shared: list[str]
) -> None:
    async with start_nodes(3, *shared, data_dir=tmp_path) as nodes:
        (victim, victim_url), (_, b_url), (_, c_url) = nodes
        async with (
            httpx.AsyncClient(base_url=victim_url, timeout=30) as on_victim,
            httpx.AsyncClient(base_url=b_url, timeout=30) as on_b,
            httpx.AsyncClient(base_url=c_url, timeout=30) as on_c,
        ):
            # One run on the victim, one on B; both followed from C.
            doomed = on_victim.stream("POST", "/api/endpoints/hold", json={"before": 2})
            caller = await doomed.__aenter__()
            await anext(events(caller))
            doomed_id = caller.headers["x-run-id"]
            safe = on_b.stream("POST", "/api/endpoints/hold", json={"before": 1})
            safe_caller = await safe.__aenter__()
            safe_stream = events(safe_caller)
            await anext(safe_stream)
            safe_id = safe_caller.headers["x-run-id"]
            await run_record(on_c, doomed_id, lambda r: r["events"] == 2, "C to see the run")
            async with on_c.stream(
                "GET", f"/api/runs/{doomed_id}/events", headers={"Last-Event-ID": "2"}
            ) as follower:
                victim.send_signal(signal.SIGKILL)
                got = await asyncio.wait_for(collect(follower), 30)
            with contextlib.suppress(httpx.HTTPError):
                await doomed.__aexit__(None, None, None)
            assert got[-1].event == "error"
            assert got[-1].id == "3"
            assert got[-1].json()["error"]["type"] == "node_lost"
            listed = {r["id"]: r for r in (await on_c.get("/api/runs")).json()["runs"]}
            assert listed[doomed_id]["status"] == "failed"
            assert listed[safe_id]["status"] == "running"
            # DELETE on C cancels B's run; its caller gets the cancelled event.
            assert (await on_c.delete(f"/api/runs/{safe_id}")).status_code == 202
            tail = [e async for e in safe_stream if isinstance(e, Event)]
            await safe.__aexit__(None, None, None)
            assert tail[-1].event == "cancelled"


async def test_redis_lost_while_serving_is_503_and_the_node_recovers(tmp_path: Path) -> None:
    redis = redisdb.PrivateRedis(tmp_path / "redis").start()
    try:
        process, url = await start_node("--redis", redis.url, data_dir=tmp_path / "node")
        try:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                assert (await client.get("/healthz")).status_code == 200
                redis.stop()

                async def health() -> httpx.Response:
                    return await client.get("/healthz")

                down = await wait_for(health, lambda r: r.status_code == 503, "healthz 503")
                assert down.json()["reason"].startswith("Redis is unreachable")
                call = await client.post("/api/endpoints/echo", json={"text": "x"})
                assert call.status_code == 503
                assert call.json()["error"]["type"] == "store_unavailable"
                assert call.headers["retry-after"] == "1"
                listing = await client.get("/api/runs")
                assert listing.status_code == 503
                assert "Traceback" not in listing.text
                redis.start()  # the same port: the node reconnects by itself
                await wait_for(health, lambda r: r.status_code == 200, "healthz 200 again")
                again = await client.post("/api/endpoints/echo", json={"text": "x"})
                assert again.status_code == 200
                assert process.returncode is None  # no crash
        finally:
            process.terminate()
            await process.wait()
    finally:
        redis.stop()


async def test_drain_lets_a_running_run_finish_and_refuses_new_calls(
    tmp_path: Path, shared: list[str]
) -> None:
    process, url = await start_node(*shared, "--drain-timeout", "30", data_dir=tmp_path)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            body = {"rows": 40, "batch_size": 10, "delay_ms": 150}
            async with client.stream("POST", "/api/endpoints/import", json=body) as running:
                stream = events(running)
                await anext(stream)
                process.send_signal(signal.SIGTERM)

                async def call() -> httpx.Response:
                    return await client.post("/api/endpoints/echo", json={"text": "x"})

                refused = await wait_for(call, lambda r: r.status_code == 503, "a 503")
                assert refused.headers["retry-after"] == "1"
                rest = [e async for e in stream if isinstance(e, Event)]
            assert rest[-1].event == "end"
        assert await asyncio.wait_for(process.wait(), 60) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_an_open_stream_on_the_executing_node_goes_on_while_redis_is_down(
    tmp_path: Path,
) -> None:
    import flows
    from served import demo_and_flows

    from streambind.server import ServerConfig, start_server

    redis = redisdb.PrivateRedis(tmp_path / "redis").start()
    try:
        server = await start_server(
            ServerConfig(data_dir=tmp_path / "node", redis_url=redis.url),
            registry=demo_and_flows(),
        )
        try:
            body = {"key": "r-down", "before": 1, "after": 3}
            async with (
                httpx.AsyncClient(base_url=server.url, timeout=30) as client,
                client.stream("POST", "/api/endpoints/hold", json=body) as response,
            ):
                stream = events(response)
                first = await anext(stream)
                redis.stop()
                await wait_for(
                    lambda: client.get("/healthz"), lambda r: r.status_code == 503, "503"
                )
                flows.release("r-down")
                rest = [e async for e in stream if isinstance(e, Event)]
            assert [e.id for e in [first, *rest]] == ["1", "2", "3", "4", "5"]
            assert rest[-1].event == "end"
        finally:
            await server.close()
    finally:
        redis.stop()
