"""Workflows that show one behaviour each: the error path, the no-stream pitfall, and raw speed."""

from __future__ import annotations

from typing import Annotated, Any

from streambind.server import Param, RunContext, endpoint

from .pacing import DelayMs, pause
from .resources import db


class FlakyFailure(RuntimeError):
    """The failure ``flaky`` was asked to have."""


@endpoint(
    "flaky",
    title="Fail part-way",
    description=(
        "Counts through its steps and fails at the chosen one, to show the error path: "
        "fail_at=0 fails before any message (an ordinary 500), later values fail mid-stream "
        "(an error event), and a value past steps succeeds."
    ),
)
async def flaky(
    ctx: RunContext,
    steps: Annotated[int, Param("Steps to count through", minimum=1, maximum=10_000)] = 10,
    fail_at: Annotated[
        int, Param("The step that fails (0: before the first message)", minimum=0, maximum=10_001)
    ] = 4,
    delay_ms: DelayMs = 1000,
) -> dict[str, Any]:
    for step in range(steps + 1):
        if step == fail_at:
            raise FlakyFailure(f"step {step} of {steps} failed, as asked (fail_at={fail_at})")
        if step:
            await ctx.send({"step": "flaky", "done": step, "total": steps})
            await pause(delay_ms)
    return {"steps": steps}


@endpoint(
    "silent",
    title="Never stream",
    description=(
        "Counts what the database holds and returns it without ever sending a streaming "
        "message: the caller gets one ordinary JSON response and no progress at all."
    ),
)
async def silent(ctx: RunContext) -> dict[str, Any]:
    people, imports = await db(ctx).counts()
    return {"people": people, "imports": imports, "streamed": False}


@endpoint(
    "firehose",
    title="Firehose",
    description=(
        'Sends n small messages {"step": "import", "done": i, "total": n} as fast as it '
        "can, for measuring how fast streams move."
    ),
)
async def firehose(
    ctx: RunContext,
    n: Annotated[int, Param("Messages to send", minimum=1, maximum=10_000_000)] = 100_000,
) -> dict[str, Any]:
    send = ctx.send
    for i in range(1, n + 1):
        await send({"step": "import", "done": i, "total": n})
    return {"sent": n}
