"""A run as a node knows it: its record and the delivery of its events.

Two kinds: an ``ExecutedRun`` executes here (its workflow's task, its detach grace); a
``FollowedRun`` executes on another node, and this one follows it, fed from the shared
run store. Both deliver their events to followers here the same way.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import InitVar, dataclass, field
from typing import Any

from .clock import StallClock
from .delivery import Delivery
from .eventlog import EventLog
from .framing import message_data
from .registry import Endpoint

__all__ = ["ExecutedRun", "FollowedRun", "Run", "RunRecord"]


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What a list of runs shows of one, whichever node executes it."""

    id: str
    endpoint: str
    params: dict[str, Any]
    status: str
    created: float
    finished: float | None
    messages: int
    #: The newest message's data, as the UTF-8 JSON its frame holds (None before any).
    last_message_json: bytes | None
    node: str | None


@dataclass(eq=False, kw_only=True)
class Run:
    id: str
    #: Its endpoint's name.
    endpoint_name: str
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
    #: Handed to its delivery: the clock its followers' progress is measured on, and how
    #: long one may make none.
    clock: InitVar[StallClock | None] = None
    stall: InitVar[float] = 2.0
    #: The node that executes it, when runs are shared between nodes (else None).
    node: str | None = None
    #: How its events reach its followers (set from ``log``, ``clock`` and ``stall``).
    delivery: Delivery = field(init=False, repr=False)

    def __post_init__(self, clock: StallClock | None, stall: float) -> None:
        self.delivery = Delivery(self.log, clock or StallClock(), stall)

    @property
    def last_message_json(self) -> bytes | None:
        """The newest message's data, as the UTF-8 JSON its frame holds (None before any)."""
        return self.last_message_kept

    @property
    def running(self) -> bool:
        return self.status == "running"

    def record(self) -> RunRecord:
        return RunRecord(
            id=self.id,
            endpoint=self.endpoint_name,
            params=self.params,
            status=self.status,
            created=self.created,
            finished=self.finished,
            messages=self.messages,
            last_message_json=self.last_message_json,
            node=self.node,
        )


@dataclass(eq=False, kw_only=True)
class ExecutedRun(Run):
    """A run this node executes."""

    endpoint: Endpoint
    task: asyncio.Task[None] | None = None
    grace: asyncio.TimerHandle | None = None
    #: Seconds it is kept without a follower before it is cancelled; None: the server's
    #: ``detach_grace``. Zero once its caller left before learning its id.
    grace_period: float | None = None
    #: Why it is being cancelled (``framing.CANCEL_REASONS``), once something asked.
    cancel_reason: str | None = None
    #: The error it is to end with, when something outside its workflow stopped it
    #: (``RunHost.end_with``): another node took this one for dead (``node_lost``), or
    #: Redis took none of its events for the store stall (``store_unavailable``).
    imposed_error: dict[str, Any] | None = None

    @property
    def last_message_json(self) -> bytes | None:
        if self.log.closed or not self.messages:
            return self.last_message_kept
        # Running here: the log always keeps its newest event, this message, so nothing is
        # kept per message. (Holding orjson's output instead, one small block a run outside
        # Python's own allocator, cost 4 KB of RSS a stream with 2,000 streams.)
        return message_data(self.log.frame(self.messages))

    def end(self, event: str, data_json: str) -> None:
        """Append the terminal event, keeping the newest message's data first: from now
        on the log may drop that message (trimmed below its bound, or released)."""
        self.last_message_kept = self.last_message_json
        self.delivery.end(event, data_json)


@dataclass(eq=False, kw_only=True)
class FollowedRun(Run):
    """A run another node executes, as this node follows it (its record from the store)."""
