"""Running blocking database and file work in a thread without letting cancellation tear it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

__all__ = ["in_thread", "in_thread_to_the_end"]

T = TypeVar("T")


async def in_thread(fn: Callable[..., T], *args: object) -> T:
    """Run ``fn`` in a thread; on cancellation wait for it to return, then re-raise.

    A thread cannot be interrupted, so the caller's clean-up (closing the
    connection the thread is using, deleting its file) must wait for it.
    """
    future = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


async def in_thread_to_the_end(fn: Callable[..., T], *args: object) -> T:
    """Run ``fn`` in a thread as a point of no return: cancellation waits and is then dropped.

    For a commit: once it has started, the honest outcome is whatever it does,
    so a cancellation that arrives meanwhile does not turn it into "cancelled".
    """
    future = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    task = asyncio.current_task()
    while True:
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.cancelled():
                raise
            if task is not None:
                task.uncancel()
