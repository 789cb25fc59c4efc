"""What a progress display shows, derived from a call's state; no UI code, so it is easy to test.

The TUI's cards and ``streambind call`` share these rules: where the bar stands, when a
stream is text to assemble rather than a log, and how counts are written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .state import StreamState

__all__ = [
    "Progress",
    "RateMeter",
    "bar_fraction",
    "chunk_count",
    "done_of_total",
    "format_duration",
    "joined_text",
    "latest_progress",
    "progress_of",
    "text_piece",
]


@dataclass(frozen=True)
class Progress:
    #: 0..1, or None while no chunk has said how far along the run is.
    fraction: float | None = None
    done: float | None = None
    total: float | None = None
    step: str | None = None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def progress_of(chunk: Any) -> Progress:
    """Read ``done``/``total``, else ``progress`` (0..1), else ``percent`` (0..100)."""
    if not isinstance(chunk, dict):
        return Progress()
    step = chunk.get("step") if isinstance(chunk.get("step"), str) else None
    done, total = _number(chunk.get("done")), _number(chunk.get("total"))
    if done is not None and total is not None and total > 0:
        return Progress(_clamp(done / total), done, total, step)
    if (fraction := _number(chunk.get("progress"))) is not None:
        return Progress(_clamp(fraction), step=step)
    if (percent := _number(chunk.get("percent"))) is not None:
        return Progress(_clamp(percent / 100), step=step)
    return Progress(step=step)


def latest_progress(state: StreamState) -> Progress:
    """``progress_of(state.chunk)``, read once per chunk however many displays ask."""
    memo = state.progress_memo
    if memo is not None and memo[0] is state.chunk:
        return memo[1]  # type: ignore[no-any-return]
    progress = progress_of(state.chunk)
    state.progress_memo = (state.chunk, progress)
    return progress


def text_piece(chunk: Any) -> str | None:
    """The text of an AI-style ``{"text": "..."}`` piece, or None for any other chunk."""
    text = chunk.get("text") if isinstance(chunk, dict) else None
    return text if isinstance(text, str) else None


def joined_text(chunks: Sequence[Any]) -> str | None:
    """The new chunks as one piece of text when every one is a text piece, else None.

    A stream of text pieces is shown assembled, as an AI reply is; anything else is a log.
    """
    if not chunks or text_piece(chunks[0]) is None or text_piece(chunks[-1]) is None:
        return None  # the cheap look first: most streams are not text
    pieces = [text_piece(c) for c in chunks]
    if any(p is None for p in pieces):
        return None
    return "".join(pieces)  # type: ignore[arg-type]


def bar_fraction(state: StreamState) -> float | None:
    """Where the bar stands: as the latest chunk says, full once the call succeeded, else None."""
    fraction = latest_progress(state).fraction
    if fraction is None and state.status == "succeeded":
        return 1.0
    return fraction


def done_of_total(progress: Progress) -> str | None:
    """``1,200/5,000`` when the chunk says both, else None."""
    if progress.done is None or progress.total is None:
        return None
    return f"{format_count(progress.done)}/{format_count(progress.total)}"


def chunk_count(count: int) -> str:
    return f"{count:,} chunk{'' if count == 1 else 's'}"


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))


class RateMeter:
    """Rate and time left of the current step, from its start to its latest progress.

    The rate is measured up to the moment the count last moved, never up to now: a stream
    that pauses (or a server that is gone) does not make the rate decay and the time left
    grow. The time left counts down from the estimate made then, and stops at 0.
    """

    def __init__(self) -> None:
        self._step: str | None = None
        self._start: tuple[float, float] | None = None  # (time, done) when the step began
        self._latest: tuple[float, float] | None = None  # (time, done) when it last moved

    def update(self, now: float, progress: Progress) -> tuple[float | None, float | None]:
        """Return (units per second, seconds left), each None when not yet known."""
        done, total = progress.done, progress.total
        if done is None or total is None:
            return None, None
        if self._start is None or progress.step != self._step or done < self._start[1]:
            self._step = progress.step
            self._start = self._latest = (now, done)
            return None, None
        assert self._latest is not None
        if done != self._latest[1]:
            self._latest = (now, done)
        (started, done_then), (moved, done_now) = self._start, self._latest
        if moved <= started or done_now <= done_then:
            return None, None
        rate = (done_now - done_then) / (moved - started)
        return rate, max(0.0, (total - done_now) / rate - (now - moved))


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_count(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
