"""The Runs tab and the richer card: runs started elsewhere, opened, followed and cancelled."""

from __future__ import annotations

import asyncio

import flows
import httpx
from polling import newest_run, run_record
from test_tui import SIZE, bar, ready, record_layout_requests, select, text_of, until
from textual.pilot import Pilot
from textual.widgets import Sparkline
from wire import split_events

from streambind.app.tui.app import StreambindApp
from streambind.app.tui.run_card import FROM_RUNS_TAB, RunCard
from streambind.app.tui.runs_table import RunsTable


def row_of(table: RunsTable, run_id: str) -> list[str]:
    """A row's cells as the text they show."""
    return [str(cell) for cell in table.table.get_row(run_id)]


async def runs_tab(pilot: Pilot) -> RunsTable:
    await ready(pilot)
    await pilot.press("a")
    return pilot.app.query_one(RunsTable)


async def replayed(server_url: str, run_id: str) -> list[object]:
    async with httpx.AsyncClient(base_url=server_url) as client:
        replay = await client.get(f"/api/runs/{run_id}/events")
    return [e.json() for e in split_events(replay.text) if e.event == "message"]


async def test_a_run_started_over_http_shows_up_and_opens_into_a_card_to_100_percent(
    server,
) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        table = await runs_tab(pilot)
        polls = 0
        fetch = table._fetch

        async def counted():  # type: ignore[no-untyped-def]
            nonlocal polls
            polls += 1
            return await fetch()

        table._fetch = counted  # type: ignore[method-assign]
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            started = asyncio.create_task(
                client.post(
                    "/api/endpoints/hold", json={"key": "runs-tab", "before": 3, "after": 4}
                )
            )
            run = await newest_run(client, lambda r: r["events"] == 3, "the first messages")
            polls_then = polls
            await until(pilot, lambda: run["id"] in table.run_ids, "the run is listed")
            # Polled once a second: listed by the second poll at the latest, within 2 s.
            assert polls - polls_then <= 2
            assert row_of(table, run["id"])[:4] == ["", f"{run['id'][:8]}…", "hold", "running"]
            await pilot.press("enter")
            await until(pilot, lambda: app.cards != [], "a card opens")
            card = app.cards[0]
            assert card.origin == FROM_RUNS_TAB
            assert FROM_RUNS_TAB in text_of(card, ".card-title")
            assert row_of(table, run["id"])[0] == "●"  # marked: it is on the board
            await until(pilot, lambda: len(card.state.chunks) == 3, "the replay arrives")
            flows.release("runs-tab")
            await started
        await until(pilot, lambda: card.state.finished, "the run ends")
        await pilot.pause(0.2)
        assert card.state.status == "succeeded"
        assert bar(card) == 1.0
        assert text_of(card, ".card-status") == "succeeded"
        await until(pilot, lambda: row_of(table, run["id"])[3] == "succeeded", "the row says so")
    assert card.state.chunks == await replayed(server.url, run["id"])
    assert card.state.chunks == [{"n": n} for n in range(1, 8)]


async def test_a_finished_pipeline_opens_with_its_final_state_and_every_step_done(server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.url) as client:
        done = await client.post("/api/endpoints/pipeline", json={"rows": 60, "delay_ms": 0})
    run_id = done.headers["x-run-id"]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        table = await runs_tab(pilot)
        await until(pilot, lambda: run_id in table.run_ids, "the run is listed")
        assert row_of(table, run_id)[2:4] == ["pipeline", "succeeded"]
        assert row_of(table, run_id)[4] == "▰▰▰▰▰ 100%"
        await pilot.press("enter")
        await until(pilot, lambda: app.cards and app.cards[0].state.finished, "the card ends")
        await pilot.pause(0.2)
        card = app.cards[0]
        assert card.state.status == "succeeded"
        assert card.state.result["imported"] == 60
        assert text_of(card, ".card-steps") == "validate ✓  import ✓  publish ✓  index ✓"
        assert card.query_one(".card-steps").display
        assert bar(card) == 1.0
        assert sum(card.query_one(Sparkline).data or []) == len(card.state.chunks)
    assert card.state.chunks == await replayed(server.url, run_id)


async def test_a_failed_run_opens_with_its_error(server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.url) as client:
        failed = await client.post("/api/endpoints/flaky", json={"delay_ms": 0})
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        card = app.open_run(failed.headers["x-run-id"], "flaky")
        await until(pilot, lambda: card.state.finished, "the card ends")
        await pilot.pause(0.2)
        assert card.state.status == "failed"
        assert len(card.state.chunks) == 3
        assert "step 4 of 10 failed" in text_of(card, ".card-outcome")


async def test_opening_the_same_run_twice_makes_one_card(server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.url) as client:
        done = await client.post("/api/endpoints/import", json={"rows": 10, "delay_ms": 0})
    run_id = done.headers["x-run-id"]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        table = await runs_tab(pilot)
        await until(pilot, lambda: run_id in table.run_ids, "the run is listed")
        await pilot.press("enter")
        await until(pilot, lambda: len(app.cards) == 1, "a card opens")
        await pilot.press("enter")
        await pilot.click("#runs-table", offset=(3, 1))  # a click on the row opens it too
        await pilot.pause(0.3)
        assert len(app.cards) == 1
        assert any("already on the board" in n.message for n in app._notifications)


