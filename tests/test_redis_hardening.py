"""The Redis store under hostile requests and unlucky operations: an id that names a key
that is not a run's, a prefix with glob characters, a Redis restarted empty, and a
follower's node that dies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import flows
import httpx
import pytest
import redis.asyncio as aioredis
import redisdb
from polling import run_record, wait_for
from served import demo_and_flows
from wire import Event, events

from streambind.server import RunningServer, ServerConfig, start_server
from streambind.server.api import MANAGER
from streambind.server.redis_store import RedisRunStore
from streambind.server.redis_store.connection import Connection
from streambind.server.redis_store.keys import Keys, is_run_id


@pytest.fixture
async def redis_settings() -> AsyncIterator[dict[str, object]]:
    url = redisdb.require_redis()
    with redisdb.fresh_prefix(url) as prefix:
        yield {"redis_url": url, "redis_prefix": prefix}


async def _node(tmp_path: Path, name: str, **settings: object) -> RunningServer:
    config = ServerConfig(data_dir=tmp_path / name, **settings)  # type: ignore[arg-type]
    return await start_server(config, registry=demo_and_flows())


@contextlib.contextmanager
def _private_redis(tmp_path: Path) -> Iterator[tuple[redisdb.PrivateRedis, dict[str, object]]]:
    """A redis-server of the test's own (to fill, restart or count), and the nodes' settings."""
    redis = redisdb.PrivateRedis(tmp_path / "redis").start()
    try:
        yield redis, {"redis_url": redis.url, "redis_prefix": "sb:"}
    finally:
        redis.stop()


@contextlib.asynccontextmanager
async def _two_nodes(
    tmp_path: Path, settings: dict[str, object], *, gates: tuple[str, ...] = (), **on_a: object
) -> AsyncIterator[tuple[RunningServer, RunningServer, httpx.AsyncClient, httpx.AsyncClient]]:
    """Nodes A and B on one Redis (A with the settings ``on_a`` too) and a client of each.
    On the way out the ``gates`` open, so that no held workflow outlives the test."""
    a = await _node(tmp_path, "a", **on_a, **settings)
    b = await _node(tmp_path, "b", **settings)
    try:
        async with (
            httpx.AsyncClient(base_url=a.url, timeout=30) as to_a,
            httpx.AsyncClient(base_url=b.url, timeout=30) as to_b,
        ):
            yield a, b, to_a, to_b
    finally:
        for key in gates:
            flows.gate(key).set()
        await a.close()
        await b.close()


def _ids(body: str) -> list[int]:
    """The event ids of a stream's body, in order."""
    return [int(line[4:]) for line in body.splitlines() if line.startswith("id: ")]


def _store(server: RunningServer) -> RedisRunStore:
    store = server.app[MANAGER].store
    assert isinstance(store, RedisRunStore)
    return store


async def test_an_id_naming_a_runs_event_stream_is_404_and_no_outage(
    tmp_path: Path, redis_settings: dict[str, object]
) -> None:
    async with _two_nodes(tmp_path, redis_settings) as (a, b, on_a, on_b):
        finished = await on_a.post("/api/endpoints/echo", json={"text": "x", "times": 2})
        run_id = finished.headers["x-run-id"]
        prefix = str(redis_settings["redis_prefix"])
        # Each names a key of the store that is not a run's record: the run's stream
        # (a WRONGTYPE for HGETALL), the index, another deployment's run.
        for hostile in (f"{run_id}:events", "x:events", "runs", f"{run_id}0", prefix):
            for client in (on_a, on_b):
                for method in ("GET", "DELETE"):
                    answer = await client.request(method, f"/api/runs/{hostile}")
                    assert answer.status_code == 404, (hostile, answer.text)
                    assert prefix not in answer.text.replace(hostile, "")  # echoed
                    assert "WRONGTYPE" not in answer.text
        for client in (on_a, on_b):
            assert (await client.get("/healthz")).status_code == 200
            again = await client.post("/api/endpoints/echo", json={"text": "y"})
            assert again.status_code == 200
        assert _store(a).problem() is None and _store(b).problem() is None


