"""The terminal UI driven as a person would, with Textual's Pilot, against a real server."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import flows
import httpx
import pytest
from polling import newest_run, run_record
from textual.pilot import Pilot
from textual.widgets import Input, Log, OptionList, Static, TabbedContent
from wire import split_events

from streambind.app.tui.app import StreambindApp
from streambind.app.tui.run_card import HINT_NO_STREAM, HINT_STREAM_OFF, RunCard
from streambind.app.tui.run_line import RunLine

SIZE = (110, 40)


async def until(pilot: Pilot, condition: Callable[[], bool], what: str) -> None:
    """Let the app run until `condition` holds (bounded, so a broken app fails, not hangs)."""
    for _ in range(1500):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"timed out waiting until {what}")


async def ready(pilot: Pilot) -> StreambindApp:
    app = pilot.app
    await until(pilot, lambda: len(app.endpoints) > 0, "the endpoints are listed")
    await until(pilot, lambda: app.form is not None, "a form is shown")
    # The form is set as soon as it is created; its widgets are mounted a moment later.
    await until(pilot, lambda: bool(app.query("#handle-stream")), "the form's fields are shown")
    return app  # type: ignore[return-value]


async def select(pilot: Pilot, name: str, **values: str) -> None:
    """Pick an endpoint, then type ``values`` into its form's fields."""
    app: StreambindApp = pilot.app  # type: ignore[assignment]
    index = [e["name"] for e in app.endpoints].index(name)
    app.query_one("#endpoint-list", OptionList).highlighted = index
    await until(
        pilot, lambda: app.form is not None and app.form.endpoint["name"] == name, f"{name} form"
    )
    await pilot.pause()  # let the new form be laid out before anything clicks it
    for field, value in values.items():
        selector = f"#param-{field}"
        await until(pilot, lambda s=selector: bool(app.query(s)), f"the {field} field")
        app.query_one(selector, Input).value = value


async def run_first(pilot: Pilot) -> RunCard:
    """Press Run (r) with no run on screen yet; the new run's card."""
    app: StreambindApp = pilot.app  # type: ignore[assignment]
    await pilot.press("r")
    await until(pilot, lambda: app.cards != [], "a card appears")
    return app.cards[0]


def record_layout_requests(card: RunCard) -> list[str]:
    """From now on, the names of the card's widgets that ask for a layout pass."""
    requests: list[str] = []
    for widget in [card, *card.query("*")]:

        def spy(*regions, _widget=widget, _refresh=widget.refresh, layout=False, **options):  # type: ignore[no-untyped-def]
            if layout:
                requests.append(type(_widget).__name__)
            return _refresh(*regions, layout=layout, **options)

        widget.refresh = spy  # type: ignore[method-assign]
    return requests


def bar(card: RunCard) -> float | None:
    """Where the card's bar stands (its line's), None while it is not known."""
    parts = card.query_one(RunLine).parts
    return None if parts is None else parts.fraction


def text_of(card: RunCard, selector: str) -> str:
    return str(card.query_one(selector, Static).render())


