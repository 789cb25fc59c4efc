"""``ProgressRelay``: one call's progress notifications, sent in order by a task of their own.

The stream client hands over each message as it applies it, a received chunk's messages at
once and without awaiting: ``push`` only queues the message (it must cost the stream next to
nothing, a firehose being hundreds of thousands of messages a second). The sender task turns
what has queued into ticks and writes them out: one notification per message while the
transport keeps up (a burst replayed after a cut included), and once more than
``max_backlog`` messages wait, one notification for all of them, the newest progress with
the text pieces joined, so the peer never reads stale progress and no text is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from .progress_track import ProgressTrack, Tick

__all__ = ["DEFAULT_MAX_BACKLOG", "ProgressRelay"]

#: Messages waiting before they are joined into one notification: a few milliseconds of
#: writing at most.
DEFAULT_MAX_BACKLOG = 256


class ProgressRelay:
    """``push`` queues each message; ``run()`` sends their ticks; ``drain()`` waits for them."""

    def __init__(
        self, send: Callable[[Tick], Awaitable[None]], *, max_backlog: int = DEFAULT_MAX_BACKLOG
    ) -> None:
        self._send = send
        self._max_backlog = max_backlog
        self._track = ProgressTrack()
        self._pending: list[Any] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        #: Notifications sent, and messages whose notification was joined into another.
        self.sent = 0
        self.coalesced = 0

    def push(self, chunk: Any) -> None:
        """The stream client's ``on_chunk``: queues, never awaits."""
        if self._closed:
            return
        self._pending.append(chunk)
        self._idle.clear()
        self._wake.set()

    async def run(self) -> None:
        """Send what is queued, in order, until cancelled."""
        track = self._track
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending, []
                if len(batch) > self._max_backlog:
                    self.coalesced += len(batch) - 1
                    await self._send_one(track.tick_many(batch))
                    continue
                for chunk in batch:
                    await self._send_one(track.tick(chunk))
            self._idle.set()

    async def _send_one(self, tick: Tick) -> None:
        with contextlib.suppress(Exception):
            # Progress is advisory: a peer that went away must not fail the call.
            await self._send(tick)
        self.sent += 1

    def close(self) -> None:
        """Take nothing more (a call that became a task: its stream goes on without it)."""
        self._closed = True
        self._pending.clear()

    async def drain(self) -> None:
        """Wait until all that was pushed is sent: the last progress before the result."""
        await self._idle.wait()
