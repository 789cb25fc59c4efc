"""How `ctx.send` paces a workflow, seen from a raw socket on loopback.

A workflow that awaits between its messages (a sparse stream) gets each event written
inside `ctx.send`: the bytes are on the follower's socket when send returns, and send
never pauses the workflow to do it. A workflow that computes without awaiting is paused
by send once its slice of 2 ms is used up, so the server keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import flows
import httpx
import pytest
from polling import run_record

from streambind.server import RunningServer


class RawStream:
    """One SSE request on a plain non-blocking socket; the bytes it has read so far."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.received = bytearray()

    @classmethod
    async def post(cls, server: RunningServer, path: str, body: dict) -> RawStream:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, (server.host, server.port))
        payload = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {server.host}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        await loop.sock_sendall(sock, head.encode() + payload)
        return cls(sock)

    def take_what_arrived(self) -> None:
        """Read whatever the kernel holds for this socket, without waiting."""
        with contextlib.suppress(BlockingIOError):
            while chunk := self.sock.recv(1 << 16):
                self.received += chunk

    async def read_until(self, token: bytes) -> None:
        loop = asyncio.get_running_loop()
        while token not in self.received:
            chunk = await loop.sock_recv(self.sock, 1 << 16)
            if not chunk:
                raise AssertionError(f"the stream ended before {token!r}: {bytes(self.received)!r}")
            self.received += chunk

    def has_event(self, seq: int) -> bool:
        return f"\nid: {seq}\n".encode() in self.received


def _record_sends(
    key: str, stream: RawStream | None, n: int
) -> tuple[list[tuple[int, bool, bool]], asyncio.Event]:
    """Install the probe `paced` calls after each send; returns (records, all sent)."""
    records: list[tuple[int, bool, bool]] = []
    all_sent = asyncio.Event()

    def probe(seq: int, loop_ran: bool) -> None:
        on_the_wire = False
        if stream is not None:
            stream.take_what_arrived()
            on_the_wire = stream.has_event(seq)
        records.append((seq, loop_ran, on_the_wire))
        if len(records) == n:
            all_sent.set()

    flows.paced_probes[key] = probe
    return records, all_sent


async def test_a_sparse_streams_events_are_on_the_wire_when_send_returns_without_a_pause(
    server: RunningServer,
) -> None:
    key, n = "sparse-on-the-wire", 6
    stream = await RawStream.post(
        server, "/api/endpoints/paced", {"key": key, "n": n, "pause": "await"}
    )
    records, all_sent = _record_sends(key, stream, n)
    try:
        # The first event is written and the caller's follower waits for the next.
        await stream.read_until(b"\nid: 1\n")
        flows.release(key)
        await all_sent.wait()
        await stream.read_until(b"event: end\n")
    finally:
        stream.sock.close()
    # Each event was on the socket as send returned, and nothing else ran meanwhile:
    # no task switch between the workflow's send and the write.
    assert records == [(seq, False, True) for seq in range(2, n + 2)]


@pytest.mark.parametrize("followed", [True, False], ids=["followed", "unfollowed"])
async def test_a_workflow_that_never_awaits_is_paused_by_send_once_its_slice_is_used(
    server: RunningServer, client: httpx.AsyncClient, followed: bool
) -> None:
    key, n = f"busy-{followed}", 5
    stream = await RawStream.post(
        server, "/api/endpoints/paced", {"key": key, "n": n, "pause": "busy"}
    )
    records, all_sent = _record_sends(key, stream if followed else None, n)
    try:
        await stream.read_until(b"\nid: 1\n")
        run_id = stream.received.split(b"X-Run-Id: ")[1].split(b"\r\n")[0].decode()
        if not followed:
            # Nobody follows the run (it is kept for its grace period): send's clock
            # must not depend on a follower being there.
            stream.sock.close()
            await run_record(client, run_id, lambda r: r["followers"] == 0, "the caller to leave")
        flows.release(key)
        await all_sent.wait()
    finally:
        stream.sock.close()
    # The first send after the workflow's await starts its slice; from then on, every
    # send comes 3 ms of computing later and lets the event loop run.
    assert [loop_ran for _, loop_ran, _ in records] == [False] + [True] * (n - 1)
    if followed:
        assert all(on_the_wire for _, _, on_the_wire in records)
