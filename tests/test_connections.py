"""Slow, idle and surplus connections: closed or refused, and the server stays reachable.

Raw sockets on loopback, since an HTTP client would never send headers a byte at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator

import flows
import httpx
from conftest import StartServer
from polling import wait_for

from streambind.server import RunningServer, ServerConfig

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]

# Only bounds the wait: a guard that works closes the connection long before.
_GIVE_UP_S = 30


@contextlib.asynccontextmanager
async def _connections(server: RunningServer, n: int) -> AsyncIterator[list[Connection]]:
    opened: list[Connection] = []
    try:
        for _ in range(n):
            opened.append(await asyncio.open_connection("127.0.0.1", server.port))
        yield opened
    finally:
        for _, writer in opened:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def _read_to_close(reader: asyncio.StreamReader, within: float = _GIVE_UP_S) -> bytes:
    """Everything until the server closes the connection (a reset counts as closed)."""
    try:
        return await asyncio.wait_for(reader.read(), within)
    except ConnectionResetError:
        return b""


async def _trickle_until_closed(connection: Connection) -> int:
    """Send a request's headers a byte at a time until the server hangs up; bytes sent."""
    reader, writer = connection
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    closed = asyncio.ensure_future(_read_to_close(reader))
    sent = 0
    try:
        while not closed.done() and sent < 200:
            with contextlib.suppress(ConnectionError):
                writer.write(b"a")
                await writer.drain()
            sent += 1
            await asyncio.wait([closed], timeout=0.2)  # one byte every 0.2 s: the stimulus
        assert closed.done(), f"still open after {sent} bytes, sent over {sent * 0.2:.0f} s"
        assert await closed == b"", "a slow request got an answer instead of being closed"
        return sent
    finally:
        closed.cancel()


async def _request(connection: Connection, path: str = "/healthz", close: bool = False) -> bytes:
    """One GET on a kept-alive connection; the response's head and body."""
    reader, writer = connection
    extra = b"Connection: close\r\n" if close else b""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode() + extra + b"\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _GIVE_UP_S)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


async def test_request_headers_that_trickle_in_are_cut_off_and_others_are_served(
    start: StartServer,
) -> None:
    server = await start(header_timeout=1)
    descriptors_before = _open_descriptors()
    async with _connections(server, 30) as slow, _connections(server, 1) as (silent,):
        sent = await asyncio.gather(*(_trickle_until_closed(c) for c in slow))
        # A connection that never sends a byte is cut off by the same deadline.
        assert await _read_to_close(silent[0]) == b""
    assert max(sent) < 200
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/healthz")).status_code == 200
    guard = server.runner.server
    await wait_for(
        lambda: asyncio.sleep(0, guard.open_connections), lambda n: n == 0, "no open connection"
    )
    # Every descriptor the slow connections held on the server's side is released.
    assert _open_descriptors() <= descriptors_before


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_an_idle_kept_alive_connection_outlives_the_header_timeout_until_keepalive(
    start: StartServer,
) -> None:
    server = await start(header_timeout=1, keepalive=75)
    async with _connections(server, 2) as (idle, slow):
        assert b" 200 OK" in await _request(idle)
        # The slow one is cut off by the header deadline; the idle kept-alive one is
        # not: it waits between requests, not in the middle of one.
        await _trickle_until_closed(slow)
        assert b" 200 OK" in await _request(idle)
        assert server.runner.server.connections[0].keepalive_timeout == 75
        # A later request on the kept-alive connection that trickles in is cut off too.
        await _trickle_until_closed(idle)


async def test_an_idle_kept_alive_connection_is_closed_after_the_keepalive(
    start: StartServer,
) -> None:
    server = await start(header_timeout=30, keepalive=1)
    async with _connections(server, 1) as (idle,):
        assert b" 200 OK" in await _request(idle)
        assert await _read_to_close(idle[0], within=20) == b""


def test_the_connection_settings_default_to_the_documented_values() -> None:
    config = ServerConfig(data_dir="unused")
    assert (config.header_timeout, config.keepalive, config.max_connections) == (10, 75, None)


async def _open_stream(connection: Connection, key: str) -> None:
    """POST a `hold` run on a raw connection and read up to its first event."""
    reader, writer = connection
    body = json.dumps({"key": key}).encode()
    writer.write(
        b"POST /api/endpoints/hold HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await _read_until(reader, b'data: {"n":1}')


async def _read_until(reader: asyncio.StreamReader, marker: bytes) -> bytes:
    received = b""
    while marker not in received:
        chunk = await asyncio.wait_for(reader.read(4096), _GIVE_UP_S)
        assert chunk, f"closed before {marker!r}: {received!r}"
        received += chunk
    return received


async def test_beyond_max_connections_new_ones_are_refused_at_once_and_the_open_ones_go_on(
    start: StartServer,
) -> None:
    # A long header timeout: a connection closed here was refused, not timed out.
    server = await start(max_connections=5, header_timeout=60)
    key = uuid.uuid4().hex
    guard = server.runner.server
    async with _connections(server, 5) as admitted:
        await _open_stream(admitted[0], key)
        for connection in admitted[1:]:
            assert b" 200 OK" in await _request(connection)
        async with _connections(server, 3) as surplus:
            for reader, _ in surplus:
                refusal = await _read_to_close(reader, within=_GIVE_UP_S / 2)
                assert refusal == b"" or refusal.startswith(b"HTTP/1.1 503 ")
                if refusal:
                    assert b'"too_many_connections"' in refusal
        assert guard.open_connections == 5
        assert guard.refused_connections == 3
        # The open ones were not harmed: each is served, and the stream goes on to its end.
        for connection in admitted[1:]:
            assert b" 200 OK" in await _request(connection)
        flows.release(key)
        await _read_until(admitted[0][0], b"event: end")
        # Once one closes, a new connection is served.
        assert b" 200 OK" in await _request(admitted[1], close=True)
        assert await _read_to_close(admitted[1][0]) == b""
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/healthz")).status_code == 200
