"""Three `streambind serve --redis` nodes behind nginx (tests/deployment.py), round robin."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from pathlib import Path

import httpx
from cutter import CuttingProxy
from deployment import Deployment
from polling import wait_for
from wire import Event, split_events

from streambind.app.client import StreamClient

TERMINAL = {"end", "error", "cancelled"}


async def _import_cut(client: httpx.AsyncClient, cuts: list[int]) -> tuple[str, list[Event]]:
    """Run an import, cutting the connection after each byte count of ``cuts`` and
    resuming from the last complete event, as a browser would; return every event."""
    got: list[Event] = []
    run_id = ""
    for attempt in range(len(cuts) + 1):
        limit = cuts[attempt] if attempt < len(cuts) else None
        if attempt == 0:
            body = {"rows": 400, "batch_size": 10, "delay_ms": 5}
            request = client.stream("POST", "/api/endpoints/import", json=body)
        else:
            last = got[-1].id if got else "0"
            request = client.stream(
                "GET", f"/api/runs/{run_id}/events", headers={"Last-Event-ID": last}
            )
        received = b""
        async with request as response:
            if response.status_code == 204:
                break
            assert response.status_code == 200, await response.aread()
            run_id = response.headers["x-run-id"]
            async for chunk in response.aiter_raw():
                received += chunk
                if limit is not None and len(received) >= limit:
                    received = received[:limit]
                    break
        complete = received.rpartition(b"\n\n")[0]
        got += split_events(complete.decode() + "\n\n") if complete else []
        if got and got[-1].event in TERMINAL:
            break
    return run_id, got


async def test_clients_cut_at_random_resume_on_any_node_with_every_message_once(
    deployment: Deployment,
) -> None:
    rng = random.Random(12)
    async with httpx.AsyncClient(base_url=deployment.url, timeout=60) as client:
        results = await asyncio.gather(
            *(_import_cut(client, sorted(rng.sample(range(40, 4000), 5))) for _ in range(50))
        )
        nodes_seen = set()
        for run_id, got in results:
            ids = [int(e.id) for e in got]
            assert ids == list(range(1, len(ids) + 1)), (run_id, ids)
            assert got[-1].event == "end"
            record = (await client.get(f"/api/runs/{run_id}")).json()
            assert record["events"] == len(ids) - 1  # every message, then the end
            nodes_seen.add(record["node"])
        assert len(nodes_seen) == 3  # round robin spread the runs over every node


async def test_delete_through_the_proxy_cancels_and_a_killed_node_ends_in_node_lost(
    deployment: Deployment,
) -> None:
    async with httpx.AsyncClient(base_url=deployment.url, timeout=60) as client:
        runs = []
        # Three long imports, started through the proxy (so one per node), each
        # left running by a caller that goes after its first event.
        for _ in range(3):
            async with client.stream(
                "POST",
                "/api/endpoints/import",
                json={"rows": 100_000, "batch_size": 10, "delay_ms": 1000},
            ) as response:
                async for _chunk in response.aiter_raw():
                    break
                runs.append(response.headers["x-run-id"])
        records = [(await client.get(f"/api/runs/{r}")).json() for r in runs]
        by_node = {rec["node"]: rec["id"] for rec in records}
        assert len(by_node) == 3
        # DELETE through the proxy, on whichever node, cancels the first.
        assert (await client.delete(f"/api/runs/{runs[0]}")).status_code == 202

        async def status(run_id: str) -> str:
            return (await client.get(f"/api/runs/{run_id}")).json()["status"]

        await wait_for(lambda: status(runs[0]), lambda s: s == "cancelled", "the cancel")
        # kill -9 the node executing the second: its run ends in node_lost.
        victim = _executing_process(deployment, records[1]["node"])
        victim.send_signal(signal.SIGKILL)
        await victim.wait()
        lost = await wait_for(
            lambda: client.get(f"/api/runs/{runs[1]}"),
            lambda r: r.status_code == 200 and r.json()["status"] == "failed",
            "node_lost",
        )
        assert lost.json()["error"]["type"] == "node_lost"
        replay = split_events((await client.get(f"/api/runs/{runs[1]}/events")).text)
        assert replay[-1].event == "error"
        assert replay[-1].json()["error"]["type"] == "node_lost"
        # The run on the third node goes on, and the listing through the proxy has all.
        assert await status(runs[2]) == "running"
        listed = {r["id"] for r in (await client.get("/api/runs")).json()["runs"]}
        assert set(runs) <= listed


def _executing_process(deployment: Deployment, node: str) -> asyncio.subprocess.Process:
    # A node's name starts with its host and pid (server/node.py).
    pid = int(node.split(":")[1])
    for node in deployment.nodes:
        if node.process is not None and node.process.pid == pid:
            return node.process
    raise AssertionError(f"no node process has pid {pid}")


async def test_the_stream_client_resumes_on_another_node_through_the_proxy(
    deployment: Deployment,
) -> None:
    # The client's connections go through a proxy that cuts the first three part-way;
    # each reconnection reaches nginx, which hands it to the next node in turn.
    host, port = deployment.url.removeprefix("http://").split(":")
    cutter = CuttingProxy(host, int(port), cuts=[5_003, 40_017, 77_777])
    url = await cutter.start()
    try:
        async with StreamClient(url) as client:
            state = await client.call("firehose", {"n": 5_000}).run()
    finally:
        await cutter.close()
    assert state.status == "succeeded", state.error
    assert state.reconnects == 3
    assert state.chunks == [{"step": "import", "done": i, "total": 5_000} for i in range(1, 5_001)]
    assert state.result == {"sent": 5_000}


async def _cli(*args: str) -> tuple[int, list[dict[str, object]]]:
    """``streambind ARGS`` as a process of its own; its exit status and JSON lines."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streambind.app.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, [json.loads(line) for line in out.decode().splitlines()]


async def test_call_and_follow_work_unchanged_through_the_proxy(deployment: Deployment) -> None:
    # `call` lands on one node; `follow` of the same run (a new connection) on whichever
    # node nginx picks next: both show the same chunks and end the same way.
    code, lines = await _cli(
        "call", "import", "-p", "rows=200", "-p", "batch_size=20", "-p", "delay_ms=0",
        "--json", "--url", deployment.url,
    )  # fmt: skip
    assert code == 0
    final = lines[-1]
    assert final["status"] == "succeeded"
    chunks = [line["chunk"] for line in lines[:-1]]
    assert chunks[-2:] == [
        {"step": "import", "done": 200, "total": 200},
        {"step": "publish", "rows": 200},
    ]
    followed = []
    for _ in range(3):  # round robin: three follows touch every node
        code, replay = await _cli("follow", str(final["run_id"]), "--json", "--url", deployment.url)
        assert code == 0
        assert replay[-1]["status"] == "succeeded"
        followed.append([line["chunk"] for line in replay[:-1]])
    assert followed == [chunks, chunks, chunks]
