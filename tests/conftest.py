"""Fixtures: a real streambind server on loopback with its own data directory, and a client."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import flows
from databases import backend, pg_schema  # noqa: F401  (fixtures for every test module)

from streambind.server import RunningServer, ServerConfig, build_registry, start_server

StartServer = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[StartServer]:
    """Start servers with any ServerConfig settings; all are shut down after the test."""
    running: list[RunningServer] = []

    async def _start(**settings: object) -> RunningServer:
        settings.setdefault("data_dir", tmp_path / "data")
        server = await start_server(
            ServerConfig(**settings),  # type: ignore[arg-type]
            registry=build_registry([flows]),
        )
        running.append(server)
        return server

    yield _start
    for server in running:
        await server.close()


@pytest.fixture
async def server(start: StartServer) -> RunningServer:
    return await start()


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        yield c
