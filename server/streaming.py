"""Writing a run's event log to one HTTP response as a Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

from aiohttp import web

from .cors import add_cors_headers
from .eventlog import EventsGone
from .framing import PING, encode_event, retry_field, to_json
from .runs import Run, RunManager

__all__ = ["SSE_HEADERS", "Follower", "following", "open_stream"]

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    # Tells nginx and similar proxies not to hold events back in a buffer.
    "X-Accel-Buffering": "no",
}

# The most events joined into one write when a follower is behind: large enough
# to amortise the per-write cost, small enough to keep each write's memory modest.
_MAX_BATCH = 4096
_MAX_BATCH_BYTES = 256 * 1024


async def open_stream(
    request: web.Request, run: Run, retry_ms: int, cors_origin: str | None = None
) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={**SSE_HEADERS, "X-Run-Id": run.id})
    add_cors_headers(request, response, cors_origin)
    await response.prepare(request)
    await response.write(retry_field(retry_ms))
    return response


@contextlib.contextmanager
def following(
    manager: RunManager, request: web.Request, run: Run, after: int
) -> Iterator[Follower]:
    """A follower of ``run`` from event ``after`` on, attached for the block's length.

    Attached from the start, so the workflow waits for it (backpressure) even before
    its response has begun, and leaving starts the run's detach grace period.
    """
    follower = Follower(request, run, after)
    manager.attach(run, follower)
    try:
        yield follower
    finally:
        manager.detach(run, follower)


class Follower:
    """One response following one run.

    When the producer is ahead, the follower's task writes all pending events in
    one write. When it has caught up it parks in ``run.live``; in a sparse stream
    ``ctx.send`` then writes each new event itself (``idle_for``, ``write_now``), so
    it goes out at once and this task is not even woken; otherwise ``ctx.send``
    wakes it (``wake``) and it writes the events that gathered in one go.
    """

    def __init__(self, request: web.Request, run: Run, after: int) -> None:
        self.transport = request.transport
        self.run = run
        self.response: web.StreamResponse | None = None
        #: The id of the last event written out completely.
        self.position = after
        self.progressed_at = time.monotonic()
        self.dropped = False
        #: When this follower last wrote anything (for pings).
        self.wrote_at = self.progressed_at
        self._parked: asyncio.Future[None] | None = None

    async def follow(self, response: web.StreamResponse) -> None:
        """Write every event after ``position``, live, until the terminal event.

        Pings while it waits come from the run manager's pinger (``ping_if_quiet``).
        """
        self.response = response
        run, log = self.run, self.run.log
        while True:
            try:
                piece = await log.read(self.position, _MAX_BATCH, _MAX_BATCH_BYTES)
            except EventsGone as gone:
                await response.write(_fell_behind(gone))
                return
            if piece.frames:
                await response.write(
                    piece.frames[0] if len(piece.frames) == 1 else b"".join(piece.frames)
                )
                # Written out (below the socket's high-water mark): that is progress.
                self.position = piece.last_seq
                self.progressed_at = self.wrote_at = time.monotonic()
                run.note_progress()
                if piece.ends:
                    return
                continue
            # Caught up: park until the workflow sends. Nothing can arrive between the
            # read above and here (no await), so no event is missed.
            self._parked = asyncio.get_running_loop().create_future()
            run.live.add(self)
            try:
                await self._parked
            finally:
                self._parked = None
                run.live.discard(self)

    def wake(self) -> None:
        """Let this follower's task write what arrived; it leaves the parked set now."""
        self.run.live.discard(self)
        if self._parked is not None and not self._parked.done():
            self._parked.set_result(None)

    def _socket_idle(self) -> bool:
        # An empty buffer: a write goes straight to the socket, and nothing waits.
        transport = self.transport
        return (
            self.response is not None
            and transport is not None
            and not transport.is_closing()
            and not transport.get_write_buffer_size()
        )

    def idle_for(self, seq: int) -> bool:
        return self.position == seq - 1 and self._socket_idle()

    async def write_now(self, seq: int, frame: bytes) -> None:
        assert self.response is not None
        self.position = seq
        self.progressed_at = self.wrote_at = time.monotonic()
        # ConnectionError: the client left, and aiohttp cancels this follower's handler.
        with contextlib.suppress(ConnectionError):
            await self.response.write(frame)

    async def ping_if_quiet(self, now: float, interval: float) -> None:
        """Write a ``: ping`` comment if this follower has waited silently for ``interval``."""
        if self._parked is not None and now - self.wrote_at >= interval and self._socket_idle():
            self.wrote_at = now
            with contextlib.suppress(ConnectionError):
                await self.response.write(PING)


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
