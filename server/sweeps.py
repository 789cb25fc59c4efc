"""The sweeps over every open stream: pings for quiet ones, and letting go of stalled
ones. Each follower is looked at only when it is due (a heap by due time), so a sweep
costs what is due, not what is open."""

from __future__ import annotations

import heapq
import itertools

from .follower import Follower

__all__ = ["FollowerSweeps"]


class FollowerSweeps:
    def __init__(self, ping_interval: float, stall: float) -> None:
        self.ping_interval = ping_interval
        self.stall = stall
        #: Every follower of every run, kept or already forgotten by the index.
        self._followers: set[Follower] = set()
        #: When each follower is next due a look: a ping (its last write plus the ping
        #: interval) and a stall check (its last progress plus the stall time). Entries go
        #: stale as followers write; a stale one is pushed again when it comes up.
        self._ping_due: list[tuple[float, int, Follower]] = []
        self._stall_due: list[tuple[float, int, Follower]] = []
        self._pushed = itertools.count()

    def add(self, follower: Follower) -> None:
        self._followers.add(follower)
        count = next(self._pushed)
        heapq.heappush(self._ping_due, (follower.wrote_at + self.ping_interval, count, follower))
        heapq.heappush(self._stall_due, (follower.progressed_at + self.stall, count, follower))

    def discard(self, follower: Follower) -> None:
        self._followers.discard(follower)

    async def ping_due(self, now: float) -> int:
        """Ping the followers silent for the ping interval; how many were looked at."""
        interval = self.ping_interval
        due = self._ping_due
        looked = 0
        while due and due[0][0] <= now:
            _, _, follower = heapq.heappop(due)
            if follower not in self._followers:
                continue  # it left
            looked += 1
            if follower.wrote_at + interval <= now:
                await follower.ping_if_quiet(now, interval)
            # Due again an interval after its last write (the ping, or what it wrote since).
            when = max(follower.wrote_at + interval, now + interval / 4)
            heapq.heappush(due, (when, next(self._pushed), follower))
        return looked

    def check_stalls(self, now: float) -> int:
        """Let go of the followers stalled for the stall time; how many were looked at."""
        stall = self.stall
        due = self._stall_due
        looked = 0
        while due and due[0][0] <= now:
            _, _, follower = heapq.heappop(due)
            if follower not in self._followers or follower.was_let_go:
                continue
            looked += 1
            if follower.stalled(now, stall):
                follower.let_go()
                continue
            # Not stalled: due again a stall time after its latest progress (or from now,
            # while it waits for the workflow, which is not stalling).
            when = max(follower.progressed_at + stall, now + stall / 4)
            heapq.heappush(due, (when, next(self._pushed), follower))
        return looked

    def next_stall_check(self) -> float | None:
        """When the next follower is due a stall check (None: none is open)."""
        return self._stall_due[0][0] if self._stall_due else None

    def stall_checks_due(self) -> int:
        return len(self._stall_due)
