"""``RunContext``: what a workflow gets as its first argument, and how ``ctx.send`` paces it."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, TypeVar

from .config import ServerConfig
from .framing import json_bytes
from .resources import OpenResources, Resource
from .run import ExecutedRun

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
        self, run: ExecutedRun, config: ServerConfig, resources: OpenResources | None = None
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
        self._clock_mask = 0  # see send
        self._delivery = run.delivery
        self._last_send = 0.0
        self.run_id = run.id
        self.data_dir = config.data_dir
        self.config = config
        self._resources = resources if resources is not None else OpenResources()
        self.logger = logging.getLogger(f"streambind.workflow.{run.endpoint_name}")

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
        delivery = self._delivery
        seq = delivery.append_message(data_json)
        self._run.messages = seq  # every event before the terminal one is a message
        if delivery.hold_due:
            await delivery.hold_for_slow_followers()
        # The clock is read at every send of a sparse stream, at every 32nd of a dense
        # one (where it would cost more than it tells; the event ids count the sends),
        # and whenever a caught-up follower is to hear of this event.
        if delivery.caught_up or not seq & self._clock_mask:
            now = time.perf_counter()
            # Dense: the workflow sends in quick succession by its own pace.
            dense = now - self._last_send < _DENSE_S
            self._clock_mask = 31 if dense else 0
            if self._awaited:
                self._start_slice(now)
            if delivery.caught_up:
                # Dense: each caught-up follower's task writes this event together with
                # the next ones, in one write.
                await delivery.hand_over(seq, together=dense)
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
