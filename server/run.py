"""A run as the server keeps it: its record, and the delivery of its events (log, followers)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import InitVar, dataclass, field
from datetime import UTC, datetime
from typing import Any

from .clock import StallClock
from .delivery import Delivery
from .eventlog import EventLog
from .framing import message_data
from .registry import Endpoint

__all__ = ["Run"]


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
    task: asyncio.Task[None] | None = None
    grace: asyncio.TimerHandle | None = None
    #: Seconds it is kept without a follower before it is cancelled; None: the server's
    #: ``detach_grace``. Zero once its caller left before learning its id.
    grace_period: float | None = None
    #: Why it is being cancelled (``framing.CANCEL_REASONS``), once something asked.
    cancel_reason: str | None = None
    #: Handed to its delivery: the clock its followers' progress is measured on, and how
    #: long one may make none.
    clock: InitVar[StallClock | None] = None
    stall: InitVar[float] = 2.0
    #: The node that executes it, when runs are shared between nodes (else None).
    node: str | None = None
    #: Executed by another node: this one only follows it, fed from the shared store.
    elsewhere: bool = False
    #: How its events reach its followers (set from ``log``, ``clock`` and ``stall``).
    delivery: Delivery = field(init=False, repr=False)

    def __post_init__(self, clock: StallClock | None, stall: float) -> None:
        self.delivery = Delivery(self.log, clock or StallClock(), stall)

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
        self.delivery.end(event, data_json)

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
            # "events" came first and stays for the clients that read it; "messages"
            # says what it counts (the terminal event is not among them).
            "events": self.messages,
            "messages": self.messages,
            "last_message": _loads(self.last_message_json),
        }
        if self.node is not None:
            out["node"] = self.node
        return out

    def detail(self) -> dict[str, Any]:
        out = self.summary()
        out["followers"] = len(self.delivery.followers)
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
