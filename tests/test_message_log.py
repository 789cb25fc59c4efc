"""The TUI's message log: lines cut to the width it has, and searched whole."""

from __future__ import annotations

from textual.app import App, ComposeResult

from streambind.app.tui.message_log import MessageLog

LONG = '{"step": "import", "done": 30, "total": 100, "note": "' + "x" * 60 + '"}'


class OneLog(App[None]):
    def compose(self) -> ComposeResult:
        yield MessageLog(max_lines=50)


async def test_lines_written_before_the_log_had_its_width_are_cut_again_for_it() -> None:
    app = OneLog()
    async with app.run_test(size=(60, 10)) as pilot:
        log = app.query_one(MessageLog)
        log.display = False  # as a card's log is until its first message: no width yet
        await pilot.pause()
        log.write_texts([LONG])
        assert log.lines[0].endswith("…") and len(log.lines[0]) <= 20
        log.display = True
        await pilot.pause()
        log.write_texts(['{"step": "import", "done": 40, "total": 100}'])
        width = log.scrollable_content_region.width
        assert width > 20
        # The first line is cut for the width the log has now, like the second.
        assert len(log.lines[0]) == width and log.lines[0].endswith("…")
        assert log.lines[1] == '{"step": "import", "done": 40, "total": 100}'


async def test_a_search_finds_what_the_cut_hides() -> None:
    app = OneLog()
    async with app.run_test(size=(30, 10)) as pilot:
        log = app.query_one(MessageLog)
        await pilot.pause()
        log.write_texts([LONG, '{"step": "import", "done": 40}'])
        assert '"done": 30' not in log.lines[0]  # cut away on screen
        assert log.find('"done": 30')
        assert log.cursor == 0
        assert not log.find("nowhere")
