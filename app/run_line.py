"""A run in one line, for the TUI's run board: what each part of the line says.

No UI code: the status glyph, the label and its parameters, where the bar stands, the
percentage, the step, the rate, the time left (or why there is none) and the elapsed
time, each as text, from a call's state. The board draws them in its columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .progress import Progress, RateMeter, bar_fraction, format_duration, latest_progress
from .state import StreamState

__all__ = [
    "GLYPHS",
    "SPINNER",
    "LineParts",
    "bar_runs",
    "line_parts",
    "params_summary",
    "short_label",
]

#: Each ended status's glyph; a running run shows a spinner frame instead.
GLYPHS = {
    "pending": "·",
    "succeeded": "✓",
    "failed": "✗",
    "cancelled": "⊘",
    "stopped": "■",
}
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
#: Spinner frames a second.
_SPIN_HZ = 10
#: Where the indeterminate bar's light travels, in cells a second.
_SWEEP_CELLS_S = 12.0


@dataclass(frozen=True)
class LineParts:
    glyph: str
    #: 0..1 where the bar stands; None: not known (a sweep while running, else still).
    fraction: float | None
    percent: str
    step: str
    rate: str
    #: ``ETA 3.0s``, or why there is no estimate now: ``reconnecting (2)``, ``server busy``.
    eta: str
    elapsed: str


def line_parts(state: StreamState, now: float, meter: RateMeter) -> LineParts:
    """The line's parts for ``state`` at ``now``; ``meter`` is the run's own rate meter."""
    progress = latest_progress(state)
    fraction = bar_fraction(state)
    running = not state.finished
    return LineParts(
        glyph=SPINNER[int(now * _SPIN_HZ) % len(SPINNER)] if running else GLYPHS[state.status],
        fraction=fraction,
        percent="" if fraction is None else f"{fraction * 100:.0f}%",
        step=progress.step or "",
        rate=_rate(meter, now, progress, running),
        eta=_eta(state, meter, now, progress),
        elapsed=format_duration(state.elapsed(now)),
    )


def _rate(meter: RateMeter, now: float, progress: Progress, running: bool) -> str:
    rate, _ = meter.update(now, progress)
    if rate is None or not running:
        return ""
    return f"{rate:,.0f}/s" if rate >= 10 else f"{rate:.1f}/s"


def _eta(state: StreamState, meter: RateMeter, now: float, progress: Progress) -> str:
    if state.finished:
        return ""
    if state.reconnecting:
        return f"reconnecting ({state.reconnects + 1})"  # the attempt under way
    if state.busy:
        return "server busy"
    if not state.handle_stream:
        return "stream off"
    _, left = meter.update(now, progress)
    return "" if left is None else f"ETA {format_duration(left)}"


def bar_runs(fraction: float | None, width: int, *, phase: float | None) -> list[tuple[str, bool]]:
    """The bar in ``width`` cells, as runs of (text, lit): lit up to ``fraction``; an
    unknown fraction is a light sweeping across while ``phase`` (seconds) is given, and an
    unlit bar once it is not (a run that ended without saying how far it got)."""
    if width <= 0:
        return []
    if fraction is None:
        if phase is None:
            return [("━" * width, False)]
        # A segment a quarter of the bar wide, going round: busy, never mistaken for done.
        size = max(1, width // 4)
        start = int(phase * _SWEEP_CELLS_S) % (width + size) - size
        lit_from, lit_to = max(0, start), min(width, start + size)
        runs = [("━" * lit_from, False), ("━" * (lit_to - lit_from), True)]
        return [run for run in [*runs, ("━" * (width - lit_to), False)] if run[0]]
    filled = round(fraction * width)
    return [run for run in [("━" * filled, True), ("━" * (width - filled), False)] if run[0]]


def params_summary(params: dict[str, Any]) -> str:
    """``rows=1000 delay_ms=0``: the parameters as ``call -p`` takes them, in one line."""
    return " ".join(f"{key}={_value(value)}" for key, value in params.items())


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def short_label(name: str, run_id: str | None) -> str:
    """``import·0dd5``: enough to tell runs apart in a footer or a palette."""
    return f"{name}·{run_id[:4]}" if run_id else name
