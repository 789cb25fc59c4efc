"""``Catalog``: the streambind server's endpoints as MCP tools, and news when they change.

Every ``tools/list`` asks the server (``GET /api/endpoints``), so a server restarted with
other workflows shows in the very next listing. A watcher asks as well every few seconds,
and when the tools differ from the last listing it announces it: to ``subscriptions/listen``
streams (the 2026-07-28 protocol) through the SDK's subscription bus, and as
``notifications/tools/list_changed`` to each connection of the handshake protocols.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import mcp.types as types
from mcp.server.session import ServerSession
from mcp.server.subscriptions import SubscriptionBus, ToolsListChanged

from ..client import ClientError, StreamClient

__all__ = ["WATCH_INTERVAL_S", "Catalog", "tool_of"]

log = logging.getLogger("streambind.mcp")

#: Seconds between two looks at the server's endpoints while nobody lists the tools.
WATCH_INTERVAL_S = 2.0
#: Connections of the handshake protocols told of a change: the newest ones (one, on stdio).
_MAX_LEGACY_SESSIONS = 256


def tool_of(endpoint: Mapping[str, Any]) -> types.Tool:
    """An endpoint of ``GET /api/endpoints`` as a tool: its JSON Schema unchanged."""
    schema = endpoint.get("params")
    return types.Tool(
        name=endpoint["name"],
        title=endpoint.get("title") or None,
        description=endpoint.get("description") or None,
        input_schema=schema if isinstance(schema, dict) else {"type": "object"},
    )


class Catalog:
    """The tools as the server last listed them, and who to tell when they change."""

    def __init__(self, client: StreamClient, bus: SubscriptionBus) -> None:
        self._client = client
        self._bus = bus
        self._tools: list[types.Tool] | None = None
        self._fingerprint: str | None = None
        self._legacy: OrderedDict[object, ServerSession] = OrderedDict()

    async def tools(self) -> list[types.Tool]:
        """Ask the server now; raises ``ClientError`` when it cannot answer."""
        endpoints = await self._client.endpoints()
        await self._take(endpoints)
        assert self._tools is not None
        return self._tools

    def schema(self, name: str) -> dict[str, Any] | None:
        """A tool's input schema as last listed, without asking (None: not listed yet)."""
        for tool in self._tools or ():
            if tool.name == name:
                return tool.input_schema
        return None

    def remember(self, key: object, session: ServerSession) -> None:
        """A handshake-protocol connection (``key``: its session id, or one per stdio) that
        is told of changes on its own channel."""
        self._legacy[key] = session
        self._legacy.move_to_end(key)
        while len(self._legacy) > _MAX_LEGACY_SESSIONS:
            self._legacy.popitem(last=False)

    async def watch(self, interval: float = WATCH_INTERVAL_S) -> None:
        """Look at the server's endpoints every ``interval`` seconds, until cancelled."""
        while True:
            with contextlib.suppress(ClientError):
                # A server that is down or restarting is asked again next time.
                await self._take(await self._client.endpoints())
            await asyncio.sleep(interval)

    async def _take(self, endpoints: list[dict[str, Any]]) -> None:
        tools = [tool_of(endpoint) for endpoint in endpoints]
        fingerprint = json.dumps(
            [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools],
            sort_keys=True,
        )
        changed = self._fingerprint is not None and fingerprint != self._fingerprint
        self._tools, self._fingerprint = tools, fingerprint
        if changed:
            log.info("the server's endpoints changed: %s", ", ".join(t.name for t in tools))
            await self._announce()

    async def _announce(self) -> None:
        await self._bus.publish(ToolsListChanged())
        for session in list(self._legacy.values()):
            # Best effort: a connection that has gone drops it (the SDK logs it at debug).
            with contextlib.suppress(Exception):
                await session.send_tool_list_changed()
