"""``ProgressRelay``: one call's progress notifications, sent in order by a task of their own.

The stream client applies messages synchronously, a received chunk's messages at once, so
each message's ``Tick`` is queued here and a sender task writes them out. Every message
gets its own notification while the transport keeps up, a burst replayed after a cut
included. When the backlog passes ``max_backlog`` (a firehose faster than the MCP peer
reads), the queued ticks become one: the newest progress and total, with the text pieces
joined, so the peer never reads stale progress and no text is lost. Those are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from .progress_track import ProgressTrack, Tick

__all__ = ["DEFAULT_MAX_BACKLOG", "ProgressRelay"]

#: Ticks queued before they are joined into one: a few milliseconds of writing at most.
DEFAULT_MAX_BACKLOG = 256


class ProgressRelay:
    """``push`` queues each message's tick; ``run()`` sends them; ``drain()`` waits for them."""

    def __init__(
        self, send: Callable[[Tick], Awaitable[None]], *, max_backlog: int = DEFAULT_MAX_BACKLOG
    ) -> None:
        self._send = send
        self._max_backlog = max_backlog
        self._track = ProgressTrack()
        self._queue: deque[Tick] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        #: Notifications sent, and messages whose notification was joined into a later one.
        self.sent = 0
        self.coalesced = 0

    def push(self, chunk: Any) -> None:
        """The stream client's ``on_chunk``: never awaits."""
        queue = self._queue
        queue.append(self._track.tick(chunk))
        if len(queue) > self._max_backlog:
            self.coalesced += len(queue) - 1
            joined = _joined(queue)
            queue.clear()
            queue.append(joined)
        self._idle.clear()
        self._wake.set()

    async def run(self) -> None:
        """Send queued ticks, in order, until cancelled."""
        queue = self._queue
        while True:
            await self._wake.wait()
            self._wake.clear()
            while queue:
                tick = queue.popleft()
                with contextlib.suppress(Exception):
                    # Progress is advisory: a peer that went away must not fail the call.
                    await self._send(tick)
                self.sent += 1
            self._idle.set()

    async def drain(self) -> None:
        """Wait until every queued tick is sent: the run's last progress comes before its result."""
        await self._idle.wait()


def _joined(queue: deque[Tick]) -> Tick:
    newest = queue[-1]
    if not newest.piece:
        return newest
    text = "".join(tick.message or "" for tick in queue if tick.piece)
    return Tick(newest.progress, newest.total, text, piece=True)
