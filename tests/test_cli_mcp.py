"""`streambind mcp` on the command line: its usage errors, the embedded server it starts
without `--url`, what it says when served beyond loopback, and how it stops."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest
from mcp import Client
from mcp_bridges import CLI, TRANSPORTS, a_long_import, connected
from polling import run_record

from streambind.app.mcp.command import _exposure_warning
from streambind.server import RunningServer


async def _cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("8000", "'8000' is not HOST:PORT (such as 127.0.0.1:8000)"),
        ("127.0.0.1:http", "'http' is not a port number"),
        ("127.0.0.1:70000", "70000 is not a port number (0 to 65535)"),
    ],
)
async def test_a_bad_http_address_is_one_line_and_status_2(value: str, why: str) -> None:
    code, out, err = await _cli("mcp", "--http", value)
    assert (code, out) == (2, "")
    assert err == (f"streambind mcp: argument --http: {why} (see streambind mcp --help)\n")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_without_a_url_it_serves_an_embedded_server(tmp_path: Path, transport: str) -> None:
    async with connected(transport, "--data-dir", str(tmp_path)) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        result = await client.call_tool("import", {"rows": 5, "delay_ms": 0})
    assert "import" in names and "hold" not in names
    assert result.structured_content is not None
    assert result.structured_content["imported"] == 5
    assert (tmp_path / "streambind.db").exists()


def test_serving_http_beyond_loopback_says_anyone_can_run_the_endpoints() -> None:
    assert _exposure_warning("127.0.0.1") is None
    assert _exposure_warning("::1") is None
    assert _exposure_warning("localhost") is None
    warning = _exposure_warning("0.0.0.0")
    assert warning is not None and "anyone who can reach this address" in warning


async def test_stopping_the_http_bridge_cancels_the_calls_it_can_no_longer_answer(
    server: RunningServer,
) -> None:
    process = await asyncio.create_subprocess_exec(
        *CLI, "mcp", "--url", server.url, "--http", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    url = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().split()[-1]
    try:
        async with (
            httpx.AsyncClient(base_url=server.url) as http,
            Client(url) as client,
        ):
            call, run_id = await a_long_import(client, http)
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 30) in (0, -signal.SIGTERM)
            await asyncio.gather(call, return_exceptions=True)
            record = await run_record(http, run_id, lambda r: r["status"] != "running", "end")
        assert record["status"] == "cancelled"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
