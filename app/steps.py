"""A run's named steps, in order, with the state of each: read from chunks that carry ``step``.

No UI code: the TUI's card and the command line draw the same list. A workflow may
announce its steps up front with a chunk such as ``{"steps": ["validate", "import"]}``
(``pipeline`` does), so the steps still to come can be shown before they start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

__all__ = ["Step", "StepTracker", "steps_line"]

DONE = "done"
CURRENT = "current"
TO_COME = "to come"
#: Announced, never seen, and the run has gone past it.
SKIPPED = "skipped"


@dataclass(frozen=True)
class Step:
    name: str
    state: str  # DONE, CURRENT, TO_COME or SKIPPED
    #: How far the current step is (0..1), when its latest chunk says.
    fraction: float | None = None


class StepTracker:
    """Fed every chunk once, in order; cheap per chunk (a dict look-up or two)."""

    __slots__ = ("_announced", "_current", "_seen")

    def __init__(self) -> None:
        self._seen: list[str] = []
        self._announced: list[str] = []
        self._current: str | None = None

    def see(self, chunk: Any) -> None:
        if type(chunk) is not dict:
            return
        step = chunk.get("step")
        if step is not None and step != self._current and isinstance(step, str):
            self._current = step
            if step not in self._seen:
                self._seen.append(step)
        announced = chunk.get("steps")
        if announced is not None:
            self.announce(announced)

    def see_all(self, chunks: Sequence[Any]) -> None:
        """``see`` each chunk in turn; a firehose's chunks in one pass over C loops.

        Its chunks are dicts that all name the current step and announce none, which
        changes nothing: that is checked with ``map`` and ``count``, not a loop in Python.
        """
        count = len(chunks)
        if (
            set(map(type, chunks)) <= {dict}
            and list(map(dict.get, chunks, repeat("step"))).count(self._current) == count
            and list(map(dict.get, chunks, repeat("steps"))).count(None) == count
        ):
            return
        for chunk in chunks:
            self.see(chunk)

    def announce(self, names: Any) -> None:
        """Steps the workflow says it will go through (its ``steps`` chunk, or its result)."""
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            self._announced = list(names)

    @property
    def known(self) -> int:
        """How many distinct steps are known so far, seen or announced."""
        return len(self._names())

    def _names(self) -> list[str]:
        names = list(self._seen)
        names += [n for n in self._announced if n not in names]
        # An announced order wins where it covers the steps seen.
        if self._announced and set(self._seen) <= set(self._announced):
            names = list(self._announced)
        return names

    def steps(self, fraction: float | None, succeeded: bool) -> list[Step]:
        """Every known step with its state; ``fraction`` is how far the current one is."""
        names = self._names()
        if succeeded:
            return [Step(name, DONE, 1.0) for name in names]
        current = self._current
        out: list[Step] = []
        reached = current is None
        for name in names:
            if name == current:
                out.append(Step(name, CURRENT, fraction))
                reached = True
            elif reached:
                out.append(Step(name, TO_COME))
            elif name in self._seen:
                out.append(Step(name, DONE, 1.0))
            else:
                out.append(Step(name, SKIPPED))
        return out


def steps_line(steps: Sequence[Step]) -> str:
    """``validate ✓  import 45%  index ·``: one line, the same in the TUI and a shell."""
    parts = []
    for step in steps:
        if step.state == DONE:
            parts.append(f"{step.name} ✓")
        elif step.state == CURRENT:
            percent = "" if step.fraction is None else f" {step.fraction * 100:.0f}%"
            parts.append(f"{step.name}{percent}")
        elif step.state == SKIPPED:
            parts.append(f"{step.name} –")
        else:
            parts.append(f"{step.name} ·")
    return "  ".join(parts)
