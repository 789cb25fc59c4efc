"""``streambind mcp``: every endpoint is a tool, and a call's messages arrive as progress.

Each test runs over stdio and over Streamable HTTP, with the SDK's own client against a
real server on loopback; what happened to a run is read back from the server's HTTP API.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import mcp.types as types
import pytest
from conftest import StartServer
from cutter import CuttingProxy
from mcp_bridges import TRANSPORTS, Progress, a_long_import, connected
from polling import newest_run, run_record

from streambind.app.mcp.results import RUN_ID_META_KEY
from streambind.server import RunningServer

pytestmark = pytest.mark.parametrize("transport", TRANSPORTS)


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def _people(client: httpx.AsyncClient) -> int:
    return (await client.post("/api/endpoints/silent")).json()["people"]


async def test_the_tools_are_the_servers_endpoints_with_their_schemas(
    server: RunningServer, transport: str
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        endpoints = (await http.get("/api/endpoints")).json()["endpoints"]
    async with connected(transport, "--url", server.url) as client:
        tools = (await client.list_tools()).tools
    assert [tool.name for tool in tools] == [endpoint["name"] for endpoint in endpoints]
    for tool, endpoint in zip(tools, endpoints, strict=True):
        assert tool.title == endpoint["title"]
        assert tool.description == (endpoint["description"] or None)
        assert tool.input_schema == endpoint["params"]


async def test_an_import_reports_progress_up_to_its_row_count_then_its_result(
    server: RunningServer, transport: str
) -> None:
    progress = Progress()
    async with connected(transport, "--url", server.url) as client:
        result = await client.call_tool(
            "import", {"rows": 40, "batch_size": 10, "delay_ms": 0}, progress_callback=progress
        )
    # One notification per message, the total the row count from the first; the publish
    # step keeps where the import got to, and only says what the run does now.
    assert progress.seen == [
        *((done, 40.0, "import") for done in (0.0, 10.0, 20.0, 30.0, 40.0)),
        (40.0, 40.0, "publish"),
    ]
    assert not result.is_error
    assert result.structured_content is not None
    run_id = result.structured_content["run_id"]
    assert result.structured_content == {
        "imported": 40, "table": "people", "run_id": run_id, "source": "generated:40",
    }  # fmt: skip
    assert result.meta is not None and result.meta[RUN_ID_META_KEY] == run_id
    assert _text(result).startswith(f"import succeeded (run {run_id}): {{")
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get(f"/api/runs/{run_id}")).json()["status"] == "succeeded"


async def test_a_text_stream_counts_its_pieces_and_says_them(
    server: RunningServer, transport: str
) -> None:
    progress = Progress()
    async with connected(transport, "--url", server.url) as client:
        result = await client.call_tool(
            "echo", {"text": "la", "times": 3}, progress_callback=progress
        )
    assert progress.seen == [(1.0, None, "la"), (2.0, None, "la"), (3.0, None, "la")]
    assert result.structured_content == {"text": "la"}


async def test_a_failed_run_is_a_tool_error_with_the_servers_message(
    server: RunningServer, transport: str
) -> None:
    async with connected(transport, "--url", server.url) as client:
        result = await client.call_tool("flaky", {"delay_ms": 0})
    assert result.is_error
    assert result.structured_content is not None
    run_id = result.structured_content["run_id"]
    assert _text(result) == (
        f"flaky failed (run {run_id}): FlakyFailure: step 4 of 10 failed, as asked (fail_at=4)"
    )
    assert result.structured_content["error"]["type"] == "FlakyFailure"


async def test_arguments_the_server_refuses_name_each_field(
    server: RunningServer, transport: str
) -> None:
    async with connected(transport, "--url", server.url) as client:
        result = await client.call_tool("import", {"rows": "many", "colour": 1})
    assert result.is_error
    assert _text(result) == (
        "import failed: invalid_params: 2 parameters are invalid "
        "(colour: unknown parameter; rows: must be an integer, not a string)"
    )
    assert result.structured_content == {
        "status": "failed",
        "error": {
            "type": "invalid_params",
            "message": "2 parameters are invalid",
            "fields": {"colour": "unknown parameter", "rows": "must be an integer, not a string"},
        },
    }


# The 2026 protocol cancels over HTTP by closing the request; the handshake protocols (and
# stdio) send notifications/cancelled.
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_cancelling_a_call_cancels_its_run_on_the_server_and_publishes_nothing(
    server: RunningServer, transport: str, mode: str
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        people = await _people(http)
        async with connected(transport, "--url", server.url, mode=mode) as client:
            call, run_id = await a_long_import(client, http)
            asked = time.monotonic()
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            record = await run_record(http, run_id, lambda r: r["status"] != "running", "end")
            took = time.monotonic() - asked
        assert record["status"] == "cancelled"
        assert took < 1.0
        assert record["last_message"]["step"] == "import"
        replay = await http.get(f"/api/runs/{run_id}/events")
        assert replay.text.rstrip().endswith('data: {"status":"cancelled","reason":"requested"}')
        assert await _people(http) == people


async def test_a_run_cancelled_elsewhere_is_a_tool_error_saying_why(
    server: RunningServer, transport: str
) -> None:
    progress = Progress()
    async with (
        httpx.AsyncClient(base_url=server.url) as http,
        connected(transport, "--url", server.url) as client,
    ):
        call = asyncio.create_task(
            client.call_tool("hold", {"key": "mcp-elsewhere"}, progress_callback=progress)
        )
        await progress.first()
        run = await newest_run(http, lambda r: r["endpoint"] == "hold", "the hold")
        await http.delete(f"/api/runs/{run['id']}")
        result = await call
    why = "a cancel was asked for (DELETE)"
    assert result.is_error
    assert _text(result) == f"hold was cancelled (run {run['id']}): {why}"
    assert result.structured_content == {"status": "cancelled", "run_id": run["id"], "reason": why}


async def test_a_cut_between_bridge_and_server_costs_no_progress_and_repeats_none(
    start: StartServer, transport: str
) -> None:
    server = await start(retry_ms=100)
    # The import's stream (only it: the tool listing goes through untouched) is cut in its
    # second event (past some 245 bytes of headers, 20 of retry and 72 of the first event);
    # the bridge resumes it from the last event it had.
    cutter = CuttingProxy(server.host, server.port, cuts=[370], streams_only=True)
    url = await cutter.start()
    progress = Progress()
    try:
        async with connected(transport, "--url", url) as client:
            result = await client.call_tool(
                "import", {"rows": 40, "batch_size": 10, "delay_ms": 50}, progress_callback=progress
            )
    finally:
        await cutter.close()
    assert cutter.cuts_made == 1
    assert not result.is_error
    assert progress.seen == [
        *((done, 40.0, "import") for done in (0.0, 10.0, 20.0, 30.0, 40.0)),
        (40.0, 40.0, "publish"),
    ]


async def test_a_server_with_a_token_is_called_with_it(start: StartServer, transport: str) -> None:
    server = await start(token="s3cret")
    async with connected(transport, "--url", server.url, "--token", "s3cret") as client:
        assert "import" in [tool.name for tool in (await client.list_tools()).tools]
        result = await client.call_tool("echo", {"text": "hi"})
    assert result.structured_content == {"text": "hi"}


async def test_a_handshake_client_gets_the_same_progress_each_naming_the_run(
    server: RunningServer, transport: str
) -> None:
    # Agent hosts of the 2025 protocols: the initialize handshake, then the same calls.
    progress = Progress()
    notified: list[types.ProgressNotification] = []
    all_four = asyncio.Event()

    async def on_message(message: object) -> None:
        if isinstance(message, types.ProgressNotification):
            notified.append(message)
            if len(notified) == 4:
                all_four.set()

    options = {"mode": "legacy", "message_handler": on_message}
    async with connected(transport, "--url", server.url, **options) as client:
        assert client.protocol_version == "2025-11-25"
        result = await client.call_tool(
            "import", {"rows": 20, "batch_size": 10, "delay_ms": 0}, progress_callback=progress
        )
        # The SDK hands notifications to the message handler on tasks of their own.
        await asyncio.wait_for(all_four.wait(), 60)
    assert progress.seen == [
        *((done, 20.0, "import") for done in (0.0, 10.0, 20.0)),
        (20.0, 20.0, "publish"),
    ]
    assert result.structured_content is not None
    run_id = result.structured_content["run_id"]
    # The run's id rides in each notification's metadata, for a host that shows it.
    assert [n.params.meta for n in notified] == [{RUN_ID_META_KEY: run_id}] * 4
