"""streambind for your own workflows: a package of your own served alone, mounted in an
application you already run, behind nginx under a path, and on three nodes with Redis."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import flows
import httpx
import pytest
from aiohttp import web
from cutter import CuttingProxy
from deployment import DEPLOY_UNDER_JOBS, deploy, start_nodes
from polling import newest_run, run_record
from test_tui import ready, select, until

from streambind.app.client import StreamClient
from streambind.app.tui.app import StreambindApp
from streambind.server import Registry, ServerConfig, create_app
from streambind.server import demo as demo_module

ROOT = Path(__file__).parent.parent
TESTS = Path(__file__).parent
EXAMPLE = "examples.checksums"


def _files(root: Path) -> dict[str, bytes]:
    """A few files to hash, in a folder of the data directory."""
    contents = {"a.txt": b"alpha\n", "b/c.bin": bytes(range(256)) * 500, "b/d.txt": b""}
    for name, data in contents.items():
        (root / "docs" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "docs" / name).write_bytes(data)
    return contents


def _expected(contents: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}


async def _cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streambind.app.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join((str(TESTS), str(ROOT)))},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_package_of_your_own_served_alone(tmp_path: Path) -> None:
    contents = _files(tmp_path / "n0")  # the node's data directory
    async with start_nodes(1, data_dir=tmp_path, workflows=(EXAMPLE,)) as [(_, url)]:
        async with httpx.AsyncClient(base_url=url) as client:
            endpoints = (await client.get("/api/endpoints")).json()["endpoints"]
            health = (await client.get("/healthz")).json()
        assert [e["name"] for e in endpoints] == ["checksums"]  # none of the demo's
        assert health["hashing"] == {"ok": True, "workers": 2}  # its resource, by name
        assert "database" not in health
        code, out, err = await _cli("call", "checksums", "-p", "folder=docs", "--json",
                                    "--url", url)  # fmt: skip
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[-1]["result"]["sha256"] == _expected(contents)
    assert [line["chunk"]["done"] for line in lines[:-1]] == [1, 2, 3]


@contextlib.asynccontextmanager
async def host_application(
    tmp_path: Path, registry: Registry, **settings: object
) -> AsyncIterator[tuple[str, web.AppRunner]]:
    """An application of your own with streambind mounted at /jobs; yields its URL."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="the host's own page")

    host = web.Application()
    host.router.add_get("/", hello)
    config = ServerConfig(data_dir=tmp_path, **settings)  # type: ignore[arg-type]
    host.add_subapp("/jobs", create_app(config, registry))
    # handler_cancellation: a client that goes away is noticed at once (the detach grace).
    runner = web.AppRunner(host, handler_cancellation=True, shutdown_timeout=3)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host_name, port = runner.addresses[0][:2]
    try:
        yield f"http://{host_name}:{port}", runner
    finally:
        await runner.cleanup()


def _example_and_flows() -> Registry:
    registry = Registry()
    registry.add_module(EXAMPLE)
    registry.add_module(flows)
    return registry


async def test_mounted_in_an_application_of_your_own(tmp_path: Path) -> None:
    contents = _files(tmp_path)
    async with host_application(tmp_path, _example_and_flows(), token="s3cret") as (url, _):
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/")).text == "the host's own page"
            assert (await http.get("/jobs/healthz")).json()["hashing"]["ok"] is True
            refused = await http.get("/jobs/api/endpoints")
            assert refused.status_code == 401  # the token guards the API under its prefix
            auth = {"Authorization": "Bearer s3cret"}
            index = (await http.get("/jobs/", headers={"Accept": "application/json"})).json()
            assert index["endpoints"] == "/jobs/api/endpoints"
            document = (await http.get("/jobs/api/openapi.json", headers=auth)).json()
            assert "/jobs/api/endpoints/checksums" in document["paths"]
            assert "/jobs/api/runs/{id}/events" in document["paths"]
            assert not any(path.startswith("/api") for path in document["paths"])
        async with StreamClient(f"{url}/jobs", "s3cret") as client:
            state = await client.call("checksums", {"folder": "docs"}).run()
        assert state.status == "succeeded", state.error
        assert state.result["sha256"] == _expected(contents)


async def test_mounted_a_cut_stream_resumes_and_a_cancel_cancels(tmp_path: Path) -> None:
    async with host_application(tmp_path, _example_and_flows()) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        # The first stream is cut part-way; the resume goes through the proxy too.
        proxy = CuttingProxy("127.0.0.1", port, cuts=[600], streams_only=True)
        proxy_url = await proxy.start()
        try:
            async with StreamClient(f"{proxy_url}/jobs", max_reconnects=5) as client:
                client.sleep = lambda seconds: asyncio.sleep(0)  # type: ignore[assignment,method-assign]
                call = client.call("hold", {"key": "mounted-cut", "before": 20, "after": 20})
                task = asyncio.create_task(call.run())
                await until_state(lambda: len(call.state.chunks) >= 20)
                flows.release("mounted-cut")
                state = await task
        finally:
            await proxy.close()
        assert state.status == "succeeded", state.error
        assert state.reconnects >= 1  # resumed through /jobs/api/runs/{id}/events
        assert state.chunks == [{"n": n} for n in range(1, 41)]
        async with StreamClient(f"{url}/jobs") as client:
            held = client.call("hold", {"key": "mounted-cancel"})
            task = asyncio.create_task(held.run())
            await until_state(lambda: bool(held.state.run_id))
            await held.cancel()
            await task
        async with httpx.AsyncClient(base_url=f"{url}/jobs") as http:
            await run_record(http, held.state.run_id, lambda r: r["status"] == "cancelled", "x")


