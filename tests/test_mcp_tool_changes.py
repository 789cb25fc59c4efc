"""The tool list follows the server: restarted with other workflows, it shows in the next
``tools/list``, and clients that listen are told (2026-07-28: a ``subscriptions/listen``
stream; the handshake protocols: ``notifications/tools/list_changed``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import flows
import mcp.types as types
import pytest
from mcp_bridges import TRANSPORTS, connected

from streambind.server import RunningServer, ServerConfig, build_registry, start_server


@pytest.fixture
async def restartable(tmp_path: Path) -> AsyncIterator[list[RunningServer]]:
    """A server with the tests' workflows; the test may start others in its place."""
    running = [
        await start_server(ServerConfig(data_dir=tmp_path / "a"), registry=build_registry([flows]))
    ]
    yield running
    for server in running:
        await server.close()


async def _restart_without_the_tests_workflows(running: list[RunningServer], tmp: Path) -> None:
    old = running[-1]
    await old.close()
    config = ServerConfig(data_dir=tmp / "b")
    running.append(await start_server(config, old.host, old.port, registry=build_registry()))


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_restart_with_other_workflows_is_announced_and_listed(
    restartable: list[RunningServer], tmp_path: Path, transport: str
) -> None:
    url = restartable[0].url
    async with connected(transport, "--url", url) as client:
        assert "hold" in [tool.name for tool in (await client.list_tools()).tools]
        async with client.listen(tools_list_changed=True) as changes:
            await _restart_without_the_tests_workflows(restartable, tmp_path)
            event = await asyncio.wait_for(anext(aiter(changes)), 60)
        assert type(event).__name__ == "ToolsListChanged"
        names = [tool.name for tool in (await client.list_tools()).tools]
    assert "hold" not in names
    assert names == [endpoint.name for endpoint in build_registry()]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_handshake_client_is_told_with_list_changed(
    restartable: list[RunningServer], tmp_path: Path, transport: str
) -> None:
    changed = asyncio.Event()

    async def on_message(message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    url = restartable[0].url
    options = {"mode": "legacy", "message_handler": on_message}
    async with connected(transport, "--url", url, **options) as client:
        assert client.protocol_version == "2025-11-25"
        assert client.server_capabilities.tools is not None
        assert client.server_capabilities.tools.list_changed
        assert "hold" in [tool.name for tool in (await client.list_tools()).tools]
        await _restart_without_the_tests_workflows(restartable, tmp_path)
        await asyncio.wait_for(changed.wait(), 60)
        assert "hold" not in [tool.name for tool in (await client.list_tools()).tools]
