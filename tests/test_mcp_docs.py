"""docs/mcp.md as a user reads it: each configuration launches a bridge that serves, the HTTP
command serves where it says, the Python example prints what the page shows, and the
transcript is what the bridge says over stdio."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from conftest import StartServer
from docblocks import commands, example, output
from mcp import Client, StdioServerParameters
from mcp_bridges import CLI

from streambind.server import RunningServer

ROOT = Path(__file__).parent.parent
#: The server the page's examples name, and the bridge it runs over HTTP.
PAGE_SERVER = "http://127.0.0.1:8787"
PAGE_BRIDGE = "127.0.0.1:8000"
RUN_ID = re.compile(r"\b[0-9a-f]{16}\b")


def _streambind() -> str:
    """The ``streambind`` command this environment installed, as a host's PATH would find it."""
    return str(Path(sys.executable).parent / "streambind")


async def _serves(client: Client) -> None:
    assert "import" in [tool.name for tool in (await client.list_tools()).tools]
    result = await client.call_tool("echo", {"text": "from the docs"})
    assert result.structured_content == {"text": "from the docs"}


async def test_each_agent_host_configuration_launches_a_bridge_that_serves(
    start: StartServer,
) -> None:
    plain, with_token = example("mcp-host-config"), example("mcp-host-config-token")
    servers = [await start(), await start(token="s3cret")]
    for block, server in zip((plain, with_token), servers, strict=True):
        [(name, entry)] = json.loads(block)["mcpServers"].items()
        assert (name, entry["command"]) == ("streambind", "streambind")
        args = [server.url if arg == PAGE_SERVER else arg for arg in entry["args"]]
        assert args == ["mcp", "--url", server.url]
        command = StdioServerParameters(command=_streambind(), args=args, env=entry.get("env"))
        async with Client(command) as client:
            await _serves(client)


async def test_the_http_command_serves_where_it_says_for_the_configuration_and_example(
    server: RunningServer, tmp_path: Path
) -> None:
    console = example("mcp-http")
    command, said = console.strip().splitlines()
    assert command == f"$ streambind mcp --url {PAGE_SERVER} --http {PAGE_BRIDGE}"
    args = command.split()[2:]
    args[args.index(PAGE_SERVER)] = server.url
    args[args.index(PAGE_BRIDGE)] = "127.0.0.1:0"
    process = await asyncio.create_subprocess_exec(
        _streambind(), *args, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().rstrip()
        port = re.fullmatch(r"streambind mcp serving on http://127\.0\.0\.1:(\d+)/mcp", line)
        assert port and said == line.replace(port.group(1), PAGE_BRIDGE.split(":")[1])
        url = line.split()[-1]
        config = example("mcp-http-config")
        entry = json.loads(config)["mcpServers"]["streambind"]
        assert entry == {"type": "http", "url": f"http://{PAGE_BRIDGE}/mcp"}
        async with Client(url) as client:
            await _serves(client)
        script_text = example("mcp-python")
        script = tmp_path / "example.py"
        script.write_text(script_text.replace(f"http://{PAGE_BRIDGE}/mcp", url))
        run = await asyncio.create_subprocess_exec(
            sys.executable, str(script), stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(run.communicate(), 60)
        assert run.returncode == 0
        shown = output("mcp-python")
        assert RUN_ID.sub("…", out.decode()) == shown
    finally:
        process.terminate()
        await process.wait()


async def transcript(url: str) -> list[tuple[float, str, str]]:
    """(seconds since the call, direction, line) of a call of ``import`` over stdio, after
    the handshake, as the page shows it."""
    process = await asyncio.create_subprocess_exec(
        *CLI, "mcp", "--url", url, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdin is not None and process.stdout is not None
    lines: list[tuple[float, str, str]] = []

    def send(message: dict[str, Any]) -> str:
        line = json.dumps(message, separators=(",", ":"))
        process.stdin.write(line.encode() + b"\n")  # type: ignore[union-attr]
        return line

    try:
        hello = {"protocolVersion": "2025-11-25", "capabilities": {},
                 "clientInfo": {"name": "host", "version": "1"}}  # fmt: skip
        send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello})
        await asyncio.wait_for(process.stdout.readline(), 60)
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        arguments = {"rows": 40, "batch_size": 10, "delay_ms": 100}
        params = {"name": "import", "arguments": arguments, "_meta": {"progressToken": "p1"}}
        started = time.perf_counter()
        lines.append((0.0, "→", send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                      "params": params})))  # fmt: skip
        while True:
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().rstrip()
            lines.append((time.perf_counter() - started, "←", line))
            if json.loads(line).get("id") == 2:
                return lines
    finally:
        process.stdin.close()
        await process.wait()


async def test_the_transcript_is_what_the_bridge_says(server: RunningServer) -> None:
    shown = output("mcp-transcript")
    said = await transcript(server.url)
    page = [line.split(" ", 2) for line in shown.strip().splitlines()]
    assert [(arrow, RUN_ID.sub("ID", text)) for _, arrow, text in page] == [
        (arrow, RUN_ID.sub("ID", text)) for _, arrow, text in said
    ]
    # Progress arrives while the run works: the batches are 100 ms apart.
    assert said[-2][0] - said[2][0] > 0.25


def test_the_install_command_names_the_mcp_extra() -> None:
    [command] = commands(example("mcp-install"))
    assert command == "pip install 'streambind[mcp]'"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '\nmcp = ["mcp>=' in pyproject