async def test_pressing_run_at_start_runs_import_to_100_percent(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.form.endpoint["name"] == "import"
        app.query_one("#param-delay_ms", Input).value = "0"
        await pilot.press("r")
        await until(pilot, lambda: app.cards and app.cards[0].state.finished, "the run ends")
        card = app.cards[0]
        await pilot.pause(0.2)  # one more batch tick
        state = card.state
        assert state.status == "succeeded"
        assert card.has_class("-succeeded")
        assert bar(card) == 1.0
        assert text_of(card, ".card-status") == "succeeded"
        # The defaults: 1,000 rows in batches of 25, one message before the first batch,
        # and the publish step (no done/total: the stats say only what the chunk says).
        assert text_of(card, ".card-stats").endswith("42 chunks")
        log = card.query_one(Log)
        assert log.line_count == len(state.chunks) == 42
        assert '"done": 1000' in log.lines[-2]
        assert log.lines[-1] == '{"step": "publish", "rows": 1000}'
    async with httpx.AsyncClient(base_url=server.url) as client:
        replay = await client.get(f"/api/runs/{state.run_id}/events")
    sent = [e.json() for e in split_events(replay.text) if e.event == "message"]
    assert state.chunks == sent


async def test_clicking_run_with_the_mouse_starts_a_run(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "silent")
        await pilot.click("#run")
        await until(pilot, lambda: app.cards and app.cards[0].state.finished, "the run ends")
        await pilot.pause(0.2)
        card = app.cards[0]
        assert card.state.result == {"people": 0, "imports": 0, "streamed": False}
        assert text_of(card, ".card-hint") == HINT_NO_STREAM
        assert card.query_one(".card-hint").display


async def test_handle_stream_off_shows_nothing_until_the_end(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "hold", key="tui-off", before="3")
        await pilot.press("h")
        assert app.form.handle_stream is False
        card = await run_first(pilot)
        async with httpx.AsyncClient(base_url=server.url) as client:
            await newest_run(client, lambda r: r["events"] == 3, "three messages sent")
        await pilot.pause(0.2)
        assert card.state.status == "running"
        assert card.state.chunks == []
        assert card.query_one(Log).line_count == 0
        assert text_of(card, ".card-hint") == HINT_STREAM_OFF
        flows.release("tui-off")
        await until(pilot, lambda: card.state.finished, "the run ends")
        await pilot.pause(0.2)
        assert card.state.chunks == [{"n": 1}, {"n": 2}, {"n": 3}]
        assert card.query_one(Log).line_count == 3
        assert "all 3 chunks arrived at once" in text_of(card, ".card-hint")
        assert "released" in text_of(card, ".card-outcome")


async def test_a_failed_run_shows_the_servers_message(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "flaky", delay_ms="0")
        await pilot.press("r")
        await until(pilot, lambda: app.cards and app.cards[0].state.finished, "the run ends")
        await pilot.pause(0.2)
        card = app.cards[0]
        assert card.has_class("-failed") and not card.has_class("-running")
        assert text_of(card, ".card-status") == "failed"
        assert text_of(card, ".card-outcome") == (
            "Error: step 4 of 10 failed, as asked (fail_at=4)"
        )


async def test_cancel_key_cancels_the_running_card(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "hold", key="tui-cancel")
        await pilot.press("r")
        await until(pilot, lambda: app.cards and app.cards[0].state.chunks, "a first chunk")
        await pilot.press("c")
        card = app.cards[0]
        await until(pilot, lambda: card.state.status == "cancelled", "the card is cancelled")
        await pilot.pause(0.2)
        assert card.has_class("-cancelled")
        assert text_of(card, ".card-status") == "cancelled"
        async with httpx.AsyncClient(base_url=server.url) as client:
            await run_record(
                client, card.state.run_id, lambda r: r["status"] == "cancelled", "cancelled"
            )


async def test_the_cancel_button_on_a_card(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "hold", key="tui-cancel-button")
        await pilot.press("r")
        await until(pilot, lambda: app.cards and app.cards[0].state.chunks, "a first chunk")
        await pilot.pause(0.1)
        await pilot.click(".card-cancel")
        await until(pilot, lambda: app.cards[0].state.status == "cancelled", "cancelled")


async def test_several_runs_of_one_endpoint_at_once(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "hold", key="tui-many")
        for _ in range(3):
            await pilot.press("r")
        await until(
            pilot,
            lambda: len(app.cards) == 3 and all(c.state.chunks for c in app.cards),
            "three runs stream",
        )
        assert len({c.state.run_id for c in app.cards}) == 3
        assert all(c.state.status == "running" for c in app.cards)
        flows.release("tui-many")
        await until(pilot, lambda: all(c.state.finished for c in app.cards), "all end")
        assert [c.state.status for c in app.cards] == ["succeeded"] * 3


async def test_a_text_stream_shows_the_assembled_text(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "write-text", delay_ms="0")
        await pilot.press("r")
        await until(pilot, lambda: app.cards and app.cards[0].state.finished, "the run ends")
        await pilot.pause(0.2)
        card = app.cards[0]
        assert card.query_one(".card-text").display
        assert not card.query_one(".card-log").display
        assert text_of(card, ".card-text-body") == card.state.result["text"]


async def test_invalid_form_values_are_marked_and_nothing_runs(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        app.query_one("#param-rows", Input).value = "lots"
        app.query_one("#param-batch_size", Input).value = "0"
        await pilot.press("r")
        await pilot.pause(0.1)
        assert app.cards == []
        assert str(app.query_one("#error-rows", Static).render()) == "must be a whole number"
        assert str(app.query_one("#error-batch_size", Static).render()) == "must be at least 1"
        assert app.focused is app.query_one("#param-rows")


async def test_a_form_error_goes_as_soon_as_the_field_is_corrected(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        rows = app.query_one("#param-rows", Input)
        error = app.query_one("#error-rows", Static)
        rows.value = ""
        await pilot.press("r")
        await until(pilot, lambda: error.display, "the error is shown")
        assert app.focused is rows
        await pilot.press("2", "0", "0", "0")  # typed into the field, as a person would
        await until(pilot, lambda: not error.display, "the error is gone")
        assert rows.value == "2000"
        assert not rows.has_class("-invalid")


async def test_a_blank_required_string_is_missing_and_nothing_runs(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "greet")
        app.query_one("#param-name", Input).value = "   "
        await pilot.press("r")
        error = app.query_one("#error-name", Static)
        await until(pilot, lambda: error.display, "the error is shown")
        assert str(error.render()) == "is required"
        assert app.cards == []
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/api/runs")).json()["runs"] == []


async def test_tab_goes_through_the_form_in_reading_order_and_digits_land(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.focused is app.query_one("#endpoint-list")
        order = []
        for _ in range(7):
            await pilot.press("tab")
            order.append(app.focused.id or type(app.focused).__name__)
        assert order == [
            "param-rows",
            "param-batch_size",
            "param-delay_ms",
            "param-source",
            "CollapsibleTitle",
            "handle-stream",
            "run",
        ]
        for _ in range(7):
            await pilot.press("shift+tab")
        assert app.focused is app.query_one("#endpoint-list")
        await pilot.press("tab", "5", "0")
        assert app.query_one("#param-rows", Input).value == "50"
        # The Runs tab: its table comes right after the tabs, and digits go nowhere else.
        await pilot.press("escape", "a")
        table = app.query_one("#runs-table")
        assert app.focused is table
        await pilot.press("shift+tab")
        assert app.focused is app.query_one("#tabs Tabs")
        await pilot.press("tab")
        assert app.focused is table
        await pilot.press("5")
        assert app.query_one("#param-rows", Input).value == "50"


async def test_every_focusable_widget_shows_its_focus(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        # A card that stays running (its Cancel button shown) while the chain is looked at.
        await select(pilot, "hold", key="focus-looks")
        await pilot.press("r")  # a card, with its log and Cancel button, joins the chain
        await until(pilot, lambda: bool(app.query(".card-log")), "a card with a log")

        def look(widget) -> list[object]:  # type: ignore[no-untyped-def]
            # Some widgets show focus on a part of themselves (the active tab, say).
            parts = [widget, *widget.walk_children()]
            return [(p.styles.background, p.styles.background_tint, p.styles.text_style)
                    for p in parts]  # fmt: skip

        chain = [w for w in app.screen.focus_chain if w.display]
        assert len(chain) >= 10
        await pilot.press("a")  # the Runs tab's table, hidden until its tab is shown
        await pilot.pause()
        chain.append(app.query_one("#runs-table"))
        for widget in chain:
            widget.blur()
            await pilot.pause()
            blurred = look(widget)
            widget.focus()
            await pilot.pause()
            assert look(widget) != blurred, f"{widget!r} looks the same with focus"
        flows.release("focus-looks")


async def test_keys_move_between_endpoints_and_panels(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("j")
        await until(pilot, lambda: app.form.endpoint["name"] == "pipeline", "pipeline form")
        await pilot.press("k")
        await until(pilot, lambda: app.form.endpoint["name"] == "import", "import form")
        await pilot.press("w")
        assert app.query_one("#tabs", TabbedContent).active == "tab-watch"
        assert app.focused is app.query_one("#watch-url")
        await pilot.press("q")  # typed into the URL field, not quitting
        assert app.query_one("#watch-url", Input).value == "q"
        await pilot.press("escape", "e")
        assert app.query_one("#tabs", TabbedContent).active == "tab-endpoints"
        await pilot.press("q")
    assert not app.is_running


async def test_the_watch_panel_follows_any_sse_url(server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.url) as client:
        finished = await client.post("/api/endpoints/flaky", json={"fail_at": 99, "delay_ms": 0})
    run_id = finished.headers["x-run-id"]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("w")
        app.query_one("#watch-url", Input).value = f"{server.url}/api/runs/{run_id}/events"
        await pilot.press("enter")
        await until(pilot, lambda: app.cards and app.cards[0].state.finished, "the watch ends")
        card = app.cards[0]
        assert card.state.status == "succeeded"
        assert len(card.state.chunks) == 10
        assert card.state.result == {"steps": 10}

        app.query_one("#watch-url", Input).value = "not a url"
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert len(app.cards) == 1
        assert "must start with http://" in str(app.query_one("#watch-error", Static).render())


async def test_a_server_that_is_down_is_a_readable_message(unused_tcp_port: int) -> None:
    app = StreambindApp(f"http://127.0.0.1:{unused_tcp_port}")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(app.query(".load-error")), "the error is shown")
        message = str(app.query_one(".load-error", Static).render())
        assert message.startswith(
            f"Cannot list endpoints: cannot connect to http://127.0.0.1:{unused_tcp_port}"
        )
        assert "Traceback" not in message
        assert any("is the server running" in n.message for n in app._notifications)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
async def test_the_layout_works_small_and_large(server, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=size) as pilot:
        await ready(pilot)
        run_button = app.query_one("#run")
        assert run_button.region.bottom <= size[1] - 1, "Run is visible without scrolling"
        await pilot.press("r")
        await until(pilot, lambda: app.cards and app.cards[0].state.finished, "the run ends")
        await pilot.pause(0.2)
        card = app.cards[0]
        assert card.region.width >= 30
        assert card.region.right <= size[0]


async def test_a_firehose_is_applied_in_batches_not_per_message(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "firehose", n="20000")
        card = await run_first(pilot)
        log = card.query_one(Log)
        writes: list[int] = []
        original = log.write_lines

        def counting_write_lines(lines, scroll_end=None):  # type: ignore[no-untyped-def]
            lines = list(lines)
            writes.append(len(lines))
            return original(lines, scroll_end)

        log.write_lines = counting_write_lines  # type: ignore[method-assign]
        await until(pilot, lambda: card.state.finished, "the firehose ends")
        await pilot.pause(0.2)
        assert card.state.status == "succeeded"
        assert len(card.state.chunks) == 20_000, "stream.chunks keeps every message"
        assert log.line_count <= 200, "the log keeps a bounded number of lines"
        assert bar(card) == 1.0
        assert len(writes) < 20_000 / 10, f"{len(writes)} widget updates for 20,000 messages"


async def test_the_log_on_screen_shows_its_newest_lines_after_a_firehose(server) -> None:  # type: ignore[no-untyped-def]
    # Once the log is full, Textual's Log repaints the wrong rows after a write (it
    # counts the new rows before trimming the old): the screen, and so a screenshot,
    # kept showing old lines although Log.lines had the newest.
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "firehose", n="20000")
        card = await run_first(pilot)
        await until(pilot, lambda: card.state.finished, "the firehose ends")
        await pilot.pause(0.2)
        log = card.query_one(Log)
        assert '"done": 19999,' in log.lines[-2]
        shown = html.unescape(re.sub(r"<[^>]+>", "", app.export_screenshot())).replace("\xa0", " ")
        assert '"done": 19999,' in shown, "the log on screen is stale"


async def test_new_chunks_of_a_running_call_ask_for_no_layout_pass(server) -> None:  # type: ignore[no-untyped-def]
    # A layout pass costs tens of milliseconds on a small machine: a card asks for one
    # only when a size can change, never on every batch of chunks.
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "hold", key="no-layout", before="10")
        card = await run_first(pilot)
        await until(pilot, lambda: card._applied_chunks == 10, "the first chunks are shown")
        state = card.state

        def arrive(numbers: range) -> None:  # as a batch from the stream would
            for n in numbers:
                state.chunks.add(f'{{"n": {n}}}', True)
                state.chunk = {"n": n}
                state.version += 1

        arrive(range(10, 300))  # the log is full (200 lines) and as wide as it gets
        card.refresh_from_state()
        await pilot.pause()
        layout_requests = record_layout_requests(card)
        for start in range(300, 1000, 50):
            arrive(range(start, start + 50))
            card.refresh_from_state()
            await pilot.pause()
        requested = list(layout_requests)
        flows.release("no-layout")
        await until(pilot, lambda: card.state.finished, "the run ends")
    assert card._applied_chunks == 1000
    assert requested == []


async def test_a_status_change_restyles_the_card_once(server) -> None:  # type: ignore[no-untyped-def]
    # Restyling a card's widgets costs tens of milliseconds on a small machine.
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "hold", key="one-restyle")
        card = await run_first(pilot)
        await until(pilot, lambda: card.has_class("-running"), "the card shows it running")
        restyled: list[object] = []
        update_styles = app.update_styles

        def counting_update_styles(node, animate=True):  # type: ignore[no-untyped-def]
            if node is card:
                restyled.append(node)
            return update_styles(node, animate)

        app.update_styles = counting_update_styles  # type: ignore[method-assign]
        flows.release("one-restyle")
        await until(pilot, lambda: card.has_class("-succeeded"), "the card shows it succeeded")
    assert not card.has_class("-running")
    assert len(restyled) == 1


async def test_the_command_palette_offers_the_apps_actions(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert titles[:6] == [
            "Run",
            "Cancel",
            "Handle stream",
            "Reload endpoints",
            "Watch URL",
            "Endpoints",
        ]
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"handle stream")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: app.form.handle_stream is False, "Handle stream is off")
