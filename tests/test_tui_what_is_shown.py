"""The screen says what is true: keys act on what is shown, cuts show …, times count from
the run's own start, and the Runs table's columns hold still."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import flows
import httpx
from polling import newest_run
from test_tui import ready, select, until
from textual.widgets import Log, Static

from streambind.app.client import RunTimeline
from streambind.app.tui.app import StreambindApp
from streambind.app.tui.run_line import RunLine
from streambind.app.tui.runs_table import WIDTHS, RunsTable


async def test_keys_pressed_in_one_burst_run_the_endpoint_the_screen_shows(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=(110, 40)) as pilot:
        await ready(pilot)
        assert app.form.endpoint["name"] == "import"
        names = [e["name"] for e in app.endpoints]
        await pilot.press("j", "r")  # one burst: move to the next endpoint, then Run
        await until(pilot, lambda: app.cards != [], "a card")
        assert app.cards[0].state.name == names[1]
        assert app.form.endpoint["name"] == names[1]


async def test_at_80x24_a_run_keeps_its_endpoint_and_id_and_every_cut_shows_an_ellipsis(
    server,
) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await select(pilot, "hold", key="narrow", before="3", pad="150")
        await pilot.press("r")
        await until(pilot, lambda: app.cards and len(app.cards[0].state.chunks) == 3, "chunks")
        flows.release("narrow")
        await until(pilot, lambda: app.cards[0].state.finished, "the run ends")
        await pilot.pause(0.2)
        card = app.cards[0]
        line = card.query_one(RunLine)
        assert str(line.render()).split()[1] == "hold"  # the endpoint leads its line
        assert line.region.width >= 30 and line.region.right <= 80
        title = card.query_one(".card-title", Static)
        assert str(title.render()).startswith(f"hold · {card.state.run_id}")
        assert title.region.width >= len(f"hold · {card.state.run_id[:8]}")
        log = card.query_one(Log)
        width = log.scrollable_content_region.width
        assert len(log.lines) == 3
        for shown in log.lines:
            assert len(shown) == width and shown.endswith("…")  # cut, and saying so


async def test_a_card_opened_from_the_runs_tab_counts_from_the_runs_start(server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.url) as client:
        started = await client.post("/api/endpoints/echo", json={"text": "hi"})
        run_id = started.headers["x-run-id"]
        app = StreambindApp(server.url)
        async with app.run_test(size=(110, 40)) as pilot:
            await ready(pilot)
            now = time.time()
            # A run that started 12.8 s ago and took 12.8 s: the card says 12.8 s, not the
            # instant its replay took.
            finished = app.open_run(run_id, "echo", RunTimeline(now - 12.8, now))
            await until(pilot, lambda: finished.state.finished, "the replay ends")
            assert abs(finished.state.elapsed(app.clock()) - 12.8) < 0.01
        running_app = StreambindApp(server.url)
        held = await _start_held(client)
        async with running_app.run_test(size=(110, 40)) as pilot:
            await ready(pilot)
            created = time.time() - 30
            card = running_app.open_run(held, "hold", RunTimeline(created))
            await until(pilot, lambda: card.state.chunks != [], "the replay")
            assert card.state.elapsed(running_app.clock()) >= 30
            flows.release("opened-later")
            await until(pilot, lambda: card.state.finished, "the run ends")


async def _start_held(client: httpx.AsyncClient) -> str:
    import asyncio

    asyncio.get_running_loop().create_task(
        client.post("/api/endpoints/hold", json={"key": "opened-later"})
    )
    run = await newest_run(client, lambda r: r["endpoint"] == "hold" and r["events"] == 1, "hold")
    return str(run["id"])


async def test_the_runs_table_passes_each_runs_own_times_when_opening_it(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=(110, 40)) as pilot:
        await ready(pilot)
        table = app.query_one(RunsTable)
        opened: list[RunTimeline | None] = []
        app.open_run = lambda run_id, endpoint, timeline=None, params=None: opened.append(  # type: ignore[method-assign,assignment,misc]
            timeline
        )
        table.show_runs(
            [{"id": "a" * 16, "endpoint": "import", "status": "succeeded",
              "created": "2026-12-01T10:00:00.000Z", "finished": "2026-12-01T10:00:12.800Z"}]
        )  # fmt: skip
        table.open_highlighted()
        await until(pilot, lambda: opened != [], "the run is opened")
        assert opened[0] == RunTimeline(
            datetime(2026, 12, 1, 10, 0, tzinfo=UTC).timestamp(),
            datetime(2026, 12, 1, 10, 0, 12, 800000, tzinfo=UTC).timestamp(),
        )


async def test_the_runs_tables_columns_hold_still_as_progress_changes(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=(110, 40)) as pilot:
        await ready(pilot)
        await select(pilot, "import")
        table = app.query_one(RunsTable)
        run = {"id": "b" * 16, "endpoint": "import", "status": "running",
               "created": "2026-12-01T10:00:00.000Z", "events": 1}  # fmt: skip
        widths = []
        for message in (
            {"step": "i", "done": 1, "total": 9},
            {"step": "a-step-with-a-long-name-indeed", "done": 1, "total": 2},
            {"text": "x"},
        ):
            table.show_runs([{**run, "last_message": message}])
            await pilot.pause()
            widths.append([c.width for c in table.table.columns.values()])
            if message.get("step", "").startswith("a-step"):
                cell = str(table.table.get_cell("b" * 16, "progress"))
                assert cell.endswith("…") and len(cell) == WIDTHS["progress"]
        assert widths[0] == widths[1] == widths[2]
        assert widths[0] == [WIDTHS[str(key.value)] for key in table.table.columns]
