"""The rules behind every bar: the TUI's board and cards, ``streambind call`` and ``follow``.

Each documented chunk form, each edge of a count, and each way a run moves through its
steps, pinned one by one: these functions decide what a person reads about a run.
"""

from __future__ import annotations

import pytest

from streambind.app.progress import (
    Progress,
    RateMeter,
    bar_fraction,
    chunk_count,
    done_of_total,
    format_duration,
    joined_text,
    latest_progress,
    progress_of,
    text_piece,
)
from streambind.app.state import StreamState
from streambind.app.steps import StepTracker, steps_line

# -- where the bar stands: stream.chunk -------------------------------------------


@pytest.mark.parametrize(
    ("chunk", "fraction"),
    [
        ({"done": 25, "total": 100}, 0.25),
        ({"progress": 0.4}, 0.4),  # 0..1, as the README documents
        ({"percent": 40}, 0.4),  # 0..100
        ({"percent": 12.5}, 0.125),
        # done/total first, then progress, then percent.
        ({"done": 1, "total": 4, "progress": 0.9, "percent": 90}, 0.25),
        ({"progress": 0.3, "percent": 90}, 0.3),
        # A chunk past 100% (or below 0) holds the bar at its end.
        ({"done": 150, "total": 100}, 1.0),
        ({"progress": 1.7}, 1.0),
        ({"percent": 250}, 1.0),
        ({"percent": -5}, 0.0),
        ({"done": 1, "total": 1}, 1.0),
        ({"done": 0, "total": 1}, 0.0),
    ],
)
def test_the_bar_reads_done_total_then_progress_then_percent(
    chunk: dict[str, object], fraction: float
) -> None:
    assert progress_of(chunk).fraction == pytest.approx(fraction)


@pytest.mark.parametrize(
    "chunk",
    [
        {"done": 3, "total": 0},  # no total to measure against
        {"done": 3, "total": -2},
        {"done": True, "total": True},  # booleans are not counts
        {"done": 1, "total": True},
        {"progress": True},
        {"percent": False},
        {"done": "3", "total": "4"},
        {"done": 3},
        {"total": 3},
        {"step": "import"},
        "40%",
        [1, 2],
        None,
    ],
)
def test_what_says_nothing_of_how_far_leaves_the_bar_unknown(chunk: object) -> None:
    assert progress_of(chunk).fraction is None


def test_a_total_of_0_falls_back_to_progress_or_percent() -> None:
    assert progress_of({"done": 0, "total": 0, "percent": 50}).fraction == 0.5


def test_the_step_is_the_bars_label_when_it_is_text() -> None:
    assert progress_of({"step": "index", "done": 1, "total": 3}).step == "index"
    assert progress_of({"step": 3, "done": 1, "total": 3}).step is None
    assert progress_of({"step": "publish", "rows": 9}) == Progress(step="publish")


def _state(status: str, chunk: object) -> StreamState:
    state = StreamState(name="x", status=status)
    state.chunk = chunk
    return state


def test_a_run_that_succeeded_fills_its_bar_and_no_other_end_does() -> None:
    assert bar_fraction(_state("succeeded", {"step": "publish"})) == 1.0
    assert bar_fraction(_state("succeeded", None)) == 1.0
    assert bar_fraction(_state("succeeded", {"done": 2, "total": 4})) == 0.5  # what it said
    for status in ("failed", "cancelled", "stopped", "running"):
        assert bar_fraction(_state(status, {"step": "publish"})) is None
        assert bar_fraction(_state(status, {"percent": 30})) == 0.3


# -- how counts and times are written ---------------------------------------------------


@pytest.mark.parametrize(
    ("chunk", "text"),
    [
        ({"done": 1200, "total": 5000}, "1,200/5,000"),
        ({"done": 1.5, "total": 3}, "1.50/3"),
        ({"done": 0, "total": 1}, "0/1"),
        ({"done": 150, "total": 100}, "150/100"),  # said as sent, though the bar stops at 100%
        ({"progress": 0.5}, None),
        ({"done": 3, "total": 0}, None),
    ],
)
def test_done_of_total_says_both_counts_or_nothing(chunk: dict[str, object], text: str) -> None:
    assert done_of_total(progress_of(chunk)) == text


@pytest.mark.parametrize(
    ("count", "text"), [(0, "0 chunks"), (1, "1 chunk"), (2, "2 chunks"), (12345, "12,345 chunks")]
)
def test_chunk_counts_are_singular_for_one(count: int, text: str) -> None:
    assert chunk_count(count) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0.0s"),
        (4.25, "4.2s"),
        (59.9, "59.9s"),
        (60.0, "1m00s"),
        (61.7, "1m01s"),
        (599.0, "9m59s"),
        (3599.0, "59m59s"),
        (3600.0, "1h00m"),
        (3725.0, "1h02m"),
        (90061.0, "25h01m"),
    ],
)
def test_durations_of_a_minute_and_more_read_as_minutes_and_hours(
    seconds: float, text: str
) -> None:
    assert format_duration(seconds) == text


# -- rate and time left ------------------------------------------------------------------


