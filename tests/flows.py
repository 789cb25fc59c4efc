"""Workflows that only tests use: runs that wait for the test, and ones that misbehave.

Also the module `streambind serve --workflows flows` loads in the CLI test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Literal

from streambind.server import RunContext, endpoint

_gates: dict[str, asyncio.Event] = {}


def gate(key: str) -> asyncio.Event:
    return _gates.setdefault(key, asyncio.Event())


def release(key: str) -> None:
    gate(key).set()


@endpoint(
    "hold",
    title="Hold",
    description="Sends `before` messages, waits for the test, then sends `after` more, "
    "each padded with `pad` characters; with `then`, waits for the test again before it ends.",
)
async def hold(
    ctx: RunContext,
    key: str = "k",
    before: int = 1,
    after: int = 0,
    pad: int = 0,
    then: str = "",
) -> dict[str, Any]:
    padding = {"pad": "x" * pad} if pad else {}
    for i in range(1, before + 1):
        await ctx.send({"n": i, **padding})
    await gate(key).wait()
    for i in range(before + 1, before + after + 1):
        await ctx.send({"n": i, **padding})
    if then:
        await gate(then).wait()
    return {"released": key}


@endpoint("echo", title="Echo")
async def echo(ctx: RunContext, text: str = "", times: int = 1) -> dict[str, Any]:
    """Sends `text` back `times` times as {"text": ...}."""
    for _ in range(times):
        await ctx.send({"text": text})
    return {"text": text}


@endpoint("unsendable")
async def unsendable(ctx: RunContext, when: Literal["first", "later", "result"] = "first") -> Any:
    if when == "later":
        await ctx.send({"ok": True})
    if when == "result":
        return {1, 2}
    await ctx.send({"not json": {1, 2}})
    return None


def not_an_endpoint() -> None:
    """Plain functions in a workflows module are ignored."""


cleaned_up: set[str] = set()


@endpoint("tidy")
async def tidy(ctx: RunContext, key: str = "t") -> dict[str, Any]:
    """Records that its `finally` ran, to show cancellation reaches the workflow."""
    try:
        await ctx.send({"started": key})
        await gate(key).wait()
    finally:
        cleaned_up.add(key)
    return {}


#: Per key, called by `paced` after each send it makes once released, with the event's
#: id and whether the event loop ran anything else during that send.
paced_probes: dict[str, Callable[[int, bool], None]] = {}


@endpoint("paced")
async def paced(
    ctx: RunContext,
    key: str = "p",
    n: int = 4,
    pause: Literal["await", "busy"] = "await",
    pause_ms: float = 3.0,
) -> dict[str, Any]:
    """Sends one message, waits for the test, then `n` more, each after a pause: awaited
    (asyncio.sleep) or spent on the CPU without ever awaiting (a blocking computation)."""
    await ctx.send({"n": 0})
    await gate(key).wait()
    loop = asyncio.get_running_loop()
    for i in range(1, n + 1):
        if pause == "await":
            await asyncio.sleep(pause_ms / 1000)
        else:
            busy_until = time.perf_counter() + pause_ms / 1000
            while time.perf_counter() < busy_until:
                pass
        loop_ran: list[bool] = []
        loop.call_soon(loop_ran.append, True)
        seq = await ctx.send({"n": i})
        paced_probes[key](seq, bool(loop_ran))
    return {"sent": n}


@endpoint("greet", title="Greet")
async def greet(ctx: RunContext, name: str) -> dict[str, Any]:
    """Needs a name: a required string, for the blank-is-missing rule."""
    await ctx.send({"text": f"Hello, {name}"})
    return {"greeted": name}


@endpoint("document", title="Document")
async def document(
    ctx: RunContext, pieces: int = 20, size: int = 200_000, every_ms: int = 100
) -> dict[str, Any]:
    """Sends `pieces` large pieces of a generated document, `every_ms` apart."""
    for i in range(1, pieces + 1):
        await ctx.send({"piece": i, "text": "x" * size})
        await asyncio.sleep(every_ms / 1000)
    return {"pieces": pieces}


@endpoint("blocker", title="Blocker")
async def blocker(
    ctx: RunContext, key: str = "b", burst: int = 60, block_s: float = 2.5, after: int = 60
) -> dict[str, Any]:
    """After the test's go, sends a burst of 1 KB messages, then blocks the event loop
    (computes without awaiting) for `block_s` seconds, then sends `after` more."""
    await ctx.send({"n": 0})
    await gate(key).wait()
    pad = "x" * 1000
    for i in range(1, burst + 1):
        await ctx.send({"n": i, "pad": pad})
    time.sleep(block_s)  # the blocked loop is what is under test
    for i in range(burst + 1, burst + after + 1):
        # The first one after the block is large: the followers are surely behind when
        # send next looks at them.
        await ctx.send({"n": i, "pad": pad * 20 if i == burst + 1 else pad})
    return {"sent": burst + after + 1}
