"""``streambind mcp`` in front of three nodes behind nginx on Redis: a cut stream resumes on
whichever node nginx picks, a cancel reaches the node that executes the run, and a task made
through one bridge is polled through another."""

from __future__ import annotations

import asyncio

import httpx
from cutter import CuttingProxy
from deployment import Deployment
from mcp import Client
from mcp_bridges import Progress, a_long_import, connected, http_bridge
from mcp_tasks import TasksExtension, get_task
from polling import run_record


async def test_a_cut_stream_resumes_through_nginx_with_no_notification_lost_or_repeated(
    deployment: Deployment,
) -> None:
    host, port = deployment.url.removeprefix("http://").split(":")
    # Cut the import's stream part-way (past its headers and first event); its
    # resumption is a new request, which nginx hands to a node of its choosing.
    cutter = CuttingProxy(host, int(port), cuts=[420], streams_only=True)
    url = await cutter.start()
    progress = Progress()
    try:
        async with connected("stdio", "--url", url) as client:
            result = await client.call_tool(
                "import", {"rows": 40, "batch_size": 10, "delay_ms": 50}, progress_callback=progress
            )
    finally:
        await cutter.close()
    assert cutter.cuts_made == 1
    assert not result.is_error, result
    assert progress.seen == [
        *((done, 40.0, "import") for done in (0.0, 10.0, 20.0, 30.0, 40.0)),
        (40.0, 40.0, "publish"),
    ]
    assert result.structured_content is not None
    run_id = result.structured_content["run_id"]
    assert deployment.upstreams("GET", f"/api/runs/{run_id}/events")


async def test_cancelling_a_call_through_nginx_cancels_the_run_where_it_runs(
    deployment: Deployment,
) -> None:
    async with (
        httpx.AsyncClient(base_url=deployment.url) as http,
        connected("http", "--url", deployment.url) as client,
    ):
        call, run_id = await a_long_import(client, http)
        call.cancel()
        await asyncio.gather(call, return_exceptions=True)
        record = await run_record(http, run_id, lambda r: r["status"] != "running", "end")
    assert record["status"] == "cancelled"
    # The DELETE went to whichever node nginx chose; the run was executed, and ended, on its own.
    assert record["node"]
    assert deployment.upstreams("DELETE", f"/api/runs/{run_id}")


async def test_a_task_made_through_one_bridge_is_polled_through_another(
    deployment: Deployment,
) -> None:
    async with (
        http_bridge("--url", deployment.url) as first,
        http_bridge("--url", deployment.url) as second,
    ):
        async with Client(first, extensions=[TasksExtension()]) as client:
            created = await client.session.call_tool(
                "import", {"rows": 40, "batch_size": 10, "delay_ms": 500}, allow_claimed=True
            )
        run_id = created.task_id  # type: ignore[union-attr]
        tasks = TasksExtension()
        async with Client(second, extensions=[tasks]) as client:
            state = await get_task(client.session, run_id)
            assert state.task_id == run_id
            assert state.status in ("working", "completed")
            async with httpx.AsyncClient(base_url=deployment.url) as http:
                await run_record(http, run_id, lambda r: r["status"] != "running", "end")
            state = await get_task(client.session, run_id)
    assert state.status == "completed"
    assert state.result is not None
    assert state.result["structuredContent"]["imported"] == 40