def test_only_the_generated_form_of_a_run_id_is_looked_up() -> None:
    assert is_run_id("0123456789abcdef")
    for text in ("0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "", "a:events"):
        assert not is_run_id(text)


def test_a_refusal_is_no_outage_and_an_unreachable_redis_says_nothing_of_where() -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import ResponseError

    connection = Connection("redis://:secret@10.1.2.3:6380/0", max_runs=1)
    refused = connection.unavailable(ResponseError("WRONGTYPE Operation against a key"))
    assert connection.problem() is None
    assert "WRONGTYPE" not in str(refused)
    down = connection.unavailable(RedisConnectionError("Error 111 connecting to 10.1.2.3:6380"))
    assert connection.problem() == "Redis is unreachable"
    assert "10.1.2.3" not in str(down) and "secret" not in connection.redacted_url


async def test_glob_characters_in_the_prefix_are_taken_literally(
    redis_settings: dict[str, object],
) -> None:
    url = str(redis_settings["redis_url"])
    base = str(redis_settings["redis_prefix"])
    # "rt2[g]:" as a pattern matches "rt2g:": a live process of that other deployment.
    keys = Keys(f"{base}rt2[g]:")
    async with aioredis.Redis.from_url(url) as r:
        await r.set(f"{base}rt2g:process:someone-else", "1", ex=30)
        await r.set(keys.process("one-of-ours"), "1", ex=30)
        found = [k.decode() async for k in r.scan_iter(match=keys.every_process, count=500)]
    assert found == [keys.process("one-of-ours")]


async def test_a_redis_restarted_empty_gets_the_running_runs_back(tmp_path: Path) -> None:
    with _private_redis(tmp_path) as (redis, settings):
        async with (
            _two_nodes(tmp_path, settings) as (_, _, on_a, on_b),
            on_a.stream("POST", "/api/endpoints/hold", json={"key": "x-empty"}) as caller,
        ):
            await anext(events(caller))
            run_id = caller.headers["x-run-id"]
            redis.stop()
            redis.start()  # the same port, empty

            async def listed_on_b() -> list[str]:
                try:
                    answer = await on_b.get("/api/runs")
                except httpx.HTTPError:
                    return []
                if answer.status_code != 200:
                    return []
                return [run["id"] for run in answer.json()["runs"]]

            await wait_for(listed_on_b, lambda ids: run_id in ids, "B to list the run again")
            async with aioredis.Redis.from_url(redis.url) as r:
                assert await r.sismember("sb:running", run_id)
            flows.gate("x-empty").set()
            await run_record(on_b, run_id, lambda r: r["status"] == "succeeded", "its end")


async def test_a_follower_whose_node_died_keeps_no_abandoned_run_alive(
    tmp_path: Path, redis_settings: dict[str, object]
) -> None:
    async with (
        _two_nodes(tmp_path, redis_settings, detach_grace=0.3, gates=("x-dead-follower",)) as (
            a,
            b,
            on_a,
            on_b,
        ),
        on_a.stream("POST", "/api/endpoints/hold", json={"key": "x-dead-follower"}) as caller,
    ):
        await anext(events(caller))
        run_id = caller.headers["x-run-id"]
        await run_record(on_b, run_id, lambda r: r["events"] == 1, "B to see the run")
        async with on_b.stream("GET", f"/api/runs/{run_id}/events", headers={"Last-Event-ID": "1"}):
            shared = a.app[MANAGER].shared
            executed = a.app[MANAGER].get(run_id)
            assert shared is not None and executed is not None
            await wait_for(
                lambda: shared.followers_elsewhere(executed),
                lambda n: n == 1,
                "B's follower counted",
            )
            # The caller leaves A; then B dies as a killed process would: its
            # heartbeat stops and lapses, its follower never says it left.
            await caller.aclose()
            store = _store(b)
            await asyncio.to_thread(store.liveness.stop_heartbeat)
            await store.connection.redis.delete(store.keys.node(store.node))
            await run_record(on_a, run_id, lambda r: r["status"] == "cancelled", "A to cancel it")


async def test_writes_a_full_redis_refused_go_in_once_it_takes_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="streambind.server.redis")
    with _private_redis(tmp_path) as (redis, settings):
        async with (
            _two_nodes(tmp_path, settings) as (_, _, on_a, on_b),
            aioredis.Redis.from_url(redis.url) as r,
            on_a.stream(
                "POST",
                "/api/endpoints/hold",
                json={"key": "x-full", "before": 1, "after": 40, "then": "x-full-end"},
            ) as caller,
        ):
            await anext(events(caller))
            run_id = caller.headers["x-run-id"]
            # Redis is full (noeviction): every write is refused with OOM.
            await r.config_set("maxmemory", 1)
            flows.gate("x-full").set()

            async def refusals() -> int:
                return caplog.text.count("Redis refused a write")

            # 40 messages while Redis refuses what A's writer sends; then the end, once
            # Redis takes writes again.
            await wait_for(refusals, lambda n: n > 0, "the refusal")
            await r.config_set("maxmemory", 0)
            flows.gate("x-full-end").set()
            replay = await on_b.get(f"/api/runs/{run_id}/events", headers={"Last-Event-ID": "0"})
            ids = _ids(replay.text)
            assert ids == list(range(1, 43))  # 41 messages and the end, every one
            assert "event: end" in replay.text
            record = await run_record(on_b, run_id, lambda r: r["status"] != "running", "end")
            assert record["status"] == "succeeded" and record["last_event_id"] == 42


