"""Faults with bounded loops that stop by themselves: cut connections, resumed streams."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3

import flows
import httpx
from cutter import CuttingProxy
from polling import newest_run, run_record, wait_for

from streambind.app.client import StreamClient

MESSAGES = 5_000
CLIENTS = 20
CUTS_EACH = 10


async def test_a_resume_storm_leaves_every_client_with_every_message_once(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(retry_ms=1)
    rng = random.Random(20261124)  # cut points differ per client, the same on every run
    proxies = [
        CuttingProxy(
            server.host, server.port, cuts=[rng.randint(2_000, 12_000) for _ in range(CUTS_EACH)]
        )
        for _ in range(CLIENTS)
    ]
    urls = [await proxy.start() for proxy in proxies]
    key = "storm"
    try:
        async with httpx.AsyncClient(base_url=server.url) as api:
            # The run sends its first message, then waits until every client follows it.
            caller_client = StreamClient(urls[0], max_reconnects=3)
            caller = caller_client.call("hold", {"key": key, "before": 1, "after": MESSAGES - 1})
            calls = [asyncio.create_task(caller.run())]
            run = await newest_run(api, lambda r: r["events"] == 1, "the first message")
            watchers = [StreamClient(url, max_reconnects=3) for url in urls[1:]]
            calls += [
                asyncio.create_task(w.watch(f"{url}/api/runs/{run['id']}/events").run())
                for w, url in zip(watchers, urls[1:], strict=True)
            ]
            await run_record(api, run["id"], lambda r: r["followers"] >= CLIENTS, "all follow")
            flows.release(key)
            states = await asyncio.wait_for(asyncio.gather(*calls), 120)
            for client in [caller_client, *watchers]:
                await client.aclose()
    finally:
        for proxy in proxies:
            await proxy.close()
    expected = [{"n": i} for i in range(1, MESSAGES + 1)]
    for state in states:
        assert state.status == "succeeded", state.error
        assert state.chunks == expected
    total_cuts = sum(state.reconnects for state in states)
    assert total_cuts == CLIENTS * CUTS_EACH, f"{total_cuts} cuts happened"


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_cancelling_imports_at_random_points_leaves_all_rows_or_none(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(detach_grace=0.05)
    data_dir = server.config.data_dir
    rng = random.Random(7)
    rows = 300

    async def one_import(client: httpx.AsyncClient, how: str, after: int) -> str:
        async with client.stream(
            "POST", "/api/endpoints/import", json={"rows": rows, "batch_size": 10, "delay_ms": 1}
        ) as response:
            run_id = response.headers["x-run-id"]
            seen = 0
            async for line in response.aiter_lines():
                seen += line.startswith("event: ")
                if seen == after:
                    break
            if how == "delete":
                await client.delete(f"/api/runs/{run_id}")
        # "disconnect": leaving the block closed the connection; the grace period ends it.
        await run_record(client, run_id, lambda r: r["status"] != "running", "the run ends")
        return run_id

    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        await one_import(client, "delete", 3)  # warm up: connections, threads, files
        tasks_before = len(asyncio.all_tasks())
        fds_before = _open_fds()
        for attempt in range(12):
            how = "delete" if attempt % 2 else "disconnect"
            run_id = await one_import(client, how, rng.randint(1, 31))
            with contextlib.closing(sqlite3.connect(data_dir / "streambind.db")) as db:
                (count,) = db.execute(
                    "SELECT COUNT(*) FROM people WHERE run_id = ?", (run_id,)
                ).fetchone()
            assert count in (0, rows), f"{how} left {count} of {rows} rows"
            assert [p for p in (data_dir / "staging").rglob("*.db")] == []

        async def leftovers() -> tuple[int, int]:
            return len(asyncio.all_tasks()), _open_fds()

        # Handlers of the last runs may still be returning: wait (bounded) until they have.
        await wait_for(
            leftovers,
            lambda now: now[0] <= tasks_before and now[1] <= fds_before,
            "no task and no file descriptor left over",
        )


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def _raw_get(host: str, port: int, path: str) -> tuple[asyncio.StreamReader, object]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


async def test_a_1kb_per_second_reader_never_costs_memory_or_the_fast_reader_a_message(
    start,  # type: ignore[no-untyped-def]
) -> None:
    n = 1_000_000
    server = await start()
    key = "slow-consumer"
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as api:

        async def call() -> None:
            # The caller is a third follower; it reads the stream and keeps none of it.
            body = {"key": key, "before": 1, "after": n - 1}
            async with api.stream("POST", "/api/endpoints/hold", json=body) as response:
                async for _ in response.aiter_raw():
                    pass

        caller = asyncio.create_task(call())
        run = await newest_run(api, lambda r: r["events"] == 1, "the first message")
        path = f"/api/runs/{run['id']}/events"
        fast_reader, fast_writer = await _raw_get(server.host, server.port, path)
        slow_reader, slow_writer = await _raw_get(server.host, server.port, path)
        await run_record(api, run["id"], lambda r: r["followers"] == 3, "three followers")

        baseline = peak = _rss()
        slow_bytes = b""

        async def fast() -> int:
            events, tail = 0, b""
            while chunk := await fast_reader.read(1 << 20):
                events += (tail + chunk).count(b"\ndata: ")
                tail = chunk[-6:]
            return events

        async def slow() -> None:
            nonlocal slow_bytes
            while chunk := await slow_reader.read(1024):
                slow_bytes += chunk
                await asyncio.sleep(1)  # about 1 KB/s: the pace under test, not a synchronisation

        async def watch_memory() -> None:
            nonlocal peak
            while True:
                peak = max(peak, _rss())
                await asyncio.sleep(0.05)

        slow_task = asyncio.create_task(slow())
        watcher = asyncio.create_task(watch_memory())
        flows.release(key)
        fast_events = await fast()
        await caller
        watcher.cancel()
        # The fast reader got every message and the terminal event.
        assert fast_events == n + 1
        # The slow one made no progress for the stall time and was let go: read on at
        # full speed now, its stream is cut before any terminal event (never a silent
        # gap), and a reconnection from the last event it got is told those are gone.
        slow_task.cancel()
        while chunk := await slow_reader.read(1 << 20):
            slow_bytes += chunk
        assert b"event: end" not in slow_bytes
        whole_lines = slow_bytes.split(b"\n")[:-1]  # the cut may end mid-line
        ids = [int(line[4:]) for line in whole_lines if line.startswith(b"id: ")]
        assert ids == list(range(1, len(ids) + 1))
        resumed = await api.get(path, headers={"Last-Event-ID": str(ids[-1])})
        assert resumed.status_code == 410
        for writer in (fast_writer, slow_writer):
            writer.close()  # type: ignore[attr-defined]
    # The bound: the run's log (8 MiB, counted with each event's overhead) plus a batch
    # (at most 256 KiB) per follower. 1,000,000 messages went through (about 45 MB).
    assert peak - baseline < 24 * 2**20, f"grew by {(peak - baseline) / 2**20:.0f} MiB"


async def test_load_of_300_runs_and_1000_followers_then_the_run_limit(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(max_runs=300)
    key = "load"
    async with httpx.AsyncClient(
        base_url=server.url, timeout=60, limits=httpx.Limits(max_connections=400)
    ) as client:

        async def one_run() -> list[int]:
            body = {"key": key, "before": 1, "after": 9}
            async with client.stream("POST", "/api/endpoints/hold", json=body) as response:
                text = b"".join([chunk async for chunk in response.aiter_raw()]).decode()
            return [int(line[4:]) for line in text.splitlines() if line.startswith("id: ")]

        runs = [asyncio.create_task(one_run()) for _ in range(300)]
        listed = await wait_for(
            lambda: _running(client),
            lambda running: len(running) == 300,
            "300 runs running",
        )
        # At the limit: one more is refused, with Retry-After, and nothing else changes.
        refused = await client.post("/api/endpoints/silent")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"

        async def follow(run_id: str) -> int:
            reader, writer = await _raw_get(server.host, server.port, f"/api/runs/{run_id}/events")
            events, tail = 0, b""
            while chunk := await reader.read(65536):
                events += (tail + chunk).count(b"\ndata: ")
                tail = chunk[-6:]
            writer.close()
            return events

        followers = [asyncio.create_task(follow(listed[i % 300])) for i in range(1_000)]
        await wait_for(
            lambda: _followers(client),
            lambda count: count >= 1_300,
            "1,000 followers attached",
        )
        health = await client.get("/healthz")
        assert health.status_code == 200 and health.json()["running"] == 300
        flows.release(key)
        ids = await asyncio.gather(*runs)
        counts = await asyncio.gather(*followers)
    assert all(found == list(range(1, 12)) for found in ids)  # 10 messages and the end
    assert counts == [11] * 1_000


async def _running(client: httpx.AsyncClient) -> list[str]:
    runs = (await client.get("/api/runs")).json()["runs"]
    return [r["id"] for r in runs if r["status"] == "running" and r["endpoint"] == "hold"]


async def _followers(client: httpx.AsyncClient) -> int:
    ids = await _running(client)
    records = await asyncio.gather(*(client.get(f"/api/runs/{i}") for i in ids))
    return sum(r.json()["followers"] for r in records)
