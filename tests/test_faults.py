"""Faults with bounded loops that stop by themselves: cut connections, resumed streams."""

from __future__ import annotations

import asyncio
import random

import flows
import httpx
from cutter import CuttingProxy
from polling import newest_run, run_record

from streambind.app.client import StreamClient

MESSAGES = 5_000
CLIENTS = 20
CUTS_EACH = 10


async def test_a_resume_storm_leaves_every_client_with_every_message_once(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(retry_ms=1)
    rng = random.Random(20261124)  # cut points differ per client, the same on every run
    proxies = [
        CuttingProxy(
            server.host, server.port, cuts=[rng.randint(2_000, 12_000) for _ in range(CUTS_EACH)]
        )
        for _ in range(CLIENTS)
    ]
    urls = [await proxy.start() for proxy in proxies]
    key = "storm"
    try:
        async with httpx.AsyncClient(base_url=server.url) as api:
            # The run sends its first message, then waits until every client follows it.
            caller_client = StreamClient(urls[0], max_reconnects=3)
            caller = caller_client.call("hold", {"key": key, "before": 1, "after": MESSAGES - 1})
            calls = [asyncio.create_task(caller.run())]
            run = await newest_run(api, lambda r: r["events"] == 1, "the first message")
            watchers = [StreamClient(url, max_reconnects=3) for url in urls[1:]]
            calls += [
                asyncio.create_task(w.watch(f"{url}/api/runs/{run['id']}/events").run())
                for w, url in zip(watchers, urls[1:], strict=True)
            ]
            await run_record(api, run["id"], lambda r: r["followers"] >= CLIENTS, "all follow")
            flows.release(key)
            states = await asyncio.wait_for(asyncio.gather(*calls), 120)
            for client in [caller_client, *watchers]:
                await client.aclose()
    finally:
        for proxy in proxies:
            await proxy.close()
    expected = [{"n": i} for i in range(1, MESSAGES + 1)]
    for state in states:
        assert state.status == "succeeded", state.error
        assert state.chunks == expected
    total_cuts = sum(state.reconnects for state in states)
    assert total_cuts == CLIENTS * CUTS_EACH, f"{total_cuts} cuts happened"
