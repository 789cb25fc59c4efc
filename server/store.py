"""The run store: where runs' event logs live, and, when it is shared, how nodes see
each other's runs.

Every store has the first role (``RunStore``): it makes a run's event log, opens and
closes, and says whether it can serve. A store shared between nodes has the second
(``SharedRuns``, its ``shared``): it publishes this node's runs, finds and follows the
other nodes' runs, and carries cancel requests. ``MemoryRunStore`` (the default) shares
nothing, so one process is exactly what it would be without any store;
``redis_store.RedisRunStore`` shares everything through Redis.
"""

from __future__ import annotations

from typing import Any, Protocol

from .clock import StallClock
from .config import ServerConfig
from .eventlog import EventLog, MemoryEventLog
from .run import ExecutedRun, FollowedRun, Run, RunRecord

__all__ = ["MemoryRunStore", "RunHost", "RunStore", "SharedRuns", "StoreUnavailable"]


class StoreUnavailable(Exception):
    """The shared run store cannot be reached (at start-up, or while serving)."""


class RunStore(Protocol):
    @property
    def shared(self) -> SharedRuns | None:
        """The part that shares runs between nodes; None for a store that shares nothing."""

    async def open(self) -> None:
        """Connect and start the store's background tasks. Raises StoreUnavailable."""

    async def close(self) -> None:
        """Flush what is buffered, stop the background tasks, disconnect."""

    def problem(self) -> str | None:
        """Why the store cannot serve now, or None when it can."""

    def new_log(self, run_id: str) -> EventLog:
        """The event log of a run about to execute on this node."""

    def node_alive(self, process: str) -> bool | None:
        """Whether the server process ``process`` (``node.PROCESS_ID``) still runs: True,
        False, or None when the store cannot tell (always, for one that shares nothing)."""


class RunHost(Protocol):
    """What a shared store asks of the node's ``RunManager``, whose runs it shares."""

    #: The clock the node's followers' progress is measured on.
    clock: StallClock

    def get(self, run_id: str) -> Run | None:
        """One of this node's runs."""

    def cancel(self, run: Run, reason: str = "requested") -> bool:
        """Cancel one of this node's runs (asked by another node)."""

    def unfollowed(self, run: ExecutedRun) -> None:
        """The last follower elsewhere of this node's ``run`` left."""

    def end_with(self, run: ExecutedRun, error: dict[str, Any]) -> None:
        """Stop ``run``'s workflow and end the run with ``error``: another node took this
        one for dead and ended it (``node_lost``), or Redis took none of its events for
        the store stall (``store_unavailable``)."""


class SharedRuns(Protocol):
    #: This node's name in the store.
    node: str

    def bind(self, host: RunHost) -> None:
        """The manager whose runs it shares, and which it asks to cancel them."""

    # -- this node's runs, published ------------------------------------------------

    def started(self, run: ExecutedRun) -> None:
        """A run began executing here: publish its record."""

    async def announced(self, run: ExecutedRun) -> None:
        """Wait until other nodes can find this node's ``run`` (before its caller's response
        starts, so a resume on another node never comes before the record)."""

    def finished(self, run: ExecutedRun) -> None:
        """A run executing here has ended (its terminal event is in its log)."""

    def forgotten(self, run: ExecutedRun) -> None:
        """A finished run of this node left the index (count or age bound)."""

    def released(self, run: ExecutedRun) -> None:
        """A finished run's log was let go of here (``max_log_memory``): its events go
        from the store too, so that a resume is answered alike on every node."""

    async def followers_elsewhere(self, run: ExecutedRun) -> int:
        """How many followers other nodes have on this node's ``run``."""

    # -- other nodes' runs, followed ------------------------------------------------

    async def find(self, run_id: str, *, outcome: bool = True) -> FollowedRun | None:
        """A run executing on another node, as this node can follow it; None if unknown.
        Without ``outcome``, its last message and result are not read (a follower needs
        neither, and a run of multi-megabyte messages would send one on every request)."""

    async def others(self, exclude: set[str]) -> list[RunRecord]:
        """The records of the runs other nodes keep (those in ``exclude`` left out)."""

    def followed(self, run: FollowedRun, change: int) -> None:
        """A follower here of another node's run came (+1) or went (-1)."""

    def cancel_elsewhere(self, run: FollowedRun) -> None:
        """Ask the node executing ``run`` to cancel it."""

    async def reach(self, run: FollowedRun, seq: int) -> None:
        """Wait, briefly, until the store has event ``seq`` of another node's ``run``: its
        node wrote it to a follower there a moment before shipping it here."""


class MemoryRunStore:
    """Nothing is shared: the runs are the manager's objects and nothing else."""

    shared: SharedRuns | None = None

    def __init__(self, config: ServerConfig) -> None:
        self._config = config

    async def open(self) -> None:
        pass  # nothing to connect to

    async def close(self) -> None:
        pass

    def problem(self) -> str | None:
        return None

    def new_log(self, run_id: str) -> EventLog:
        return MemoryEventLog(self._config.log_max_bytes)

    def node_alive(self, process: str) -> bool | None:
        return None
