"""Two nodes on one Redis store: any node lists, follows, resumes and cancels any run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import flows
import httpx
import pytest
import redisdb
from polling import run_record, wait_for
from served import demo_and_flows
from wire import Event, collect, events, split_events

from streambind.server import RunningServer, ServerConfig, start_server
from streambind.server.api import MANAGER
from streambind.server.redis_store import RedisRunStore


@pytest.fixture
async def redis_settings() -> AsyncIterator[dict[str, object]]:
    url = redisdb.require_redis()
    with redisdb.fresh_prefix(url) as prefix:
        yield {"redis_url": url, "redis_prefix": prefix}


@pytest.fixture
async def nodes(
    tmp_path: Path, redis_settings: dict[str, object]
) -> AsyncIterator[list[RunningServer]]:
    """Two nodes, A and B, sharing one Redis store."""
    running = []
    for name in ("a", "b"):
        config = ServerConfig(
            data_dir=tmp_path / name,
            log_max_bytes=4000,
            detach_grace=0.3,
            **redis_settings,  # type: ignore[arg-type]
        )
        running.append(await start_server(config, registry=demo_and_flows()))
    yield running
    for server in running:
        await server.close()


def _client(server: RunningServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=30)


def _node(server: RunningServer) -> str:
    from streambind.server.api import MANAGER

    shared = server.app[MANAGER].shared
    assert shared is not None
    return shared.node


async def test_a_run_on_one_node_is_listed_followed_and_resumed_on_the_other(
    nodes: list[RunningServer],
) -> None:
    a, b = nodes
    async with _client(a) as on_a, _client(b) as on_b:
        async with on_a.stream(
            "POST", "/api/endpoints/hold", json={"key": "x-node", "before": 3, "after": 3}
        ) as caller:
            stream = events(caller)
            first = await anext(stream)
            run_id = caller.headers["x-run-id"]
            record = await run_record(on_b, run_id, lambda r: r["events"] == 3, "B to see 3 events")
            assert record["node"] == _node(a)
            assert record["status"] == "running"
            listed = (await on_b.get("/api/runs")).json()["runs"]
            assert [r["id"] for r in listed] == [run_id]
            assert listed[0]["node"] == _node(a)
            # Resumed on B after event 1: the old events from Redis, then the live ones.
            async with on_b.stream(
                "GET", f"/api/runs/{run_id}/events", headers={"Last-Event-ID": first.id}
            ) as resumed:
                theirs = events(resumed)
                got = [await anext(theirs), await anext(theirs)]
                flows.release("x-node")
                got += [e async for e in theirs if isinstance(e, Event)]
        assert [e.id for e in got] == ["2", "3", "4", "5", "6", "7"]
        assert [e.json() for e in got[:5]] == [{"n": n} for n in range(2, 7)]
        assert got[-1].event == "end"
        done = await run_record(on_b, run_id, lambda r: r["status"] == "succeeded", "the end")
        assert done["result"] == {"released": "x-node"}
        # The finished run replays whole on B, and past its end is 204 there too.
        replay = split_events((await on_b.get(f"/api/runs/{run_id}/events")).text)
        assert [e.id for e in replay] == [str(n) for n in range(1, 8)]
        past = await on_b.get(f"/api/runs/{run_id}/events", headers={"Last-Event-ID": "7"})
        assert past.status_code == 204


async def test_delete_on_the_other_node_cancels_the_run_where_it_executes(
    nodes: list[RunningServer],
) -> None:
    a, b = nodes
    async with _client(a) as on_a, _client(b) as on_b:
        async with on_a.stream("POST", "/api/endpoints/tidy", json={"key": "x-cancel"}) as caller:
            stream = events(caller)
            await anext(stream)
            run_id = caller.headers["x-run-id"]
            await run_record(on_b, run_id, lambda r: r["events"] == 1, "B to see the run")
            response = await on_b.delete(f"/api/runs/{run_id}")
            assert response.status_code == 202
            tail = [e async for e in stream if isinstance(e, Event)]
        assert tail[-1].event == "cancelled"
        assert "x-cancel" in flows.cleaned_up  # the workflow's finally ran, on A
        await run_record(on_b, run_id, lambda r: r["status"] == "cancelled", "B to see it")
        again = await on_b.delete(f"/api/runs/{run_id}")
        assert again.status_code == 409


async def test_a_follower_on_another_node_keeps_the_run_past_its_grace(
    nodes: list[RunningServer],
) -> None:
    a, b = nodes
    async with _client(a) as on_a, _client(b) as on_b:
        async with on_a.stream(
            "POST", "/api/endpoints/hold", json={"key": "x-grace", "before": 1, "after": 1}
        ) as caller:
            await anext(events(caller))
            run_id = caller.headers["x-run-id"]
            await run_record(on_b, run_id, lambda r: r["events"] == 1, "B to see the run")
            follower = on_b.stream(
                "GET", f"/api/runs/{run_id}/events", headers={"Last-Event-ID": "1"}
            )
            response = await follower.__aenter__()
            try:
                await wait_for(
                    lambda: RedisFollowers.count(a, run_id), lambda n: n == 1, "B's follower"
                )
            except BaseException:
                await follower.__aexit__(None, None, None)
                raise
        # The caller left A; B's follower holds the run well past A's grace (0.3 s).
        await asyncio.sleep(0.9)
        assert (await on_a.get(f"/api/runs/{run_id}")).json()["status"] == "running"
        # B's follower leaves too: now the grace runs out and A cancels the run.
        await response.aclose()
        await follower.__aexit__(None, None, None)
        await run_record(on_a, run_id, lambda r: r["status"] == "cancelled", "the cancel")


class RedisFollowers:
    @staticmethod
    async def count(server: RunningServer, run_id: str) -> int:
        from streambind.server.api import MANAGER

        manager = server.app[MANAGER]
        run = manager.get(run_id)
        assert run is not None and manager.shared is not None
        return await manager.shared.followers_elsewhere(run)


async def test_events_trimmed_from_redis_are_410_on_the_other_node(
    nodes: list[RunningServer],
) -> None:
    a, b = nodes
    async with _client(a) as on_a, _client(b) as on_b:
        # 1,000 messages through a 4,000-byte log: Redis keeps about the same window.
        finished = await on_a.post("/api/endpoints/echo", json={"text": "t" * 20, "times": 1000})
        run_id = finished.headers["x-run-id"]
        gone = await on_b.get(f"/api/runs/{run_id}/events", headers={"Last-Event-ID": "1"})
        assert gone.status_code == 410
        assert gone.json()["error"]["type"] == "events_gone"
        kept = gone.json()["error"]["first_kept"]
        assert 1 < kept <= 1001
        tail = await on_b.get(
            f"/api/runs/{run_id}/events", headers={"Last-Event-ID": str(kept - 1)}
        )
        got = split_events(tail.text)
        assert [int(e.id) for e in got] == list(range(kept, 1002))
        assert got[-1].event == "end"


async def test_a_dead_nodes_run_ends_with_node_lost_exactly_once(
    nodes: list[RunningServer], redis_settings: dict[str, object]
) -> None:
    _a, b = nodes
    async with _client(b) as on_b:
        # A run whose record says it runs on a node that never heartbeats.
        import redis.asyncio as aioredis

        prefix = redis_settings["redis_prefix"]
        url = str(redis_settings["redis_url"])
        async with aioredis.Redis.from_url(url) as r:
            await r.hset(
                f"{prefix}run:deadbeef00000000",
                mapping={
                    "endpoint": "hold",
                    "params": "{}",
                    "node": "ghost#0000",
                    "status": "running",
                    "created": "1.0",
                    "finished": "",
                    "messages": 1,
                    "last_message": '{"n":1}',
                    "last_seq": 1,
                    "result": "",
                    "error": "",
                },
            )
            await r.xadd(
                f"{prefix}run:deadbeef00000000:events",
                {b"f": b'id: 1\nevent: message\ndata: {"n":1}\n\n'},
                id="1-0",
            )
            await r.zadd(f"{prefix}runs", {"deadbeef00000000": 1.0})
            # Two stores notice at once: exactly one of them ends the run.
            stores = [RedisRunStore(ServerConfig(**redis_settings)) for _ in range(2)]  # type: ignore[arg-type]
            for store in stores:
                store.connection.redis = aioredis.Redis.from_url(url)
            try:
                ended = await asyncio.gather(
                    *(s.liveness.end_lost("deadbeef00000000", "ghost#0000") for s in stores)
                )
            finally:
                for store in stores:
                    await store.connection.redis.aclose()
            assert sorted(ended) == [False, True]
            assert await r.xlen(f"{prefix}run:deadbeef00000000:events") == 2
        body = (await on_b.get("/api/runs/deadbeef00000000/events")).text
        got = split_events(body)
        assert [e.id for e in got] == ["1", "2"]
        assert got[-1].event == "error"
        assert got[-1].json()["error"]["type"] == "node_lost"
        record = (await on_b.get("/api/runs/deadbeef00000000")).json()
        assert record["status"] == "failed"
        assert record["error"]["type"] == "node_lost"


async def test_a_live_follower_of_a_node_that_dies_gets_node_lost(
    nodes: list[RunningServer], redis_settings: dict[str, object]
) -> None:
    a, b = nodes
    async with (
        _client(a) as on_a,
        _client(b) as on_b,
        on_a.stream("POST", "/api/endpoints/hold", json={"key": "x-dies", "before": 2}) as caller,
    ):
        await anext(events(caller))
        run_id = caller.headers["x-run-id"]
        await run_record(on_b, run_id, lambda r: r["events"] == 2, "B to see the run")
        async with on_b.stream(
            "GET", f"/api/runs/{run_id}/events", headers={"Last-Event-ID": "2"}
        ) as follower:
            # A stops heartbeating as a dead process would; B's sweep notices.
            from streambind.server.api import MANAGER

            store = a.app[MANAGER].store
            assert isinstance(store, RedisRunStore)
            await asyncio.to_thread(store.liveness.stop_heartbeat)
            await store.connection.redis.delete(store.keys.node(_node(a)))
            got = await collect(follower)
    assert got[-1].event == "error"
    assert got[-1].id == "3"
    assert got[-1].json()["error"]["type"] == "node_lost"


async def test_heartbeats_tell_the_database_which_staging_owners_are_gone(
    nodes: list[RunningServer], redis_settings: dict[str, object]
) -> None:
    import redis.asyncio as aioredis

    from streambind.server.node import PROCESS_ID

    a, _ = nodes
    # The store answers what the demo's database asks at start-up (handed to resources).
    store = a.app[MANAGER].store
    assert store.node_alive(PROCESS_ID) is True  # this process heartbeats
    assert store.node_alive("elsewhere:1:00000000") is None  # never seen: age decides
    # A node that joined once and whose heartbeat lapsed is gone, for a node starting now.
    prefix = redis_settings["redis_prefix"]
    async with aioredis.Redis.from_url(str(redis_settings["redis_url"])) as r:
        await r.sadd(f"{prefix}nodes", "gone-host:42:deadbeef#0001")
    later = await start_server(
        ServerConfig(data_dir=a.config.data_dir.parent / "c", **redis_settings),  # type: ignore[arg-type]
        registry=demo_and_flows(),
    )
    try:
        assert later.app[MANAGER].store.node_alive("gone-host:42:deadbeef") is False
        assert later.app[MANAGER].store.node_alive(PROCESS_ID) is True
    finally:
        await later.close()


async def test_a_firehose_beyond_the_log_reaches_a_follower_on_another_node_whole(
    tmp_path: Path, redis_settings: dict[str, object]
) -> None:
    # The workflow outruns Redis's writer by far more than its log keeps: the stream must
    # be trimmed behind what was shipped, not behind what the workflow has sent.
    running = [
        await start_server(
            ServerConfig(data_dir=tmp_path / n, log_max_bytes=1 << 20, **redis_settings),  # type: ignore[arg-type]
            registry=demo_and_flows(),
        )
        for n in ("a", "b")
    ]
    a, b = running
    n = 30_000
    try:
        async with _client(a) as on_a, _client(b) as on_b:
            caller = asyncio.create_task(
                on_a.post("/api/endpoints/hold", json={"key": "x-fire", "before": 0, "after": n})
            )
            run = await wait_for(
                lambda: on_b.get("/api/runs"), lambda r: bool(r.json()["runs"]), "the run on B"
            )
            run_id = run.json()["runs"][0]["id"]
            async with on_b.stream("GET", f"/api/runs/{run_id}/events") as follower:
                await wait_for(
                    lambda: RedisFollowers.count(a, run_id), lambda c: c == 1, "B's follower"
                )
                flows.release("x-fire")
                body = b"".join([chunk async for chunk in follower.aiter_raw()])
            await caller
    finally:
        for server in running:
            await server.close()
    got = split_events(body.decode())
    assert [int(e.id) for e in got] == list(range(1, n + 2))
    assert got[-1].event == "end"


async def test_a_burst_of_requests_on_another_node_waits_for_connections_not_fails(
    nodes: list[RunningServer],
) -> None:
    a, b = nodes
    limits = httpx.Limits(max_connections=400)
    async with (
        _client(a) as on_a,
        httpx.AsyncClient(base_url=b.url, timeout=60, limits=limits) as on_b,
    ):
        done = await on_a.post("/api/endpoints/echo", json={"text": "x", "times": 3})
        run_id = done.headers["x-run-id"]
        answers = await asyncio.gather(*(on_b.get(f"/api/runs/{run_id}") for _ in range(300)))
    assert {r.status_code for r in answers} == {200}
    assert {r.json()["status"] for r in answers} == {"succeeded"}


async def test_a_closing_node_cuts_its_followers_of_other_nodes_runs_at_once(
    tmp_path: Path, redis_settings: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    from streambind.server import serve

    # A shutdown timeout far beyond the bound below: a node that left these followers
    # to it would not close in time.
    monkeypatch.setattr(serve, "_SHUTDOWN_TIMEOUT_S", 120.0)
    a, b = [
        await start_server(
            ServerConfig(data_dir=tmp_path / name, **redis_settings),  # type: ignore[arg-type]
            registry=demo_and_flows(),
        )
        for name in ("a", "b")
    ]
    try:
        body = {"key": "leaving", "before": 2, "after": 2}
        async with (
            _client(a) as on_a,
            _client(b) as on_b,
            on_a.stream("POST", "/api/endpoints/hold", json=body) as caller,
        ):
            run_id = caller.headers["x-run-id"]
            await run_record(on_b, run_id, lambda r: r.get("events") == 2, "B to see the run")
            async with on_b.stream("GET", f"/api/runs/{run_id}/events") as follower:
                stream = events(follower)
                assert (await anext(stream)).id == "1"
                await wait_for(
                    lambda: RedisFollowers.count(a, run_id), lambda n: n == 1, "B's follower"
                )
                closing = asyncio.create_task(b.close())
                # Cut without a terminal event, after every event written.
                rest = []
                with contextlib.suppress(httpx.RemoteProtocolError):  # the cut
                    async for event in stream:
                        if isinstance(event, Event):
                            rest.append(event)
                assert [e.id for e in rest] == ["2"]
                await asyncio.wait_for(closing, 30)
            # B's follower counts as gone: A's detach grace depends on that count.
            assert await RedisFollowers.count(a, run_id) == 0
            # Its client resumes on the node that goes on.
            async with on_a.stream(
                "GET", f"/api/runs/{run_id}/events", headers={"Last-Event-ID": "2"}
            ) as resumed:
                flows.release("leaving")
                tail = await collect(resumed)
            assert [e.id for e in tail] == ["3", "4", "5"]
            assert tail[-1].event == "end"
    finally:
        for server in (a, b):
            await server.close()
