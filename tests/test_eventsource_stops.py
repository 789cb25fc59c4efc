"""A standard EventSource never reconnects forever (issue 9): gone events are 410, not a loop."""

from __future__ import annotations

import asyncio

import flows
import httpx
from eventsource import follow_like_eventsource
from polling import run_record
from wire import split_events


async def _finished_firehose(client: httpx.AsyncClient, n: int) -> str:
    caller = await client.post("/api/endpoints/firehose", json={"n": n})
    assert caller.status_code == 200
    return caller.headers["x-run-id"]


async def test_events_no_longer_kept_are_answered_410_before_any_stream(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(log_max_bytes=4000)
    async with httpx.AsyncClient(base_url=server.url) as client:
        run_id = await _finished_firehose(client, 2000)
        record = (await client.get(f"/api/runs/{run_id}")).json()
        for last_event_id in (None, "1", "10"):
            headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
            gone = await client.get(f"/api/runs/{run_id}/events", headers=headers)
            assert gone.status_code == 410
            assert gone.headers["content-type"].startswith("application/json")
            assert gone.headers["x-run-id"] == run_id
            error = gone.json()["error"]
            assert error["type"] == "events_gone"
            assert 1 < error["first_kept"] <= record["last_event_id"]
            assert error["run"] == f"/api/runs/{run_id}"
            assert f"GET /api/runs/{run_id}" in error["message"]
        # From the oldest kept event on, the replay is whole; past the end, 204.
        first_kept = error["first_kept"]
        replay = await client.get(
            f"/api/runs/{run_id}/events", headers={"Last-Event-ID": str(first_kept - 1)}
        )
        assert replay.status_code == 200
        assert f"id: {first_kept}\n" in replay.text
        assert replay.text.endswith('data: {"status":"succeeded","result":{"sent":2000}}\n\n')
        done = await client.get(
            f"/api/runs/{run_id}/events",
            headers={"Last-Event-ID": str(record["last_event_id"])},
        )
        assert done.status_code == 204


async def test_an_eventsource_asking_for_gone_events_makes_one_request(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(log_max_bytes=4000, retry_ms=10)
    async with httpx.AsyncClient(base_url=server.url) as client:
        run_id = await _finished_firehose(client, 2000)
        for last_event_id in ("", "1"):
            attempts = await follow_like_eventsource(
                client, f"/api/runs/{run_id}/events", last_event_id=last_event_id
            )
            assert [a.status for a in attempts] == [410]


async def test_a_follower_let_go_mid_stream_reconnects_once_and_is_told_410(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(log_max_bytes=16_000, follower_stall=0.3, retry_ms=10)
    key = "let-go"
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=60) as client,
        httpx.AsyncClient(base_url=server.url, timeout=60) as slow_client,
        # 20 MB of events: more than the kernel's socket buffers take for a reader
        # that reads nothing, so its follower stalls.
        client.stream(
            "POST",
            "/api/endpoints/hold",
            json={"key": key, "before": 1, "after": 20_000, "pad": 1000},
        ) as caller,
    ):
        run_id = caller.headers["x-run-id"]

        async def let_the_run_overtake_it() -> None:
            # This follower is attached and reads nothing while the run sends 20,000
            # events through a 16 KB log: it is let go, and the run goes on to its end.
            await run_record(client, run_id, lambda r: r["followers"] == 2, "two followers")
            flows.release(key)
            async for _ in caller.aiter_bytes():
                pass
            await run_record(client, run_id, lambda r: r["status"] == "succeeded", "the end")

        attempts = await follow_like_eventsource(
            slow_client, f"/api/runs/{run_id}/events", before_reading=let_the_run_overtake_it
        )
    assert [a.status for a in attempts] == [200, 410]
    first = attempts[0]
    assert first.cut, "its stream was cut, with no terminal event"
    assert first.events[-1][0] == "message"
    # Every event it did get came in order with no gap, and it resumed from the last.
    ids = [int(e[2]) for e in first.events]
    assert ids == list(range(1, len(ids) + 1))
    assert attempts[1].last_event_id_sent == str(ids[-1])


async def test_fell_behind_carries_the_followers_position_as_its_id(start) -> None:  # type: ignore[no-untyped-def]
    # A replay of a finished run whose log is released under it (the run leaves the
    # kept runs) meets events that are gone. The error says so, with the id of the
    # last event this follower really got, so the EventSource reconnection is answered
    # 410 and stops.
    server = await start(keep_runs=1, follower_stall=60, retry_ms=10)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        run_id = await _finished_firehose(client, 200_000)
        probe = await client.get(f"/api/runs/{run_id}/events")
        start_after = probe.json()["error"]["first_kept"] - 1  # the oldest it keeps on
        replay, request = await asyncio.open_connection(server.host, server.port)
        request.write(
            f"GET /api/runs/{run_id}/events HTTP/1.0\r\n"
            f"Last-Event-ID: {start_after}\r\n\r\n".encode()
        )
        await request.drain()
        # It reads nothing: its follower waits on a full socket, part-way through.
        await run_record(client, run_id, lambda r: r["followers"] == 1, "the replay follows")
        for _ in range(2):  # two newer runs push it out of the kept runs
            assert (await client.post("/api/endpoints/silent")).status_code == 200
        assert (await client.get(f"/api/runs/{run_id}")).status_code == 404
        body = await replay.read()  # HTTP/1.0: the answer ends when the connection does
        request.close()
        events = split_events(body.decode().split("\r\n\r\n", 1)[1])
        assert events[-1].event == "error"
        error = events[-1].json()["error"]
        assert error["type"] == "fell_behind"
        assert events[-1].id == events[-2].id, "its id is the last event it got"
        ids = [int(e.id) for e in events[:-1]]
        assert ids == list(range(start_after + 1, start_after + 1 + len(ids)))
