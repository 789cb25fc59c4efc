"""Writing a run's event log to one HTTP response as a Server-Sent Events stream."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

from aiohttp import web

from .eventlog import EventsGone
from .framing import PING, fell_behind_event, retry_field
from .manager import RunManager
from .run import Run

__all__ = ["SSE_HEADERS", "ResponseFollower", "following", "open_stream"]

logger = logging.getLogger("streambind.server")

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
# The largest event ctx.send writes itself. Far below the socket's 64 KiB high-water
# mark, so with an empty buffer the write can never have to wait for the client:
# a bigger event is left to the follower's own task, whatever its socket does.
_INLINE_MAX_BYTES = 16 * 1024


async def open_stream(request: web.Request, run: Run, retry_ms: int) -> web.StreamResponse:
    """The run's stream response, begun. A client already gone is no error: the
    follower's first write finds it gone too, and its handler returns quietly."""
    response = web.StreamResponse(status=200, headers={**SSE_HEADERS, "X-Run-Id": run.id})
    with contextlib.suppress(ConnectionError):
        await response.prepare(request)
        await response.write(retry_field(retry_ms))
    return response


@contextlib.contextmanager
def following(
    manager: RunManager, request: web.Request, run: Run, after: int
) -> Iterator[ResponseFollower]:
    """A follower of ``run`` from event ``after`` on, attached for the block's length.

    Attached from the start, so the workflow waits for it (backpressure) even before
    its response has begun, and leaving starts the run's detach grace period.
    """
    follower = ResponseFollower(request, run, after)
    manager.attach(run, follower)
    try:
        yield follower
    finally:
        manager.detach(run, follower)


class ResponseFollower:
    """A follower (``follower.Follower``) that is one HTTP response.

    When the workflow is ahead, the follower's task writes all pending events in
    one write. When it has caught up it waits (``Delivery.wait_for_more``); in a
    sparse stream the run's delivery then writes each new event itself (``idle_for``,
    ``write_now``), so it goes out at once and this task is not even woken;
    otherwise the delivery wakes it and it writes the events that gathered in one go.
    """

    def __init__(self, request: web.Request, run: Run, after: int) -> None:
        self.transport = request.transport
        self.run = run
        self.response: web.StreamResponse | None = None
        #: The id of the last event written out completely.
        self.position = after
        #: On the run's stall clock (``clock.StallClock``), not the wall clock.
        self.progressed_at = run.delivery.clock.now()
        self.was_let_go = False
        #: When this follower last wrote anything (for pings; monotonic seconds).
        self.wrote_at = time.monotonic()

    async def follow(self, response: web.StreamResponse) -> None:
        """Write every event after ``position``, live, until the terminal event.

        Pings while it waits come from the run manager's pinger (``ping_if_quiet``).
        A client that vanished (its connection reset or closing) ends it quietly: that is
        the client's doing, never an error of the server's.
        """
        self.response = response
        try:
            await self._write_until_the_end(response)
        except ConnectionError:
            # A closing transport would wait to drain a buffer nobody reads.
            if self.transport is not None:
                self.transport.abort()

    async def _write_until_the_end(self, response: web.StreamResponse) -> None:
        delivery = self.run.delivery
        log = delivery.log
        while True:
            try:
                piece = await log.read(self.position, _MAX_BATCH, _MAX_BATCH_BYTES)
            except EventsGone as gone:
                message = f"{gone}: this follower fell too far behind"
                await response.write(fell_behind_event(self.position, message, gone.first_kept))
                return
            if piece.frames:
                await response.write(
                    piece.frames[0] if len(piece.frames) == 1 else b"".join(piece.frames)
                )
                # Written out (below the socket's high-water mark): that is progress.
                self.position = piece.last_seq
                self.progressed_at = delivery.clock.now()
                self.wrote_at = time.monotonic()
                delivery.progressed()
                if piece.ends:
                    return
                continue
            # Caught up: wait until the workflow sends. Nothing can arrive between the
            # read above and here (no await), so no event is missed.
            await delivery.wait_for_more(self)

    def _socket_idle(self) -> bool:
        # An empty buffer: a write goes straight to the socket, and nothing waits.
        transport = self.transport
        return (
            self.response is not None
            and transport is not None
            and not transport.is_closing()
            and not transport.get_write_buffer_size()
        )

    def idle_for(self, seq: int, size: int) -> bool:
        return size <= _INLINE_MAX_BYTES and self.position == seq - 1 and self._socket_idle()

    async def write_now(self, seq: int, frame: bytes) -> None:
        # idle_for made sure the buffer is empty and the frame small: this write goes
        # to the socket (or below the high-water mark) and never waits for the client.
        assert self.response is not None
        self.position = seq
        self.progressed_at = self.run.delivery.clock.now()
        self.wrote_at = time.monotonic()
        # ConnectionError: the client left, and aiohttp cancels this follower's handler.
        with contextlib.suppress(ConnectionError):
            await self.response.write(frame)

    def stalled(self, now: float, stall: float) -> bool:
        # Waiting for the workflow's next event is not being stuck; having something
        # to write (or a write under way) and no progress for the stall time is.
        return (
            not self.run.delivery.is_waiting(self)
            and self.response is not None
            and (now - self.progressed_at >= stall)
        )

    def let_go(self) -> None:
        """No progress for the stall time: stop waiting for it and close its connection.

        Whatever the client has not read yet cannot be replaced, so nothing more is
        sent: it sees the stream cut before its terminal event, and its reconnection
        (``Last-Event-ID``) gets what is still kept, or ``410 events_gone``. Aborting it
        frees the run it holds, its buffers and its descriptor at once.
        """
        if self.was_let_go:
            return
        self.was_let_go = True
        logger.warning(
            "run %s: a follower made no progress for %gs at event %d; closing its connection",
            self.run.id,
            self.run.delivery.stall,
            self.position,
        )
        # Even when it is closing already (the client half-closed its side): a graceful
        # close waits for the buffer to drain, which a client that reads nothing never lets
        # happen, so the descriptor would stay until the kernel gave up on the connection.
        if self.transport is not None:
            self.transport.abort()

    def leave(self) -> None:
        # close(), not abort(): the events already in the buffer are whole, and go out.
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    async def ping_if_quiet(self, now: float, interval: float) -> None:
        """Write a ``: ping`` comment if this follower has waited silently for ``interval``."""
        response = self.response
        if (
            response is not None
            and self.run.delivery.is_waiting(self)
            and now - self.wrote_at >= interval
            and self._socket_idle()
        ):
            self.wrote_at = now
            with contextlib.suppress(ConnectionError):
                await response.write(PING)
