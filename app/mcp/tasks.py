"""The Tasks extension of MCP 2026-07-28 (``io.modelcontextprotocol/tasks``), on runs.

A task is a run: its id is the run's id, ``tasks/get`` reads the run's record
(``GET /api/runs/{id}``) and ``tasks/cancel`` cancels the run (``DELETE``). Runs live in the
server's run store, so any bridge process, against any node, answers for any task, and a
client that reconnects after a cut polls the same run, never a second one.

A run must be followed or the server cancels it once its detach grace passes: the bridge
that created a task keeps following its run (``RunKeeper``), and a bridge asked about a
running run that nobody here follows starts following it from its newest event.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import mcp.types as types
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types.version import MODERN_PROTOCOL_VERSIONS

from .. import shapes
from ..client import StreamCall, StreamClient, describe_transport_error, http_error
from ..connection import Kind, open_answer
from ..progress import done_of_total, progress_of, text_piece
from ..sse import StreamTooLarge
from ..state import StreamState
from .counted import CountedChunks
from .results import record_result, summary

__all__ = [
    "POLL_INTERVAL_MS",
    "TASKS_EXTENSION",
    "RunKeeper",
    "cancel_task",
    "created_task",
    "get_task",
    "wants_tasks",
]

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
#: How often a client is asked to poll ``tasks/get``.
POLL_INTERVAL_MS = 1000
#: How long the server keeps a finished run (``GET /api/runs`` forgets it after an hour).
_KEPT_AFTER_END_MS = 3_600_000
#: A run's status in the server's words, as a task's.
_STATUS = {
    "running": "working",
    "succeeded": "completed",
    # A run that failed is a tool error, not a protocol one: its task is completed with
    # an isError result, as the extension requires.
    "failed": "completed",
    "cancelled": "cancelled",
}
_STATUS_MESSAGE_LIMIT = 200


def wants_tasks(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether this request's client declared the Tasks extension (2026-07-28 and later)."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    capabilities = ctx.session.client_capabilities
    extensions = capabilities.extensions if capabilities is not None else None
    return bool(extensions and TASKS_EXTENSION in extensions)


class RunKeeper:
    """The runs this bridge follows on behalf of tasks, so that none is abandoned."""

    def __init__(self, client: StreamClient) -> None:
        self._client = client
        self._kept: dict[str, asyncio.Task[StreamState]] = {}

    def keep(self, call: StreamCall, runner: asyncio.Task[StreamState]) -> None:
        """Keep following a call that became a task, until its run ends."""
        run_id = call.state.run_id
        assert run_id is not None
        self._kept[run_id] = runner
        runner.add_done_callback(lambda _: self._kept.pop(run_id, None))

    def follow(self, record: dict[str, Any]) -> None:
        """Follow a running run from its newest event, unless this bridge already does."""
        run_id = record.get("id")
        if record.get("status") != "running" or not isinstance(run_id, str):
            return
        if run_id in self._kept:
            return
        call = self._client.follow(run_id, after=str(record.get("last_event_id") or ""))
        call.state.chunks = CountedChunks()
        self.keep(call, asyncio.create_task(call.run(), name=f"mcp task {run_id}"))

    async def close(self) -> None:
        """Stop following (the server then cancels each run once its grace passes)."""
        runners = list(self._kept.values())
        for runner in runners:
            runner.cancel()
        for runner in runners:
            with contextlib.suppress(asyncio.CancelledError):
                await runner


async def created_task(client: StreamClient, state: StreamState) -> dict[str, Any]:
    """The ``CreateTaskResult`` for a call still running: read back from the run store, so
    that a ``tasks/get`` anywhere resolves before the client hears of the task."""
    assert state.run_id is not None
    try:
        record = await _record(client, state.run_id)
    except MCPError:
        record = {"id": state.run_id, "endpoint": state.name, "status": "running"}
    return {"resultType": "task", **task_of(record)}


async def get_task(
    client: StreamClient,
    keeper: RunKeeper,
    ctx: ServerRequestContext[Any, Any],
    params: types.GetTaskRequestParams,
) -> dict[str, Any]:
    _require_extension(ctx)
    record = await _record(client, params.task_id)
    keeper.follow(record)
    return task_of(record)


async def cancel_task(
    client: StreamClient, ctx: ServerRequestContext[Any, Any], params: types.CancelTaskRequestParams
) -> dict[str, Any]:
    """Cancel the run; an acknowledgement (the run ends ``cancelled`` within a second, unless
    it had already ended otherwise)."""
    _require_extension(ctx)
    request = client.request("DELETE", _run_path(params.task_id), stream=False)
    response = await _send(client, request)
    if response.status_code not in (202, 409):
        _raise_for(response, params.task_id)
    return {}


def task_of(record: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """A run's record as a task (``DetailedTask``): its status, a status message from its
    latest message, and once it has ended its tool result."""
    status = str(record.get("status"))
    now_iso = _iso(now or datetime.now(UTC))
    created = record.get("created") or now_iso
    finished = record.get("finished")
    task: dict[str, Any] = {
        "taskId": record["id"],
        "status": _STATUS.get(status, "completed"),
        "createdAt": created,
        "lastUpdatedAt": finished or now_iso,
        "ttlMs": _ttl_ms(created, finished),
        "pollIntervalMs": POLL_INTERVAL_MS,
    }
    if message := status_message(record):
        task["statusMessage"] = message
    if task["status"] == "completed":
        result = record_result(str(record.get("endpoint", "run")), record)
        task["result"] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return task


def status_message(record: dict[str, Any]) -> str | None:
    """What the run is doing, from its latest message (``import 25/40 (62%)``), or how it ended."""
    status = record.get("status")
    error = record.get("error")
    if status == "failed" and isinstance(error, dict):
        return str(error.get("message", "failed"))[:_STATUS_MESSAGE_LIMIT]
    if status != "running":
        return str(status)
    chunk = record.get("last_message")
    if chunk is None:
        return "started; no message yet"
    if (text := text_piece(chunk)) is not None:
        return text[-_STATUS_MESSAGE_LIMIT:]
    progress = progress_of(chunk)
    counts = done_of_total(progress)
    if progress.fraction is not None:
        where = f"{counts} ({progress.fraction:.0%})" if counts else f"{progress.fraction:.0%}"
        return f"{progress.step}: {where}" if progress.step else where
    if progress.step is not None:
        return progress.step
    return summary(chunk, _STATUS_MESSAGE_LIMIT)


def _require_extension(ctx: ServerRequestContext[Any, Any]) -> None:
    if not wants_tasks(ctx):
        raise MCPError(
            types.MISSING_REQUIRED_CLIENT_CAPABILITY,
            "Missing required client capability",
            {"requiredCapabilities": {"extensions": {TASKS_EXTENSION: {}}}},
        )


async def _record(client: StreamClient, run_id: str) -> dict[str, Any]:
    response = await _send(client, client.request("GET", _run_path(run_id), stream=False))
    if response.status_code != 200:
        _raise_for(response, run_id)
    try:
        record = shapes.run_record(response.json())
    except (ValueError, RecursionError):
        record = None
    if record is None:
        raise MCPError(types.INTERNAL_ERROR, f"{client.base_url} did not answer with a run")
    return record


async def _send(client: StreamClient, request: httpx.Request) -> httpx.Response:
    """The answer, read whole within the client's size and time limits."""
    try:
        answer = await open_answer(client.http, request, client.settings)
    except (httpx.HTTPError, StreamTooLarge) as exc:
        message = describe_transport_error(exc, client.base_url)
        raise MCPError(types.INTERNAL_ERROR, message) from None
    await answer.response.aclose()
    if answer.kind is Kind.STREAM:  # not read: a stream is no run's record
        raise MCPError(types.INTERNAL_ERROR, f"{client.base_url} answered with a stream")
    return answer.response


def _raise_for(response: httpx.Response, task_id: str) -> None:
    if response.status_code == 404:
        raise MCPError(types.INVALID_PARAMS, f"Failed to retrieve task: no run {task_id!r} is kept")
    raise MCPError(types.INTERNAL_ERROR, http_error(response)["message"])


def _run_path(run_id: str) -> str:
    return f"/api/runs/{quote(run_id, safe='')}"


def _ttl_ms(created: str, finished: str | None) -> int | None:
    """Kept while running; once ended, for an hour more (or until 200 newer runs have ended)."""
    if not finished:
        return None
    try:
        ran = datetime.fromisoformat(finished) - datetime.fromisoformat(created)
    except ValueError:
        return _KEPT_AFTER_END_MS
    return int(ran.total_seconds() * 1000) + _KEPT_AFTER_END_MS


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