async def until_state(condition) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_mounted_the_hosts_shutdown_ends_every_stream_with_its_event(tmp_path: Path) -> None:
    async with (
        host_application(tmp_path, _example_and_flows()) as (url, runner),
        httpx.AsyncClient(base_url=f"{url}/jobs", timeout=30) as http,
        http.stream("POST", "/api/endpoints/hold", json={"key": "mounted-shutdown"}) as response,
    ):
        lines = response.aiter_lines()
        async for line in lines:
            if line.startswith('data: {"n"'):
                break
        closing = asyncio.create_task(runner.cleanup())  # the host stops
        rest = [line async for line in lines]
        await closing
    assert 'data: {"status":"cancelled","reason":"shutdown"}' in rest


async def test_the_command_line_and_the_tui_work_under_a_prefix(tmp_path: Path) -> None:
    registry = Registry()
    registry.add_module(demo_module)
    registry.add_module(flows)
    async with host_application(tmp_path, registry) as (url, _):
        jobs = f"{url}/jobs"
        code, out, err = await _cli("call", "echo", "-p", "text=hi", "--json", "--url", jobs)
        assert code == 0, err
        run_id = json.loads(out.splitlines()[-1])["run_id"]
        code, out, _ = await _cli("runs", "--json", "--url", jobs)
        assert code == 0 and run_id in out
        code, out, _ = await _cli("follow", run_id, "--json", "--url", jobs)
        assert code == 0 and json.loads(out.splitlines()[-1])["status"] == "succeeded"
        app = StreambindApp(jobs)
        async with app.run_test(size=(120, 36)) as pilot:
            await ready(pilot)
            await select(pilot, "echo", text="from the TUI")
            await pilot.press("r")
            await until(pilot, lambda: app.cards and app.cards[0].state.finished, "the run")
            assert app.cards[0].state.status == "succeeded"
            assert app.cards[0].state.chunks == [{"text": "from the TUI"}]


async def test_under_jobs_behind_nginx_a_resume_lands_elsewhere_and_a_cancel_cancels(
    tmp_path: Path,
) -> None:
    async with deploy(
        tmp_path, "--prefix", "/jobs", conf=DEPLOY_UNDER_JOBS, mount="/jobs"
    ) as deployment:
        async with httpx.AsyncClient(base_url=deployment.url, timeout=30) as http:
            started = await http.post(
                "/api/endpoints/import", json={"rows": 60, "batch_size": 10, "delay_ms": 0}
            )
            run_id = started.headers["x-run-id"]
            # A replay from id 3: any node, through the proxy's /jobs/ location.
            replay = await http.get(f"/api/runs/{run_id}/events", headers={"Last-Event-ID": "3"})
            assert replay.text.split("\n\n")[1].startswith("id: 4\n")
            held = asyncio.create_task(http.post("/api/endpoints/hold", json={"key": "jobs"}))
            run = await newest_run(http, lambda r: r["endpoint"] == "hold", "the held run")
            assert (await http.delete(f"/api/runs/{run['id']}")).status_code == 202
            await run_record(http, run["id"], lambda r: r["status"] == "cancelled", "cancel")
            await held
            assert (await http.get("/healthz")).json()["status"] == "ok"
        async with StreamClient(deployment.url) as client:
            state = await client.call("import", {"rows": 30, "delay_ms": 0}).run()
        assert state.status == "succeeded"


async def test_your_package_on_three_nodes_with_redis(tmp_path: Path) -> None:
    contents = {}
    for i in range(3):
        contents = _files(tmp_path / f"node{i}")  # each node's data directory, alike
    async with deploy(tmp_path, workflows=(EXAMPLE,)) as deployment:
        async with StreamClient(deployment.url) as client:
            states = await asyncio.gather(
                *(client.call("checksums", {"folder": "docs"}).run() for _ in range(6))
            )
            listed = await client.runs()
        for state in states:
            assert state.status == "succeeded", state.error
            assert state.result["sha256"] == _expected(contents)
        nodes = {run.get("node") for run in listed if run["endpoint"] == "checksums"}
        assert len(nodes) >= 2  # the calls spread over the nodes, each listed by any


@pytest.fixture(autouse=True)
def _no_leftover_gates() -> None:
    flows._gates.clear()