async def _read_all(caller: httpx.Response) -> list[Event]:
    return [item async for item in events(caller) if isinstance(item, Event)]


@dataclass
class _FullRedis:
    """A run on node A of 600 messages of about 560 bytes (five times its 64 KiB log),
    sending while Redis is full, with a follower on node B."""

    a: RunningServer
    on_b: httpx.AsyncClient
    redis: aioredis.Redis
    caller: httpx.Response
    run_id: str
    on_b_read: asyncio.Task[list[Event]]


@contextlib.asynccontextmanager
async def _a_run_on_a_full_redis(
    tmp_path: Path, key: str, **on_a: object
) -> AsyncIterator[_FullRedis]:
    with _private_redis(tmp_path) as (redis, settings):
        async with (
            _two_nodes(tmp_path, settings, gates=(key,), log_max_bytes=64 * 1024, **on_a) as (
                a,
                _,
                to_a,
                on_b,
            ),
            aioredis.Redis.from_url(redis.url) as r,
            to_a.stream(
                "POST",
                "/api/endpoints/hold",
                json={"key": key, "before": 1, "after": 600, "pad": 500},
            ) as caller,
        ):
            run_id = caller.headers["x-run-id"]
            await run_record(on_b, run_id, lambda r: r["events"] == 1, "B to see the run")
            async with on_b.stream("GET", f"/api/runs/{run_id}/events") as follower:
                on_b_read = asyncio.create_task(_read_all(follower))
                await run_record(on_b, run_id, lambda r: r["followers"] == 1, "B's follower")
                # Redis is full (noeviction): A's writer can ship nothing.
                await r.config_set("maxmemory", 1)
                flows.gate(key).set()
                yield _FullRedis(a, on_b, r, caller, run_id, on_b_read)


async def test_a_run_waits_for_a_full_redis_as_for_a_slow_follower(tmp_path: Path) -> None:
    async with _a_run_on_a_full_redis(tmp_path, "x-wait") as full:
        run = full.a.app[MANAGER].get(full.run_id)
        assert run is not None
        on_a_read = asyncio.create_task(_read_all(full.caller))

        async def holding() -> bool:
            return run.delivery.holding

        await wait_for(holding, bool, "the run to wait for its writer")
        writer = run.delivery.store_writer
        assert writer is not None
        assert run.messages < 601
        # Nothing Redis has not taken has left the log: once it takes writes, it gets
        # every event, and a follower on B misses none.
        assert run.log.first_kept <= writer.position + 1
        await full.redis.config_set("maxmemory", 0)
        for seen in (await on_a_read, await full.on_b_read):
            assert [e.id for e in seen] == [str(i) for i in range(1, 603)]
            assert seen[-1].event == "end"


async def test_a_run_redis_refuses_for_the_store_stall_fails_alike_on_every_node(
    tmp_path: Path,
) -> None:
    async with _a_run_on_a_full_redis(tmp_path, "x-stall", store_stall=0.5) as full:
        seen = await _read_all(full.caller)
        # A held the run for its writer for the store stall, then ended it.
        assert seen[-1].event == "error"
        assert seen[-1].json()["error"]["type"] == "store_unavailable"
        assert len(seen) < 602
        last = len(seen)
        assert [e.id for e in seen] == [str(i) for i in range(1, last + 1)]
        # Once Redis takes writes, B tells the same story: every event, that error.
        await full.redis.config_set("maxmemory", 0)
        assert await full.on_b_read == seen
        record = await run_record(full.on_b, full.run_id, lambda r: r["status"] != "running", "end")
        assert record["status"] == "failed"
        assert record["error"]["type"] == "store_unavailable"
        assert record["last_event_id"] == last


