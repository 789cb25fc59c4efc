"""Event logs backed by a Redis Stream: the executing node's, and a following node's.

A run's stream holds its frames exactly as ``framing.encode_event`` made them, under
entry id ``<seq>-0``: the SSE id is the entry id, so ``Last-Event-ID: N`` is one
``XRANGE`` from ``N + 1``. The terminal entry carries an ``end`` field too.

``ShippedEventLog`` is the executing node's: a ``MemoryEventLog`` (its local followers
and ``ctx.send`` see nothing else) whose appends are also queued for the store's
writer task. ``FollowedEventLog`` is another node's view: the newest events, fed by
one reader task per node, in memory; older ones read from the stream on demand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from .eventlog import _FRAME_OVERHEAD, EventsGone, LogSlice, MemoryEventLog

__all__ = ["FRAME", "TERMINAL", "FollowedEventLog", "ShippedEventLog", "entry_seq"]

#: The stream entry's fields: the framed event, and a mark on the terminal one.
FRAME = b"f"
TERMINAL = b"end"


def entry_seq(entry_id: bytes | str) -> int:
    """The SSE id of a stream entry (``<seq>-0``)."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


class ShippedEventLog(MemoryEventLog):
    """The executing node's log: in memory as ever, and queued for Redis as appended.

    ``append`` adds one list append and a flag check to the memory log's work; the
    store's writer takes everything queued in one pipeline, so a sparse stream goes
    out at once and a firehose in batches.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes)
        #: (seq, frame, terminal) not yet written to Redis, oldest first.
        self.outbox: list[tuple[int, bytes, bool]] = []
        #: Set when the outbox has something, or the run has ended.
        self.ready = asyncio.Event()
        #: Events removed from memory (trimmed, released): the stream drops them too.
        self.released = False

    def append(self, event: str, data_json: str) -> int:
        seq = super().append(event, data_json)
        self.outbox.append((seq, self._frames[-1], False))
        if not self.ready.is_set():
            self.ready.set()
        return seq

    def close(self, event: str, data_json: str) -> int:
        seq = super().close(event, data_json)
        self.outbox[-1] = (seq, self.outbox[-1][1], True)
        return seq

    def release(self) -> None:
        super().release()
        self.released = True
        self.ready.set()

    @property
    def kept(self) -> int:
        """How many events the memory log holds now."""
        return len(self._frames)

    def take(self, most: int) -> list[tuple[int, bytes, bool]]:
        """The oldest queued events, at most ``most``: the stream gets every event, in
        order, even those the memory bound has already dropped here."""
        batch = self.outbox[:most]
        del self.outbox[:most]
        return batch

    def put_back(self, batch: list[tuple[int, bytes, bool]]) -> None:
        """A write that failed (Redis away): its events go first again, except those the
        memory bound has dropped meanwhile, so waiting for Redis holds no more than the
        bound. The stream then starts after a gap: a reader there has fallen behind."""
        first = self.first_kept
        self.outbox[:0] = batch
        outbox = self.outbox
        stale = 0
        while stale < len(outbox) and outbox[stale][0] < first and not outbox[stale][2]:
            stale += 1
        del outbox[:stale]


class FollowedEventLog(MemoryEventLog):
    """Another node's run as this node follows it: the newest events in memory.

    Its reader task (``ingest``) appends what ``XREAD`` returns; a follower asking for
    older events than memory holds reads them from the stream (``read``).
    """

    def __init__(
        self,
        max_bytes: int,
        redis: Any,
        stream: str,
        last_seq: int,
        first_kept: int,
        closed: bool,
    ) -> None:
        super().__init__(max_bytes)
        self._redis = redis
        self._stream = stream
        self._first = last_seq + 1  # memory starts empty, after the newest known event
        self._stored_first = min(first_kept, self._first)
        self._closed = closed
        self._gone = False

    @property
    def first_kept(self) -> int:
        return self._stored_first

    def append(self, event: str, data_json: str) -> int:
        raise RuntimeError("another node executes this run: only it appends to its log")

    def ingest_flat(self, flat: list[Any]) -> None:
        """Events as the store's read script returns them: ``id, frame, id, frame, …,
        ended`` (ended: whether the last one is the terminal event)."""
        ended = bool(flat[-1])
        count = (len(flat) - 1) // 2
        self.ingest((flat[2 * i], flat[2 * i + 1], ended and i == count - 1) for i in range(count))

    def ingest(self, entries: Iterable[tuple[bytes, bytes, bool]]) -> None:
        """Events read from the stream, ``(entry id, frame, terminal)``, in order, after
        the newest one held."""
        for entry_id, frame, terminal in entries:
            seq = entry_seq(entry_id)
            if seq <= self.last_seq:
                continue
            if seq != self.last_seq + 1:
                # A gap: the stream was trimmed past what was read. Memory restarts there;
                # a follower still before it is answered from the stream (or fell behind).
                self._frames = []
                self._bytes = 0
                self._first = seq
            self._frames.append(frame)
            self._bytes += len(frame) + _FRAME_OVERHEAD
            if terminal:
                self._closed = True
        if self._bytes > self._max_bytes:
            self._trim()
        self._stored_first = min(self._stored_first, self._first)
        if self._waiters:
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._waiters.clear()

    def advance(self, newest: int, closed: bool) -> None:
        """The stream's newest event is ``newest``: before any is read into memory, memory
        starts after it (the older ones are read from the stream)."""
        if not self._frames and newest >= self._first:
            self._first = newest + 1
            self._closed = self._closed or closed

    def end_unseen(self) -> None:
        """The run's keys are gone from Redis: nothing more will come (its followers are
        told ``fell_behind``); wake the waiters."""
        self._gone = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def read(self, after: int, max_events: int, max_bytes: int = 1 << 62) -> LogSlice:
        if self._gone:
            raise EventsGone(after + 1, self.last_seq + 1)
        if after + 1 >= self._first:
            return await super().read(after, max_events, max_bytes)
        # Older than memory holds: from the stream, up to where memory begins.
        entries = await self._redis.xrange(
            self._stream, min=f"{after + 1}-0", max=f"{self._first - 1}-0", count=max_events
        )
        first = entry_seq(entries[0][0]) if entries else self._first
        if first != after + 1:
            self._stored_first = first
            raise EventsGone(after + 1, first)
        frames = [fields[FRAME] for _, fields in entries]
        ends = TERMINAL in entries[-1][1]
        return LogSlice(frames, after + len(frames), ends)

    def backlog(self, after: int) -> int:
        # Only the executing node holds a workflow back for its followers.
        return 0
