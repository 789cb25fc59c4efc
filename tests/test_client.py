"""The stream client against a real server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import flows
import httpx
import pytest
from aiohttp import web
from cutter import CuttingProxy
from foreign import serve
from polling import newest_run, run_record

from streambind.app.client import StreamClient

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def sb(server) -> AsyncIterator[StreamClient]:  # type: ignore[no-untyped-def]
    async with StreamClient(server.url) as client:
        yield client


async def test_chunks_follow_the_stream_and_the_result_arrives(sb: StreamClient) -> None:
    state = await sb.call("import", {"rows": 60, "batch_size": 20, "delay_ms": 0}).run()
    assert state.status == "succeeded"
    assert state.streamed
    assert state.chunks == [
        *({"step": "import", "done": d, "total": 60} for d in (0, 20, 40, 60)),
        {"step": "publish", "rows": 60},
    ]
    assert state.chunk == state.chunks[-1]
    assert state.result["imported"] == 60
    assert state.run_id == state.result["run_id"]
    assert state.last_event_id == "6"
    assert state.error is None
    assert state.started_at is not None and state.finished_at >= state.first_chunk_at


async def test_a_failure_mid_stream_keeps_the_chunks_and_shows_the_server_message(
    sb: StreamClient,
) -> None:
    state = await sb.call("flaky", {"fail_at": 3, "delay_ms": 0}).run()
    assert state.status == "failed"
    assert len(state.chunks) == 2
    assert state.error == {
        "type": "FlakyFailure",
        "message": "step 3 of 10 failed, as asked (fail_at=3)",
    }
    assert state.result is None


@pytest.mark.parametrize("handle_stream", [True, False])
async def test_http_errors_become_failed_with_the_servers_message(
    sb: StreamClient, handle_stream: bool
) -> None:
    state = await sb.call("import", {"rows": "x"}, handle_stream=handle_stream).run()
    assert state.status == "failed"
    assert state.error["type"] == "invalid_params"
    assert state.error_message() == "1 parameter is invalid: rows: must be an integer, not a string"
    missing = await sb.call("no-such-endpoint", handle_stream=handle_stream).run()
    assert missing.error["message"] == "no endpoint named 'no-such-endpoint'"


async def test_a_response_that_is_not_a_stream_is_the_result_with_no_chunks(
    sb: StreamClient,
) -> None:
    state = await sb.call("silent").run()
    assert state.status == "succeeded"
    assert not state.streamed
    assert state.chunks == [] and state.chunk is None
    assert state.result == {"people": 0, "imports": 0, "streamed": False}
    assert state.run_id


async def test_handle_stream_off_shows_nothing_until_the_end(
    sb: StreamClient,
    server,  # type: ignore[no-untyped-def]
) -> None:
    call = sb.call("hold", {"key": "whole", "before": 3}, handle_stream=False)
    task = asyncio.create_task(call.run())
    async with httpx.AsyncClient(base_url=server.url) as other:
        await newest_run(other, lambda r: r["events"] == 3, "three messages sent")
        # The server has sent three messages, yet the call has taken none of them.
        assert call.state.status == "running"
        assert call.state.chunks == [] and call.state.chunk is None
        flows.release("whole")
        state = await task
    assert state.status == "succeeded"
    assert state.chunks == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert state.chunk == {"n": 3}
    assert state.result == {"released": "whole"}


async def test_cancel_closes_the_stream_and_cancels_the_run(sb: StreamClient) -> None:
    call = sb.call("hold", {"key": "cancel-me", "before": 2})
    arrived = asyncio.Event()
    call.on_chunk = lambda chunk: arrived.set()
    task = asyncio.create_task(call.run())
    await arrived.wait()
    await call.cancel()
    state = await task
    assert state.status == "cancelled"
    assert state.chunks == [{"n": 1}, {"n": 2}]
    await run_record(sb.http, state.run_id, lambda r: r["status"] == "cancelled", "cancelled")


async def test_resume_after_forced_disconnects_has_no_gap_and_no_duplicate(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(retry_ms=10)
    # Cut the first three connections part-way, at byte counts that fall mid-event.
    proxy = CuttingProxy(server.host, server.port, cuts=[5_003, 40_017, 77_777])
    url = await proxy.start()
    try:
        async with StreamClient(url) as client:
            state = await client.call("firehose", {"n": 5_000}).run()
    finally:
        await proxy.close()
    assert state.status == "succeeded", state.error
    assert state.reconnects == 3
    assert proxy.connections == 4
    assert state.chunks == [{"step": "import", "done": i, "total": 5_000} for i in range(1, 5_001)]
    assert state.result == {"sent": 5_000}


async def test_reconnecting_gives_up_after_the_bounded_attempts(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(retry_ms=1)
    proxy = CuttingProxy(server.host, server.port, cuts=[600] + [10] * 10)
    url = await proxy.start()
    try:
        async with StreamClient(url, max_reconnects=2) as client:
            state = await client.call("firehose", {"n": 100_000}).run()
    finally:
        await proxy.close()
    assert state.status == "failed"
    assert state.error["type"] == "connection_lost"
    assert "gave up after 2 reconnection attempts" in state.error["message"]
    assert state.reconnects == 2


async def test_connection_problems_are_readable_not_tracebacks(unused_tcp_port: int) -> None:
    async with StreamClient(f"http://127.0.0.1:{unused_tcp_port}") as client:
        state = await client.call("import").run()
        assert state.status == "failed"
        assert state.error["type"] == "connection_error"
        assert state.error["message"].startswith(
            f"cannot connect to http://127.0.0.1:{unused_tcp_port}: is the server running?"
        )


async def test_a_wrong_token_is_a_failed_call_with_the_servers_message(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(token="right")
    async with StreamClient(server.url, token="wrong") as client:
        state = await client.call("silent").run()
    assert state.status == "failed"
    assert state.error["type"] == "unauthorized"
    async with StreamClient(server.url, token="right") as client:
        assert (await client.call("silent").run()).status == "succeeded"


# -- other servers' streams --------------------------------------------------------


@dataclass
class Foreign:
    url: str
    seen: dict[str, object]
    resumes: list[str | None]


@pytest.fixture
async def foreign() -> AsyncIterator[Foreign]:
    """A server that is not streambind: plain SSE as other APIs send it."""
    seen: dict[str, object] = {}
    finished = asyncio.Event()

    async def openai_like(request: web.Request) -> web.StreamResponse:
        seen["method"] = request.method
        seen["body"] = await request.json()
        seen["auth"] = request.headers.get("Authorization")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"delta": "Hel"}\n\ndata: lo\n\ndata: [DONE]\n\n')
        await finished.wait()  # never closes by itself: the sentinel must end the call
        return response

    resumes: list[str | None] = []

    async def resumable(request: web.Request) -> web.StreamResponse:
        last = request.headers.get("Last-Event-ID")
        resumes.append(last)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if last is None:
            await response.write(b"retry: 5\nid: 1\ndata: one\n\nid: 2\ndata: two\n\nid: 3\nda")
            request.transport.close()  # drop it mid-event
            return response
        await response.write(f"id: 3\ndata: three after {last}\n\n".encode())
        return response

    app = web.Application()
    app.router.add_post("/v1/chat", openai_like)
    app.router.add_get("/ticks", resumable)
    async with serve(app) as url:
        yield Foreign(url, seen, resumes)
        finished.set()


async def test_watching_another_servers_post_stream_with_body_and_headers(
    foreign: Foreign,
) -> None:
    async with StreamClient(foreign.url) as client:
        call = client.watch(
            f"{foreign.url}/v1/chat",
            method="POST",
            body={"prompt": "hi"},
            headers={"Authorization": "Bearer theirs"},
        )
        state = await asyncio.wait_for(call.run(), 30)
    assert state.status == "succeeded"
    assert state.chunks == [{"delta": "Hel"}, "lo"]  # JSON where it is JSON, else the text
    assert foreign.seen == {"method": "POST", "body": {"prompt": "hi"}, "auth": "Bearer theirs"}


async def test_watching_resumes_another_servers_stream_with_last_event_id(
    foreign: Foreign,
) -> None:
    async with StreamClient(foreign.url) as client:
        state = await client.watch(f"{foreign.url}/ticks").run()
    assert state.status == "succeeded"
    assert state.chunks == ["one", "two", "three after 2"]
    assert foreign.resumes == [None, "2"]
    assert state.reconnects == 1


async def test_listing_endpoints_problems_raise_a_readable_client_error(
    unused_tcp_port: int,
) -> None:
    from streambind.app.client import ClientError

    async with StreamClient(f"http://127.0.0.1:{unused_tcp_port}") as client:
        with pytest.raises(ClientError, match="is the server running"):
            await client.endpoints()


async def test_a_watched_urls_connection_error_names_that_url(
    sb: StreamClient, unused_tcp_port: int
) -> None:
    watched = f"http://127.0.0.1:{unused_tcp_port}/events"
    state = await sb.watch(watched).run()
    assert state.status == "failed"
    assert state.error["type"] == "connection_error"
    message = state.error["message"]
    assert message.startswith(f"cannot connect to {watched} (")
    assert sb.base_url not in message, "the streambind server is not to blame"


async def test_a_watched_404_says_so_once(foreign: Foreign) -> None:
    async with StreamClient("http://127.0.0.1:9") as client:
        state = await client.watch(f"{foreign.url}/nowhere").run()
    assert state.status == "failed"
    # aiohttp's body is "404: Not Found": it only repeats the status, so it is left out.
    assert state.error["message"] == f"{foreign.url}/nowhere answered 404 Not Found"


async def test_a_resume_whose_events_are_gone_fails_once_with_the_runs_outcome(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(retry_ms=10, log_max_bytes=16_000)
    admit = asyncio.Event()
    # The first connection is cut after the first event; the reconnection waits at the
    # proxy until the run has sent far more than its log keeps, and ended.
    proxy = CuttingProxy(server.host, server.port, cuts=[400], admit_later=admit)
    url = await proxy.start()
    key = "gone-before-resume"
    try:
        async with (
            StreamClient(url) as client,
            httpx.AsyncClient(base_url=server.url) as direct,
        ):
            call = client.call("hold", {"key": key, "after": 2_000, "pad": 100})
            running = asyncio.create_task(call.run())
            record = await newest_run(direct, lambda r: r["endpoint"] == "hold", "the run")
            await run_record(direct, record["id"], lambda r: r["followers"] == 0, "the cut")
            flows.release(key)
            await run_record(direct, record["id"], lambda r: r["status"] == "succeeded", "end")
            admit.set()
            state = await asyncio.wait_for(running, 30)
    finally:
        await proxy.close()
    assert state.status == "failed"
    assert state.error["type"] == "events_gone"
    assert state.error["run_status"] == "succeeded"
    assert "no longer keeps this run's events" in state.error["message"]
    assert state.error["message"].endswith("the run itself succeeded")
    assert proxy.connections == 2, "one resume, answered 410, and no retry loop"
    assert state.reconnects == 1
