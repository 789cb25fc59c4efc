"""``Follower``: one stream of a run's events, as the run's ``Delivery`` sees it."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Follower", "LogReader"]


class LogReader(Protocol):
    """Anything that reads a run's log at its own pace and holds the workflow back while
    it lags too far (``Delivery.hold_for_slow_followers``): a follower, or the writer that
    ships the log to a shared store."""

    @property
    def position(self) -> int:
        """The id of the last event it has taken completely."""

    @property
    def progressed_at(self) -> float:
        """Since when it has had the chance to progress and made none (seconds of
        ``Delivery.clock``): it is let go once that lasts its stall time."""

    @property
    def was_let_go(self) -> bool:
        """Let go for making no progress for its stall time: no longer waited for."""

    def let_go(self) -> None:
        """Stop waiting for it: it made no progress for its stall time."""


class Follower(LogReader, Protocol):
    """One response that follows a run's stream, as the run sees it.

    A follower keeps its own position in the run's log. While it is behind, its own
    task writes what it has not written yet; once it has caught up it waits
    (``Delivery.wait_for_more``) until the run's ``Delivery`` writes the next event for
    it (``idle_for``, ``write_now``) or wakes it.
    """

    #: The id of the last event written out completely.
    position: int
    #: When it last finished a write, or stopped waiting for one (seconds of ``Delivery.clock``).
    progressed_at: float
    #: Let go for making no progress for the stall time: no longer waited for.
    was_let_go: bool
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

    async def ping_if_quiet(self, now: float, interval: float) -> None:
        """Write a keep-alive comment if nothing was written for ``interval`` seconds."""
