"""Long calls as tasks (the Tasks extension of MCP 2026-07-28): for a client that declares
it, a call still running after a second becomes a task whose id is the run's id, polled with
``tasks/get`` (any bridge answers for any run) and cancelled with ``tasks/cancel``."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from conftest import StartServer
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, MISSING_REQUIRED_CLIENT_CAPABILITY
from mcp_bridges import TRANSPORTS, connected, http_bridge
from mcp_tasks import TasksExtension, cancel_task, get_task
from polling import run_record

from streambind.app.mcp.tasks import TASKS_EXTENSION
from streambind.server import RunningServer

LONG_IMPORT = {"rows": 60, "batch_size": 10, "delay_ms": 500}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_long_import_is_a_task_polled_to_succeeded(
    server: RunningServer, transport: str
) -> None:
    tasks = TasksExtension()
    async with connected(transport, "--url", server.url, extensions=[tasks]) as client:
        assert client.protocol_version == "2026-07-28"
        assert TASKS_EXTENSION in (client.server_capabilities.extensions or {})
        result = await client.call_tool("import", LONG_IMPORT)
    [created] = tasks.created
    assert created.status == "working"
    run_id = created.task_id
    assert not result.is_error
    assert result.structured_content == {
        "imported": 60, "table": "people", "run_id": run_id, "source": "generated:60",
    }  # fmt: skip
    # Polled while it worked, each status message the run's latest message; then done.
    statuses = [(state.status, state.status_message) for state in tasks.polled]
    assert statuses[-1] == ("completed", "succeeded")
    working = [message or "" for status, message in statuses if status == "working"]
    assert re.fullmatch(r"import: \d+/60 \(\d+%\)", working[0])
    assert all(re.fullmatch(r"import: \d+/60 \(\d+%\)|publish", m) for m in working)
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get(f"/api/runs/{run_id}")).json()["status"] == "succeeded"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_cancelling_a_task_cancels_its_run_on_the_server(
    server: RunningServer, transport: str
) -> None:
    async with connected(transport, "--url", server.url, extensions=[TasksExtension()]) as client:
        created = await client.session.call_tool(
            "import", {"rows": 10_000, "batch_size": 10, "delay_ms": 100}, allow_claimed=True
        )
        run_id = created.task_id  # type: ignore[union-attr]
        asked = time.monotonic()
        await cancel_task(client.session, run_id)
        async with httpx.AsyncClient(base_url=server.url) as http:
            record = await run_record(http, run_id, lambda r: r["status"] != "running", "end")
        took = time.monotonic() - asked
        assert record["status"] == "cancelled"
        assert took < 1.0
        state = await get_task(client.session, run_id)
    assert (state.status, state.status_message, state.result) == ("cancelled", "cancelled", None)


async def test_a_quick_call_is_answered_at_once_even_for_a_task_client(
    server: RunningServer,
) -> None:
    tasks = TasksExtension()
    async with connected("stdio", "--url", server.url, extensions=[tasks]) as client:
        result = await client.call_tool("echo", {"text": "quick"})
    assert result.structured_content == {"text": "quick"}
    assert tasks.created == []


async def test_any_bridge_answers_for_a_task_and_keeps_its_run_going(start: StartServer) -> None:
    # A run nobody follows for 2 s is cancelled. The bridge that made the task is stopped
    # at once; the 6 s run survives because the bridge asked next follows it from then on.
    server = await start(detach_grace=2)
    async with http_bridge("--url", server.url) as other_url:
        async with (
            http_bridge("--url", server.url) as first_url,
            Client(first_url, extensions=[TasksExtension()]) as first,
        ):
            created = await first.session.call_tool(
                "import", {**LONG_IMPORT, "rows": 120}, allow_claimed=True
            )
        run_id = created.task_id  # type: ignore[union-attr]
        tasks = TasksExtension()
        async with Client(other_url, extensions=[tasks]) as other:
            state = await get_task(other.session, run_id)
            assert state.status == "working"
            async with httpx.AsyncClient(base_url=server.url) as http:
                record = await run_record(http, run_id, lambda r: r["status"] != "running", "end")
            assert record["status"] == "succeeded"
            state = await get_task(other.session, run_id)
    assert state.status == "completed"
    assert state.result is not None and state.result["structuredContent"]["imported"] == 120


async def test_tasks_are_for_clients_that_declare_them(server: RunningServer) -> None:
    async with connected("stdio", "--url", server.url) as plain:
        with pytest.raises(MCPError) as refused:
            await get_task(plain.session, "0123456789abcdef")
    assert refused.value.code == MISSING_REQUIRED_CLIENT_CAPABILITY
    assert refused.value.data == {"requiredCapabilities": {"extensions": {TASKS_EXTENSION: {}}}}
    async with connected("stdio", "--url", server.url, extensions=[TasksExtension()]) as client:
        with pytest.raises(MCPError) as unknown:
            await get_task(client.session, "0123456789abcdef")
    assert unknown.value.code == INVALID_PARAMS
    assert "no run '0123456789abcdef'" in unknown.value.message