async def test_cancel_works_on_an_opened_run(server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        held = asyncio.create_task(client.post("/api/endpoints/hold", json={"key": "opened-c"}))
        run = await newest_run(client, lambda r: r["events"] == 1, "the first message")
        app = StreambindApp(server.url)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            card = app.open_run(run["id"], "hold")
            await until(pilot, lambda: len(card.state.chunks) == 1, "the replay arrives")
            await pilot.press("c")
            await until(pilot, lambda: card.state.finished, "the card ends")
            assert card.state.status == "cancelled"
        record = await run_record(client, run["id"], lambda r: r["status"] != "running", "end")
        await held
    assert record["status"] == "cancelled"


async def test_a_run_the_server_does_not_keep_is_a_clear_message(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        card = app.open_run("0123456789abcdef", "import")
        await until(pilot, lambda: card.state.finished, "the card ends")
        await pilot.pause(0.2)
        assert card.state.status == "failed"
        outcome = text_of(card, ".card-outcome")
        assert "no run with id '0123456789abcdef'" in outcome
        assert "does not know this run, or no longer keeps it" in outcome


async def test_the_cursor_stays_on_its_run_as_new_runs_arrive_on_top(server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.url) as client:
        ids = [
            (await client.post("/api/endpoints/import", json={"rows": 5, "delay_ms": 0})).headers[
                "x-run-id"
            ]
            for _ in range(3)
        ]
        app = StreambindApp(server.url)
        async with app.run_test(size=SIZE) as pilot:
            table = await runs_tab(pilot)
            await until(pilot, lambda: len(table.run_ids) == 3, "the runs are listed")
            assert table.run_ids == ids[::-1]  # newest first
            await pilot.press("down")  # onto the middle run
            assert table.run_ids[table.table.cursor_row] == ids[1]
            newer = await client.post("/api/endpoints/flaky", json={"delay_ms": 0})
            await until(pilot, lambda: len(table.run_ids) == 4, "the new run is listed")
            assert table.run_ids[0] == newer.headers["x-run-id"]
            assert table.run_ids[table.table.cursor_row] == ids[1]


async def test_a_pipeline_started_here_shows_its_steps_as_they_go(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        card: RunCard = app.start(
            app.client.call("pipeline", {"rows": 40, "batch_size": 10, "delay_ms": 0}), "pipeline"
        )
        seen: list[str] = []

        def look() -> bool:
            if card.query(".card-steps") and card.query_one(".card-steps").display:
                seen.append(text_of(card, ".card-steps"))
            return card.state.finished

        await until(pilot, look, "the run ends")
        await pilot.pause(0.2)
        look()
    assert seen[-1] == "validate ✓  import ✓  publish ✓  index ✓"
    assert all(line.count("✓") <= 4 for line in seen)


async def test_the_steps_row_and_the_sparkline_ask_for_no_layout_pass(server) -> None:  # type: ignore[no-untyped-def]
    # A batch tick must stay cheap: the steps row and the rate change in place.
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "hold", key="steps-no-layout", before="1")
        await pilot.press("r")
        await until(pilot, lambda: app.cards != [], "a card appears")
        card = app.cards[0]
        await until(pilot, lambda: card._applied_chunks == 1, "the first chunk is shown")
        state = card.state
        done = 0

        def arrive(count: int) -> None:  # as a batch from the stream would
            nonlocal done
            for _ in range(count):
                done += 1
                text = f'{{"step": "validate", "done": {done}, "total": 1000}}'
                state.apply_event("message", text, "", app.clock)

        state.apply_event("message", '{"steps": ["validate", "import"]}', "", app.clock)
        arrive(250)  # the log is full (200 lines) and as wide as it gets
        card.refresh_from_state()
        await pilot.pause()
        assert text_of(card, ".card-steps") == "validate 25%  import ·"
        layout_requests = record_layout_requests(card)
        sparkline = card.query_one(Sparkline)
        series_before = list(sparkline.data or [])
        for _ in range(12):
            arrive(40)
            card.refresh_from_state()
            await pilot.pause(0.1)
        requested = list(layout_requests)
        assert text_of(card, ".card-steps") == "validate 73%  import ·"
        assert sparkline.data != series_before, "the rate moved"
        flows.release("steps-no-layout")
        await until(pilot, lambda: card.state.finished, "the run ends")
    assert requested == []


async def test_a_run_whose_early_events_were_trimmed_opens_with_a_clear_message(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(log_max_bytes=4000)  # a log this small keeps only the newest events
    async with httpx.AsyncClient(base_url=server.url) as client:
        done = await client.post("/api/endpoints/firehose", json={"n": 2000})
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        card = app.open_run(done.headers["x-run-id"], "firehose")
        await until(pilot, lambda: card.state.finished, "the card ends")
        await pilot.pause(0.2)
        assert card.state.status == "failed"
        assert card.state.error["type"] == "events_gone"
        outcome = text_of(card, ".card-outcome")
        assert "the server no longer keeps this run's events from id 1 on" in outcome
        assert outcome.endswith("the run itself succeeded")
