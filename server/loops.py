"""Which event loop a process runs: asyncio's own, or uvloop's when the ``fast`` extra is
installed (``--loop auto``, the default, picks uvloop then).

``serve``, the TUI, ``call`` and the embedded server follow the same rule, and say which
loop they run: ``serve``'s start-up line and ``GET /healthz``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["CHOICES", "ENV", "loop_name", "new_loop", "resolve", "run"]

T = TypeVar("T")

#: What ``--loop`` takes.
CHOICES = ("auto", "asyncio", "uvloop")
#: The environment variable ``--loop`` defaults to (the tests run the suite on each loop).
ENV = "STREAMBIND_LOOP"


def resolve(choice: str | None = None) -> str:
    """``asyncio`` or ``uvloop``: what ``choice`` (default: ``$STREAMBIND_LOOP``, else
    ``auto``) means here. Raises ValueError for uvloop when it is not installed."""
    choice = choice or os.environ.get(ENV) or "auto"
    if choice not in CHOICES:
        raise ValueError(f"the loop must be one of {', '.join(CHOICES)}, not {choice!r}")
    installed = importlib.util.find_spec("uvloop") is not None
    if choice == "uvloop" and not installed:
        raise ValueError("uvloop is not installed: pip install 'streambind[fast]'")
    if choice == "auto":
        return "uvloop" if installed else "asyncio"
    return choice


def _factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def new_loop(choice: str | None = None) -> asyncio.AbstractEventLoop:
    """A new event loop of the kind ``choice`` resolves to."""
    return _factory(resolve(choice))()


def run(main: Coroutine[Any, Any, T], choice: str | None = None) -> T:
    """``asyncio.run(main)`` on the loop ``choice`` resolves to."""
    with asyncio.Runner(loop_factory=_factory(resolve(choice))) as runner:
        return runner.run(main)


def loop_name(loop: asyncio.AbstractEventLoop | None = None) -> str:
    """``uvloop`` or ``asyncio``: the loop running now (or ``loop``)."""
    loop = loop or asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
