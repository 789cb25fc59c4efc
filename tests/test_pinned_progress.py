"""Progress rules a mutation pass found unpinned (issue 28): labels, partial counts, rate edges."""

from __future__ import annotations

import dataclasses

import pytest

from streambind.app.progress import (
    Progress,
    RateMeter,
    done_of_total,
    joined_text,
    progress_of,
)


def test_the_step_labels_a_progress_or_percent_chunk_too() -> None:
    assert progress_of({"step": "a", "progress": 0.5}) == Progress(0.5, step="a")
    assert progress_of({"step": "b", "percent": 20}) == Progress(0.2, step="b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        progress_of({"progress": 0.5}).fraction = 1.0  # type: ignore[misc]


def test_one_text_piece_is_text_and_one_other_chunk_is_not() -> None:
    assert joined_text([{"text": "only"}]) == "only"
    assert joined_text([{"n": 1}]) is None
    assert joined_text([{"text": "a"}, {"n": 1}]) is None


def test_a_count_without_its_total_is_not_written_or_measured() -> None:
    assert done_of_total(Progress(done=3.0)) is None
    assert done_of_total(Progress(total=3.0)) is None
    meter = RateMeter()
    assert meter.update(0.0, Progress(done=1.0)) == (None, None)
    assert meter.update(1.0, Progress(done=2.0)) == (None, None)


def test_a_count_that_stays_put_does_not_start_the_measure_again() -> None:
    meter = RateMeter()
    meter.update(0.0, Progress(done=0.0, total=100.0))
    assert meter.update(1.0, Progress(done=0.0, total=100.0)) == (None, None)
    rate, left = meter.update(2.0, Progress(done=10.0, total=100.0))
    assert rate == pytest.approx(5.0) and left == pytest.approx(18.0)


def test_progress_at_the_instant_the_step_began_has_no_rate_yet() -> None:
    meter = RateMeter()
    meter.update(5.0, Progress(done=0.0, total=10.0))
    assert meter.update(5.0, Progress(done=4.0, total=10.0)) == (None, None)
    rate, _ = meter.update(6.0, Progress(done=4.0, total=10.0))
    assert rate is None  # it last moved at the instant it began: nothing to divide by
