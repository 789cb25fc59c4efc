"""Warnings about what clients do wrong: one line each, and a flood of them rate-limited.

A malformed request or a refused connection is the client's mistake, not the
server's, so it gets one WARNING line without a traceback; and since one client can
make any number of them, at most ``burst`` lines are written per ``window`` seconds,
then one line saying the rest are only counted; their number is logged with the
first warning of a later window.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 20,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._burst = burst
        self._window = window
        self._clock = clock
        self._window_start = clock()
        self._written = 0
        self._held_back = 0

    def warning(self, message: str, *args: object) -> None:
        now = self._clock()
        if now - self._window_start >= self._window:
            if self._held_back:
                self._logger.warning(
                    "%d more such warnings in %g s were not logged", self._held_back, self._window
                )
            self._window_start = now
            self._written = 0
            self._held_back = 0
        if self._written < self._burst:
            self._written += 1
            self._logger.warning(message, *args)
        else:
            if not self._held_back:
                self._logger.warning(
                    "more than %d such warnings in %g s: the rest are only counted",
                    self._burst,
                    self._window,
                )
            self._held_back += 1
