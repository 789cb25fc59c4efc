"""The TUI pointed at nginx before three Redis nodes (tests/deployment.py), unchanged."""

from __future__ import annotations

import httpx
from cutter import CuttingProxy
from deployment import Deployment
from test_tui import SIZE, bar, ready, run_first, select, text_of, until
from wire import split_events

from streambind.app.tui.app import StreambindApp
from streambind.app.tui.run_card import RunCard

ROWS = 1000
BATCH = 25


async def _replayed(url: str, run_id: str) -> list[object]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        replay = await client.get(f"/api/runs/{run_id}/events")
    return [e.json() for e in split_events(replay.text) if e.event == "message"]


async def _run_import(app: StreambindApp, url: str, delay_ms: int) -> tuple[RunCard, str]:
    """Start an import from the form with Run, as a person would; its card once it ended,
    and the card's statistics line then."""
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "import", rows=str(ROWS), batch_size=str(BATCH), delay_ms=str(delay_ms))
        card = await run_first(pilot)
        await until(pilot, lambda: card.state.finished, "the run ends")
        await pilot.pause(0.2)  # one more batch tick
        assert card.state.status == "succeeded", card.state.error
        assert bar(card) == 1.0
        assert text_of(card, ".card-status") == "succeeded"
        assert f"{len(card.state.chunks)} chunks" in text_of(card, ".card-stats")
        stats = text_of(card, ".card-stats")
    # Every chunk, once, as the server (any node, through the proxy) replays them.
    assert card.state.chunks == await _replayed(url, card.state.run_id or "")
    assert card.state.chunks[-2]["done"] == ROWS
    assert card.state.chunks[-1] == {"step": "publish", "rows": ROWS}
    return card, stats


async def test_the_tui_runs_an_import_to_100_percent_through_the_proxy(
    deployment: Deployment,
) -> None:
    card, _ = await _run_import(StreambindApp(deployment.url), deployment.url, delay_ms=0)
    assert card.state.reconnects == 0


async def test_the_tuis_card_survives_a_cut_and_resumes_on_another_node(
    deployment: Deployment,
) -> None:
    # Between the TUI and nginx, a proxy that cuts the run's stream once, part-way:
    # the card's client resumes through nginx, whose round robin picks the next node.
    host, port = deployment.url.removeprefix("http://").split(":")
    cutter = CuttingProxy(host, int(port), cuts=[1_500], streams_only=True)
    url = await cutter.start()
    try:
        card, stats = await _run_import(StreambindApp(url), deployment.url, delay_ms=20)
    finally:
        await cutter.close()
    assert card.state.reconnects == 1
    assert "1 reconnect" in stats
    run_id = card.state.run_id
    [called] = deployment.upstreams("POST", "/api/endpoints/import")
    [resumed] = deployment.upstreams("GET", f"/api/runs/{run_id}/events")[:1]
    assert resumed != called, "the resume landed on the node that executes the run"
