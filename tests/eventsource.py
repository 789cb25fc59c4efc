"""A client that reconnects exactly as the standard's EventSource does, to count its requests.

The WHATWG rules it follows: a response that is not ``200 text/event-stream`` fails the
connection for good (no reconnection); a 200 stream that ends is reconnected after the
stream's ``retry:`` time, sending the last dispatched event id as ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from streambind.app.sse import SSEDecoder


@dataclass
class Attempt:
    status: int
    last_event_id_sent: str
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, data, id)
    #: The connection was cut mid-stream rather than closed.
    cut: bool = False


async def follow_like_eventsource(
    client: httpx.AsyncClient,
    path: str,
    *,
    last_event_id: str = "",
    before_reading: Callable[[], Awaitable[None]] | None = None,
    give_up_after: int = 10,
) -> list[Attempt]:
    """Every request an EventSource makes for ``path``, until it stops (or ``give_up_after``)."""
    attempts: list[Attempt] = []
    retry_ms = 3000
    while len(attempts) < give_up_after:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        async with client.stream("GET", path, headers=headers) as response:
            attempt = Attempt(response.status_code, last_event_id)
            attempts.append(attempt)
            content_type = response.headers.get("content-type", "").split(";")[0].strip()
            if response.status_code != 200 or content_type != "text/event-stream":
                return attempts  # "fail the connection": EventSource never comes back
            if before_reading is not None and len(attempts) == 1:
                await before_reading()
            decoder = SSEDecoder()
            try:
                async for chunk in response.aiter_bytes():
                    for event_type, data, event_id, _ in decoder.feed_fields(chunk):
                        attempt.events.append((event_type, data, event_id))
            except httpx.TransportError:
                attempt.cut = True  # a network error ends the stream like a close does
            last_event_id = decoder.last_event_id
            retry_ms = decoder.retry if decoder.retry is not None else retry_ms
        await asyncio.sleep(retry_ms / 1000)  # "reestablish the connection" after retry
    return attempts
