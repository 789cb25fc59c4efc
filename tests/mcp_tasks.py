"""A task-capable MCP client for the tests: the SDK's ``Client`` with the Tasks extension
(``io.modelcontextprotocol/tasks``, 2026-07-28) declared through the SDK's own extension
mechanism, since the SDK ships the mechanism but not this extension.

``TasksExtension`` claims a ``tools/call`` answered with ``resultType: "task"``: ``call_tool``
then polls ``tasks/get`` (as often as ``pollIntervalMs`` asks) until the task ends, and
returns the task's tool result. Every polled state is kept in ``polled``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import anyio
import mcp.types as types
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.session import ClientSession
from pydantic import ConfigDict

IDENTIFIER = "io.modelcontextprotocol/tasks"
TERMINAL = ("completed", "failed", "cancelled")


class CreatedTask(types.Result):
    """``CreateTaskResult``: the task a ``tools/call`` became."""

    model_config = ConfigDict(extra="allow")
    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    status_message: str | None = None
    poll_interval_ms: int | None = None


class TaskState(types.Result):
    """``tasks/get``'s answer: the task, with its result once it has one."""

    model_config = ConfigDict(extra="allow")
    task_id: str
    status: str
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl_ms: int | None = None
    poll_interval_ms: int | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class TaskParams(types.RequestParams):
    task_id: str


class GetTask(types.Request[TaskParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: TaskParams
    # Over Streamable HTTP the task's id goes in Mcp-Name, as the extension requires.
    name_param: ClassVar[str | None] = "taskId"


class CancelTask(types.Request[TaskParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: TaskParams
    name_param: ClassVar[str | None] = "taskId"


async def get_task(session: ClientSession, task_id: str) -> TaskState:
    return await session.send_request(GetTask(params=TaskParams(task_id=task_id)), TaskState)


async def cancel_task(session: ClientSession, task_id: str) -> None:
    await session.send_request(CancelTask(params=TaskParams(task_id=task_id)), types.EmptyResult)


class TasksExtension(ClientExtension):
    identifier = IDENTIFIER

    def __init__(self) -> None:
        self.created: list[CreatedTask] = []
        self.polled: list[TaskState] = []

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreatedTask, resolve=self._resolve)]

    async def _resolve(self, task: CreatedTask, ctx: ClaimContext) -> types.CallToolResult:
        self.created.append(task)
        interval = task.poll_interval_ms
        while True:
            # The interval the server asks for: the protocol's pace, not a wait for a test.
            await anyio.sleep((interval or 1000) / 1000)
            state = await get_task(ctx.session, task.task_id)
            self.polled.append(state)
            interval = state.poll_interval_ms or interval
            if state.status in TERMINAL:
                break
        if state.result is None:
            text = f"task {state.status}: {state.status_message or ''}"
            return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)
        return types.CallToolResult.model_validate(state.result, by_name=False)
