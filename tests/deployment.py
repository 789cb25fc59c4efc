"""Three `streambind serve --redis` nodes behind nginx with deploy/nginx.conf, round robin.

The nodes keep their ports for life, so a test can stop one and start it again where
nginx expects it. nginx also writes an access log naming the node (``$upstream_addr``)
that answered each request, for tests that must show a request landed elsewhere.
Skips (saying why) without the nginx binary or a Redis for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redisdb
from polling import wait_for

TESTS = Path(__file__).parent
ROOT = TESTS.parent
DEPLOY = ROOT / "deploy" / "nginx.conf"
#: The same, the application under /jobs/ (its nodes started with --prefix /jobs).
DEPLOY_UNDER_JOBS = ROOT / "deploy" / "nginx-jobs.conf"
#: What the test nodes serve: the demo and the tests' own workflows.
WORKFLOWS = ("streambind.server.demo", "flows")
_LOG_FORMAT = "log_format upstreams '$request_method $uri $status $upstream_addr';"


async def spawn_node(
    *args: str, data_dir: Path, workflows: tuple[str, ...] = WORKFLOWS
) -> asyncio.subprocess.Process:
    """`streambind serve --port 0 ARGS` with ``workflows`` (the demo and the tests' own),
    its pipes open."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(TESTS), str(ROOT)))}
    for name in ("STREAMBIND_TOKEN", "STREAMBIND_DATABASE", "STREAMBIND_REDIS"):
        env.pop(name, None)
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streambind.app.cli", "serve", "--port", "0",
        "--data-dir", str(data_dir), "--workflows", *workflows, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip


async def start_node(
    *args: str, data_dir: Path, workflows: tuple[str, ...] = WORKFLOWS
) -> tuple[asyncio.subprocess.Process, str]:
    """A started node and its URL (once it says it serves)."""
    return await serving_url(await spawn_node(*args, data_dir=data_dir, workflows=workflows))


async def serving_url(
    process: asyncio.subprocess.Process,
) -> tuple[asyncio.subprocess.Process, str]:
    """A spawned ``streambind serve`` and its URL, once its first line says it serves
    (killed, and its stderr shown, if it says anything else)."""
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
    if not line.startswith("streambind serving on "):
        process.kill()
        stderr = (await process.stderr.read()).decode() if process.stderr else ""
        raise AssertionError(f"server did not start: {line!r} {stderr}")
    return process, line.split()[3]


@contextlib.asynccontextmanager
async def start_nodes(
    count: int, *args: str, data_dir: Path, workflows: tuple[str, ...] = WORKFLOWS
) -> AsyncIterator[list[tuple[asyncio.subprocess.Process, str]]]:
    """``count`` started nodes (each with a data directory of its own under ``data_dir``),
    terminated and waited for at the end."""
    started = []
    try:
        for i in range(count):
            started.append(
                await start_node(*args, data_dir=data_dir / f"n{i}", workflows=workflows)
            )
        yield started
    finally:
        for process, _ in started:
            if process.returncode is None:
                process.terminate()
        for process, _ in started:
            await process.wait()


def nginx_arguments(prefix: Path) -> tuple[str, ...]:
    """The documented command's arguments: ``-p PREFIX -c nginx.conf -e stderr``."""
    return ("-p", str(prefix), "-c", "nginx.conf", "-e", "stderr")


def nginx_binary() -> str:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx is None:
        reason = "nginx is not installed (apt-get install nginx-light)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return nginx


class Node:
    """One `serve --redis` process behind the proxy, restartable on the same port."""

    def __init__(
        self, args: tuple[str, ...], data_dir: Path, workflows: tuple[str, ...] = WORKFLOWS
    ) -> None:
        self.args = args
        self.data_dir = data_dir
        self.workflows = workflows
        self.process: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self) -> None:
        port = ("--port", str(urlsplit(self.url).port)) if self.url else ()
        self.process, self.url = await start_node(
            *self.args, *port, data_dir=self.data_dir, workflows=self.workflows
        )

    @property
    def address(self) -> str:
        """``host:port``, as nginx's upstream names it."""
        return urlsplit(self.url).netloc

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


class Deployment:
    def __init__(self, url: str, nodes: list[Node], access_log: Path) -> None:
        self.url = url
        self.nodes = nodes
        self.access_log = access_log

    def upstreams(self, method: str, path_start: str) -> list[str]:
        """The node (host:port) that answered each logged request like ``method path...``,
        in order. nginx logs a request when its response ends."""
        found = []
        for line in self.access_log.read_text().splitlines():
            logged_method, uri, _status, upstream = line.split(" ", 3)
            if logged_method == method and uri.startswith(path_start):
                found.append(upstream)
        return found


@contextlib.asynccontextmanager
async def deploy(
    tmp_path: Path,
    *node_args: str,
    conf: Path = DEPLOY,
    workflows: tuple[str, ...] = WORKFLOWS,
    mount: str = "",
) -> AsyncIterator[Deployment]:
    """nginx in front of three nodes on the tests' Redis (a fresh key prefix), each
    started with ``node_args`` besides; clients use the proxy's ``mount`` path."""
    nginx = nginx_binary()
    url = redisdb.require_redis()
    with redisdb.fresh_prefix(url) as prefix:
        nodes = [
            Node(
                ("--redis", url, "--redis-prefix", prefix, *node_args),
                tmp_path / f"node{i}",
                workflows,
            )
            for i in range(3)
        ]
        try:
            for node in nodes:
                await node.start()
            text = conf.read_text()
            for default, node in zip(("8701", "8702", "8703"), nodes, strict=True):
                text = text.replace(f"127.0.0.1:{default}", node.address)
            port = redisdb.free_port()
            text = text.replace("127.0.0.1:8780", f"127.0.0.1:{port}")
            access_log = tmp_path / "logs" / "access.log"
            text = text.replace(
                "http {", f"http {{\n    {_LOG_FORMAT}\n    access_log {access_log} upstreams;", 1
            )
            (tmp_path / "logs").mkdir()
            (tmp_path / "nginx.conf").write_text(text)
            # As the README runs it, with this folder as the prefix its files go under.
            proxy = await asyncio.create_subprocess_exec(
                nginx, *nginx_arguments(tmp_path), "-g", "daemon off;",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            try:
                deployment = Deployment(f"http://127.0.0.1:{port}{mount}", nodes, access_log)
                async with httpx.AsyncClient(base_url=deployment.url) as client:

                    async def health() -> int:
                        with contextlib.suppress(httpx.TransportError):
                            return (await client.get("/healthz")).status_code
                        return 0

                    await wait_for(health, lambda status: status == 200, "nginx to answer")
                yield deployment
            finally:
                proxy.terminate()
                await proxy.wait()
        finally:
            for node in nodes:
                if node.process is not None and node.process.returncode is None:
                    node.process.terminate()
            for node in nodes:
                if node.process is not None:
                    await node.process.wait()


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deploy(tmp_path) as running:
        yield running
