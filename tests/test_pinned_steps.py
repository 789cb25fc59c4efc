"""Step rules a mutation pass found unpinned (issue 28): states, fractions, batches of chunks."""

from __future__ import annotations

import dataclasses

import pytest

from streambind.app.steps import Step, StepTracker, steps_line


def test_each_step_has_its_state_and_a_done_step_is_whole() -> None:
    tracker = StepTracker()
    tracker.see({"steps": ["validate", "import", "index", "publish"]})
    tracker.see({"step": "validate"})
    tracker.see({"step": "index"})
    assert tracker.steps(0.25, succeeded=False) == [
        Step("validate", "done", 1.0),
        Step("import", "skipped"),
        Step("index", "current", 0.25),
        Step("publish", "to come"),
    ]
    assert tracker.steps(None, succeeded=True) == [
        Step(name, "done", 1.0) for name in ("validate", "import", "index", "publish")
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        tracker.steps(None, succeeded=True)[0].state = "current"  # type: ignore[misc]


def test_a_batch_read_at_once_takes_a_first_step_and_an_announcement() -> None:
    tracker = StepTracker()
    tracker.see_all([{"step": "a", "done": 1}, {"step": "a", "done": 2}])
    assert steps_line(tracker.steps(0.5, succeeded=False)) == "a 50%"
    announced = StepTracker()
    announced.see_all([{"n": 1}, {"steps": ["x", "y"]}])
    assert steps_line(announced.steps(None, succeeded=False)) == "x ·  y ·"
    assert announced.known == 2


def test_a_batch_with_chunks_that_are_not_objects_is_read_one_by_one() -> None:
    tracker = StepTracker()
    tracker.see({"step": "a"})
    tracker.see_all(["plain text", {"step": "a"}, [1], None, {"step": "b"}])
    assert steps_line(tracker.steps(None, succeeded=False)) == "a ✓  b"


def test_an_announcement_naming_every_step_seen_gives_the_order() -> None:
    tracker = StepTracker()
    tracker.see({"step": "load"})
    tracker.see({"step": "check"})
    tracker.see({"steps": ["check", "load"]})  # the same steps, in the workflow's order
    assert [step.name for step in tracker.steps(None, succeeded=False)] == ["check", "load"]
    tracker.see({"steps": ["load", "check", "index"]})
    assert steps_line(tracker.steps(None, succeeded=False)) == "load ✓  check  index ·"
