"""Messages per second over the last half minute, from the times a client saw them arrive."""

from __future__ import annotations

import math

__all__ = ["MessageRate"]


class MessageRate:
    """Counts arrivals in one-second buckets; ``series`` is what a sparkline draws."""

    __slots__ = ("_counts", "_newest", "seconds")

    def __init__(self, seconds: int = 30) -> None:
        self.seconds = seconds
        self._counts = [0] * seconds
        self._newest: int | None = None  # the whole second of the newest bucket

    def add(self, now: float, count: int) -> None:
        """``count`` messages arrived at ``now`` (a batch is counted at the time it is seen)."""
        self._advance(now)
        self._counts[-1] += count

    def series(self, now: float) -> list[float]:
        """Messages per second, oldest first, the last bucket being the current second."""
        self._advance(now)
        return [float(c) for c in self._counts]

    def _advance(self, now: float) -> None:
        second = math.floor(now)
        if self._newest is None:
            self._newest = second
            return
        gap = second - self._newest
        if gap <= 0:
            return  # the same second (or a clock that stepped back: kept in this one)
        if gap >= self.seconds:
            self._counts = [0] * self.seconds
        else:
            self._counts = self._counts[gap:] + [0] * gap
        self._newest = second
