"""A still picture of every kind of card, from fixed states and a fixed clock, for snapshots."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from textual.app import App, ComposeResult
from textual.containers import Horizontal, VerticalScroll

from streambind.app.client import StreamClient, StreamState
from streambind.app.tui.app import StreambindApp
from streambind.app.tui.run_card import FROM_RUNS_TAB, RunCard
from streambind.app.tui.runs_table import RunsTable

NOW = 1000.0
REPORT_WORDS = ("The", "people", "table", "holds", "45", "rows", "from", "1", "import.")


def _state(**fields: Any) -> StreamState:
    state = StreamState(name=fields.pop("name"))
    for key, value in fields.items():
        setattr(state, key, value)
    for chunk in state.chunks:
        state.steps.see(chunk)  # as apply_event does for each arriving chunk
    return state


def _progress(step: str, done: int, total: int) -> dict[str, Any]:
    return {"step": step, "done": done, "total": total}


STATES = [
    _state(
        name="import", status="running", run_id="5e0c2b0f1d3a4c71", streamed=True,
        chunks=[_progress("import", d, 200) for d in range(0, 100, 20)],
        chunk=_progress("import", 80, 200), started_at=NOW - 2.0, last_event_id="5",
    ),
    _state(
        name="flaky", status="failed", run_id="9a41d7c2e8b03f56", streamed=True,
        chunks=[_progress("flaky", d, 10) for d in (1, 2, 3)], chunk=_progress("flaky", 3, 10),
        error={"type": "FlakyFailure", "message": "step 4 of 10 failed, as asked (fail_at=4)"},
        started_at=NOW - 5.0, finished_at=NOW - 4.4,
    ),
    _state(
        name="pipeline", status="cancelled", run_id="c3f18e27a9d64b05", streamed=True,
        chunks=[_progress("validate", 500, 500), _progress("import", 150, 500)],
        chunk=_progress("import", 150, 500), started_at=NOW - 9.0, finished_at=NOW - 7.5,
    ),
    _state(
        name="import", status="running", handle_stream=False, run_id=None,
        started_at=NOW - 1.0,
    ),
    _state(
        name="write-text", status="succeeded", run_id="17b9e4d2c0a85f36", streamed=True,
        chunks=[{"text": w + " "} for w in REPORT_WORDS],
        chunk={"text": "import. "}, result={"characters": 47}, started_at=NOW - 3.0,
        finished_at=NOW - 1.2,
    ),
    _state(
        name="silent", status="succeeded", run_id="2d6a0f9be1c47385", streamed=False,
        result={"people": 45, "imports": 1, "streamed": False}, started_at=NOW - 0.2,
        finished_at=NOW - 0.1,
    ),
]  # fmt: skip


class CardGallery(App[None]):
    CSS_PATH = StreambindApp.CSS_PATH

    def compose(self) -> ComposeResult:
        self._client = StreamClient("http://127.0.0.1:9", clock=lambda: NOW)
        with VerticalScroll(id="runs"):
            for state in STATES:
                call = self._client.call(state.name)
                call.state = state
                yield RunCard(call, state.name, lambda: NOW)

    async def on_unmount(self) -> None:
        await self._client.aclose()


PIPELINE_MID_RUN = _state(
    name="pipeline", status="running", run_id="b81f3c92d0e4a657", streamed=True,
    chunks=[
        {"steps": ["validate", "import", "index"]},
        *(_progress("validate", d, 1000) for d in range(0, 1001, 50)),
        *(_progress("import", d, 1000) for d in range(0, 401, 50)),
    ],
    chunk=_progress("import", 400, 1000), started_at=NOW - 2.5, last_event_id="31",
)  # fmt: skip

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
    """The Runs tab's table beside a pipeline card mid-run, from fixed data and clocks."""

    CSS_PATH = StreambindApp.CSS_PATH

    def compose(self) -> ComposeResult:
        self._client = StreamClient("http://127.0.0.1:9", clock=lambda: NOW)
        call = self._client.follow(PIPELINE_MID_RUN.run_id or "", "pipeline")
        call.state = PIPELINE_MID_RUN
        with Horizontal():
            yield RunsTable(self._no_fetch, now=lambda: WALL_NOW, tz=UTC, id="runs-panel")
            with VerticalScroll(id="runs"):
                yield RunCard(call, "pipeline", lambda: NOW, FROM_RUNS_TAB)

    async def _no_fetch(self) -> list[dict[str, Any]]:
        return RUNS  # never polled: the table is shown from RUNS once

    def on_mount(self) -> None:
        self.query_one(RunsTable).show_runs(RUNS)

    async def on_unmount(self) -> None:
        await self._client.aclose()
