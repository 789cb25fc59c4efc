"""Workflows only the benchmarks use (served with `streambind serve --workflows flows`)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from streambind.server import RunContext, endpoint

_gates: dict[str, asyncio.Event] = {}


def _gate(key: str) -> asyncio.Event:
    return _gates.setdefault(key, asyncio.Event())


@endpoint("sparse")
async def sparse(ctx: RunContext, n: int = 1000, interval_ms: float = 2.0) -> dict[str, Any]:
    """`n` messages `interval_ms` apart, each with its send time on the monotonic clock."""
    for i in range(1, n + 1):
        await asyncio.sleep(interval_ms / 1000)
        await ctx.send({"step": "import", "done": i, "total": n, "t": time.monotonic()})
    return {"sent": n}


@endpoint("gated-sparse")
async def gated_sparse(
    ctx: RunContext, n: int = 1000, interval_ms: float = 2.0, key: str = "go"
) -> dict[str, Any]:
    """`sparse`, started only once `release` is called (followers on other nodes attach first)."""
    await _gate(key).wait()
    return await sparse(ctx, n, interval_ms)


@endpoint("gated-firehose")
async def gated_firehose(ctx: RunContext, n: int = 10_000, key: str = "go") -> dict[str, Any]:
    """The firehose, started only once `release` is called, so every follower is attached."""
    await _gate(key).wait()
    send = ctx.send
    for i in range(1, n + 1):
        await send({"step": "import", "done": i, "total": n})
    return {"sent": n}


@endpoint("release")
async def release(ctx: RunContext, key: str = "go") -> dict[str, Any]:
    _gate(key).set()
    return {"released": key}
