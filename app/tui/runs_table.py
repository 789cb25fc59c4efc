"""The Runs tab: every run the server lists, newest first, refreshed in place once a second."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, tzinfo
from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import DataTable, Input, Static
from textual.widgets.data_table import RowKey

from ..client import ClientError, RunTimeline
from ..progress import progress_of
from ..runs_view import columns_for, fit, parse_time, run_row

__all__ = ["EMPTY", "POLL_S", "WIDTHS", "RunsTable"]

#: How often the table asks the server for its runs while the tab is shown.
POLL_S = 1.0
#: Each column's fixed width: a poll never shifts the columns sideways, and what does not
#: fit is cut with ``…``. The id's first 8 characters tell runs apart here (the card and
#: ``streambind runs`` show it whole). ``board`` marks the runs already on the board.
WIDTHS = {
    "board": 1,
    "id": 9,
    "endpoint": 12,
    "status": 9,
    "progress": 16,
    "started": 8,
    "duration": 8,
    "node": 14,
}
_BAR_CELLS = 5
#: What a cell holds: plain text, or text with colours (the status, the bar).
Cell = Text | str
EMPTY = (
    "No runs on the server yet. Start one from Endpoints (r), or with curl or "
    "streambind call: every run shows up here, whoever started it."
)
_HELP = "Every run the server keeps; Enter opens one on the board, / filters."


class RunsTable(Vertical):
    """``GET /api/runs`` as a table; Enter (or a click) on a row asks to open that run."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "runs-table--running",
        "runs-table--succeeded",
        "runs-table--failed",
        "runs-table--cancelled",
        "runs-table--unlit",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open on the board"),
        Binding("j", "cursor(1)", "Next", show=False),
        Binding("k", "cursor(-1)", "Previous", show=False),
        Binding("slash", "filter", "Filter", key_display="/"),
    ]

    class OpenRequested(Message):
        def __init__(
            self, run_id: str, endpoint: str, timeline: RunTimeline | None, params: dict[str, Any]
        ) -> None:
            super().__init__()
            self.run_id = run_id
            self.endpoint = endpoint
            self.timeline = timeline
            self.params = params

    def __init__(
        self,
        fetch: Callable[[], Awaitable[list[dict[str, Any]]]],
        *,
        on_board: Callable[[str], bool] = lambda run_id: False,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        tz: tzinfo | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self._fetch = fetch
        self._on_board = on_board
        self._now = now
        self._tz = tz
        self._runs: dict[str, dict[str, Any]] = {}
        self._cells: dict[str, dict[str, Cell]] = {}
        self._columns: list[str] = []
        self._filter = ""
        self._wanted = asyncio.Event()  # set while the tab is shown

    def compose(self) -> ComposeResult:
        yield Static(_HELP, id="runs-table-message")
        yield Input(placeholder="filter: endpoint, status or id", id="runs-filter", compact=True)
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static(EMPTY, id="runs-empty")

    @property
    def table(self) -> DataTable[Cell]:
        return self.query_one("#runs-table", DataTable)

    @property
    def run_ids(self) -> list[str]:
        """The runs shown, top to bottom."""
        return [str(row.key.value) for row in self.table.ordered_rows]

    def set_polling(self, on: bool) -> None:
        """Poll while the tab is shown; at once on showing it."""
        if on:
            self._wanted.set()
        else:
            self._wanted.clear()

    def on_mount(self) -> None:
        self.query_one("#runs-filter").display = False
        self.query_one("#runs-empty").display = False
        self.poll()

    @work(group="runs-table", exclusive=True)
    async def poll(self) -> None:
        while True:
            await self._wanted.wait()
            problem: str | None = None
            try:
                runs = await self._fetch()
            except ClientError as exc:
                runs, problem = [], str(exc)
            # NoMatches: the app closed while the request was on its way.
            with contextlib.suppress(NoMatches):
                if problem is None:
                    self.show_runs(runs)
                else:
                    self.show_error(problem)
            await asyncio.sleep(POLL_S)

    def show_error(self, message: str) -> None:
        widget = self.query_one("#runs-table-message", Static)
        widget.update(f"Cannot list runs: {message}")
        widget.add_class("-error")

    def show_runs(self, runs: list[dict[str, Any]]) -> None:
        """Bring the rows in line with ``runs`` in place: the cursor stays on its run."""
        message = self.query_one("#runs-table-message", Static)
        if message.has_class("-error"):
            message.remove_class("-error")
            message.update(_HELP)
        self._runs = {str(run["id"]): run for run in runs if run.get("id")}
        self._show()

    def _show(self) -> None:
        table = self.table
        listed = {run_id: run for run_id, run in self._runs.items() if self._matches(run_id, run)}
        # The table stays (focusable, its headings shown); the message says why it is empty.
        self.query_one("#runs-empty", Static).display = not self._runs
        cursor_run = self._cursor_run()
        self._add_columns(["board", *(key for key, _ in columns_for(list(self._runs.values())))])
        now = self._now()
        for run_id in [r for r in self._cells if r not in listed]:
            table.remove_row(run_id)
            del self._cells[run_id]
        added = False
        for run_id, run in listed.items():
            cells = self._row(run_id, run, now)
            shown = self._cells.get(run_id)
            if shown is None:
                table.add_row(*(cells[c] for c in self._columns), key=run_id)
                added = True
            else:
                for column in self._columns:
                    if shown.get(column) != cells[column]:
                        table.update_cell(run_id, column, cells[column])
            self._cells[run_id] = cells
        if added:
            # Newest first: DataTable adds rows at the bottom, so they are sorted again.
            # DataTable sorts by cell values: each row's id cell stands for its run.
            order = {
                cells["id"]: str(self._runs[run_id].get("created", ""))
                for run_id, cells in self._cells.items()
            }
            table.sort("id", key=lambda cell: order.get(cell, ""), reverse=True)
        if cursor_run is not None and cursor_run in self._cells:
            row = table.get_row_index(cursor_run)
            if row != table.cursor_row:
                table.move_cursor(row=row, animate=False)

    def _row(self, run_id: str, run: dict[str, Any], now: datetime) -> dict[str, Cell]:
        full = run_row(run, now, self._tz)
        cells: dict[str, Cell] = {
            key: fit(text, WIDTHS[key]) for key, text in full.items() if key in WIDTHS
        }
        cells["board"] = "●" if self._on_board(run_id) else ""
        status = str(run.get("status", ""))
        cells["status"] = Text(fit(status, WIDTHS["status"]), self._status_style(status))
        cells["progress"] = self._progress_cell(run, full["progress"])
        return cells

    def _status_style(self, status: str) -> Style:
        name = f"runs-table--{status}" if status else ""
        return self._colour(name) if name in self.COMPONENT_CLASSES else Style()

    def _colour(self, name: str) -> Style:
        # The colour alone: the row's own background (zebra, cursor) stays.
        return Style(color=self.get_component_rich_style(name).color)

    def _progress_cell(self, run: dict[str, Any], label: str) -> Text:
        """A small bar, then the label: ``▰▰▱▱▱ import 45%``."""
        status = str(run.get("status", ""))
        fraction = 1.0 if status == "succeeded" else progress_of(run.get("last_message")).fraction
        lit = 0 if fraction is None else round(fraction * _BAR_CELLS)
        text = Text("▰" * lit, self._status_style(status))
        text.append("▱" * (_BAR_CELLS - lit) + " ", self._colour("runs-table--unlit"))
        text.append(fit(label, WIDTHS["progress"] - _BAR_CELLS - 1))
        return text

    def _matches(self, run_id: str, run: dict[str, Any]) -> bool:
        if not self._filter:
            return True
        needle = self._filter.casefold()
        haystack = " ".join((run_id, str(run.get("endpoint", "")), str(run.get("status", ""))))
        return needle in haystack.casefold()

    def _add_columns(self, keys: list[str]) -> None:
        table = self.table
        headings = {"board": "", **dict(columns_for(list(self._runs.values())))}
        for key in keys:
            if key in self._columns:
                continue
            table.add_column(headings.get(key, key), key=key, default="", width=WIDTHS[key])
            self._columns.append(key)
            for run_id, cells in self._cells.items():
                table.update_cell(run_id, key, cells.get(key, ""))

    def _cursor_run(self) -> str | None:
        table = self.table
        if table.row_count == 0:
            return None
        row_key: RowKey = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(row_key.value)

    # -- keys -----------------------------------------------------------------------

    def action_cursor(self, delta: int) -> None:
        self.table.move_cursor(row=self.table.cursor_row + delta)

    def action_filter(self) -> None:
        field = self.query_one("#runs-filter", Input)
        field.display = True
        field.focus()

    @on(Input.Changed, "#runs-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._filter = event.value.strip()
        self._show()

    @on(Input.Submitted, "#runs-filter")
    def _filter_done(self) -> None:
        self.table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self._request_open(str(event.row_key.value))

    def action_open(self) -> None:
        self.open_highlighted()

    def open_highlighted(self) -> None:
        if (run_id := self._cursor_run()) is not None:
            self._request_open(run_id)

    def _request_open(self, run_id: str) -> None:
        run = self._runs.get(run_id, {})
        given = run.get("params")
        params: dict[str, Any] = given if isinstance(given, dict) else {}
        self.post_message(
            self.OpenRequested(run_id, str(run.get("endpoint", "")), _timeline(run), params)
        )

    def refresh_marks(self) -> None:
        """The ``●`` of runs on the board, after one was added or dismissed."""
        table = self.table
        for run_id, cells in self._cells.items():
            mark = "●" if self._on_board(run_id) else ""
            if cells.get("board") != mark and "board" in self._columns:
                cells["board"] = mark
                table.update_cell(run_id, "board", mark)


def _timeline(run: dict[str, Any]) -> RunTimeline | None:
    created = parse_time(run.get("created"))
    if created is None:
        return None
    finished = parse_time(run.get("finished"))
    return RunTimeline(created.timestamp(), finished.timestamp() if finished else None)
