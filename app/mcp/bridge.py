"""``Bridge``: an MCP server (the SDK's low-level ``Server``) whose tools are the endpoints of
one streambind server, with everything it holds while it serves: the stream client, the
catalog and its watcher, and the runs it keeps following for tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import mcp.types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler
from mcp.shared.exceptions import MCPError

from ..client import ClientError, StreamClient
from ..settings import ClientSettings
from .calls import TASK_AFTER_S, call_tool
from .catalog import WATCH_INTERVAL_S, Catalog
from .tasks import TASKS_EXTENSION, RunKeeper, cancel_task, get_task

__all__ = ["Bridge"]


class _Server(Server[Any]):
    """The low-level server, saying on the handshake protocols that its tool list changes
    (the SDK's default says not; 2026-07-28 derives it from ``subscriptions/listen``)."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True),
            experimental_capabilities,
            extensions,
        )


class Bridge:
    """``async with Bridge(url) as bridge:`` then serve ``bridge.server`` on a transport."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        settings: ClientSettings | None = None,
        task_after: float = TASK_AFTER_S,
        watch_interval: float = WATCH_INTERVAL_S,
    ) -> None:
        self.url = url
        self.client = StreamClient(url, token, settings=settings)
        self.bus = InMemorySubscriptionBus()
        self.catalog = Catalog(self.client, self.bus)
        self.keeper = RunKeeper(self.client)
        self.task_after = task_after
        self.watch_interval = watch_interval
        self.server = self._build()
        self._watcher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Bridge:
        self._watcher = asyncio.create_task(self.catalog.watch(self.watch_interval))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.keeper.close()
        await self.client.aclose()

    def _build(self) -> Server[Any]:
        server = _Server(
            "streambind",
            version=_version(),
            title="streambind",
            instructions=(
                f"Each tool runs one endpoint of the streambind server at {self.url} and reports "
                "its progress while it runs. Its result names the run's id, which "
                "`streambind follow RUN_ID` or the terminal UI's Runs tab can open."
            ),
            # Tools' schemas as last listed, for the 2026 HTTP transport's header checks,
            # instead of a listing (an HTTP round trip to streambind) before each call.
            get_tool_input_schema=self.catalog.schema,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_subscriptions_listen=ListenHandler(self.bus),
        )
        server.extensions = {TASKS_EXTENSION: {}}
        server.add_request_handler("tasks/get", types.GetTaskRequestParams, self._get_task)
        server.add_request_handler("tasks/cancel", types.CancelTaskRequestParams, self._cancel_task)
        server.add_notification_handler(
            "notifications/initialized", types.NotificationParams, self._initialized
        )
        return server

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        try:
            return types.ListToolsResult(tools=await self.catalog.tools())
        except ClientError as exc:
            raise MCPError(types.INTERNAL_ERROR, str(exc)) from None

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> Any:
        return await call_tool(self.client, self.keeper, ctx, params, task_after=self.task_after)

    async def _get_task(
        self, ctx: ServerRequestContext[Any, Any], params: types.GetTaskRequestParams
    ) -> dict[str, Any]:
        return await get_task(self.client, self.keeper, ctx, params)

    async def _cancel_task(
        self, ctx: ServerRequestContext[Any, Any], params: types.CancelTaskRequestParams
    ) -> dict[str, Any]:
        return await cancel_task(self.client, ctx, params)

    async def _initialized(
        self, ctx: ServerRequestContext[Any, Any], params: types.NotificationParams
    ) -> None:
        # A handshake-protocol connection: told of tool changes on its own channel. Over
        # HTTP each has its session id; stdio has exactly one.
        request = ctx.request
        headers = getattr(request, "headers", None)
        key = headers.get("mcp-session-id") if headers is not None else None
        self.catalog.remember(key or "stdio", ctx.session)


def _version() -> str:
    try:
        return version("streambind")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout without installing
        return ""
