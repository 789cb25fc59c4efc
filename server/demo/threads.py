"""Running blocking work in a thread, or a database round trip, so cancellation cannot tear it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["in_thread", "in_thread_to_the_end", "whole", "whole_to_the_end"]

T = TypeVar("T")


async def in_thread(fn: Callable[..., T], *args: object) -> T:
    """Run ``fn`` in a thread; on cancellation wait for it to return, then re-raise.

    A thread cannot be interrupted, so the caller's clean-up (closing the
    connection the thread is using, deleting its file) must wait for it.
    """
    return await whole(asyncio.to_thread(fn, *args))


async def in_thread_to_the_end(fn: Callable[..., T], *args: object) -> T:
    """Run ``fn`` in a thread as a point of no return: cancellation waits and is then dropped.

    For a commit: once it has started, the honest outcome is whatever it does,
    so a cancellation that arrives meanwhile does not turn it into "cancelled".
    """
    return await whole_to_the_end(asyncio.to_thread(fn, *args))


async def whole(work: Awaitable[T]) -> T:
    """Await ``work`` in a task of its own; a cancellation waits for it to finish, then re-raises.

    A database round trip cut in the middle leaves its connection mid-protocol; letting
    it finish keeps the connection usable for the clean-up that follows.
    """
    future = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


async def whole_to_the_end(work: Awaitable[T]) -> T:
    """Await ``work`` as a point of no return: a cancellation is waited out and dropped."""
    future = asyncio.ensure_future(work)
    task = asyncio.current_task()
    while True:
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.cancelled():
                raise
            if task is not None:
                task.uncancel()
