"""Runs: listing, resuming with Last-Event-ID, several followers, cancelling, abandoning, auth."""

from __future__ import annotations

import asyncio

import flows
import httpx
from polling import run_record
from wire import Event, collect, events, split_events


async def _finished_import(client: httpx.AsyncClient) -> tuple[str, list[Event]]:
    response = await client.post(
        "/api/endpoints/import", json={"rows": 100, "batch_size": 10, "delay_ms": 0}
    )
    return response.headers["x-run-id"], split_events(response.text)


async def test_runs_are_listed_newest_first_with_their_last_message(
    client: httpx.AsyncClient,
) -> None:
    first, _ = await _finished_import(client)
    second = (await client.post("/api/endpoints/silent")).headers["x-run-id"]
    runs = (await client.get("/api/runs")).json()["runs"]
    assert [r["id"] for r in runs] == [second, first]
    assert runs[1]["endpoint"] == "import"
    assert runs[1]["params"] == {"rows": 100, "batch_size": 10, "delay_ms": 0, "source": ""}
    assert runs[1]["status"] == "succeeded"
    assert runs[1]["events"] == 12  # done 0, 10 … 100, then the publish step
    assert runs[1]["last_message"] == {"step": "publish", "rows": 100}
    assert runs[1]["created"].endswith("Z") and runs[1]["finished"].endswith("Z")
    assert runs[0]["last_message"] is None

    detail = (await client.get(f"/api/runs/{first}")).json()
    assert detail["result"]["imported"] == 100
    assert detail["last_event_id"] == 13


