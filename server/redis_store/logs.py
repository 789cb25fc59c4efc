"""Event logs backed by a Redis Stream: the executing node's, and a following node's.

A run's stream holds its frames exactly as ``framing.encode_event`` made them, several
consecutive events to an entry: each batch the writer ships is one entry (or a few, of
at most 64 KiB each), its frames joined back to back (field ``f``). The entry id is the
SSE id of its LAST event (``<seq>-0``), and ``first`` is the id of its first one (left
out when the entry holds one event), so ``Last-Event-ID: N`` is still one ``XRANGE``
from ``N + 1``: the first entry returned holds event ``N + 1``, and the frames before
it in that entry are cut off. The entry that ends with the terminal event carries an
``end`` field too.

``ShippedEventLog`` is the executing node's: a ``MemoryEventLog`` (its local followers
and ``ctx.send`` see nothing else) whose appends are also queued for the store's
writer task. ``FollowedEventLog`` is another node's view: the newest entries, fed by
one reader task per node, in memory as they came; older ones read from the stream on
demand.
"""

from __future__ import annotations

import asyncio
import sys
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from ..eventlog import EventsGone, LogSlice, MemoryEventLog
from ..framing import frame_start

__all__ = [
    "FIRST",
    "FRAMES",
    "STORED_READS",
    "TERMINAL",
    "Batch",
    "Entry",
    "FollowedEventLog",
    "ShippedEventLog",
    "entry_seq",
    "read_entries",
    "read_entry",
]

#: The stream entry's fields: its frames joined, the id of its first event (absent if it
#: holds one), and a mark on the entry that ends with the terminal event.
FRAMES = b"f"
FIRST = b"first"
TERMINAL = b"end"

# What keeping one entry costs beyond its bytes: the bytes object's header and the two
# list slots (its frames, its last id) with that int.
_ENTRY_OVERHEAD = sys.getsizeof(b"") + 16 + 32
# Old events read from the stream: entries per XRANGE at first (entries hold 1 to 2,000
# events, so the next pages are sized on what the first held), and at most.
_FIRST_PAGE = 16
_MOST_PAGE = 1024
#: Stream reads under way at once on one node, for followers of other nodes' runs.
STORED_READS = 4
_APPENDED_ELSEWHERE = "another node executes this run: only it appends to its log"


def entry_seq(entry_id: bytes | str) -> int:
    """The SSE id of a stream entry's last event (its id is ``<seq>-0``)."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry: events ``first`` to ``last``, framed and joined."""

    first: int
    last: int
    frames: bytes
    terminal: bool


def read_entry(entry_id: bytes, fields: dict[bytes, bytes]) -> Entry:
    """A stream entry as redis-py's ``xrange`` returns it."""
    last = entry_seq(entry_id)
    first = fields.get(FIRST)
    return Entry(int(first) if first else last, last, fields[FRAMES], TERMINAL in fields)


def read_entries(reply: Any) -> list[Entry]:
    """The entries of one stream in a raw ``XREAD`` reply (RESP2 or RESP3: a list of
    ``[stream, entries]`` or a map), each ``[id, [field, value, ...]]``."""
    streams = reply.values() if isinstance(reply, dict) else (pair[1] for pair in reply)
    return [
        read_entry(entry_id, dict(zip(fields[::2], fields[1::2], strict=True)))
        for entries in streams
        for entry_id, fields in entries
    ]


@dataclass(frozen=True, slots=True)
class Batch:
    """Events taken from the outbox for one write: ``first`` and the frames after it."""

    first: int
    frames: list[bytes]
    terminal: bool

    @property
    def last(self) -> int:
        return self.first + len(self.frames) - 1

    def entries(self, most_bytes: int) -> list[tuple[int, int, bytes]]:
        """The batch as stream entries of about ``most_bytes`` at most (at least one event
        each): ``(first, last, frames joined)``."""
        frames, first = self.frames, self.first
        ends = list(accumulate(map(len, frames)))
        out = []
        start, before = 0, 0
        while start < len(frames):
            stop = max(start + 1, bisect_right(ends, before + most_bytes, start))
            out.append((first + start, first + stop - 1, b"".join(frames[start:stop])))
            start, before = stop, ends[stop - 1]
        return out


