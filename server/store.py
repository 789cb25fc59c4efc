"""The run store: where runs' records, event logs, remote followers and cancel requests live.

``RunManager`` keeps the runs this node executes as ``Run`` objects whatever the store;
the store decides what other nodes can see of them. ``MemoryRunStore`` (the default)
shares nothing: every method is a no-op or a lookup that finds nothing, so one process
is exactly what it was. ``redis_store.RedisRunStore`` shares everything through Redis.
"""

from __future__ import annotations

from typing import Any, Protocol

from .clock import StallClock
from .config import ServerConfig
from .eventlog import EventLog, MemoryEventLog
from .run import Run

__all__ = ["MemoryRunStore", "RunHost", "RunStore", "StoreUnavailable"]


class StoreUnavailable(Exception):
    """The shared run store cannot be reached (at start-up, or while serving)."""


class RunHost(Protocol):
    """What a run store asks of the node's ``RunManager``, whose runs it shares."""

    #: The clock the node's followers' progress is measured on.
    clock: StallClock

    def get(self, run_id: str) -> Run | None:
        """One of this node's runs."""

    def cancel(self, run: Run, reason: str = "requested") -> bool:
        """Cancel one of this node's runs (asked by another node)."""

    def unfollowed(self, run: Run) -> None:
        """The last follower elsewhere of this node's ``run`` left."""


class RunStore(Protocol):
    #: This node's name in the store (None: the store is not shared).
    node: str | None

    def bind(self, host: RunHost) -> None:
        """The manager whose runs it shares, and which it asks to cancel them."""

    def node_alive(self, node: str) -> bool | None:
        """Whether the server process ``node`` (``node.PROCESS_ID``) still runs: True, False,
        or None when the store cannot tell (always, for a store that shares nothing)."""

    async def open(self) -> None:
        """Connect and start the store's background tasks. Raises StoreUnavailable."""

    async def close(self) -> None:
        """Flush what is buffered, stop the background tasks, disconnect."""

    def problem(self) -> str | None:
        """Why the store cannot serve now, or None when it can."""

    def new_log(self, run_id: str) -> EventLog:
        """The event log of a run about to execute on this node."""

    def started(self, run: Run) -> None:
        """A run began executing here: publish its record."""

    async def announced(self, run: Run) -> None:
        """Wait until other nodes can find this node's ``run`` (before its caller's response
        starts, so a resume on another node never comes before the record)."""

    def finished(self, run: Run) -> None:
        """A run executing here has ended (its terminal event is in its log)."""

    def forgotten(self, run: Run) -> None:
        """A finished run of this node left the index (count or age bound)."""

    async def find(self, run_id: str) -> Run | None:
        """A run executing on another node, as this node can follow it; None if unknown."""

    async def summaries(self, local: list[Run]) -> list[dict[str, Any]]:
        """Every run's summary, newest first: ``local`` (this node's) and the others'."""

    def followed(self, run: Run, change: int) -> None:
        """A follower here of another node's run came (+1) or went (-1)."""

    async def followers_elsewhere(self, run: Run) -> int:
        """How many followers other nodes have on this node's ``run``."""

    def cancel_elsewhere(self, run: Run) -> None:
        """Ask the node executing ``run`` (another one) to cancel it."""

    async def reach(self, run: Run, seq: int) -> None:
        """Wait, briefly, until the store has event ``seq`` of another node's ``run``: its
        node wrote it to a follower there a moment before shipping it here."""


class MemoryRunStore:
    """Nothing is shared: the runs are the manager's objects and nothing else."""

    node: str | None = None

    def __init__(self, config: ServerConfig) -> None:
        self._config = config

    def bind(self, host: RunHost) -> None:
        pass

    def node_alive(self, node: str) -> bool | None:
        return None

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def problem(self) -> str | None:
        return None

    def new_log(self, run_id: str) -> EventLog:
        return MemoryEventLog(self._config.log_max_bytes)

    def started(self, run: Run) -> None:
        pass

    async def announced(self, run: Run) -> None:
        pass

    def finished(self, run: Run) -> None:
        pass

    def forgotten(self, run: Run) -> None:
        pass

    async def find(self, run_id: str) -> Run | None:
        return None

    async def summaries(self, local: list[Run]) -> list[dict[str, Any]]:
        return [run.summary() for run in local]

    def followed(self, run: Run, change: int) -> None:
        pass

    async def followers_elsewhere(self, run: Run) -> int:
        return 0

    def cancel_elsewhere(self, run: Run) -> None:
        pass

    async def reach(self, run: Run, seq: int) -> None:
        pass
