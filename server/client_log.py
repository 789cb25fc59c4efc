"""Warnings about what clients do wrong: one line each, and a flood of them rate-limited.

A malformed request or a refused connection is the client's mistake, not the
server's, so it gets one WARNING line without a traceback; and since one client can
make any number of them, at most ``burst`` lines are written per ``window`` seconds,
then one line saying the rest are only counted; their number is logged with the
first warning of a later window.

Tracebacks of runs that failed are bounded the same way (``exception``): clients can
start any number of failing runs, and each traceback is kilobytes. Beyond the burst a
failure is still one ERROR line, naming its exception, without the traceback.
"""

from __future__ import annotations

import logging
import sys
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
        kind: str = "warnings",
    ) -> None:
        self._logger = logger
        self._burst = burst
        self._window = window
        self._clock = clock
        self._kind = kind
        self._window_start = clock()
        self._written = 0
        self._held_back = 0

    def warning(self, message: str, *args: object) -> None:
        if self._admit():
            self._logger.warning(message, *args)
        elif self._held_back == 1:
            self._logger.warning(
                "more than %d such %s in %g s: the rest are only counted",
                self._burst,
                self._kind,
                self._window,
            )

    def exception(self, message: str, *args: object) -> None:
        """An ERROR line with the exception being handled; its traceback only within the burst."""
        if self._admit():
            self._logger.exception(message, *args)
            return
        exc = sys.exc_info()[1]
        self._logger.error(
            message + ": %s: %s (traceback not logged: more than %d such %s in %g s)",
            *args,
            type(exc).__name__,
            exc,
            self._burst,
            self._kind,
            self._window,
        )

    def _admit(self) -> bool:
        """Whether the burst has room for one more line in full; counts the others."""
        now = self._clock()
        if now - self._window_start >= self._window:
            if self._held_back:
                self._logger.warning(
                    "%d more such %s in %g s were not logged",
                    self._held_back,
                    self._kind,
                    self._window,
                )
            self._window_start = now
            self._written = 0
            self._held_back = 0
        if self._written < self._burst:
            self._written += 1
            return True
        self._held_back += 1
        return False
