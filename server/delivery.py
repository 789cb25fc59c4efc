"""``Delivery``: the one path by which a run's events reach the followers of its stream.

Each run has one. It appends the run's events to its log (``append_message`` for
``ctx.send``, ``end`` for the terminal event), or is told of events another node appended
(``hand_over`` from the Redis reader); it knows which followers have caught up, and it
either writes a new event to them at once or wakes them to write what gathered; it holds
the workflow back while a follower lags too far (``hold_for_slow_followers``).

Every task that waits here waits on a future of its own that this object resolves: a
caught-up follower (``wait_for_more``), the workflow held back for a slow follower, and
``start_run``'s caller waiting for the first event (it is a follower at position 0).
"""

from __future__ import annotations

import asyncio

from .clock import StallClock
from .eventlog import EventLog
from .follower import Follower, LogReader

__all__ = ["Delivery"]

# What the log counts for a message beyond its JSON: its framing and its bookkeeping.
_PER_MESSAGE_BYTES = 64


class Delivery:
    """A run's log and the followers of its stream, with the rule that joins them."""

    def __init__(self, log: EventLog, clock: StallClock, stall: float) -> None:
        self.log = log
        #: The clock followers' progress is measured on (``clock.StallClock``), and the
        #: seconds of no progress after which a follower is let go.
        self.clock = clock
        self.stall = stall
        #: Every follower of the stream, each at its own position in the log.
        self.followers: set[Follower] = set()
        #: The followers that have written everything and wait for the next event, each
        #: with the future its task waits on.
        self.caught_up: dict[Follower, asyncio.Future[None]] = {}
        #: Whether enough was appended since the last look for a lagging follower (half
        #: the log is the most one may lag, so a look every sixteenth of it is in time).
        self.hold_due = False
        self._unchecked_bytes = 0
        self._check_every_bytes = log.capacity // 16
        #: With a shared store: the writer task that ships the log there, held for like a
        #: follower, but let go only after ``store_stall`` seconds of no progress.
        self.store_writer: LogReader | None = None
        self.store_stall = 0.0
        #: Whether the workflow is held back now, waiting for a slow reader of the log.
        self.holding = False
        self._progress: asyncio.Future[None] | None = None
        self._ended = False

    # -- events in ----------------------------------------------------------------------

    def append_message(self, data_json: bytes) -> int:
        """Append one message (UTF-8 JSON, as ``framing.json_bytes`` encodes it); its id.

        Followers hear of it through ``hand_over``, which ``ctx.send`` calls when one
        has caught up.
        """
        seq = self.log.append_message(data_json)
        self._unchecked_bytes += len(data_json) + _PER_MESSAGE_BYTES
        if self._unchecked_bytes > self._check_every_bytes:
            self.hold_due = True
        return seq

    async def hand_over(self, seq: int, together: bool) -> None:
        """Event ``seq``, the newest, to the followers that have caught up.

        ``together`` (a dense stream, or several events that arrived at once): each is
        woken, and its own task writes everything that gathered in one write. Otherwise
        it is written here to each follower that can take it at once, one loop turn
        sooner than its task would; one that cannot is woken to write it with the next.
        """
        if together:
            self.wake_all()
            return
        frame = self.log.frame(seq)
        size = len(frame)
        for follower in list(self.caught_up):
            if follower.idle_for(seq, size):
                await follower.write_now(seq, frame)
            else:
                self.wake(follower)

    def end(self, event: str, data_json: str) -> None:
        """Append the terminal event: every follower's task writes it and ends."""
        self.log.close(event, data_json)
        self.ended()

    def ended(self) -> None:
        """Nothing more will be appended (the terminal event is in, or the run's events are
        gone from the shared store): no follower is to wait any longer."""
        self._ended = True
        self.wake_all()

    # -- followers ---------------------------------------------------------------------

    def attach(self, follower: Follower) -> None:
        self.followers.add(follower)

    def attach_store_writer(self, writer: LogReader, stall: float) -> None:
        """The shared store's writer reads this log too: hold the workflow for it while
        it lags (its store away or refusing writes), for up to ``stall`` seconds; letting
        it go then stops the workflow (the run ends with an error)."""
        self.store_writer = writer
        self.store_stall = stall

    def detach(self, follower: Follower) -> None:
        self.followers.discard(follower)
        self.caught_up.pop(follower, None)
        self.progressed()  # a workflow held back for this follower need not wait any more

    async def wait_for_more(self, follower: Follower) -> None:
        """Wait, caught up, until there is an event after ``follower.position`` (or the
        stream is over). Nothing can be appended between the follower's last read and
        this call (no await in between), so no event is missed."""
        if self.log.last_seq > follower.position or self._ended:
            return
        waiting = asyncio.get_running_loop().create_future()
        self.caught_up[follower] = waiting
        try:
            await waiting
        finally:
            if self.caught_up.get(follower) is waiting:
                del self.caught_up[follower]

    def wake(self, follower: Follower) -> None:
        """Let a caught-up follower's task write what has arrived."""
        waiting = self.caught_up.pop(follower, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(None)
            # It had nothing to write: its time without progress starts now, not at its
            # last write.
            follower.progressed_at = self.clock.now()

    def wake_all(self) -> None:
        caught_up = self.caught_up
        if not caught_up:
            return
        # One reading of the clock for all of them: a thousand followers woken at once
        # would otherwise read it a thousand times.
        now = self.clock.now()
        self.caught_up = {}
        for follower, waiting in caught_up.items():
            if not waiting.done():
                waiting.set_result(None)
                follower.progressed_at = now

    def is_waiting(self, follower: Follower) -> bool:
        """Whether the follower has written everything and waits for the next event."""
        return follower in self.caught_up

    # -- backpressure ------------------------------------------------------------------

    def progressed(self) -> None:
        """A follower finished a write (or left), or the store's writer a batch: a workflow
        held back for it may go on."""
        waiting = self._progress
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    async def hold_for_slow_followers(self) -> None:
        """Wait while a follower lags more than half the log, if it still reads (and so
        for the store's writer).

        A follower that takes nothing for the stall time is let go (its connection is
        closed), and the others go on at full speed; the store's writer, after its own.
        """
        self.hold_due = False
        self._unchecked_bytes = 0
        log = self.log
        high_water = log.capacity // 2
        while True:
            now = self.clock.now()
            lagging: list[tuple[LogReader, float]] = [
                (f, self.stall)
                for f in self.followers
                if not f.was_let_go and log.backlog(f.position) > high_water
            ]
            writer = self.store_writer
            if (
                writer is not None
                and not writer.was_let_go
                and log.backlog(writer.position) > high_water
            ):
                lagging.append((writer, self.store_stall))
            if not lagging:
                return
            for reader, stall in lagging:
                if now - reader.progressed_at >= stall:
                    reader.let_go()
                    if reader is writer:
                        # Letting go of the store's writer stopped the workflow: stop here,
                        # before it appends what the store could then only miss.
                        await asyncio.sleep(0)
            waiting = [(reader, stall) for reader, stall in lagging if not reader.was_let_go]
            if not waiting:
                return
            # A lagging follower may still wait for a wake-up that ``hand_over`` gives
            # only after this check: wake it, or it could make no progress while waited for.
            self.wake_all()
            soonest = min(reader.progressed_at + stall for reader, stall in waiting)
            self.holding = True
            try:
                await self._wait_for_progress(max(0.0, soonest - now))
            finally:
                self.holding = False

    async def _wait_for_progress(self, timeout: float) -> None:
        if self._progress is None or self._progress.done():
            self._progress = asyncio.get_running_loop().create_future()
        await asyncio.wait([self._progress], timeout=timeout)
