"""A still picture of every kind of card, from fixed states and a fixed clock, for snapshots."""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult
from textual.containers import VerticalScroll

from streambind.app.client import StreamClient, StreamState
from streambind.app.tui.app import StreambindApp
from streambind.app.tui.run_card import RunCard

NOW = 1000.0
REPORT_WORDS = ("The", "people", "table", "holds", "45", "rows", "from", "1", "import.")


def _state(**fields: Any) -> StreamState:
    state = StreamState(name=fields.pop("name"))
    for key, value in fields.items():
        setattr(state, key, value)
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
