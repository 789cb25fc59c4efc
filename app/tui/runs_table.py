"""The Runs tab: every run the server lists, newest first, refreshed in place once a second."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static
from textual.widgets.data_table import RowKey

from ..client import ClientError, RunTimeline
from ..runs_view import columns_for, fit, parse_time, run_row

__all__ = ["POLL_S", "RunsTable"]

#: How often the table asks the server for its runs while the tab is shown.
POLL_S = 1.0
#: Each column's fixed width: a poll never shifts the columns sideways, and what does not
#: fit is cut with ``…``. The id's first 8 characters tell runs apart here (the card's
#: header and ``streambind runs`` show it whole).
WIDTHS = {
    "id": 9,
    "endpoint": 12,
    "status": 9,
    "progress": 14,
    "started": 8,
    "duration": 8,
    "node": 14,
}


class RunsTable(Vertical):
    """``GET /api/runs`` as a table; Enter (or a click) on a row asks to open that run."""

    class OpenRequested(Message):
        def __init__(self, run_id: str, endpoint: str, timeline: RunTimeline | None) -> None:
            super().__init__()
            self.run_id = run_id
            self.endpoint = endpoint
            self.timeline = timeline

    def __init__(
        self,
        fetch: Callable[[], Awaitable[list[dict[str, Any]]]],
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        tz: tzinfo | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self._fetch = fetch
        self._now = now
        self._tz = tz
        self._cells: dict[str, dict[str, str]] = {}
        self._created: dict[str, str] = {}
        self._endpoints: dict[str, str] = {}
        self._timelines: dict[str, RunTimeline | None] = {}
        self._columns: list[str] = []
        self._wanted = asyncio.Event()  # set while the tab is shown

    def compose(self) -> ComposeResult:
        yield Static("Every run the server keeps; Enter opens one as a card.",
                     id="runs-table-message")  # fmt: skip
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)

    @property
    def table(self) -> DataTable[str]:
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
        self.poll()

    @work(group="runs-table", exclusive=True)
    async def poll(self) -> None:
        while True:
            await self._wanted.wait()
            try:
                runs = await self._fetch()
            except ClientError as exc:
                self.show_error(str(exc))
            else:
                self.show_runs(runs)
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
            message.update("Every run the server keeps; Enter opens one as a card.")
        table = self.table
        cursor_run = self._cursor_run()
        self._add_columns([key for key, _ in columns_for(runs)], [h for _, h in columns_for(runs)])
        now = self._now()
        listed = {str(run.get("id")): run for run in runs if run.get("id")}
        for run_id in [r for r in self._cells if r not in listed]:
            table.remove_row(run_id)
            del self._cells[run_id], self._created[run_id], self._endpoints[run_id]
            del self._timelines[run_id]
        added = False
        for run_id, run in listed.items():
            full = run_row(run, now, self._tz)
            cells = {key: fit(text, WIDTHS[key]) for key, text in full.items()}
            self._timelines[run_id] = _timeline(run)
            shown = self._cells.get(run_id)
            if shown is None:
                table.add_row(*(cells[c] for c in self._columns), key=run_id)
                self._created[run_id] = str(run.get("created", ""))
                self._endpoints[run_id] = cells["endpoint"]
                added = True
            else:
                for column in self._columns:
                    if shown.get(column) != cells[column]:
                        table.update_cell(run_id, column, cells[column])
            self._cells[run_id] = cells
        if added:
            # Newest first; DataTable adds rows at the bottom, so the rows are sorted again.
            created = {cells["id"]: self._created[run_id] for run_id, cells in self._cells.items()}
            table.sort("id", key=lambda short_id: created.get(short_id, ""), reverse=True)
        if cursor_run is not None and cursor_run in self._cells:
            row = table.get_row_index(cursor_run)
            if row != table.cursor_row:
                table.move_cursor(row=row, animate=False)

    def _add_columns(self, keys: list[str], headings: list[str]) -> None:
        table = self.table
        for key, heading in zip(keys, headings, strict=True):
            if key in self._columns:
                continue
            table.add_column(heading, key=key, default="", width=WIDTHS[key])
            self._columns.append(key)
            for run_id, cells in self._cells.items():
                table.update_cell(run_id, key, cells.get(key, ""))

    def _cursor_run(self) -> str | None:
        table = self.table
        if table.row_count == 0:
            return None
        row_key: RowKey = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        run_id = str(event.row_key.value)
        self._request_open(run_id)

    def open_highlighted(self) -> None:
        if (run_id := self._cursor_run()) is not None:
            self._request_open(run_id)

    def _request_open(self, run_id: str) -> None:
        endpoint = self._endpoints.get(run_id, "")
        self.post_message(self.OpenRequested(run_id, endpoint, self._timelines.get(run_id)))


def _timeline(run: dict[str, Any]) -> RunTimeline | None:
    created = parse_time(run.get("created"))
    if created is None:
        return None
    finished = parse_time(run.get("finished"))
    return RunTimeline(created.timestamp(), finished.timestamp() if finished else None)
