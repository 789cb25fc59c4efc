"""The stream client against hostile servers: bounds on size, time and reconnections."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tracemalloc
import zlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from foreign import serve
from test_tui import until
from textual.widgets import Input, Static

from streambind.app.client import ClientError, ClientSettings, StreamClient
from streambind.app.sse import SSEDecoder, StreamTooLarge
from streambind.app.tui.app import StreambindApp

KIB = 1024
MIB = 1024 * KIB


# -- item 11: a line and an event have size limits; decoding is linear -------------------


def test_a_32_mib_line_in_64_kib_chunks_is_copied_once() -> None:
    line = b"data: " + b"x" * (32 * MIB) + b"\n\n"
    decoder = SSEDecoder()
    events = []
    for start in range(0, len(line), 64 * KIB):
        events += decoder.feed_fields(line[start : start + 64 * KIB])
    assert [len(data) for _, data, _, _ in events] == [32 * MIB]
    # Appending each chunk to the line so far would copy 512 × 16 MiB on average; joining
    # its pieces once copies the line once ("data: " and its 32 MiB), no more, no less.
    assert decoder.copied == 32 * MIB + len("data: ")


def test_limits_trip_on_a_line_and_on_an_event_of_many_short_lines() -> None:
    decoder = SSEDecoder(max_line_size=MIB)
    with pytest.raises(StreamTooLarge, match="a line of the stream is larger than the limit"):
        for _ in range(100):
            decoder.feed_fields(b"x" * (64 * KIB))
    decoder = SSEDecoder(max_event_size=MIB)
    with pytest.raises(StreamTooLarge, match="an event of the stream is larger than the limit"):
        for _ in range(100):
            decoder.feed_fields(b"data: abc\n" * 10_000)
    # Below the limits, many events of any size go through.
    decoder = SSEDecoder(max_line_size=MIB, max_event_size=MIB)
    for _ in range(50):
        assert len(decoder.feed_fields(b"data: " + b"y" * (MIB - 10) + b"\n\n")) == 1


def _gzip_bomb(size: int) -> bytes:
    squeeze = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = b"x" * MIB
    parts = [squeeze.compress(b"data: ")]
    parts += [squeeze.compress(block) for _ in range(size // MIB)]
    return b"".join(parts) + squeeze.flush()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return _gzip_bomb(256 * MIB)  # about 250 KB on the wire


@pytest.mark.parametrize("handle_stream", [True, False])
async def test_a_gzip_bombed_line_fails_at_the_limit_before_memory_grows(
    bomb: bytes, handle_stream: bool
) -> None:
    async def bombed(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Content-Encoding": "gzip"}
        )
        await response.prepare(request)
        await response.write(bomb)
        return response

    app = web.Application()
    app.router.add_post("/api/endpoints/bomb", bombed)
    settings = ClientSettings(max_line_size=MIB, max_event_size=MIB)
    async with serve(app) as url, StreamClient(url, settings=settings) as client:
        tracemalloc.start()
        try:
            state = await client.call("bomb", handle_stream=handle_stream).run()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert state.status == "failed"
    assert state.error["type"] == "too_large"
    assert state.error["message"] == (
        f"{url}: a line of the stream is larger than the limit of 1,048,576 characters"
    )
    assert len(state.chunks) == 0
    assert peak < 6 * MIB, f"peak {peak / MIB:.1f} MiB for a 1 MiB limit"


async def test_an_event_of_many_lines_beyond_the_limit_fails_the_call() -> None:
    async def many_lines(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: first\n\n")
        for _ in range(400):  # 4 MB of one event, never dispatched
            await response.write(b"data: abcdefgh\n" * 1000)
        return response

    app = web.Application()
    app.router.add_get("/events", many_lines)
    settings = ClientSettings(max_event_size=MIB)
    async with serve(app) as url, StreamClient(url, settings=settings) as client:
        state = await client.watch(f"{url}/events").run()
    assert state.status == "failed"
    assert state.chunks == ["first"]
    assert state.error == {
        "type": "too_large",
        "message": f"{url}/events: an event of the stream is larger than the limit of "
        "1,048,576 characters",
    }


# -- item 9: any event id is carried; no header can crash the client or the TUI ----------


def _drops_after_an_odd_id(event_id: bytes, resumes: list[str | None]) -> web.Application:
    """A stream that sends one event with ``event_id``, drops, and on resume ends cleanly."""

    async def ticks(request: web.Request) -> web.StreamResponse:
        last = request.headers.get("Last-Event-ID")
        resumes.append(last)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if last is None:
            await response.write(b"retry: 1\nid: " + event_id + b"\ndata: one\n\n")
            request.transport.close()
            return response
        await response.write(f"data: two after {last}\n\n".encode())
        return response

    app = web.Application()
    app.router.add_get("/ticks", ticks)
    return app


async def test_a_non_ascii_id_is_carried_as_utf8_on_resume() -> None:
    resumes: list[str | None] = []
    async with (
        serve(_drops_after_an_odd_id("é".encode(), resumes)) as url,
        StreamClient(url) as client,
    ):
        state = await client.watch(f"{url}/ticks").run()
    assert state.status == "succeeded", state.error
    assert state.chunks == ["one", "two after é"]
    assert resumes == [None, "é"]
    assert state.reconnects == 1


async def test_an_id_no_header_can_carry_fails_with_a_clear_message() -> None:
    resumes: list[str | None] = []
    async with (
        serve(_drops_after_an_odd_id(b"a\x01b", resumes)) as url,
        StreamClient(url) as client,
    ):
        state = await client.watch(f"{url}/ticks").run()
    assert state.status == "failed"
    assert state.chunks == ["one"]
    assert state.error["type"] == "cannot_resume"
    assert state.error["message"].startswith(
        f"cannot resume {url}/ticks: its last event id 'a\\x01b' has characters no HTTP "
        "header can carry"
    )
    assert resumes == [None], "no request with a header that cannot be sent"


async def test_a_header_that_cannot_be_sent_fails_the_call_not_the_caller() -> None:
    async with StreamClient("http://127.0.0.1:9") as client:
        state = await client.watch("http://127.0.0.1:9/x", headers={"X-Name": "José"}).run()
    assert state.status == "failed"
    assert state.error == {
        "type": "invalid_request",
        "message": "cannot send this request: X-Name: 'José' is not ASCII, and header values "
        "must be; percent-encode it (Jos%C3%A9) if the server expects that",
    }


def _streambind_like(resumes: list[str | None]) -> web.Application:
    """Just enough of streambind's API for ``streambind call``: a run whose id is not ASCII."""

    async def endpoints(request: web.Request) -> web.Response:
        return web.json_response({"endpoints": [{"name": "odd", "params": {}}]})

    async def odd(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "X-Run-Id": "r1"}
        )
        await response.prepare(request)
        await response.write('retry: 1\nid: é\ndata: {"n": 1}\n\n'.encode())
        request.transport.close()
        return response

    async def events(request: web.Request) -> web.StreamResponse:
        resumes.append(request.headers.get("Last-Event-ID"))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        end = {"status": "succeeded", "result": {"after": resumes[-1]}}
        await response.write(f"event: end\ndata: {json.dumps(end)}\n\n".encode())
        return response

    app = web.Application()
    app.router.add_get("/api/endpoints", endpoints)
    app.router.add_post("/api/endpoints/odd", odd)
    app.router.add_get("/api/runs/r1/events", events)
    return app


