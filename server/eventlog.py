"""The per-run event log: every event of a run, framed once, read by followers by position.

``EventLog`` is the small interface the rest of the server uses, so that a
shared store (for several server processes) can replace ``MemoryEventLog``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Protocol

from .framing import MESSAGE_FRAME, encode_event

__all__ = ["EventLog", "EventsGone", "LogSlice", "MemoryEventLog"]


# What keeping one event costs beyond its bytes: the bytes object's header and the
# list's slot. Counted, so that the bound is on memory, not only on payload.
_FRAME_OVERHEAD = sys.getsizeof(b"") + 8

_ENDED = "the run has ended; no event can follow its terminal event"


class EventsGone(Exception):
    """A follower asked for events that the bounded log no longer keeps."""

    def __init__(self, wanted: int, first_kept: int) -> None:
        self.wanted = wanted
        self.first_kept = first_kept
        super().__init__(
            f"events from id {wanted} on are no longer kept (the oldest kept is {first_kept})"
        )


@dataclass(frozen=True)
class LogSlice:
    """Consecutive framed events ``(after, last_seq]``; ``ends`` if the terminal event is in it."""

    #: The frames in order, to be written back to back: one event each, or several
    #: joined (a log that keeps events as they arrived in batches).
    frames: list[bytes]
    last_seq: int
    ends: bool


class EventLog(Protocol):
    @property
    def last_seq(self) -> int:
        """The id of the newest event (0 before the first)."""

    @property
    def first_kept(self) -> int:
        """The id of the oldest event still kept (``last_seq + 1`` while there is none)."""

    @property
    def closed(self) -> bool:
        """Whether the terminal event has been appended."""

    def append(self, event: str, data_json: str) -> int:
        """Frame and store one event; return its id. Never blocks: a store that ships
        events elsewhere buffers them and sends them on in the background."""

    def append_message(self, data_json: bytes) -> int:
        """``append(MESSAGE, …)`` for JSON already encoded as UTF-8 (``framing.json_bytes``):
        ``ctx.send``'s path, taken once per message."""

    def close(self, event: str, data_json: str) -> int:
        """Append the terminal event; nothing can be appended after it."""

    def frame(self, seq: int) -> bytes:
        """The framed bytes of a kept event (the newest, typically)."""

    async def read(self, after: int, max_events: int, max_bytes: int = 1 << 62) -> LogSlice:
        """Events with id > ``after``: at most ``max_events`` of them, and no more than
        about ``max_bytes`` (always at least one). Raises EventsGone."""

    def backlog(self, after: int) -> int:
        """About how many bytes of events with id > ``after`` the log holds."""

    @property
    def capacity(self) -> int:
        """The bytes of events the log keeps before it drops the oldest."""

    @property
    def size_bytes(self) -> int:
        """The memory its events take now, as the bound counts it."""

    def release(self) -> None:
        """Drop every event kept (a finished run's log, to free memory); ids stay as they are."""


class MemoryEventLog:
    """An in-process log bounded in bytes; the oldest events go first.

    The terminal event is never dropped, since it is always the newest.
    """

    def __init__(self, max_bytes: int = 8 * 1024 * 1024) -> None:
        self._frames: list[bytes] = []
        self._first = 1  # the id of self._frames[0]
        self._bytes = 0
        self._max_bytes = max_bytes
        self._closed = False

    @property
    def last_seq(self) -> int:
        return self._first + len(self._frames) - 1

    @property
    def first_kept(self) -> int:
        return self._first

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def close(self, event: str, data_json: str) -> int:
        seq = self.append(event, data_json)
        self._closed = True
        return seq

    def frame(self, seq: int) -> bytes:
        return self._frames[seq - self._first]

    def append(self, event: str, data_json: str) -> int:
        if self._closed:
            raise RuntimeError(_ENDED)
        seq = self.last_seq + 1
        self._keep(encode_event(seq, event, data_json))
        return seq

    def append_message(self, data_json: bytes) -> int:
        # The frame made in place from the bytes template, and _keep written out: this runs
        # once per message, and the call to _keep measured 20-25 ns of the ~960 ns a
        # firehose message takes through ctx.send (2%), so its six lines are repeated here.
        if self._closed:
            raise RuntimeError(_ENDED)
        frames = self._frames
        seq = self._first + len(frames)
        frame = MESSAGE_FRAME % (seq, data_json)
        frames.append(frame)
        self._bytes += len(frame) + _FRAME_OVERHEAD
        if self._bytes > self._max_bytes:
            self._trim()
        return seq

    def _keep(self, frame: bytes) -> None:
        """Keep the next event's frame, within the bound."""
        self._frames.append(frame)
        self._bytes += len(frame) + _FRAME_OVERHEAD
        if self._bytes > self._max_bytes:
            self._trim()

    def release(self) -> None:
        self._first = self.last_seq + 1
        self._frames = []
        self._bytes = 0

    def _trim(self) -> None:
        # Drop the oldest quarter at once, so trimming costs one list slice per many
        # appends rather than one per append. The newest event always stays.
        frames = self._frames
        count = min(max(1, len(frames) // 4), len(frames) - 1)
        dropped = sum(map(len, frames[:count])) + count * _FRAME_OVERHEAD
        del frames[:count]
        self._first += count
        self._bytes -= dropped

    @property
    def capacity(self) -> int:
        return self._max_bytes

    async def read(self, after: int, max_events: int, max_bytes: int = 1 << 62) -> LogSlice:
        if after + 1 < self._first:
            raise EventsGone(after + 1, self._first)
        start = after + 1 - self._first
        frames = self._frames[start : start + max_events]
        if len(frames) > 1 and len(frames) * len(frames[0]) > max_bytes:
            frames = _up_to(frames, max_bytes)
        last = after + len(frames)
        return LogSlice(frames, last, self._closed and last == self.last_seq and bool(frames))

    def backlog(self, after: int) -> int:
        pending = self.last_seq - after
        if pending <= 0 or not self._frames:
            return 0
        return pending * self._bytes // len(self._frames)


def _up_to(frames: list[bytes], max_bytes: int) -> list[bytes]:
    total = 0
    for count, frame in enumerate(frames):
        total += len(frame)
        if total > max_bytes:
            return frames[: max(1, count)]
    return frames
