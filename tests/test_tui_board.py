"""The run board, driven by keys as a person would: supervising many runs, each key acting on
what the screen shows, and every state readable at a glance."""

from __future__ import annotations

import json
from pathlib import Path

import flows
import httpx
import pytest
from polling import newest_run, run_record
from test_tui import SIZE, ready, select, text_of, until
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Static

from streambind.app.tui.app import CONNECTED, RECONNECTING, StreambindApp
from streambind.app.tui.dialogs import MessageScreen, SearchScreen
from streambind.app.tui.message_log import MessageLog
from streambind.app.tui.run_card import RunCard
from streambind.app.tui.run_line import RunLine
from streambind.app.tui.runs_table import EMPTY, RunsTable


def footer_says(app: StreambindApp, key: str) -> str | None:
    """What the footer offers for ``key`` now, or None when it offers nothing."""
    for active in app.screen.active_bindings.values():
        if active.binding.key == key and active.enabled and active.binding.show:
            return active.binding.description
    return None


async def three_held_runs(pilot: Pilot, key: str) -> list[RunCard]:
    app: StreambindApp = pilot.app  # type: ignore[assignment]
    await select(pilot, "hold", key=key)
    for _ in range(3):
        await pilot.press("r")
    await until(
        pilot, lambda: len(app.cards) == 3 and all(c.state.run_id for c in app.cards), "3 runs"
    )
    return app.cards


