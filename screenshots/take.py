"""Take the README's screenshots: the real app, a real server, real runs, driven headless.

    .venv/bin/python screenshots/take.py

Writes the SVG files next to this script (Textual's own screenshot export).
"""

from __future__ import annotations

import asyncio
import html
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
from textual.pilot import Pilot
from textual.widgets import Input, Log, OptionList

from streambind.app.embedded import EmbeddedServer
from streambind.app.tui.app import StreambindApp
from streambind.app.tui.runs_table import RunsTable
from streambind.server import ServerConfig

HERE = Path(__file__).parent
SIZE = (120, 36)


async def until(pilot: Pilot, condition: Callable[[], bool]) -> None:
    for _ in range(3000):
        if condition():
            return
        await pilot.pause(0.02)
    raise TimeoutError("the app never reached the state this screenshot needs")


async def choose(pilot: Pilot, app: StreambindApp, name: str, **params: str) -> None:
    app.query_one("#endpoint-list").focus()  # r runs from the Endpoints pane
    index = [e["name"] for e in app.endpoints].index(name)
    app.query_one("#endpoint-list", OptionList).highlighted = index
    await until(pilot, lambda: app.form is not None and app.form.endpoint["name"] == name)
    await pilot.pause()
    for key, value in params.items():
        app.query_one(f"#param-{key}", Input).value = value


async def shoot(
    app: StreambindApp, pilot: Pilot, name: str, focus: str | None = "#endpoint-list"
) -> None:
    for field in app.query(Input):
        field.cursor_blink = False
    if focus is not None:  # None: where the scene left it
        app.query_one(focus).focus()
    # Every card shows what its call holds right now, not what the last tick applied.
    for card in app.cards:
        card.refresh_from_state()
    await pilot.pause(0.1)
    svg = app.export_screenshot()
    _check_logs_are_current(app, svg)
    (HERE / f"{name}.svg").write_text(svg, encoding="utf-8")
    print(f"screenshots/{name}.svg")


def _check_logs_are_current(app: StreambindApp, svg: str) -> None:
    """Refuse a picture whose logs show older lines than the logs hold."""
    shown = html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")
    for card in app.cards:
        log = card.query_one(Log)
        if card.expanded and log.display and log.lines and log.lines[-1][:40] not in shown:
            raise RuntimeError(f"the log of {card.state.name} on screen is stale")


async def scene(
    url: str, name: str, act: Callable[[StreambindApp, Pilot], object], *, shot: bool = True
) -> None:
    """Run ``act`` in a fresh app and take the picture (unless ``act`` takes its own)."""
    app = StreambindApp(url, subtitle="embedded server", health=False, embedded=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(app.query("#handle-stream")))
        await act(app, pilot)  # type: ignore[misc]
        if shot:
            await shoot(app, pilot, name)
        for card in app.cards:
            await card.call.cancel()


async def form(app: StreambindApp, pilot: Pilot) -> None:
    await pilot.pause()


async def in_progress(app: StreambindApp, pilot: Pilot) -> None:
    await choose(pilot, app, "import", rows="2000", batch_size="50", delay_ms="60")
    await pilot.press("r")
    await until(pilot, lambda: app.cards and len(app.cards[0].state.chunks) >= 14)


async def several(app: StreambindApp, pilot: Pilot) -> None:
    """The board supervising runs: a pipeline expanded mid-run, others as lines."""
    await choose(pilot, app, "pipeline", rows="6000", batch_size="100", delay_ms="60")
    await pilot.press("r")
    await until(pilot, lambda: app.cards and len(app.cards[0].state.chunks) >= 3)
    await choose(pilot, app, "flaky", delay_ms="40")
    await pilot.press("r")
    await until(pilot, lambda: app.cards[0].state.finished)
    await choose(pilot, app, "import", rows="3000", batch_size="50", delay_ms="60")
    await pilot.press("r", "r")
    await until(pilot, lambda: len(app.cards) == 4 and len(app.cards[0].state.chunks) >= 5)
    app.cards[1].focus()
    await pilot.press("c")  # one of the two imports, cancelled here
    await choose(pilot, app, "export", delay_ms="80")
    await pilot.press("r")
    await choose(pilot, app, "write-text", delay_ms="60")
    await pilot.press("r")
    await until(pilot, lambda: len(app.cards) == 6 and len(app.cards[0].state.chunks) >= 10)
    await until(pilot, lambda: (app.cards[-1].state.chunk or {}).get("step") == "import")
    app.cards[-1].focus()
    await pilot.pause(0.5)  # the footer follows the focus with a recompose of its own
    await shoot(app, pilot, "run-board", focus=None)


async def stream_off(app: StreambindApp, pilot: Pilot) -> None:
    await choose(pilot, app, "import", rows="2000", batch_size="50", delay_ms="60")
    await pilot.press("h", "r")
    await until(pilot, lambda: app.cards and app.cards[0].state.status == "running")
    await pilot.pause(1.0)


async def text_stream(app: StreambindApp, pilot: Pilot) -> None:
    await choose(pilot, app, "import", source="presidents.csv", delay_ms="0")
    await pilot.press("r")
    await until(pilot, lambda: app.cards and app.cards[0].state.finished)
    await choose(pilot, app, "write-text", delay_ms="60")
    await pilot.press("r")
    await until(pilot, lambda: len(app.cards[0].state.chunks) >= 30)


async def runs_tab(app: StreambindApp, pilot: Pilot) -> None:
    """Runs started elsewhere (plain HTTP, as curl would), listed; one opened as a card."""
    async with httpx.AsyncClient(base_url=app.url, timeout=60) as client:
        await client.post("/api/endpoints/flaky", json={"delay_ms": 0})
        await client.post("/api/endpoints/write-text", json={"delay_ms": 0})
        background = asyncio.ensure_future(
            client.post("/api/endpoints/import", json={"rows": 3000, "delay_ms": 100})
        )
        await pilot.press("a")
        table = app.query_one(RunsTable)
        # The import, still running, at the top: the newest run of all the scenes'.
        await until(
            pilot,
            lambda: (
                bool(table.run_ids)
                and [str(c) for c in table.table.get_row_at(0)][2:4] == ["import", "running"]
            ),
        )
        await pilot.press("enter")
        await until(pilot, lambda: app.cards and len(app.cards[0].state.chunks) >= 30)
        await pilot.pause(1.2)  # a fresh poll: the table's progress matches the card's
        await shoot(app, pilot, "runs-tab", focus="#runs-table")
        await app.cards[0].call.cancel()
        await background


async def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        # As `streambind` runs it: the server on a thread of its own, its log (with the
        # traceback of the failure `flaky` is asked for) in the data directory's file.
        server = EmbeddedServer(ServerConfig(data_dir=Path(data_dir)))
        url = server.start()
        try:
            await scene(url, "endpoint-form", form)
            await scene(url, "run-in-progress", in_progress)
            await scene(url, "run-board", several, shot=False)
            await scene(url, "handle-stream-off", stream_off)
            await scene(url, "text-stream", text_stream)
            await scene(url, "runs-tab", runs_tab, shot=False)
        finally:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
