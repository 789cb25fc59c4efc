"""Still pictures of the run board in every state, from fixed states and a fixed clock.

The snapshot tests (``test_snapshots.py``) and the README's screenshots draw these.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from textual.app import App, ComposeResult
from textual.containers import Horizontal
from textual.widgets import Footer

from streambind.app.client import StreamClient, StreamState
from streambind.app.tui.app import StreambindApp
from streambind.app.tui.board import RunBoard
from streambind.app.tui.run_card import FROM_RUNS_TAB, FROM_WATCHED_URL, RunCard
from streambind.app.tui.runs_table import RunsTable

NOW = 1000.0
REPORT = (
    "The people table holds 2,045 rows from 3 imports. Most were born in Virginia, the "
    "earliest in 1732 and the latest in 1961. "
)


def _state(**fields: Any) -> StreamState:
    state = StreamState(name=fields.pop("name"))
    for chunk in fields.pop("chunks", []):
        state.chunks.add(json.dumps(chunk), is_json=True)
    for key, value in fields.items():
        setattr(state, key, value)
    for chunk in state.chunks:
        state.steps.see(chunk)  # as apply_event does for each arriving chunk
    return state


def _progress(step: str, done: int, total: int) -> dict[str, Any]:
    return {"step": step, "done": done, "total": total}


def running_import(run_id: str = "5e0c2b0f1d3a4c71", done: int = 80) -> StreamState:
    return _state(
        name="import", status="running", run_id=run_id, streamed=True,
        chunks=[_progress("import", d, 200) for d in range(0, done + 1, 20)],
        chunk=_progress("import", done, 200), started_at=NOW - 2.0,
        params={"rows": 200, "batch_size": 20, "delay_ms": 100},
    )  # fmt: skip


def text_stream(lines: int) -> StreamState:
    pieces = [{"text": f"Line {n}: {REPORT}\n"} for n in range(1, lines + 1)]
    return _state(
        name="write-text", status="running", run_id="17b9e4d2c0a85f36", streamed=True,
        chunks=pieces, chunk=pieces[-1], started_at=NOW - 6.0, params={"delay_ms": 60},
    )  # fmt: skip


PIPELINE_MID_RUN = _state(
    name="pipeline", status="running", run_id="b81f3c92d0e4a657", streamed=True,
    chunks=[
        {"steps": ["validate", "import", "publish", "index"]},
        *(_progress("validate", d, 1000) for d in range(0, 1001, 50)),
        *(_progress("import", d, 1000) for d in range(0, 401, 50)),
    ],
    chunk=_progress("import", 400, 1000), started_at=NOW - 2.5, last_event_id="31",
    params={"rows": 1000, "batch_size": 50},
)  # fmt: skip

#: Every state a run can be in, each as the board shows it.
STATES = [
    running_import(),
    PIPELINE_MID_RUN,
    _state(
        name="export", status="running", run_id="4c1de0a9f2b37e58", streamed=True,
        chunks=[_progress("export", 600, 2000)], chunk=_progress("export", 600, 2000),
        started_at=NOW - 40.0, reconnecting=True, reconnects=3, params={"format": "csv"},
    ),
    _state(
        name="flaky", status="failed", run_id="9a41d7c2e8b03f56", streamed=True,
        chunks=[_progress("flaky", d, 10) for d in (1, 2, 3)], chunk=_progress("flaky", 3, 10),
        error={"type": "FlakyFailure", "message": "step 4 of 10 failed, as asked (fail_at=4)"},
        started_at=NOW - 5.0, finished_at=NOW - 4.4, params={"fail_at": 4},
    ),
    _state(
        name="import", status="failed", run_id="0e7a51c3b9d24f68", streamed=False,
        error={"type": "invalid_params", "message": "1 parameter is invalid",
               "fields": {"source": "no file named 'nope.csv' in the imports folder"}},
        started_at=NOW - 1.0, finished_at=NOW - 0.9, params={"source": "nope.csv"},
    ),
    _state(
        name="pipeline", status="cancelled", run_id="c3f18e27a9d64b05", streamed=True,
        chunks=[_progress("validate", 500, 500), _progress("import", 150, 500)],
        chunk=_progress("import", 150, 500), started_at=NOW - 9.0, finished_at=NOW - 7.5,
        cancel_reason="cancelled here",
    ),
    _state(
        name="import", status="cancelled", run_id="7d2b9e04c6a18f35", streamed=True,
        chunks=[_progress("import", 300, 1000)], chunk=_progress("import", 300, 1000),
        started_at=NOW - 12.0, finished_at=NOW - 6.0, cancel_reason="the server shut down",
    ),
    _state(
        name="import", status="running", handle_stream=False, run_id="a04c7e19d3b25f86",
        started_at=NOW - 1.0, params={"rows": 2000},
    ),
    _state(
        name="write-text", status="succeeded", run_id="e61b0f4a8c2d7935", streamed=True,
        chunks=[{"text": REPORT}], chunk={"text": REPORT}, result={"characters": 107},
        started_at=NOW - 3.0, finished_at=NOW - 1.2,
    ),
    _state(
        name="silent", status="succeeded", run_id="2d6a0f9be1c47385", streamed=False,
        result={"people": 45, "imports": 1, "streamed": False}, started_at=NOW - 0.2,
        finished_at=NOW - 0.1,
    ),
    _state(
        name="GET", status="stopped", streamed=True, chunks=[{"n": 1}, {"n": 2}],
        chunk={"n": 2}, started_at=NOW - 20.0, finished_at=NOW - 2.0,
    ),
]  # fmt: skip


def _origin(state: StreamState) -> str:
    return FROM_WATCHED_URL if state.name == "GET" else "started here"


class BoardGallery(App[None]):
    """A board of fixed runs: ``states``, those at ``expanded`` opened, ``focus`` focused."""

    CSS_PATH = StreambindApp.CSS_PATH

    def __init__(
        self,
        states: list[StreamState],
        *,
        expanded: tuple[int, ...] = (),
        focus: int | None = None,
        theme: str | None = None,
    ) -> None:
        super().__init__()
        self._states = states
        self._expanded = expanded
        self._focus = focus
        if theme is not None:
            self.theme = theme

    def compose(self) -> ComposeResult:
        self._client = StreamClient("http://127.0.0.1:9", clock=lambda: NOW)
        cards = []
        for index, state in enumerate(self._states):
            call = (
                self._client.watch("http://example.org/events")
                if state.name == "GET"
                else (self._client.call(state.name))
            )
            call.state = state
            detail = "http://example.org/events" if state.name == "GET" else ""
            card = RunCard(call, state.name, lambda: NOW, _origin(state), detail or _params(state))
            card.set_expanded(index in self._expanded)
            cards.append(card)
        with RunBoard(id="runs"):
            yield from cards
        yield Footer()

    def on_mount(self) -> None:
        if self._focus is not None:
            self.query(RunCard)[self._focus].focus()
        else:
            self.set_focus(None)

    async def on_unmount(self) -> None:
        await self._client.aclose()


def _params(state: StreamState) -> str:
    return " ".join(f"{k}={v}" for k, v in state.params.items())


WALL_NOW = datetime(2026, 11, 29, 7, 30, 0, tzinfo=UTC)
RUNS = [
    {"id": "b81f3c92d0e4a657", "endpoint": "pipeline", "status": "running",
     "created": "2026-11-29T07:29:57.500Z", "finished": None, "events": 31,
     "last_message": _progress("import", 400, 1000)},
    {"id": "9a41d7c2e8b03f56", "endpoint": "flaky", "status": "failed",
     "created": "2026-11-29T07:29:40.000Z", "finished": "2026-11-29T07:29:43.020Z", "events": 3,
     "last_message": _progress("flaky", 3, 10)},
    {"id": "17b9e4d2c0a85f36", "endpoint": "write-text", "status": "succeeded",
     "created": "2026-11-29T07:29:20.000Z", "finished": "2026-11-29T07:29:23.420Z", "events": 28,
     "last_message": {"text": "again. "}},
    {"id": "5e0c2b0f1d3a4c71", "endpoint": "import", "status": "cancelled",
     "created": "2026-11-29T07:28:02.000Z", "finished": "2026-11-29T07:28:03.900Z", "events": 17,
     "last_message": _progress("import", 400, 1000)},
]  # fmt: skip


class ControlRoomGallery(App[None]):
    """The Runs tab's table beside a pipeline run opened from it, from fixed data."""

    CSS_PATH = StreambindApp.CSS_PATH

    def compose(self) -> ComposeResult:
        self._client = StreamClient("http://127.0.0.1:9", clock=lambda: NOW)
        call = self._client.follow(PIPELINE_MID_RUN.run_id or "", "pipeline")
        call.state = PIPELINE_MID_RUN
        on_board = {PIPELINE_MID_RUN.run_id}
        with Horizontal():
            yield RunsTable(
                self._no_fetch,
                on_board=on_board.__contains__,
                now=lambda: WALL_NOW,
                tz=UTC,
                id="runs-panel",
            )
            with RunBoard(id="runs"):
                card = RunCard(call, "pipeline", lambda: NOW, FROM_RUNS_TAB, "rows=1000")
                card.set_expanded(True)
                yield card

    async def _no_fetch(self) -> list[dict[str, Any]]:
        return RUNS  # never polled: the table is shown from RUNS once

    def on_mount(self) -> None:
        self.query_one(RunsTable).show_runs(RUNS)

    async def on_unmount(self) -> None:
        await self._client.aclose()