async def test_a_redis_that_evicts_keys_is_refused_at_start(tmp_path: Path) -> None:
    from deployment import spawn_node

    redis = redisdb.PrivateRedis(tmp_path / "redis").start()
    try:
        async with aioredis.Redis.from_url(redis.url) as r:
            await r.config_set("maxmemory-policy", "allkeys-lru")
        process = await spawn_node("--redis", redis.url, data_dir=tmp_path / "node")
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 2
        lines = stderr.decode().strip().splitlines()
        assert len(lines) == 1, lines
        assert "maxmemory-policy allkeys-lru" in lines[0]
        assert "noeviction" in lines[0]
    finally:
        redis.stop()


async def test_no_form_of_a_redis_password_is_shown(caplog: pytest.LogCaptureFixture) -> None:
    from streambind.server.store import StoreUnavailable

    port = redisdb.free_port()  # nothing listens there
    for url in (
        f"redis://127.0.0.1:{port}/0?password=hunter2",
        f"redis://someone:hunter2@127.0.0.1:{port}/0",
        f"redis://:hunter2@127.0.0.1:{port}",
    ):
        connection = Connection(url, max_runs=1)
        assert "hunter2" not in connection.redacted_url
        with pytest.raises(StoreUnavailable) as refused:
            await connection.open()
        assert "hunter2" not in str(refused.value)
        assert f"127.0.0.1:{port}" in str(refused.value)
    assert "hunter2" not in caplog.text


async def test_a_log_released_for_memory_is_gone_on_every_node(
    tmp_path: Path, redis_settings: dict[str, object]
) -> None:
    # Each run's log is about 5 KB: the second run's end lets the first one's log go.
    async with _two_nodes(tmp_path, redis_settings, max_log_memory=8000) as (_, _, on_a, on_b):
        body = {"text": "t" * 20, "times": 100}
        first = (await on_a.post("/api/endpoints/echo", json=body)).headers["x-run-id"]
        await run_record(on_b, first, lambda r: r["status"] == "succeeded", "its end on B")
        await on_a.post("/api/endpoints/echo", json=body)
        resume = {"Last-Event-ID": "0"}
        on_a_answer = await on_a.get(f"/api/runs/{first}/events", headers=resume)
        assert on_a_answer.status_code == 410

        async def on_b_answer() -> int:
            return (await on_b.get(f"/api/runs/{first}/events", headers=resume)).status_code

        await wait_for(on_b_answer, lambda status: status == 410, "B to answer as A does")
        record = (await on_b.get(f"/api/runs/{first}")).json()
        assert record["status"] == "succeeded" and record["last_event_id"] == 101


async def test_a_node_taken_for_dead_ends_its_run_as_the_others_did(
    tmp_path: Path, redis_settings: dict[str, object]
) -> None:
    async with (
        _two_nodes(tmp_path, redis_settings, gates=("x-fenced", "x-fenced-end")) as (
            a,
            b,
            on_a,
            on_b,
        ),
        on_a.stream(
            "POST",
            "/api/endpoints/hold",
            json={"key": "x-fenced", "before": 2, "after": 5, "then": "x-fenced-end"},
        ) as caller,
    ):
        stream = events(caller)
        await anext(stream)
        run_id = caller.headers["x-run-id"]
        await run_record(on_b, run_id, lambda r: r["events"] == 2, "B to see the run")
        # B takes A for dead (A paused past its heartbeat, say) and ends the run.
        assert await _store(b).liveness.end_lost(run_id, _store(a).node)
        # A goes on as if nothing happened: its next writes are refused, and it ends
        # the run the way B did (its workflow, still at work, is stopped).
        flows.gate("x-fenced").set()
        seen = [item async for item in stream if isinstance(item, Event)]
        assert seen[-1].event == "error"
        assert seen[-1].json()["error"]["type"] == "node_lost"
        on_a_record = await run_record(
            on_a, run_id, lambda r: r["status"] != "running", "A to end it"
        )
        assert on_a_record["status"] == "failed"
        assert on_a_record["error"]["type"] == "node_lost"
        on_b_record = (await on_b.get(f"/api/runs/{run_id}")).json()
        assert on_b_record["status"] == "failed"
        assert on_b_record["error"]["type"] == "node_lost"
        assert on_b_record["last_event_id"] == 3  # the node_lost event, as B wrote it
        replay = await on_b.get(f"/api/runs/{run_id}/events", headers={"Last-Event-ID": "0"})
        ids = _ids(replay.text)
        assert ids == [1, 2, 3]


