"""A rolling restart behind nginx: each node in turn drains (SIGTERM with --drain-timeout)
and starts again on its port, while runs go on through the proxy."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
from deployment import Deployment, Node, deploy
from polling import wait_for

from streambind.app.client import StreamCall, StreamClient
from streambind.app.state import StreamState

#: One run per node, each longer than the one before: the nodes restart in that order,
#: so while one drains and restarts, the runs on the nodes after it are still going.
STEPS = (30, 60, 90)
#: A run started on each node just before its SIGTERM, so that it surely drains.
LAST_STEPS = 20
FOLLOWERS = 3


def _expected(steps: int) -> list[dict[str, object]]:
    return [{"step": "flaky", "done": n, "total": steps} for n in range(1, steps + 1)]


async def _started(call: StreamCall) -> asyncio.Task[StreamState]:
    """The call, running, once its first message arrived."""
    task = asyncio.create_task(call.run())

    async def first_chunk() -> bool:
        return bool(call.state.chunks) or task.done()

    await wait_for(first_chunk, bool, "the first message")
    return task


async def _says_draining(node: Node) -> None:
    """Once it prints this, the node refuses new runs (and drains for its runs' length)."""
    assert node.process is not None and node.process.stdout is not None
    while True:
        line = await asyncio.wait_for(node.process.stdout.readline(), 30)
        assert line, "the node exited without draining"
        if line.startswith(b"streambind: draining"):
            return


async def _refused_then_elsewhere(deployment: Deployment, victim: Node) -> None:
    """New calls on the draining node get 503 + Retry-After, directly and through the proxy;
    a client that retries through the proxy lands on another node."""
    async with httpx.AsyncClient(base_url=victim.url, timeout=30) as direct:
        refused = await direct.post("/api/endpoints/echo", json={"text": "x"})
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["type"] == "shutting_down"
    async with httpx.AsyncClient(base_url=deployment.url, timeout=30) as http:
        statuses = []
        # nginx does not retry a POST (a run may have started): the 503 reaches the
        # caller, whose retry goes to the next node. Round robin: within three calls.
        for _ in range(6):
            response = await http.post("/api/endpoints/echo", json={"text": "x"})
            statuses.append(response.status_code)
            if response.status_code == 503:
                assert response.headers["retry-after"] == "1"
                assert response.json()["error"]["type"] == "shutting_down"
                retried = await http.post("/api/endpoints/echo", json={"text": "x"})
                assert retried.status_code == 200, retried.text
                return
            assert response.status_code == 200, response.text
    raise AssertionError(f"no call through the proxy reached the draining node: {statuses}")


async def _call(client: StreamClient, steps: int) -> tuple[StreamCall, asyncio.Task[StreamState]]:
    call = client.call("flaky", {"steps": steps, "fail_at": steps + 1, "delay_ms": 100})
    return call, await _started(call)


async def test_a_rolling_restart_behind_the_proxy_finishes_every_run_whole(
    tmp_path: Path,
) -> None:
    async with (
        deploy(tmp_path, "--drain-timeout", "30") as deployment,
        StreamClient(deployment.url) as client,
        httpx.AsyncClient(base_url=deployment.url, timeout=30) as http,
    ):

        async def node_of(call: StreamCall, ask: Node | None = None) -> Node:
            # Asked of a node directly when the proxy's round robin must not move on.
            url = f"{ask.url if ask else ''}/api/runs/{call.state.run_id}"
            record = (await http.get(url)).json()
            pid = int(record["node"].split(":")[1])  # host:pid#... (server/node.py)
            return next(n for n in deployment.nodes if n.process and n.process.pid == pid)

        # Three runs through the proxy (round robin: one per node), each with followers
        # through the proxy, which nginx spreads over the nodes too.
        runs = [(steps, *await _call(client, steps)) for steps in STEPS]
        tasks = [(steps, task) for steps, _, task in runs]
        order = []
        for steps, call, _ in runs:
            for _ in range(FOLLOWERS):
                tasks.append((steps, await _started(client.follow(call.state.run_id or ""))))
            order.append(await node_of(call))
        assert len({id(node) for node in order}) == 3, "round robin put one run on each node"
        # Restart the nodes in turn, the one with the shortest run first, each right
        # after a new call through the proxy landed on it.
        stderr = b""
        for victim in order:
            for _ in range(6):
                call, task = await _call(client, LAST_STEPS)
                tasks.append((LAST_STEPS, task))
                if await node_of(call, ask=victim) is victim:
                    break
            else:
                raise AssertionError("no call of six through the proxy landed on the node")
            assert victim.process is not None and victim.process.stderr is not None
            victim.process.send_signal(signal.SIGTERM)
            await _says_draining(victim)
            await _refused_then_elsewhere(deployment, victim)
            assert await asyncio.wait_for(victim.process.wait(), 60) == 0
            stderr += await victim.process.stderr.read()
            await victim.start()  # on the same port, where nginx expects it
        states = await asyncio.wait_for(asyncio.gather(*(task for _, task in tasks)), 60)
    for (steps, _), state in zip(tasks, states, strict=True):
        assert state.status == "succeeded", (state.run_id, state.error)
        assert state.chunks == _expected(steps), state.run_id
    # The streams of the nodes that restarted while other runs went on were cut, and
    # resumed through the proxy on another node.
    assert sum(state.reconnects for state in states) > 0
    assert b"Traceback" not in stderr, stderr.decode()[-3000:]
