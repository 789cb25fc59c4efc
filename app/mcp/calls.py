"""One ``tools/call``: the endpoint run through ``StreamClient``, its messages relayed as
progress, its end as the tool result; or, for a client of the Tasks extension whose call
outlasts ``task_after`` seconds, a task whose id is the run's id.

The ``StreamClient`` call brings everything a call has elsewhere: resuming after a cut,
asking a busy server again after ``Retry-After``, its limits. A ``notifications/cancelled``
for the request cancels this handler; the run is then cancelled on the server (``DELETE``)
before the handler gives way, so it ends ``cancelled`` there at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import mcp.types as types
from mcp.server.context import ServerRequestContext

from ..client import StreamCall, StreamClient
from ..state import StreamState
from .counted import CountedChunks
from .progress_track import Tick
from .relay import ProgressRelay
from .results import RUN_ID_META_KEY, call_result
from .tasks import RunKeeper, created_task, wants_tasks

__all__ = ["TASK_AFTER_S", "call_tool"]

#: Seconds a call of a task-capable client may run before it is answered with a task.
TASK_AFTER_S = 1.0


async def call_tool(
    client: StreamClient,
    keeper: RunKeeper,
    ctx: ServerRequestContext[Any, Any],
    params: types.CallToolRequestParams,
    *,
    task_after: float = TASK_AFTER_S,
) -> types.CallToolResult | dict[str, Any]:
    call = client.call(params.name, params.arguments or {})
    # Each message is relayed as it arrives and never read again: counted, not kept, so a
    # long run costs the bridge no memory per message.
    call.state.chunks = CountedChunks()
    token = (ctx.meta or {}).get("progress_token")
    relay = ProgressRelay(_progress_sender(ctx, token, call.state)) if token is not None else None
    started = asyncio.Event()

    def on_chunk(chunk: Any) -> None:
        started.set()
        if relay is not None:
            relay.push(chunk)

    call.on_chunk = on_chunk
    runner = asyncio.create_task(call.run(), name=f"mcp call {params.name}")
    sender = asyncio.create_task(relay.run()) if relay is not None else None
    handed_over = False
    try:
        if wants_tasks(ctx) and not await _ends_within(runner, started, task_after):
            # Still running: from here on the run is a task, followed by the keeper so that
            # it is never abandoned, and polled by the client (through any bridge). Progress
            # stops: the request it belonged to is answered.
            if relay is not None:
                relay.close()
            keeper.keep(call, runner)
            handed_over = True
            return await created_task(client, call.state)
        # Shielded: cancelling this handler must reach the run as a cancel (DELETE, below),
        # not as the stream client's task being cancelled, which would only leave the run.
        state = await asyncio.shield(runner)
        if relay is not None:
            await relay.drain()
        return call_result(state)
    except asyncio.CancelledError:
        # The client cancelled the request (or left): cancel the run where it runs.
        with anyio.CancelScope(shield=True):
            await _cancel(call, runner)
        raise
    finally:
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        if not handed_over and not runner.done():
            runner.cancel()


async def _ends_within(runner: asyncio.Task[StreamState], started: asyncio.Event, s: float) -> bool:
    """Whether the call ends within ``s`` seconds; if not, waits for its run to exist (its
    first message), unless it ends first. A run that never sends ends as a plain answer."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(runner), s)
    if runner.done():
        return True
    first = asyncio.create_task(started.wait())
    try:
        await asyncio.wait({runner, first}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        first.cancel()
    return runner.done()


async def _cancel(call: StreamCall, runner: asyncio.Task[StreamState]) -> None:
    await call.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner


def _progress_sender(
    ctx: ServerRequestContext[Any, Any], token: Any, state: StreamState
) -> Callable[[Tick], Awaitable[None]]:
    """Writes one ``notifications/progress`` for the request, on the request's own stream."""
    session, request_id = ctx.session, ctx.request_id

    async def send(tick: Tick) -> None:
        meta = {RUN_ID_META_KEY: state.run_id} if state.run_id else None
        params = types.ProgressNotificationParams(
            progress_token=token,
            progress=tick.progress,
            total=tick.total,
            message=tick.message,
            _meta=meta,
        )
        await session.send_notification(
            types.ProgressNotification(params=params), related_request_id=request_id
        )

    return send
