"""``streambind mcp`` as agent hosts run it, with the SDK's own client: over stdio (the
client spawns ``python -m streambind.app.cli mcp --url ...``) or over Streamable HTTP (a
process started with ``--http 127.0.0.1:0``, the client connecting to the URL it prints).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
from mcp import Client, StdioServerParameters
from polling import newest_run

TRANSPORTS = ("stdio", "http")
CLI = (sys.executable, "-m", "streambind.app.cli")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("STREAMBIND_TOKEN", None)
    return env


@contextlib.asynccontextmanager
async def http_bridge(*args: str) -> AsyncIterator[str]:
    """``streambind mcp ARGS --http 127.0.0.1:0`` and its MCP URL, stopped at the end."""
    process = await asyncio.create_subprocess_exec(
        *CLI, "mcp", *args, "--http", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, env=_env(),
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert line.startswith("streambind mcp serving on http://"), line
        yield line.split()[-1]
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


@contextlib.asynccontextmanager
async def connected(transport: str, *args: str, **client_options: Any) -> AsyncIterator[Client]:
    """The SDK's ``Client`` connected to ``streambind mcp ARGS`` over ``transport``."""
    if transport == "stdio":
        command = StdioServerParameters(command=CLI[0], args=[*CLI[1:], "mcp", *args], env=_env())
        async with Client(command, **client_options) as client:
            yield client
        return
    async with http_bridge(*args) as url, Client(url, **client_options) as client:
        yield client


class Progress:
    """A progress callback that keeps every notification, and wakes who waits for one."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, float | None, str | None]] = []
        self._arrived = asyncio.Event()

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.seen.append((progress, total, message))
        self._arrived.set()

    async def first(self) -> None:
        await asyncio.wait_for(self._arrived.wait(), 60)


async def a_long_import(client: Client, http: httpx.AsyncClient) -> tuple[asyncio.Task[Any], str]:
    """An import far too long to end by itself, called with a progress callback: its call's
    task and its run's id, once the first notification has arrived."""
    progress = Progress()
    arguments = {"rows": 10_000, "batch_size": 10, "delay_ms": 100}
    call = asyncio.create_task(client.call_tool("import", arguments, progress_callback=progress))
    await progress.first()
    run = await newest_run(http, lambda r: r["endpoint"] == "import", "the import")
    return call, run["id"]
