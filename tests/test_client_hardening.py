"""The stream client against hostile servers: bounds on size, time and reconnections."""

from __future__ import annotations

import tracemalloc
import zlib

import pytest
from aiohttp import web
from foreign import serve

from streambind.app.client import ClientSettings, StreamClient
from streambind.app.sse import SSEDecoder, StreamTooLarge

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
    # Appending each chunk to the line so far would copy 512 × 16 MiB on average.
    assert decoder.copied <= 32 * MIB + 64 * KIB


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