class ShippedEventLog(MemoryEventLog):
    """The executing node's log: in memory as ever, and queued for Redis as appended.

    ``append`` adds one list append and a flag check to the memory log's work; the
    store's writer takes everything queued as one entry, so a sparse stream goes out
    at once and a firehose in batches.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes)
        #: Frames not yet written to Redis, oldest first; the first is event ``unshipped``.
        self.outbox: list[bytes] = []
        self.unshipped = 1
        #: Set when the outbox has something, or the run has ended.
        self.ready = asyncio.Event()
        #: Events removed from memory (trimmed, released): the stream drops them too.
        self.released = False

    def append(self, event: str, data_json: str) -> int:
        seq = super().append(event, data_json)
        self._ship_newest()
        return seq

    def append_message(self, data_json: bytes) -> int:
        seq = super().append_message(data_json)
        self._ship_newest()
        return seq

    def _ship_newest(self) -> None:
        self.outbox.append(self._frames[-1])
        if not self.ready.is_set():
            self.ready.set()

    def release(self) -> None:
        super().release()
        self.released = True
        self.ready.set()

    @property
    def kept(self) -> int:
        """How many events the memory log holds now."""
        return len(self._frames)

    def take(self, most: int, most_bytes: int) -> Batch | None:
        """The oldest queued events: at most ``most`` of them and about ``most_bytes`` (at
        least one). The stream gets every event, in order, even those the memory bound
        has already dropped here."""
        outbox = self.outbox
        if not outbox:
            return None
        count = min(most, len(outbox))
        if count > 1 and sum(map(len, outbox[:count])) > most_bytes:
            count = max(1, bisect_right(list(accumulate(map(len, outbox[:count]))), most_bytes))
        batch = Batch(self.unshipped, outbox[:count], self._closed and count == len(outbox))
        del outbox[:count]
        self.unshipped += count
        return batch

    def put_back(self, batch: Batch) -> None:
        """A write that failed (Redis away): its events go first again. The run is held
        back meanwhile (``StoreWriter``), so the memory log keeps them; once the writer
        has been let go and the run ended, those the log has dropped go from here too,
        so that waiting for Redis never holds more than the bound (a reader of the
        stream then sees it has fallen behind)."""
        self.outbox[:0] = batch.frames
        self.unshipped = batch.first
        # The terminal event is never dropped (a released log keeps none in memory).
        droppable = len(self.outbox) - 1 if self._closed else len(self.outbox)
        stale = max(0, min(self.first_kept - self.unshipped, droppable))
        del self.outbox[:stale]
        self.unshipped += stale


class FollowedEventLog:
    """Another node's run as this node follows it: the newest entries in memory.

    Its reader task (``ingest``) keeps each entry ``XREAD`` returns whole, so a follower
    that has written everything before an entry writes it as it came, with no work per
    event; a follower asking for older events than memory holds reads them from the
    stream (``read``).
    """

    def __init__(
        self,
        max_bytes: int,
        redis: Any,
        stream: str,
        last_seq: int,
        first_kept: int,
        closed: bool,
        reads: asyncio.Semaphore | None = None,
    ) -> None:
        self._redis = redis
        #: Bounds the stream reads this node has under way at once (shared by its logs).
        self._reads = reads or asyncio.Semaphore(STORED_READS)
        #: Held while older events are read into memory, so that followers arriving
        #: together read them once, not once each.
        self._filling = asyncio.Lock()
        self._stream = stream
        #: The entries held, oldest first, and the id of each one's last event.
        self._chunks: list[bytes] = []
        self._lasts: list[int] = []
        self._first = last_seq + 1  # memory starts empty, after the newest known event
        self._bytes = 0
        self._max_bytes = max_bytes
        self._stored_first = min(first_kept, self._first)
        self._closed = closed
        self._gone = False

    @property
    def last_seq(self) -> int:
        return self._lasts[-1] if self._lasts else self._first - 1

    @property
    def first_kept(self) -> int:
        return self._stored_first

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def capacity(self) -> int:
        return self._max_bytes

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def append(self, event: str, data_json: str) -> int:
        raise RuntimeError(_APPENDED_ELSEWHERE)

    def append_message(self, data_json: bytes) -> int:
        raise RuntimeError(_APPENDED_ELSEWHERE)

    def close(self, event: str, data_json: str) -> int:
        raise RuntimeError("another node executes this run: only it ends its log")

    def frame(self, seq: int) -> bytes:
        """Event ``seq``'s frame, out of the entry in memory that holds it."""
        index = bisect_left(self._lasts, seq)
        chunk = self._chunks[index]
        start = frame_start(chunk, seq)
        if seq == self._lasts[index]:
            return chunk[start:]
        return chunk[start : frame_start(chunk, seq + 1)]

    def release(self) -> None:
        self._first = self.last_seq + 1
        self._chunks = []
        self._lasts = []
        self._bytes = 0

    def ingest(self, entries: Iterable[Entry]) -> None:
        """Entries read from the stream, in order, after the newest one held."""
        for entry in entries:
            newest = self.last_seq
            if entry.last <= newest:
                continue
            frames = entry.frames
            if entry.first <= newest:
                # Memory starts inside this entry (at the record's last_seq): keep the rest.
                frames = frames[frame_start(frames, newest + 1) :]
            elif entry.first != newest + 1:
                # A gap: the stream was trimmed past what was read. Memory restarts there;
                # a follower still before it is answered from the stream (or fell behind).
                self._chunks = []
                self._lasts = []
                self._bytes = 0
                self._first = entry.first
            self._chunks.append(frames)
            self._lasts.append(entry.last)
            self._bytes += len(frames) + _ENTRY_OVERHEAD
            if entry.terminal:
                self._closed = True
        if self._bytes > self._max_bytes:
            self._trim()
        self._stored_first = min(self._stored_first, self._first)

    def _trim(self) -> None:
        # The oldest quarter of the entries at once; the newest entry always stays.
        chunks = self._chunks
        count = min(max(1, len(chunks) // 4), len(chunks) - 1)
        if count <= 0:
            return
        self._bytes -= sum(map(len, chunks[:count])) + count * _ENTRY_OVERHEAD
        self._first = self._lasts[count - 1] + 1
        del chunks[:count]
        del self._lasts[:count]

    def advance(self, newest: int, closed: bool) -> None:
        """The stream's newest event is ``newest``: before any is read into memory, memory
        starts after it (the older ones are read from the stream)."""
        if not self._chunks and newest >= self._first:
            self._first = newest + 1
            self._closed = self._closed or closed

    def end_unseen(self) -> None:
        """The run's keys are gone from Redis: nothing more will come, and its followers
        are told ``fell_behind``."""
        self._gone = True

    async def read(self, after: int, max_events: int, max_bytes: int = 1 << 62) -> LogSlice:
        if self._gone:
            raise EventsGone(after + 1, self.last_seq + 1)
        if after + 1 < self._first:
            await self._fill_from(after)
            if after + 1 < self._first:
                async with self._reads:
                    return await self._read_stored(after, max_events, max_bytes)
        lasts, chunks = self._lasts, self._chunks
        index = bisect_left(lasts, after + 1)  # the entry that holds event after + 1
        if index == len(lasts):
            return LogSlice([], after, False)
        chunk = chunks[index]
        if (lasts[index - 1] + 1 if index else self._first) <= after:
            chunk = chunk[frame_start(chunk, after + 1) :]  # the follower stopped inside it
        pieces = [chunk]
        size = len(chunk)
        last = lasts[index]
        for following in range(index + 1, len(lasts)):
            chunk = chunks[following]
            if lasts[following] - after > max_events or size + len(chunk) > max_bytes:
                break
            pieces.append(chunk)
            size += len(chunk)
            last = lasts[following]
        return LogSlice(pieces, last, self._closed and last == self.last_seq)

    async def _fill_from(self, after: int) -> None:
        """Read the events from ``after + 1`` up to memory's first from the stream into
        memory, when they fit within its bound: once for all the followers here that ask
        (a hundred readers replaying a run of 4 MB messages hold one copy, not a hundred).
        Otherwise, or on a gap, memory stays as it was and each reads the stream itself."""
        async with self._filling:
            first = self._first
            if after + 1 >= first:
                return  # another follower's fill brought them in
            chunks: list[bytes] = []
            lasts: list[int] = []
            size, last, fill_first = 0, after, after + 1
            ended = False
            async with self._reads:
                while last + 1 < first:
                    page = await self._redis.xrange(
                        self._stream, min=f"{last + 1}-0", count=_FIRST_PAGE
                    )
                    if not page:
                        return
                    for entry_id, fields in page:
                        entry = read_entry(entry_id, fields)
                        if entry.first > last + 1 or entry.first >= first:
                            return  # a gap (trimmed meanwhile), or nothing more to fill
                        if not chunks:
                            fill_first = entry.first
                        frames = entry.frames
                        if entry.last >= first:  # memory starts inside this entry
                            frames = frames[: frame_start(frames, first)]
                        chunks.append(frames)
                        ended = ended or (entry.terminal and entry.last < first)
                        last = min(entry.last, first - 1)
                        lasts.append(last)
                        size += len(frames) + _ENTRY_OVERHEAD
                        if self._bytes + size > self._max_bytes:
                            return
                        if last + 1 >= first:
                            break
            if self._first != first or not chunks:
                return  # memory moved on while the stream was read: not contiguous now
            self._chunks[:0] = chunks
            self._lasts[:0] = lasts
            self._bytes += size
            self._first = fill_first
            self._stored_first = min(self._stored_first, fill_first)
            if ended:
                # The run's end was among them: memory was said to start after it (its
                # record said running a moment before its end was written).
                self._closed = True

    async def _read_stored(self, after: int, max_events: int, max_bytes: int) -> LogSlice:
        """Events older than memory holds, from the stream: consecutive entries from the one
        that holds ``after + 1``, up to about ``max_events`` and ``max_bytes``."""
        pieces: list[bytes] = []
        last, size, ends = after, 0, False
        count = _FIRST_PAGE
        while True:
            page = await self._redis.xrange(self._stream, min=f"{last + 1}-0", count=count)
            page_bytes = 0
            for entry_id, fields in page:
                entry = read_entry(entry_id, fields)
                if entry.first > last + 1:
                    if pieces:
                        return LogSlice(pieces, last, False)  # a gap: the next read says so
                    self._stored_first = entry.first
                    raise EventsGone(after + 1, entry.first)
                frames = entry.frames
                if entry.first <= last:
                    frames = frames[frame_start(frames, last + 1) :]
                pieces.append(frames)
                page_bytes += len(frames)
                last, ends = entry.last, entry.terminal
                if ends or size + page_bytes >= max_bytes or last - after >= max_events:
                    return LogSlice(pieces, last, ends)
            size += page_bytes
            if len(page) < count:
                if not pieces:
                    raise EventsGone(after + 1, self._first)
                return LogSlice(pieces, last, ends)
            # The next page, sized on this one's entries to end near max_bytes.
            count = max(1, min(_MOST_PAGE, (max_bytes - size) * len(page) // max(1, page_bytes)))

    def backlog(self, after: int) -> int:
        # Only the executing node holds a workflow back for its followers.
        return 0
