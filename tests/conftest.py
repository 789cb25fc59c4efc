"""Fixtures: a real streambind server on loopback with its own data directory, and a client."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import flows
import redisdb
from browser import chromium_driver, page  # noqa: F401  (headless Chromium, for the page)
from databases import backend, pg_schema, private_postgres  # noqa: F401  (fixtures for every test module)
from deployment import deployment  # noqa: F401  (nginx before three Redis nodes)
from served import demo_and_flows, split

from streambind.server import RunningServer, ServerConfig, loops, start_server

StartServer = Callable[..., Awaitable[RunningServer]]


# The HTTP contract suites: each of their tests runs on the memory store and on Redis.
STORE_CONTRACT_MODULES = {
    "test_stream_contract",
    "test_runs",
    "test_eventsource_stops",
    "test_client",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__ in STORE_CONTRACT_MODULES and "store" in metafunc.fixturenames:
        metafunc.parametrize("store", ["memory", "redis"], indirect=True)


@pytest.fixture(scope="session")
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    """The suite runs on the loop $STREAMBIND_LOOP names (CI runs it on each), as the
    servers and commands it spawns do."""
    if loops.resolve() == "uvloop":
        import uvloop

        return uvloop.EventLoopPolicy()
    return asyncio.DefaultEventLoopPolicy()


@pytest.fixture(scope="session", autouse=True)
def _private_redis_stops() -> Iterator[None]:
    yield
    redisdb.stop_private()


@pytest.fixture(autouse=True)
def _fresh_gates() -> None:
    # A test run twice (once per store) must not find its gates already open.
    flows._gates.clear()


@pytest.fixture
def store(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    """The run store's settings: none (memory), or Redis with a fresh key prefix."""
    if getattr(request, "param", "memory") == "memory":
        yield {}
        return
    url = redisdb.require_redis()
    with redisdb.fresh_prefix(url) as prefix:
        yield {"redis_url": url, "redis_prefix": prefix}


@pytest.fixture
async def start(tmp_path: Path, store: dict[str, object]) -> AsyncIterator[StartServer]:
    """Start servers with any ServerConfig settings; all are shut down after the test.

    On Redis, a second node shares the store from the first start on: every contract
    test then runs beside another node that sees the same runs.
    """
    running: list[RunningServer] = []

    async def _start(**settings: object) -> RunningServer:
        """A server of the demo and the tests' workflows; ``settings`` are ServerConfig's
        and the demo's (``DemoSettings``) together."""
        settings.setdefault("data_dir", tmp_path / "data")
        for name, value in store.items():
            settings.setdefault(name, value)
        framework, demo = split(settings)
        server = await start_server(
            ServerConfig(**framework),  # type: ignore[arg-type]
            registry=demo_and_flows(**demo),
        )
        running.append(server)
        if store and len(running) == 1:
            peer = await start_server(
                ServerConfig(data_dir=tmp_path / "peer", **store),  # type: ignore[arg-type]
                registry=demo_and_flows(**demo),
            )
            running.append(peer)
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
