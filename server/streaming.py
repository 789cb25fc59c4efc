"""Writing a run's event log to one HTTP response as a Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import contextlib
import time

from aiohttp import web

from .eventlog import EventsGone
from .framing import PING, encode_event, retry_field, to_json
from .runs import Run

__all__ = ["SSE_HEADERS", "follow", "open_stream"]

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    # Tells nginx and similar proxies not to hold events back in a buffer.
    "X-Accel-Buffering": "no",
}

# The most events joined into one write when a follower is behind: large enough
# to amortise the per-write cost, small enough to keep each write's memory modest.
_MAX_BATCH = 4096
# A follower that wrote less than this long ago is busy: new events wait for its
# task and go out together, instead of one system call each.
_BUSY_S = 0.001


async def open_stream(request: web.Request, run: Run, retry_ms: int) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={**SSE_HEADERS, "X-Run-Id": run.id})
    await response.prepare(request)
    await response.write(retry_field(retry_ms))
    return response


async def follow(
    request: web.Request,
    response: web.StreamResponse,
    run: Run,
    after: int,
    ping_interval: float,
) -> None:
    """Write every event with id > ``after``, live, until the terminal event."""
    await _Follower(request.transport, response, run, after).follow(ping_interval)


class _Follower:
    """One response following one run.

    When the producer is ahead, the follower's task writes all pending events in
    one write. When the follower is idle (caught up, and nothing written for a
    moment), ``ctx.send`` writes the new event itself (``idle_for``/``write_now``),
    so a sparse stream gets each event without waiting for this task's turn.
    """

    def __init__(
        self,
        transport: asyncio.Transport | None,
        response: web.StreamResponse,
        run: Run,
        after: int,
    ) -> None:
        self.transport = transport
        self.response = response
        self.run = run
        self.position = after
        self.last_write = 0.0

    async def follow(self, ping_interval: float) -> None:
        log = self.run.log
        while True:
            try:
                piece = await log.read(self.position, _MAX_BATCH)
            except EventsGone as gone:
                await self.response.write(_fell_behind(gone))
                return
            if piece.frames:
                self.position = piece.last_seq
                self.last_write = time.perf_counter()
                await self.response.write(
                    piece.frames[0] if len(piece.frames) == 1 else b"".join(piece.frames)
                )
                if piece.ends:
                    return
                continue
            self.run.live.add(self)
            try:
                woken = await log.wait(self.position, ping_interval)
            finally:
                self.run.live.discard(self)
            if not woken:
                await self.response.write(PING)

    def idle_for(self, seq: int) -> bool:
        transport = self.transport
        return (
            self.position == seq - 1
            and time.perf_counter() - self.last_write >= _BUSY_S
            and transport is not None
            and not transport.is_closing()
            # An empty buffer: the write goes straight to the socket, nothing waits.
            and not transport.get_write_buffer_size()
        )

    async def write_now(self, seq: int, frame: bytes) -> None:
        self.position = seq
        self.last_write = time.perf_counter()
        # ConnectionError: the client left, and aiohttp cancels this follower's handler.
        with contextlib.suppress(ConnectionError):
            await self.response.write(frame)


def _fell_behind(gone: EventsGone) -> bytes:
    # No id: the follower's Last-Event-ID must stay at the last event it really has.
    data = to_json(
        {
            "status": "fell_behind",
            "error": {
                "type": "fell_behind",
                "message": str(gone),
                "first_kept": gone.first_kept,
            },
        }
    )
    return encode_event(None, "error", data)