def test_rate_and_time_left_come_from_the_steps_own_progress() -> None:
    meter = RateMeter()
    assert meter.update(10.0, progress_of({"step": "a", "done": 0, "total": 100})) == (None, None)
    rate, left = meter.update(12.0, progress_of({"step": "a", "done": 20, "total": 100}))
    assert rate == pytest.approx(10.0) and left == pytest.approx(8.0)
    rate, left = meter.update(14.0, progress_of({"step": "a", "done": 60, "total": 100}))
    assert rate == pytest.approx(15.0) and left == pytest.approx(40 / 15)


def test_time_left_counts_down_while_nothing_arrives_and_never_grows() -> None:
    meter = RateMeter()
    meter.update(0.0, progress_of({"done": 0, "total": 100}))
    meter.update(5.0, progress_of({"done": 50, "total": 100}))  # 10/s: 5 s left
    same = progress_of({"done": 50, "total": 100})
    lefts = [meter.update(t, same)[1] for t in (6.0, 8.0, 9.5, 30.0)]
    assert lefts == pytest.approx([4.0, 2.0, 0.5, 0.0])
    rates = [meter.update(t, same)[0] for t in (6.0, 60.0)]
    assert rates == pytest.approx([10.0, 10.0])  # measured to the latest progress, not to now


def test_a_new_step_or_a_count_going_back_starts_the_measure_again() -> None:
    meter = RateMeter()
    meter.update(0.0, progress_of({"step": "a", "done": 0, "total": 10}))
    assert meter.update(1.0, progress_of({"step": "a", "done": 5, "total": 10}))[0] == 5.0
    assert meter.update(2.0, progress_of({"step": "b", "done": 1, "total": 10})) == (None, None)
    assert meter.update(3.0, progress_of({"step": "b", "done": 3, "total": 10}))[0] == 2.0
    assert meter.update(4.0, progress_of({"step": "b", "done": 1, "total": 10})) == (None, None)
    assert meter.update(5.0, progress_of({"percent": 50})) == (None, None)


# -- text pieces ---------------------------------------------------------------------------


def test_a_stream_is_text_only_when_every_new_chunk_is_a_text_piece() -> None:
    assert text_piece({"text": "hi"}) == "hi"
    assert text_piece({"text": 3}) is None and text_piece("hi") is None
    assert joined_text([{"text": "a"}, {"text": "b"}]) == "ab"
    assert joined_text([{"text": "a"}, {"n": 1}, {"text": "b"}]) is None
    assert joined_text([]) is None


# -- steps -------------------------------------------------------------------------------------


def _line(tracker: StepTracker, fraction: float | None = None, succeeded: bool = False) -> str:
    return steps_line(tracker.steps(fraction, succeeded))


def test_an_announcement_in_the_same_batch_as_the_current_step_is_taken() -> None:
    tracker = StepTracker()
    tracker.see({"step": "a", "done": 1, "total": 2})
    # A batch whose chunks all name the current step, one of them announcing the steps.
    tracker.see_all([{"step": "a", "done": 2, "total": 2}, {"step": "a", "steps": ["a", "b"]}])
    assert _line(tracker, 1.0) == "a 100%  b ·"
    # And a batch that moves to a new step part-way.
    tracker.see_all([{"step": "a"}, {"step": "b", "done": 1, "total": 4}])
    assert _line(tracker, 0.25) == "a ✓  b 25%"


def test_an_announcement_that_leaves_out_a_step_already_seen_keeps_it_in_the_order_seen() -> None:
    tracker = StepTracker()
    tracker.see({"step": "warm-up"})
    tracker.see({"steps": ["load", "index"]})
    # The current step without a fraction is named alone; the announced ones come after it.
    assert _line(tracker) == "warm-up  load ·  index ·"
    tracker.see({"step": "load", "done": 1, "total": 2})
    assert _line(tracker, 0.5) == "warm-up ✓  load 50%  index ·"


def test_going_back_to_an_earlier_step_makes_the_later_ones_to_come_again() -> None:
    tracker = StepTracker()
    for step in ("validate", "import", "validate"):
        tracker.see({"step": step})
    assert _line(tracker, 0.5) == "validate 50%  import ·"


def test_a_skipped_step_is_shown_skipped_not_to_come() -> None:
    tracker = StepTracker()
    tracker.see({"steps": ["validate", "import", "index"]})
    tracker.see({"step": "validate"})
    tracker.see({"step": "index", "done": 1, "total": 3})
    assert _line(tracker, 1 / 3) == "validate ✓  import –  index 33%"
    # The run's success says every step it announced is done.
    assert _line(tracker, None, succeeded=True) == "validate ✓  import ✓  index ✓"


def test_latest_progress_reads_each_chunk_once() -> None:
    """The bar, the line, the stats and the steps of one frame share one reading."""
    state = StreamState("import")
    state.chunk = {"done": 1, "total": 4}
    first = latest_progress(state)
    assert first.fraction == 0.25
    assert latest_progress(state) is first  # the same chunk is not read again
    state.chunk = {"done": 3, "total": 4}
    assert latest_progress(state).fraction == 0.75
