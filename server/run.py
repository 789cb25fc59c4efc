"""A run as the server keeps it: its record, its event log, and the followers of its stream."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from .clock import StallClock
from .eventlog import EventLog
from .framing import message_data
from .registry import Endpoint

__all__ = ["Follower", "Run"]


class Follower(Protocol):
    """One response that follows a run's stream, as the run sees it.

    A follower keeps its own position in the run's log. While it is behind, its own
    task writes what it has not written yet; once it has caught up it waits in
    ``Run.caught_up`` until ``ctx.send`` writes the next event for it (``idle_for``,
    ``write_now``) or wakes it (``wake``).
    """

    #: The id of the last event written out completely.
    position: int
    #: When it last finished a write, or stopped waiting for one (``Run.clock`` seconds).
    progressed_at: float
    #: Let go for making no progress for the stall time: no longer waited for.
    dropped: bool
    #: When it last wrote anything, a ping included (monotonic seconds).
    wrote_at: float

    def idle_for(self, seq: int, size: int) -> bool:
        """Whether event ``seq`` of ``size`` bytes can be written at once, never waiting."""

    async def write_now(self, seq: int, frame: bytes) -> None:
        """Write event ``seq``, which ``idle_for`` accepted; this never waits for the client."""

    def stalled(self, now: float, stall: float) -> bool:
        """Whether it has had something to write, and made no progress, for ``stall`` s."""

    def let_go(self) -> None:
        """Stop waiting for it and end its stream: it made no progress for the stall time."""

    def leave(self) -> None:
        """End its stream now, without a terminal event, every whole event written so far
        delivered first: this node stops serving the run, and the client resumes
        (``Last-Event-ID``) on another node."""

    def wake(self) -> None:
        """Let the follower's own task write what has arrived."""

    async def ping_if_quiet(self, now: float, interval: float) -> None:
        """Write a keep-alive comment if nothing was written for ``interval`` seconds."""


@dataclass(eq=False)
class Run:
    id: str
    endpoint: Endpoint
    params: dict[str, Any]
    log: EventLog
    created: float = field(default_factory=time.time)
    finished: float | None = None
    status: str = "running"
    result_json: str | None = None
    error: dict[str, Any] | None = None
    messages: int = 0
    #: The newest message's data once this node's log may not hold it: kept as the run
    #: ends, or read from the shared store for a run executed elsewhere.
    last_message_kept: bytes | None = None
    #: Every follower of the run's stream, each with its own position.
    followers: set[Follower] = field(default_factory=set)
    #: The followers that have written everything and wait for the next event.
    caught_up: set[Follower] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    grace: asyncio.TimerHandle | None = None
    #: Seconds it is kept without a follower before it is cancelled; None: the server's
    #: ``detach_grace``. Zero once its caller left before learning its id.
    grace_period: float | None = None
    #: Why it is being cancelled (``framing.CANCEL_REASONS``), once something asked.
    cancel_reason: str | None = None
    #: The clock its followers' progress is measured on, and how long one may make none.
    clock: StallClock = field(default_factory=StallClock)
    stall: float = 2.0
    #: The node that executes it, when runs are shared between nodes (else None).
    node: str | None = None
    #: Executed by another node: this one only follows it, fed from the shared store.
    elsewhere: bool = False
    _progress: asyncio.Future[None] | None = None

    def wake_followers(self) -> None:
        """Wake every caught-up follower: there is something for each to write."""
        for follower in list(self.caught_up):
            follower.wake()  # which also takes it out of the caught-up set

    async def write_to_caught_up(self, seq: int) -> None:
        """Event ``seq`` of a sparse stream, written to the caught-up followers here rather
        than by their tasks (one loop turn sooner); one that cannot take it at once is
        woken, to write it with the ones that follow."""
        frame = self.log.frame(seq)
        size = len(frame)
        for follower in list(self.caught_up):
            if follower.idle_for(seq, size):
                await follower.write_now(seq, frame)
            else:
                follower.wake()

    def note_progress(self) -> None:
        """A follower finished a write: a workflow held back for it may go on."""
        waiter = self._progress
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_for_progress(self, timeout: float) -> None:
        if self._progress is None or self._progress.done():
            self._progress = asyncio.get_running_loop().create_future()
        await asyncio.wait([self._progress], timeout=timeout)

    @property
    def last_message_json(self) -> bytes | None:
        """The newest message's data, as the UTF-8 JSON its frame holds (None before any)."""
        if self.elsewhere or self.log.closed or not self.messages:
            return self.last_message_kept
        # Running here: the log always keeps its newest event, this message, so nothing is
        # kept per message. (Holding orjson's output instead, one small block a run outside
        # Python's own allocator, cost 4 KB of RSS a stream with 2,000 streams.)
        return message_data(self.log.frame(self.messages))

    def end(self, event: str, data_json: str) -> None:
        """Append the terminal event, keeping the newest message's data first: from now
        on the log may drop that message (trimmed below its bound, or released)."""
        self.last_message_kept = self.last_message_json
        self.log.close(event, data_json)

    @property
    def running(self) -> bool:
        return self.status == "running"

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "endpoint": self.endpoint.name,
            "params": self.params,
            "status": self.status,
            "created": _iso(self.created),
            "finished": _iso(self.finished) if self.finished is not None else None,
            "events": self.messages,
            "last_message": _loads(self.last_message_json),
        }
        if self.node is not None:
            out["node"] = self.node
        return out

    def detail(self) -> dict[str, Any]:
        out = self.summary()
        out["followers"] = len(self.followers)
        out["last_event_id"] = self.log.last_seq
        if self.status == "succeeded":
            out["result"] = _loads(self.result_json)
        if self.error is not None:
            out["error"] = self.error
        return out


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _loads(text: str | bytes | None) -> Any:
    return None if text is None else json.loads(text)
