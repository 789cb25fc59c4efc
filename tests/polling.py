"""Waiting for a condition that only polling can observe (a run's status on the server).

Bounded, so a broken server fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


async def wait_for(
    fetch: Callable[[], Awaitable[T]], condition: Callable[[T], bool], what: str
) -> T:
    value = await fetch()
    for _ in range(3000):
        if condition(value):
            return value
        await asyncio.sleep(0.01)
        value = await fetch()
    raise AssertionError(f"timed out waiting for {what}; last seen: {value!r}")


async def run_record(
    client: httpx.AsyncClient, run_id: str, condition: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """``GET /api/runs/{id}`` until ``condition`` holds for the record."""

    async def fetch() -> dict[str, Any]:
        return (await client.get(f"/api/runs/{run_id}")).json()

    return await wait_for(fetch, condition, what)


async def newest_run(
    client: httpx.AsyncClient, condition: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """The newest run of ``GET /api/runs`` once ``condition`` holds for it."""

    async def fetch() -> dict[str, Any]:
        runs = (await client.get("/api/runs")).json()["runs"]
        return runs[0] if runs else {}

    return await wait_for(fetch, lambda run: bool(run) and condition(run), what)