async def test_a_failed_run_shows_its_error(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/endpoints/flaky", json={"fail_at": 2, "delay_ms": 0})
    run = (await client.get(f"/api/runs/{response.headers['x-run-id']}")).json()
    assert run["status"] == "failed"
    assert run["error"]["type"] == "FlakyFailure"
    assert "result" not in run


async def test_an_unknown_run_is_404(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/runs/nope"),
        ("GET", "/api/runs/nope/events"),
        ("DELETE", "/api/runs/nope"),
    ]:
        response = await client.request(method, path)
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found"


async def test_replay_resumes_after_last_event_id_without_gaps_or_duplicates(
    client: httpx.AsyncClient,
) -> None:
    run_id, original = await _finished_import(client)
    replay = await client.get(f"/api/runs/{run_id}/events", headers={"Last-Event-ID": "4"})
    assert replay.status_code == 200
    assert replay.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert replay.text.startswith("retry: 3000\n\n")
    assert split_events(replay.text) == original[4:]

    by_query = await client.get(f"/api/runs/{run_id}/events?last_event_id=7")
    assert split_events(by_query.text) == original[7:]

    everything = await client.get(f"/api/runs/{run_id}/events")
    assert split_events(everything.text) == original


async def test_a_finished_run_replayed_past_its_end_answers_204(client: httpx.AsyncClient) -> None:
    run_id, original = await _finished_import(client)
    terminal = original[-1].id
    for last in (terminal, str(int(terminal) + 5)):
        response = await client.get(f"/api/runs/{run_id}/events", headers={"Last-Event-ID": last})
        assert response.status_code == 204
        assert response.content == b""


async def test_a_malformed_last_event_id_is_400(client: httpx.AsyncClient) -> None:
    run_id, _ = await _finished_import(client)
    for bad in ("abc", "-1", "1.5", "9" * 40):
        response = await client.get(f"/api/runs/{run_id}/events", headers={"Last-Event-ID": bad})
        assert response.status_code == 400, bad
        assert response.json()["error"]["type"] == "invalid_last_event_id"


async def test_a_last_event_id_beyond_a_running_runs_end_is_400(
    client: httpx.AsyncClient,
) -> None:
    async with client.stream(
        "POST", "/api/endpoints/hold", json={"key": "beyond", "before": 2}
    ) as held:
        stream = events(held)
        await anext(stream)
        response = await client.get(
            f"/api/runs/{held.headers['x-run-id']}/events", headers={"Last-Event-ID": "50"}
        )
        assert response.status_code == 400
        flows.release("beyond")
        rest = [e async for e in stream if isinstance(e, Event)]
    assert rest[-1].event == "end"


async def test_several_followers_of_one_run_each_get_every_event(
    client: httpx.AsyncClient,
) -> None:
    async with client.stream(
        "POST", "/api/endpoints/hold", json={"key": "followers", "before": 3, "after": 3}
    ) as caller:
        stream = events(caller)
        first = await anext(stream)
        run_id = caller.headers["x-run-id"]

        async def follow(after: str | None, slow: bool) -> list[Event]:
            headers = {"Last-Event-ID": after} if after else {}
            async with client.stream("GET", f"/api/runs/{run_id}/events", headers=headers) as r:
                got = []
                async for item in events(r):
                    if isinstance(item, Event):
                        got.append(item)
                    if slow:
                        await asyncio.sleep(0.01)  # a slower reader, not a synchronisation
                return got

        fast = asyncio.create_task(follow(None, slow=False))
        slow = asyncio.create_task(follow("2", slow=True))
        # Both followers are attached before the run goes on.
        await run_record(client, run_id, lambda r: r["followers"] == 3, "three followers")
        flows.release("followers")
        rest = [first] + [e async for e in stream if isinstance(e, Event)]
        fast_events, slow_events = await asyncio.gather(fast, slow)
    assert [e.id for e in rest] == ["1", "2", "3", "4", "5", "6", "7"]
    assert fast_events == rest
    assert slow_events == rest[2:]


async def test_delete_cancels_and_every_follower_gets_the_cancelled_event(
    client: httpx.AsyncClient,
) -> None:
    async with client.stream(
        "POST", "/api/endpoints/hold", json={"key": "never", "before": 2}
    ) as caller:
        stream = events(caller)
        await anext(stream)
        run_id = caller.headers["x-run-id"]
        async with client.stream("GET", f"/api/runs/{run_id}/events") as follower:
            follower_events = events(follower)
            await anext(follower_events)
            response = await client.delete(f"/api/runs/{run_id}")
            assert response.status_code == 202
            assert response.json()["id"] == run_id
            theirs = [e async for e in follower_events if isinstance(e, Event)]
        mine = [e async for e in stream if isinstance(e, Event)]
    for tail in (theirs, mine):
        assert tail[-1].event == "cancelled"
        assert tail[-1].id == "3"
        assert tail[-1].json() == {"status": "cancelled", "reason": "requested"}
    again = await client.delete(f"/api/runs/{run_id}")
    assert again.status_code == 409
    assert again.json()["error"] == {
        "type": "not_running",
        "message": f"run {run_id} already ended as cancelled: nothing to cancel",
    }
    assert (await client.get(f"/api/runs/{run_id}")).json()["status"] == "cancelled"


async def test_a_run_keeps_going_after_its_caller_leaves_and_can_be_resumed(
    client: httpx.AsyncClient,
) -> None:
    async with client.stream(
        "POST", "/api/endpoints/hold", json={"key": "resume", "before": 2, "after": 2}
    ) as caller:
        stream = events(caller)
        seen = [await anext(stream)]
        run_id = caller.headers["x-run-id"]
    # The caller is gone; the run waits for a follower within the grace period.
    run = (await client.get(f"/api/runs/{run_id}")).json()
    assert run["status"] == "running"
    async with client.stream(
        "GET", f"/api/runs/{run_id}/events", headers={"Last-Event-ID": seen[-1].id}
    ) as resumed:
        flows.release("resume")
        rest = await collect(resumed)
    assert [e.id for e in seen + rest] == ["1", "2", "3", "4", "5"]
    assert rest[-1].event == "end"


async def test_a_run_nobody_follows_is_cancelled_after_the_grace_period(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(detach_grace=0.05)
    async with httpx.AsyncClient(base_url=server.url) as client:
        async with client.stream("POST", "/api/endpoints/hold", json={"key": "abandon"}) as r:
            await anext(events(r))
            run_id = r.headers["x-run-id"]
        run = await run_record(client, run_id, lambda r: r["status"] == "cancelled", "cancel")
        assert run["finished"] is not None
        replay = await client.get(f"/api/runs/{run_id}/events")
        assert split_events(replay.text)[-1].event == "cancelled"


async def test_finished_runs_are_kept_up_to_a_bound(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(keep_runs=3)
    async with httpx.AsyncClient(base_url=server.url) as client:
        ids = [(await client.post("/api/endpoints/silent")).headers["x-run-id"] for _ in range(5)]
        listed = [r["id"] for r in (await client.get("/api/runs")).json()["runs"]]
    assert listed == ids[:1:-1]
    assert len(listed) == 3


async def test_shutdown_ends_open_streams_with_their_terminal_event(start) -> None:  # type: ignore[no-untyped-def]
    server = await start()
    async with (
        httpx.AsyncClient(base_url=server.url) as client,
        client.stream("POST", "/api/endpoints/hold", json={"key": "shutdown"}) as response,
    ):
        stream = events(response)
        await anext(stream)
        closing = asyncio.create_task(server.close())
        rest = [e async for e in stream if isinstance(e, Event)]
        await closing
    assert rest[-1].event == "cancelled"
    assert rest[-1].id == "2"


async def test_with_a_token_every_api_request_needs_it(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(token="s3cret-token")
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/healthz")).status_code == 200
        for headers, query in [
            ({}, ""),
            ({"Authorization": "Bearer s3cret-toke"}, ""),
            ({"Authorization": "Bearer s3cret-token!"}, ""),
            ({"Authorization": "s3cret-token"}, ""),
            ({}, "?access_token=wrong"),
        ]:
            refused = await client.get("/api/endpoints" + query, headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
            assert "s3cret" not in refused.text
            assert refused.json()["error"]["type"] == "unauthorized"
            # What happened, and what to do: a wrong token is not told to send one.
            wrong = "Bearer s3" in headers.get("Authorization", "") or "wrong" in query
            assert refused.json()["error"]["message"] == (
                "the token sent is not this server's token; check it and send it again"
                if wrong
                else "this server needs a token; send it as Authorization: Bearer <token>"
            )
        ok = await client.get("/api/endpoints", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200
        assert (await client.get("/api/runs?access_token=s3cret-token")).status_code == 200


async def test_a_slow_follower_holds_the_workflow_back_rather_than_lose_events(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(log_max_bytes=20_000)
    async with (
        httpx.AsyncClient(base_url=server.url) as client,
        client.stream("POST", "/api/endpoints/firehose", json={"n": 5_000}) as response,
    ):
        got = []
        async for item in events(response):
            if isinstance(item, Event):
                got.append(item)
                if len(got) % 500 == 0:
                    await asyncio.sleep(0.01)  # a slower reader, not a synchronisation
    # The log holds about 250 events, yet a reader twenty times behind lost none.
    assert [int(e.id) for e in got] == list(range(1, 5_002))
    assert got[-1].event == "end"


async def test_a_follower_that_takes_nothing_is_let_go_and_the_others_go_on(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(log_max_bytes=64 * 1024, follower_stall=0.5)
    # Padded to 1 KB each: more than a reader's socket buffers take. While the stalled
    # follower holds the run back (up to the stall time), the fast one waits caught up;
    # that wait is not "taking nothing", so the burst after it must not drop it.
    n = 20_000
    key = "takes-nothing"
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        fast_events = []
        async with client.stream(
            "POST", "/api/endpoints/hold", json={"key": key, "after": n, "pad": 1000}
        ) as fast:
            # A second follower that connects and then reads nothing, until the end.
            stalled, request = await asyncio.open_connection(server.host, server.port)
            run_id = fast.headers["x-run-id"]
            request.write(f"GET /api/runs/{run_id}/events HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            await request.drain()
            await run_record(client, run_id, lambda r: r["followers"] == 2, "two followers")
            flows.release(key)
            async for item in events(fast):
                if isinstance(item, Event):
                    fast_events.append(item)
        # The fast follower got every event, although the other took nothing.
        assert [int(e.id) for e in fast_events] == list(range(1, n + 3))
        # The stalled follower was let go: reading at last, it finds its stream cut
        # before any terminal event (never a silent gap), and its reconnection from the
        # last event it got is told those events are gone.
        body = b""
        while chunk := await stalled.read(1 << 20):
            body += chunk
        request.close()
        assert b"event: end" not in body
        got = [int(line[4:]) for line in body.split(b"\n") if line.startswith(b"id: ")]
        assert got == list(range(1, len(got) + 1))
        resumed = await client.get(
            f"/api/runs/{run_id}/events", headers={"Last-Event-ID": str(got[-1])}
        )
        assert resumed.status_code == 410
        assert resumed.json()["error"]["type"] == "events_gone"
