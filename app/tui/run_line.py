"""A run's line on the board: glyph, label, bar, percent, step, rate, time left, elapsed.

One row of text drawn from ``run_line.LineParts``; its colours are component classes, set
per status in the stylesheet, so a state reads the same in every theme.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.widget import Widget

from ..run_line import LineParts, bar_runs
from ..runs_view import fit

__all__ = ["RunLine"]

_GAP = "  "


class RunLine(Widget):
    """One row; ``show(parts, label, detail, phase)`` sets what it draws."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "run-line--glyph",
        "run-line--label",
        "run-line--detail",
        "run-line--lit",
        "run-line--unlit",
        "run-line--muted",
        "run-line--eta",
    }
    DEFAULT_CSS = """
    RunLine { height: 1; }
    """

    def __init__(self, label: str, detail: str) -> None:
        super().__init__(classes="run-line")
        self.label = label
        self.detail = detail
        self._parts: LineParts | None = None
        self._phase: float | None = None

    @property
    def parts(self) -> LineParts | None:
        """What the line draws now."""
        return self._parts

    def show(self, parts: LineParts, phase: float | None) -> None:
        """Draw ``parts``; ``phase`` (seconds) moves the bar's sweep while nothing says how
        far along the run is, None once it has ended."""
        if parts == self._parts and (phase is None or parts.fraction is not None):
            return
        self._parts = parts
        self._phase = phase
        self.refresh()

    def render(self) -> Text:
        parts = self._parts
        if parts is None:
            return Text(self.label)
        style = self.get_component_rich_style
        columns = _columns(self.content_size.width)
        label = fit(f"{self.label} {self.detail}".rstrip(), columns.label)
        name, _, detail = label.partition(" ")
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(parts.glyph, style("run-line--glyph"))
        text.append(" ")
        # Each space inside the span before it: a span that starts with one loses it in
        # some renderings (the screenshots' SVG among them).
        text.append(name + (" " if detail else ""), style("run-line--label"))
        if detail:
            text.append(detail, style("run-line--detail"))
        text.append(" " * (columns.label - len(label)) + _GAP)
        for cells, lit in bar_runs(parts.fraction, columns.bar, phase=self._phase):
            text.append(cells, style("run-line--lit" if lit else "run-line--unlit"))
        text.append(" " + parts.percent.rjust(4))
        muted = style("run-line--muted")
        if columns.step:
            text.append(_GAP + fit(parts.step, columns.step).ljust(columns.step), muted)
        if columns.rate:
            text.append(_GAP + fit(parts.rate, columns.rate).rjust(columns.rate), muted)
        if columns.eta:
            eta = fit(parts.eta, columns.eta).ljust(columns.eta)
            text.append(_GAP + eta, style("run-line--eta"))
        text.append(_GAP + parts.elapsed.rjust(_ELAPSED), muted)
        return text


@dataclass(frozen=True)
class _Columns:
    label: int
    bar: int
    step: int
    rate: int
    eta: int


_ELAPSED = 7
#: The widest each optional column is drawn, and the order they give way in (first first)
#: when the line is narrow: the bar keeps at least ``_MIN_BAR`` cells, the label ``_MIN_LABEL``.
_WIDEST = {"label": 32, "step": 14, "rate": 8, "eta": 16}
_GIVE_WAY = ("step", "rate", "eta")
_MIN_BAR = 12
_MIN_LABEL = 12


def _columns(width: int) -> _Columns:
    """Each column's width for a line ``width`` cells wide (0: left out)."""
    widths = dict(_WIDEST)

    # glyph and space, label, gap, bar, space and percent, each optional column with its
    # gap, gap and elapsed.
    def bar_room() -> int:
        optional = sum(widths[key] + len(_GAP) for key in _GIVE_WAY if widths[key])
        return width - (2 + widths["label"] + len(_GAP) + 5 + optional + len(_GAP) + _ELAPSED)

    # The label gives way to its share first, then the optional columns one by one.
    widths["label"] = max(_MIN_LABEL, min(widths["label"], width // 4))
    for key in _GIVE_WAY:
        if bar_room() >= _MIN_BAR:
            break
        widths[key] = 0
    bar = max(4, bar_room())
    return _Columns(widths["label"], bar, widths["step"], widths["rate"], widths["eta"])
