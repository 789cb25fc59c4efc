"""The stall clock: seconds in which this server process really ran.

Whether a follower is stuck is judged by how long it had the chance to make progress.
Time in which the process did not run at all (``kill -STOP``, a suspended VM) or its
event loop was blocked (a workflow computing for seconds without awaiting) gave no
follower that chance, so it must not count against any of them. The clock advances
with ``time.monotonic`` but counts any gap between two of its readings as at most
``max_gap``; a ticker reads it several times a second, so in a process that runs
normally no gap is longer than that and the clock keeps real time.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["StallClock"]


class StallClock:
    def __init__(self, max_gap: float = 0.25) -> None:
        self.max_gap = max_gap
        self._last = time.monotonic()
        self._skipped = 0.0

    def now(self) -> float:
        t = time.monotonic()
        gap = t - self._last
        if gap > self.max_gap:
            self._skipped += gap - self.max_gap
        self._last = t
        return t - self._skipped

    async def tick(self, every: float = 0.1) -> None:
        """Read the clock every ``every`` seconds, for as long as the server runs."""
        while True:
            await asyncio.sleep(every)
            self.now()
