"""The UI-free pieces of a richer card and of the runs table: steps, message rate, run rows."""

from __future__ import annotations

from datetime import UTC, datetime

from streambind.app.rates import MessageRate
from streambind.app.runs_view import columns_for, progress_label, run_row
from streambind.app.state import StreamState
from streambind.app.steps import StepTracker, steps_line


def _fed(*chunks: object) -> StepTracker:
    tracker = StepTracker()
    for chunk in chunks:
        tracker.see(chunk)
    return tracker


def test_steps_seen_are_done_in_order_and_the_latest_is_current() -> None:
    tracker = _fed(
        {"step": "validate", "done": 5, "total": 5},
        {"step": "import", "done": 1, "total": 4},
    )
    assert steps_line(tracker.steps(0.25, succeeded=False)) == "validate ✓  import 25%"


def test_announced_steps_show_the_ones_still_to_come_before_they_start() -> None:
    tracker = _fed({"steps": ["validate", "import", "index"]})
    assert steps_line(tracker.steps(None, succeeded=False)) == "validate ·  import ·  index ·"
    tracker.see({"step": "validate", "done": 1, "total": 2})
    assert steps_line(tracker.steps(0.5, succeeded=False)) == "validate 50%  import ·  index ·"


def test_a_succeeded_run_has_every_step_done() -> None:
    tracker = _fed({"step": "validate"}, {"step": "import"})
    tracker.announce(["validate", "import", "index"])  # from the result
    assert steps_line(tracker.steps(None, succeeded=True)) == "validate ✓  import ✓  index ✓"


def test_chunks_without_steps_leave_no_steps_and_bad_announcements_are_ignored() -> None:
    tracker = _fed({"n": 1}, "text", [1, 2], {"steps": "validate"}, {"steps": [1, 2]}, {"step": 3})
    assert tracker.known == 0
    assert tracker.steps(None, succeeded=False) == []


def test_stream_state_tracks_steps_as_events_arrive() -> None:
    state = StreamState(name="pipeline")
    for text in ('{"steps": ["a", "b"]}', '{"step": "a", "done": 1, "total": 1}', "plain"):
        state.apply_event("message", text, "", lambda: 0.0)
    assert steps_line(state.steps.steps(1.0, succeeded=False)) == "a 100%  b ·"


def test_the_message_rate_counts_per_second_and_forgets_after_30_seconds() -> None:
    rate = MessageRate()
    rate.add(100.2, 5)
    rate.add(100.9, 5)
    rate.add(102.0, 7)
    series = rate.series(102.5)
    assert len(series) == 30
    assert series[-3:] == [10.0, 0.0, 7.0]
    assert sum(rate.series(131.9)) == 7.0  # 100 has left the window, 102 has not
    assert sum(rate.series(500.0)) == 0.0


def test_a_run_row_reads_progress_from_the_latest_chunk() -> None:
    now = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
    run = {
        "id": "abc", "endpoint": "import", "status": "running",
        "created": "2026-01-01T12:00:00.000Z", "finished": None, "events": 3,
        "last_message": {"step": "import", "done": 50, "total": 200},
    }  # fmt: skip
    row = run_row(run, now, UTC)
    assert row == {
        "id": "abc", "endpoint": "import", "status": "running", "progress": "import 25%",
        "started": "12:00:00", "duration": "10.0s", "node": "",
    }  # fmt: skip
    finished = {**run, "status": "succeeded", "finished": "2026-01-01T12:00:04.500Z"}
    assert run_row(finished, now, UTC)["duration"] == "4.5s"
    assert progress_label(finished) == "100%"
    assert progress_label({"status": "running", "events": 2, "last_message": {"text": "hi"}}) == (
        "2 chunks"
    )


def test_the_node_column_shows_only_when_a_run_has_a_node() -> None:
    assert "node" not in [key for key, _ in columns_for([{"id": "a"}, {"id": "b", "node": None}])]
    assert "node" in [key for key, _ in columns_for([{"id": "a"}, {"id": "b", "node": "n1"}])]
