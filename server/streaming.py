"""Writing a run's event log to one HTTP response as a Server-Sent Events stream."""

from __future__ import annotations

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


async def open_stream(request: web.Request, run: Run, retry_ms: int) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={**SSE_HEADERS, "X-Run-Id": run.id})
    await response.prepare(request)
    await response.write(retry_field(retry_ms))
    return response


async def follow(response: web.StreamResponse, run: Run, after: int, ping_interval: float) -> None:
    """Write every event with id > ``after``, live, until the terminal event.

    When the producer is ahead, all pending events go out in one write; when it
    is not, each event is written the moment it is appended.
    """
    position = after
    while True:
        try:
            piece = await run.log.read(position, _MAX_BATCH)
        except EventsGone as gone:
            await response.write(_fell_behind(gone))
            return
        if piece.frames:
            await response.write(
                piece.frames[0] if len(piece.frames) == 1 else b"".join(piece.frames)
            )
            position = piece.last_seq
            if piece.ends:
                return
        elif not await run.log.wait(position, ping_interval):
            await response.write(PING)


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
