"""The page where it is deployed: on a phone's screen, under a path prefix, and behind nginx
across three Redis nodes with a resume that lands on another node."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from aiohttp import web
from browser import PHONE, Page, set_viewport
from cutter import CuttingProxy
from deployment import Deployment
from foreign import serve
from served import demo_and_flows
from wire import split_events

from streambind.server import RunningServer, ServerConfig, create_app


async def test_on_a_phones_screen_nothing_overflows_and_a_run_shows_its_card(
    server: RunningServer, page: Page
) -> None:
    await page.call(set_viewport, page.driver, PHONE)
    await page.open(server.url + "/")
    await page.choose("import", rows="100", batch_size="10", delay_ms="5")
    await page.run()
    top = await page.script("return document.querySelector('.card').getBoundingClientRect().top")
    assert 0 <= top < 50, "Run brings the new card to the top of the screen, below the form"
    await page.card_until(lambda c: c["status"] == "succeeded", "the run succeeds")
    layout = await page.script(
        """
        const card = document.querySelector('.card').getBoundingClientRect();
        const wide = [...document.querySelectorAll('body *')]
          .filter((el) => el.offsetParent !== null && !el.closest('.runs-scroll'))
          .filter((el) => el.getBoundingClientRect().right > innerWidth + 0.5)
          .map((el) => el.className || el.tagName);
        return [innerWidth, document.documentElement.scrollWidth, wide,
                card.top >= 0 && card.top < innerHeight];
        """
    )
    assert layout[0] == 390
    assert layout[1] <= 390, "the page scrolls sideways"
    assert layout[2] == []
    assert layout[3], "Run brings the new card into view below the form"


@contextlib.asynccontextmanager
async def _mounted_at(prefix: str, data_dir: Path) -> AsyncIterator[str]:
    """The application as an aiohttp sub-application under ``prefix``; the page's URL."""
    parent = web.Application()
    config = ServerConfig(data_dir=data_dir)
    parent.add_subapp(prefix, create_app(config, demo_and_flows()))
    async with serve(parent) as url:
        yield f"{url}{prefix}/"


async def test_under_a_path_prefix_every_url_stays_under_it(tmp_path: Path, page: Page) -> None:
    async with _mounted_at("/jobs", tmp_path) as url:
        await page.open(url)
        await page.choose("echo", text="mounted", times="3")
        await page.run()
        await page.card_until(lambda c: c["status"] == "succeeded", "the run succeeds")
        await page.click("#tab-runs")
        await page.element("#runs-table tbody tr")
        # A run started elsewhere, opened from the Runs view: its events under the prefix.
        async with httpx.AsyncClient(timeout=30) as client:
            other = await client.post(f"{url}api/endpoints/echo", json={"text": "x"})
        run_id = other.headers["x-run-id"]
        await page.click(f'#runs-table tr[data-id="{run_id}"] button')
        await page.card_until(lambda c: c["origin"] == "via Runs view", "the opened run")
        await page.card_until(lambda c: c["status"] == "succeeded", "its replay")
        urls = await page.script(
            "return performance.getEntriesByType('resource').map((e) => e.name)"
        )
    assert any(u.endswith("/jobs/api/endpoints/echo") for u in urls)
    assert any(u.endswith(f"/jobs/api/runs/{run_id}/events") for u in urls)
    assert all("/jobs/" in u for u in urls), urls


async def test_behind_nginx_a_cut_stream_resumes_on_another_node_with_every_chunk_once(
    deployment: Deployment, page: Page
) -> None:
    # Between the browser and nginx, a proxy that cuts the run's stream once, part-way:
    # the page's client resumes through nginx, whose round robin picks the next node.
    host, port = deployment.url.removeprefix("http://").split(":")
    cutter = CuttingProxy(host, int(port), cuts=[1_500], streams_only=True)
    url = await cutter.start()
    try:
        await page.open(url + "/")
        await page.choose("import", rows="1000", batch_size="25", delay_ms="20")
        await page.run()
        done = await page.card_until(
            lambda c: c["status"] == "succeeded", "the run succeeds", timeout=60
        )
    finally:
        await cutter.close()
    assert done["stats"].endswith("42 chunks · 1 reconnect")
    run_id = done["title"].split(" · ")[1]
    async with httpx.AsyncClient(base_url=deployment.url, timeout=30) as client:
        replay = await client.get(f"/api/runs/{run_id}/events")
    sent = [e.json() for e in split_events(replay.text) if e.event == "message"]
    assert [json.loads(line) for line in done["log"]] == sent
    [called] = deployment.upstreams("POST", "/api/endpoints/import")
    [resumed] = deployment.upstreams("GET", f"/api/runs/{run_id}/events")[:1]
    assert resumed != called, "the resume landed on the node that executes the run"