async def _cli_call(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streambind.app.cli", "call", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_streambind_call_resumes_after_a_non_ascii_id_without_a_traceback() -> None:
    resumes: list[str | None] = []
    async with serve(_streambind_like(resumes)) as url:
        code, out, err = await _cli_call("odd", "--json", "--url", url)
    assert "Traceback" not in err
    assert code == 0, err
    final = json.loads(out.splitlines()[-1])
    assert final["status"] == "succeeded"
    assert final["result"] == {"after": "é"}
    assert resumes == ["é"]


async def test_the_tui_survives_a_non_ascii_header_and_a_non_ascii_id() -> None:
    resumes: list[str | None] = []
    async with serve(_drops_after_an_odd_id("é".encode(), resumes)) as url:
        app = StreambindApp("http://127.0.0.1:9")  # no streambind server: only watching
        async with app.run_test(size=(110, 40)) as pilot:
            await pilot.press("w")
            app.query_one("#watch-url", Input).value = f"{url}/ticks"
            app.query_one("#watch-headers", Input).value = "X-Name: José"
            await pilot.press("enter")
            await until(pilot, lambda: app.query_one("#watch-error").display, "the error")
            error = str(app.query_one("#watch-error", Static).render())
            assert error.startswith("headers: X-Name: 'José' is not ASCII")
            assert app.cards == []

            app.query_one("#watch-headers", Input).value = "X-Name: Jos%C3%A9"
            await pilot.press("enter")
            await until(pilot, lambda: app.cards and app.cards[0].state.finished, "the end")
            assert app.cards[0].state.chunks == ["one", "two after é"]
            await pilot.press("enter")  # the same stream again: a second card
            await until(pilot, lambda: len(app.cards) == 2, "a second card")
            await until(pilot, lambda: app.cards[0].state.finished, "the second end")
            assert app.is_running
            assert [card.state.status for card in app.cards] == ["succeeded", "succeeded"]
            assert resumes == [None, "é", None, "é"]


# -- item 10: redirects and HTML are not success ------------------------------------------


def _not_streams(requests: list[str]) -> web.Application:
    """A server whose endpoints answer with a login page, or redirect away or nearby."""

    async def endpoints(request: web.Request) -> web.Response:
        names = ("login", "away", "nearby", "loop")
        return web.json_response({"endpoints": [{"name": n, "params": {}} for n in names]})

    async def login(request: web.Request) -> web.Response:
        return web.Response(text="<html><form>Sign in</form></html>", content_type="text/html")

    async def away(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://127.0.0.2:1/sso/login")

    async def nearby(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/moved/nearby")  # 307: the POST and its body go on

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/api/endpoints/loop")

    async def moved(request: web.Request) -> web.StreamResponse:
        requests.append(f"{request.method} {request.path} {await request.text()}")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        end = {"status": "succeeded", "result": {"moved": True}}
        await response.write(f"data: 1\n\nevent: end\ndata: {json.dumps(end)}\n\n".encode())
        return response

    app = web.Application()
    app.router.add_get("/api/endpoints", endpoints)
    app.router.add_post("/api/endpoints/login", login)
    app.router.add_post("/api/endpoints/away", away)
    app.router.add_post("/api/endpoints/nearby", nearby)
    app.router.add_post("/api/endpoints/loop", loop)
    app.router.add_post("/moved/nearby", moved)
    return app


@pytest.mark.parametrize("handle_stream", [True, False])
async def test_a_login_page_or_a_redirect_away_is_a_failure_naming_what_came(
    handle_stream: bool,
) -> None:
    requests: list[str] = []
    async with serve(_not_streams(requests)) as url, StreamClient(url) as client:
        login = await client.call("login", handle_stream=handle_stream).run()
        away = await client.call("away", handle_stream=handle_stream).run()
        loop = await client.call("loop", handle_stream=handle_stream).run()
        nearby = await client.call("nearby", {"x": 1}, handle_stream=handle_stream).run()
    assert login.status == "failed"
    assert login.result is None
    assert login.error["message"] == (
        f"{url} answered 200 OK with text/html, which is neither an event stream "
        "(text/event-stream) nor a JSON result"
    )
    assert away.status == "failed"
    assert away.error["message"] == (
        f"{url} answered 302 Found redirecting to http://127.0.0.2:1/sso/login, which is "
        "another origin: redirects are followed only within the same origin"
    )
    assert loop.status == "failed"
    assert loop.error["message"].startswith(f"{url} redirected more than 5 times")
    assert nearby.status == "succeeded", nearby.error
    assert nearby.result == {"moved": True}
    assert requests == ['POST /moved/nearby {"x":1}']


async def test_streambind_call_exits_1_on_a_login_page_and_a_redirect_away() -> None:
    async with serve(_not_streams([])) as url:
        login = await _cli_call("login", "--url", url)
        away = await _cli_call("away", "--json", "--url", url)
    code, out, err = login
    assert code == 1
    assert "200 OK with text/html" in err and "<html>" not in out + err
    code, out, err = away
    assert code == 1
    assert json.loads(out.splitlines()[-1])["error"]["type"] == "redirect"


# -- item 12: reconnecting has a floor on its wait and a total bound ----------------------


def _one_event_per_connection(connections: list[int], productive: int) -> web.Application:
    """``retry: 0``; the first ``productive`` connections bring one event, then drop."""

    async def events(request: web.Request) -> web.StreamResponse:
        connections.append(1)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        n = len(connections)
        if n <= productive:
            await response.write(f"retry: 0\nid: {n}\ndata: {n}\n\n".encode())
        else:
            await response.write(b": nothing new\n\n")
        request.transport.close()
        return response

    app = web.Application()
    app.router.add_get("/events", events)
    return app


class _Waits:
    """Records each wait before a reconnection instead of sleeping it."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        await asyncio.sleep(0)


async def test_retry_0_with_an_event_per_connection_waits_the_floor_and_stops_at_the_bound() -> (
    None
):
    connections: list[int] = []
    waits = _Waits()
    settings = ClientSettings(max_total_reconnects=30)
    async with (
        serve(_one_event_per_connection(connections, productive=10_000)) as url,
        StreamClient(url, settings=settings, sleep=waits) as client,
    ):
        state = await client.watch(f"{url}/events").run()
    assert state.status == "failed"
    assert state.error["message"].startswith(
        "gave up after 30 reconnections in all (max_total_reconnects)"
    )
    assert state.reconnects == 30 and len(connections) == 31
    assert waits.seconds == [0.1] * 30, "each wait is the 100 ms floor, not retry: 0"
    assert state.chunks == list(range(1, 32))  # JSON numbers


async def test_reconnecting_without_progress_waits_longer_each_time() -> None:
    connections: list[int] = []
    waits = _Waits()
    async with (
        serve(_one_event_per_connection(connections, productive=1)) as url,
        StreamClient(url, sleep=waits) as client,
    ):
        state = await client.watch(f"{url}/events").run()
    assert state.status == "failed"
    assert state.error["message"].startswith("gave up after 5 reconnection attempts")
    assert waits.seconds == [0.1, 0.2, 0.4, 0.8, 1.6]
    assert len(connections) == 6


# -- item 13: time limits on plain requests, response headers and silent streams ----------


@contextlib.asynccontextmanager
async def _silent_server() -> AsyncIterator[str]:
    """Accepts connections, reads what comes, and never answers."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for writer in writers:
            writer.close()


async def test_a_server_that_never_answers_times_out_plain_requests_and_streams() -> None:
    settings = ClientSettings(request_timeout=0.5)
    async with _silent_server() as url, StreamClient(url, settings=settings) as client:
        with pytest.raises(ClientError) as listing:
            await asyncio.wait_for(client.endpoints(), 60)
        streamed = await asyncio.wait_for(client.call("import").run(), 60)
        whole = await asyncio.wait_for(client.call("import", handle_stream=False).run(), 60)
        watched = await asyncio.wait_for(client.watch(f"{url}/events").run(), 60)
    assert (
        str(listing.value) == f"{url}/api/endpoints did not answer within 0.5 s (request_timeout)"
    )
    for state, target in ((streamed, url), (whole, url), (watched, f"{url}/events")):
        assert state.status == "failed"
        assert state.error["message"] == (
            f"{target} did not answer in time "
            "(no response headers within 0.5 s, the request_timeout)"
        )


def _pings_then(*, silent_after_pings: bool) -> web.Application:
    """One event, then a ping every 50 ms for 2 s; then the end, or silence from then on."""

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if "Last-Event-ID" not in request.headers:
            await response.write(b"retry: 1\nid: 1\ndata: first\n\n")
            for _ in range(40):
                await asyncio.sleep(0.05)
                await response.write(b": ping\n\n")
        if silent_after_pings or "Last-Event-ID" in request.headers:
            await asyncio.Event().wait()  # alive, connected, and silent
        await response.write(b"data: last\n\n")
        return response

    app = web.Application()
    app.router.add_get("/events", events)
    return app


async def test_an_open_stream_lives_while_it_pings_and_is_resumed_once_silent() -> None:
    settings = ClientSettings(read_timeout=1.0, max_reconnects=1)
    async with (
        serve(_pings_then(silent_after_pings=False)) as url,
        StreamClient(url, settings=settings) as client,
    ):
        pinging = await asyncio.wait_for(client.watch(f"{url}/events").run(), 60)
    assert pinging.status == "succeeded", pinging.error
    assert pinging.chunks == ["first", "last"] and pinging.reconnects == 0

    async with (
        serve(_pings_then(silent_after_pings=True)) as url,
        StreamClient(url, settings=settings, sleep=_Waits()) as client,
    ):
        silent = await asyncio.wait_for(client.watch(f"{url}/events").run(), 60)
    assert silent.status == "failed"
    assert silent.reconnects == 1
    assert silent.error["message"] == (
        f"gave up after 1 reconnection attempts: {url}/events did not answer in time "
        "(nothing received for 1 s, the read_timeout)"
    )


async def test_streambind_call_to_a_silent_server_exits_1_at_its_timeout() -> None:
    async with _silent_server() as url:
        code, _, err = await _cli_call("import", "--url", url, "--timeout", "0.5")
    assert code == 1
    assert f"{url}/api/endpoints did not answer within 0.5 s" in err


async def test_while_a_stream_is_down_the_call_says_reconnecting_not_a_time_left() -> None:
    from streambind.app.progress import RateMeter
    from streambind.app.run_line import line_parts

    resumes: list[str | None] = []
    seen: list[tuple[bool, str]] = []
    async with serve(_streambind_like(resumes)) as url, StreamClient(url) as client:
        call = client.call("odd")

        async def sleep(seconds: float) -> None:  # the wait before resuming
            parts = line_parts(call.state, 0.0, RateMeter())
            seen.append((call.state.reconnecting, parts.eta))

        client.sleep = sleep
        state = await call.run()
    assert state.status == "succeeded"
    assert seen == [(True, "reconnecting (1)")]  # the first attempt is under way
    assert state.reconnecting is False and state.reconnects == 1