async def test_followers_on_another_node_read_big_old_messages_from_redis_once(
    tmp_path: Path,
) -> None:
    body = {"key": "x-big", "before": 4, "pad": 500_000}
    with _private_redis(tmp_path) as (redis, settings):
        async with (
            _two_nodes(tmp_path, settings, gates=("x-big",)) as (_, _, on_a, on_b),
            aioredis.Redis.from_url(redis.url) as r,
            on_a.stream("POST", "/api/endpoints/hold", json=body) as caller,
        ):
            await anext(events(caller))
            run_id = caller.headers["x-run-id"]
            await run_record(on_b, run_id, lambda r: r["last_event_id"] == 4, "B to see all 4")
            before = (await r.info("stats"))["total_net_output_bytes"]

            async def replay() -> list[str]:
                headers = {"Last-Event-ID": "0"}
                async with on_b.stream("GET", f"/api/runs/{run_id}/events", headers=headers) as s:
                    got = []
                    async for item in events(s):
                        if isinstance(item, Event):
                            got.append(item.id)
                            if len(got) == 4:
                                return got
                return got

            # Twenty followers replay its four half-megabyte messages at once.
            replays = await asyncio.gather(*(replay() for _ in range(20)))
            assert replays == [["1", "2", "3", "4"]] * 20
            sent = (await r.info("stats"))["total_net_output_bytes"] - before
            # About 2 MB of messages: Redis sent one copy to B for all twenty, not twenty.
            assert sent < 3_000_000, sent


async def test_a_resume_far_ahead_of_its_run_on_another_node_costs_a_few_commands(
    tmp_path: Path,
) -> None:
    with _private_redis(tmp_path) as (redis, settings):
        async with (
            _two_nodes(tmp_path, settings, gates=("x-ahead",)) as (_, _, on_a, on_b),
            aioredis.Redis.from_url(redis.url) as r,
            on_a.stream("POST", "/api/endpoints/hold", json={"key": "x-ahead"}) as caller,
        ):
            await anext(events(caller))
            run_id = caller.headers["x-run-id"]
            await run_record(on_b, run_id, lambda r: r["events"] == 1, "B to see the run")
            before = (await r.info("stats"))["total_commands_processed"]
            ahead = await on_b.get(f"/api/runs/{run_id}/events", headers={"Last-Event-ID": "1000"})
            spent = (await r.info("stats"))["total_commands_processed"] - before
            assert ahead.status_code == 400
            assert ahead.json()["error"]["type"] == "invalid_last_event_id"
            # The resume waits for the events it names (at most 2 s) on XREAD BLOCK; the
            # two nodes' heartbeats and sweeps meanwhile are most of what Redis counted.
            assert spent < 60, spent


async def test_a_run_whose_end_is_in_its_stream_before_its_record_says_so_ends_its_followers(
    tmp_path: Path, redis_settings: dict[str, object]
) -> None:
    b = await _node(tmp_path, "b", **redis_settings)
    prefix = str(redis_settings["redis_prefix"])
    run_id = "0123456789abcdef"
    record = f"{prefix}run:{run_id}"
    events_key = f"{record}:events"

    def frame(seq: int, event: str = "message") -> bytes:
        data = f'{{"n":{seq}}}' if event == "message" else '{"status":"succeeded","result":{}}'
        return f"id: {seq}\nevent: {event}\ndata: {data}\n\n".encode()

    try:
        async with (
            aioredis.Redis.from_url(str(redis_settings["redis_url"])) as r,
            httpx.AsyncClient(base_url=b.url, timeout=10) as on_b,
        ):
            # A run of another node (alive: its heartbeat is there) with one message so far.
            await r.set(f"{prefix}node:elsewhere#0001", "1", ex=60)
            await r.hset(
                record,
                mapping={
                    **{"endpoint": "hold", "params": "{}", "node": "elsewhere#0001"},
                    **{"status": "running", "created": "1.0", "messages": 1, "last_seq": 1},
                },
            )
            await r.xadd(events_key, {b"f": frame(1)}, id="1-0")
            assert (await on_b.get(f"/api/runs/{run_id}")).json()["last_event_id"] == 1
            # Its node writes its last message and its end; its record still says running
            # (the record's final write comes a moment after the events).
            await r.xadd(
                events_key,
                {b"f": frame(2) + frame(3, "end"), b"first": b"2", b"end": b"1"},
                id="3-0",
            )
            await r.hset(record, mapping={"messages": 2, "last_seq": 3})
            replay = await on_b.get(f"/api/runs/{run_id}/events", headers={"Last-Event-ID": "0"})
            ids = _ids(replay.text)
            assert ids == [1, 2, 3]
            assert "event: end" in replay.text
    finally:
        await b.close()
