"""``RunContext``: what a workflow gets as its first argument, and how ``ctx.send`` paces it."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, TypeVar

from .config import ServerConfig
from .framing import json_bytes
from .resources import OpenResources, Resource
from .run import Run

T = TypeVar("T")

__all__ = ["RunContext"]


# A workflow that sends in a tight loop never suspends on its own; ctx.send
# yields to the event loop this often so streams are written and cancellation
# is delivered while it runs.
_YIELD_EVERY_S = 0.002
# Sends closer together than this make a dense stream: events are then written by
# each follower's task in batches, not one system call per event and follower.
_DENSE_S = 0.001


class RunContext:
    """What a workflow gets as its first argument."""

    def __init__(
        self, run: Run, config: ServerConfig, resources: OpenResources | None = None
    ) -> None:
        self._run = run
        self._config = config
        self._loop = asyncio.get_running_loop()
        # The workflow's running time is counted in slices: a slice starts at the first
        # send after the workflow has awaited something of its own, and send yields once
        # a slice reaches _YIELD_EVERY_S. A callback queued at each slice's start tells
        # whether the loop has turned since, i.e. whether the workflow has awaited.
        self._awaited = True
        self._next_yield = 0.0
        self._unchecked_bytes = 0
        self._clock_mask = 0  # see send
        # Bound once: send calls it for every message, and the run keeps its log.
        self._append_message = run.log.append_message
        self._check_every_bytes = run.log.capacity // 16
        self._last_send = 0.0
        self.run_id = run.id
        self.data_dir = config.data_dir
        self.config = config
        self._resources = resources if resources is not None else OpenResources()
        self.logger = logging.getLogger(f"streambind.workflow.{run.endpoint.name}")

    def resource(self, declared: Resource[T]) -> T:
        """The opened value of a resource a workflows module declared (``@resource``).

        Raises ``LookupError`` when that resource's module is not served.
        """
        return self._resources.value(declared)

    async def send(self, data: Any) -> int:
        """Send one streaming message ("Send streaming response"); return its event id.

        The first call turns the caller's response into a live SSE stream.
        Raises ``TypeError`` if ``data`` is not JSON-serialisable.
        """
        data_json = json_bytes(data)  # raises the documented NotJSONSerialisable
        run = self._run
        seq = self._append_message(data_json)
        run.messages = seq  # every event before the terminal one is a message
        # Look for followers to wait for often enough that none can be overtaken by
        # the log's trimming in between (half the log is the most one may lag).
        # (What the log will count for it: the JSON, its framing and its bookkeeping.)
        self._unchecked_bytes += len(data_json) + 64
        if self._unchecked_bytes > self._check_every_bytes and run.followers:
            self._unchecked_bytes = 0
            await self._hold_for_slow_followers()
        # The clock is read at every send of a sparse stream, at every 32nd of a dense
        # one (where it would cost more than it tells; the event ids count the sends),
        # and whenever a caught-up follower may be written to.
        if run.caught_up or not seq & self._clock_mask:
            now = time.perf_counter()
            # Dense: the workflow sends in quick succession by its own pace.
            dense = now - self._last_send < _DENSE_S
            self._clock_mask = 31 if dense else 0
            if self._awaited:
                self._start_slice(now)
            if run.caught_up:
                if dense:
                    # Each caught-up follower's task writes this event together with
                    # the next ones, in one write.
                    run.wake_followers()
                else:
                    await run.write_to_caught_up(seq)
            self._last_send = now
            if now >= self._next_yield:
                await asyncio.sleep(0)
                # Measured from the resumption: however long the followers took to
                # write, the workflow then gets a full slice of its own. The pause
                # was send's own, not the workflow's: it starts no slice, and it is
                # no gap between sends.
                self._last_send = time.perf_counter()
                self._start_slice(self._last_send)
        return seq

    def _start_slice(self, now: float) -> None:
        self._awaited = False
        self._next_yield = now + _YIELD_EVERY_S
        self._loop.call_soon(self._note_await)

    def _note_await(self) -> None:
        self._awaited = True

    async def _hold_for_slow_followers(self) -> None:
        """Backpressure: wait while a follower lags more than half the log, if it still reads.

        A follower that takes nothing for ``follower_stall`` seconds is let go (its
        connection is closed), and the others go on at full speed.
        """
        run, log = self._run, self._run.log
        high_water = log.capacity // 2
        stall = run.stall
        while True:
            now = run.clock.now()
            lagging = [
                f for f in run.followers if not f.dropped and log.backlog(f.position) > high_water
            ]
            if not lagging:
                return
            for follower in lagging:
                if now - follower.progressed_at >= stall:
                    follower.let_go()
            waiting = [f for f in lagging if not f.dropped]
            if not waiting:
                return
            # A lagging follower may still wait for a wake-up that send gives only
            # after this check: wake it, or it could make no progress while waited for.
            run.wake_followers()
            oldest = min(f.progressed_at for f in waiting)
            await run.wait_for_progress(max(0.0, stall - (now - oldest)))