async def test_j_and_k_move_between_runs_and_the_footer_names_the_focused_one(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        cards = await three_held_runs(pilot, "board-move")
        await pilot.press("right_square_bracket")  # from the form: to the board's newest run
        assert app.focused is cards[0]
        await pilot.press("j")
        assert app.focused is cards[1]
        await pilot.press("j", "j")  # the last run stays focused at the bottom
        assert app.focused is cards[2]
        await pilot.press("k")
        assert app.focused is cards[1]
        assert footer_says(app, "c") == f"Cancel hold·{cards[1].state.run_id[:4]}"
        assert footer_says(app, "r") is None  # the Endpoints pane's keys are not offered here
        await pilot.press("c")  # cancels the focused run, and only it
        await until(pilot, lambda: cards[1].state.status == "cancelled", "cancelled")
        async with httpx.AsyncClient(base_url=server.url) as client:
            await run_record(
                client, cards[1].state.run_id, lambda r: r["status"] == "cancelled", "cancelled"
            )
        assert [c.state.status for c in (cards[0], cards[2])] == ["running", "running"]
        flows.release("board-move")
        await until(pilot, lambda: all(c.state.finished for c in cards), "all end")


async def test_enter_expands_a_run_and_only_the_first_run_arrives_expanded(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        cards = await three_held_runs(pilot, "board-expand")
        assert [c.expanded for c in cards] == [False, False, True]  # the first one run
        assert not cards[0].query_one(".card-body").display
        cards[0].focus()
        await pilot.press("enter")
        assert cards[0].expanded and cards[0].query_one(".card-body").display
        assert footer_says(app, "enter") == "Collapse"
        await pilot.press("enter")
        assert not cards[0].expanded
        flows.release("board-expand")
        await until(pilot, lambda: all(c.state.finished for c in cards), "all end")


async def test_x_dismisses_a_finished_run_and_big_x_clears_every_finished_one(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        cards = await three_held_runs(pilot, "board-dismiss")
        cards[0].focus()
        await pilot.press("x")  # still running, and started here: not dismissed
        await pilot.pause()
        assert len(app.cards) == 3
        assert any("is still running" in n.message for n in app._notifications)
        flows.release("board-dismiss")
        await until(pilot, lambda: all(c.state.finished for c in cards), "all end")
        cards[0].focus()
        await pilot.press("x")
        await until(pilot, lambda: len(app.cards) == 2, "one dismissed")
        await select(pilot, "hold", key="board-keep")
        await pilot.press("r")
        await until(pilot, lambda: len(app.cards) == 3 and app.cards[0].state.run_id, "a run")
        app.cards[0].focus()
        await pilot.press("X")
        await until(pilot, lambda: len(app.cards) == 1, "the finished ones cleared")
        assert app.cards[0].state.status == "running"
        flows.release("board-keep")


async def test_y_copies_a_result_and_s_saves_the_chunks_as_ndjson(
    server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "echo", text="hi there", times="3")
        await pilot.press("r")
        await until(pilot, lambda: app.cards and app.cards[0].state.finished, "the run ends")
        card = app.cards[0]
        card.focus()
        await pilot.press("y")
        assert json.loads(app.clipboard) == {"text": "hi there"}
        await pilot.press("s")
        saved = tmp_path / f"streambind-echo-{card.state.run_id[:4]}.ndjson"
        await until(pilot, saved.exists, "the file is written")
        lines = saved.read_text().splitlines()
        assert [json.loads(line) for line in lines] == [{"text": "hi there"}] * 3


async def test_keys_act_only_on_the_tab_that_is_shown(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("a")  # the Runs tab
        assert footer_says(app, "h") is None and footer_says(app, "r") is None
        await pilot.press("h", "r")
        await pilot.pause(0.2)
        assert app.form.handle_stream is True  # the hidden form is untouched
        assert app.cards == []  # and nothing ran
        await pilot.press("w")  # the Watch tab: into its URL field, then out of it
        await pilot.press("escape", "j", "j")
        await pilot.pause(0.2)
        assert app.form.endpoint["name"] == "import"  # the hidden list did not move


async def test_a_run_that_ended_without_a_fraction_stands_still(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "import", source="nope.csv")
        await pilot.press("r")
        await until(pilot, lambda: app.cards and app.cards[0].state.finished, "the run ends")
        await pilot.pause(0.2)
        card = app.cards[0]
        line = card.query_one(RunLine)
        assert line.parts is not None
        assert line.parts.glyph == "✗" and line.parts.fraction is None
        before = str(line.render())
        await pilot.pause(0.3)  # several ticks: nothing moves once the run has ended
        assert str(line.render()) == before
        # The server's invalid_params, on the field it names.
        error = app.query_one("#error-source", Static)
        assert error.display and "no file named 'nope.csv'" in str(error.render())


async def test_a_server_that_shuts_down_says_so_on_the_card(start) -> None:  # type: ignore[no-untyped-def]
    server = await start()
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "hold", key="shutdown-cause")
        await pilot.press("r")
        await until(pilot, lambda: app.cards and app.cards[0].state.chunks, "a chunk")
        await server.close()
        card = app.cards[0]
        await until(pilot, lambda: card.state.finished, "the run ends")
        await pilot.pause(0.2)
        assert card.state.status == "cancelled"
        assert text_of(card, ".card-outcome") == "Cancelled: the server shut down."
        await until(pilot, lambda: RECONNECTING in app.sub_title, "the header says so")


async def test_the_header_says_connected(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await until(pilot, lambda: CONNECTED in app.sub_title, "connected")


async def test_the_form_reads_its_schema(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        help_rows = str(app.query_one("#help-rows", Static).render())
        assert help_rows == (
            "Rows to generate when no source is given · 1 to 1,000,000 · default 1000"
        )
        assert "optional" in str(app.query_one("#help-source", Static).render())
        await select(pilot, "greet")
        labels = [str(label.render()) for label in app.query(".field-label")]
        assert "name *" in labels  # required, marked
        assert "required" in str(app.query_one("#help-name", Static).render())
        await select(pilot, "flaky")
        call_line = app.query_one("#call-line", Static)
        assert str(call_line.render()) == f"streambind call flaky --url {server.url}"
        app.query_one("#param-fail_at", Input).value = "7"
        await pilot.press("h")
        await until(
            pilot,
            lambda: (
                str(call_line.render())
                == f"streambind call flaky -p fail_at=7 --no-stream --url {server.url}"
            ),
            "the call line follows the form",
        )
        assert isinstance(app.query_one("#handle-stream"), Checkbox)


async def test_enter_on_the_endpoint_list_goes_to_the_first_field(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("j", "enter")
        await until(pilot, lambda: app.focused is app.query("#param-rows").first(), "the field")
        assert app.form.endpoint["name"] == "pipeline"


@pytest.mark.parametrize("size", [(80, 24), (99, 30), (100, 30)])
async def test_the_layout_adapts_and_run_stays_reachable(server, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=size) as pilot:
        await ready(pilot)
        assert app.query_one("#main").has_class("-stacked") is (size[0] < 100)
        run = app.query_one("#run")
        assert run.region.height == 1 and run.region.bottom <= size[1] - 1
        await pilot.press("ctrl+b")
        assert not app.query_one("#sidebar").display
        await pilot.press("ctrl+b")
        assert app.query_one("#sidebar").display


async def test_m_maximises_the_focused_pane_and_escape_restores_it(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("m")
        assert app.screen.maximized is not None
        await pilot.press("escape")
        assert app.screen.maximized is None


async def test_the_log_opens_one_message_and_searches(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "import", rows="100", batch_size="10", delay_ms="0")
        await pilot.press("r")
        await until(pilot, lambda: app.cards and app.cards[0].state.finished, "the run ends")
        await pilot.pause(0.2)
        log = app.cards[0].query_one(MessageLog)
        log.focus()
        await pilot.press("up", "up")
        assert log.cursor == len(app.cards[0].state.chunks) - 2
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, MessageScreen), "the message")
        screen = app.screen
        assert isinstance(screen, MessageScreen)
        assert screen.message == app.cards[0].state.chunks[-2]
        assert screen.text == json.dumps(screen.message, indent=2)  # pretty-printed
        await pilot.press("escape")
        await pilot.press("slash")
        await until(pilot, lambda: bool(app.screen.query("#search-text")), "the search")
        app.screen.query_one("#search-text", Input).value = '"done": 30'
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, SearchScreen), "back")

        def on_the_match() -> bool:
            cursor = log.cursor
            return cursor is not None and '"done": 30' in log.lines[cursor - log.first_index]

        await until(pilot, on_the_match, "the cursor on the line that holds it")
        assert log.has_focus
        await pilot.press("escape")
        assert log.cursor is None  # following the newest again


async def test_the_runs_tab_filters_marks_and_says_when_it_is_empty(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("a")
        table = app.query_one(RunsTable)
        await until(pilot, lambda: app.query_one("#runs-empty").display, "the empty state")
        assert str(app.query_one("#runs-empty", Static).render()) == EMPTY
        async with httpx.AsyncClient(base_url=server.url) as client:
            await client.post("/api/endpoints/flaky", json={"delay_ms": 0})
            await client.post("/api/endpoints/echo", json={"text": "x"})
            await newest_run(client, lambda r: r["endpoint"] == "echo", "two runs")
        await until(pilot, lambda: len(table.run_ids) == 2, "both runs listed")
        assert not app.query_one("#runs-empty").display
        await pilot.press("slash", *"flaky")
        await until(pilot, lambda: len(table.run_ids) == 1, "filtered")
        await pilot.press("enter", "enter")  # back to the table, then open the run
        await until(pilot, lambda: app.cards != [], "opened on the board")
        await until(pilot, lambda: str(table.table.get_row_at(0)[0]) == "●", "marked")


async def test_the_theme_is_remembered(
    server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STREAMBIND_CONFIG_DIR", str(tmp_path))
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        app.theme = "textual-light"
        await pilot.pause()
    assert json.loads((tmp_path / "tui.json").read_text())["theme"] == "textual-light"
    again = StreambindApp(server.url)
    async with again.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert again.theme == "textual-light"


async def test_the_palette_offers_every_endpoint_run_and_watched_url(
    server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STREAMBIND_CONFIG_DIR", str(tmp_path))
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "echo", text="x")
        await pilot.press("r")
        await until(pilot, lambda: app.cards and app.cards[0].state.finished, "the run ends")
        url = f"{server.url}/api/runs/{app.cards[0].state.run_id}/events"
        app.watch_url(url)
        app.preferences.remember_watched(url)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {f"Run {name}…" for name in app.endpoint_names} <= set(titles)
        assert f"Show {app.cards[-1].label}" in titles
        assert f"Watch {url}" in titles
        run_pipeline = next(
            c for c in app.get_system_commands(app.screen) if c.title == "Run pipeline…"
        )
        run_pipeline.callback()
        await until(pilot, lambda: app.form.endpoint["name"] == "pipeline", "its form")
