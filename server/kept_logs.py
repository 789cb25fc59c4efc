"""The logs of finished runs, kept within ``max_log_memory``: the total is kept up to
date as runs end and logs are released, never summed again."""

from __future__ import annotations

from .run import ExecutedRun
from .store import SharedRuns

__all__ = ["KeptLogs"]


class KeptLogs:
    def __init__(self, limit: int, shared: SharedRuns | None = None) -> None:
        self.limit = limit
        #: A shared store keeps copies of the logs: they are let go of there too, so that
        #: every node answers a resume of a released run alike.
        self._shared = shared
        #: The finished runs whose logs are held, the longest finished first (to release),
        #: each with its log's size: a finished run's log no longer grows.
        self._held: dict[str, tuple[ExecutedRun, int]] = {}
        self._bytes = 0

    @property
    def size_bytes(self) -> int:
        """The memory they hold, as their logs counted it when their runs ended."""
        return self._bytes

    def hold(self, run: ExecutedRun) -> None:
        """``run`` ended: hold its log, releasing the oldest held beyond the limit."""
        size = run.log.size_bytes
        self._held[run.id] = (run, size)
        self._bytes += size
        self.bound()

    def release(self, run: ExecutedRun) -> None:
        """Let go of a finished run's log, which stays in the index; and of the shared
        store's copy, the first time."""
        if self._drop(run) and self._shared is not None:
            self._shared.released(run)

    def forget(self, run: ExecutedRun) -> None:
        """``run`` leaves the index: its log goes (a shared store deletes the run whole)."""
        self._drop(run)

    def _drop(self, run: ExecutedRun) -> bool:
        """Release ``run``'s log; whether it was still held."""
        run.log.release()
        held = self._held.pop(run.id, None)
        if held is None:
            return False
        self._bytes -= held[1]
        return True

    def bound(self) -> None:
        """Release the oldest logs until the held ones fit the limit.

        A released run keeps its record and result (``GET /api/runs/{id}``); a request
        for its events is answered ``410 events_gone``.
        """
        if self._bytes <= self.limit:
            return
        releasable = []
        total = self._bytes
        for run, size in self._held.values():  # the longest finished first
            if total <= self.limit:
                break
            # Never under a follower still writing it out: that one is let go first
            # if it makes no progress, and a later look releases the log then.
            if not run.delivery.followers:
                releasable.append(run)
                total -= size
        for run in releasable:
            self.release(run)
