"""One run on screen: steps, bar and rate from ``stream.chunk``, a log of ``stream.chunks``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.clock import Clock
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Button, Log, ProgressBar, Sparkline, Static

from ..client import StreamCall
from ..progress import (
    RateMeter,
    bar_fraction,
    chunk_count,
    done_of_total,
    format_duration,
    joined_text,
    progress_of,
)
from ..rates import MessageRate
from ..runs_view import fit
from ..state import StreamState
from ..steps import steps_line

__all__ = ["FROM_RUNS_TAB", "FROM_THIS_TUI", "FROM_WATCHED_URL", "RunCard"]

#: Where a card's run came from, as its header says.
FROM_THIS_TUI = "started here"
FROM_RUNS_TAB = "via Runs tab"
FROM_WATCHED_URL = "watched URL"

#: Log lines kept on screen; ``stream.chunks`` itself keeps every message.
LOG_LINES = 200
#: Characters of assembled text kept on screen for text streams.
TEXT_CHARS = 4000
_CHUNK_CHARS = 300
#: Log lines are cut (with ``…``) to the log's width, but never below this.
_MIN_LOG_WIDTH = 20

HINT_STREAM_OFF = "Handle stream is off: progress will show when the call finishes."
#: Below this width a card's header leaves out where the run came from: the endpoint and
#: the run's id come first.
NARROW_CARD = 60
HINT_STREAM_WAS_OFF = "Handle stream was off: all {n} chunks arrived at once, at the end."
HINT_NO_STREAM = (
    "This endpoint finished without sending a streaming message: "
    "there was no progress to show, only its result."
)


class RunCard(Vertical):
    """A card for one call. ``refresh_from_state`` applies what arrived since the last time."""

    class CancelRequested(Message):
        def __init__(self, card: RunCard) -> None:
            super().__init__()
            self.card = card

    def __init__(
        self,
        call: StreamCall,
        title: str,
        clock: Callable[[], float],
        origin: str = FROM_THIS_TUI,
    ) -> None:
        super().__init__(classes="card -pending")
        self.call = call
        self.origin = origin
        self._title = title
        self._clock = clock
        self._applied_version = -1
        self._applied_chunks = 0
        self._text = ""
        self._text_mode = False
        self._rate = RateMeter()
        self._arrivals = MessageRate()
        self._counted_chunks = 0
        self._shown_series: list[float] = []
        self._shown_steps = ""
        self._status = ""
        self._stats_final = False  # a finished run's stats no longer change
        self._shown_run_id: str | None = None
        self._shown_step = ""
        self._shown_hint = ""
        self._composed = False  # the app's timer may tick before the children exist
        self._log_width: int | None = None  # the width the log's lines were cut for

    @property
    def state(self) -> StreamState:
        return self.call.state

    @property
    def _cancel_label(self) -> str:
        # A stream that is not a streambind run cannot be cancelled from here: only stopped.
        return "Cancel" if self.call.cancels_run else "Stop"

    def on_resize(self) -> None:
        self.set_class(self.size.width < NARROW_CARD, "-narrow")
        if self._composed and self._log_width is not None:
            self.call_after_refresh(self._refit_log)

    def _refit_log(self) -> None:
        """Cut the log's lines again for its new width, so that every cut still shows …"""
        with contextlib.suppress(NoMatches):
            log = self.query_one(".card-log", Log)
            if self._log_width == self._log_line_width(log):
                return
            count = self._applied_chunks
            log.clear()
            self._write_log_lines(log, self.state.chunks[max(0, count - LOG_LINES) : count])

    def _log_line_width(self, log: Log) -> int:
        return max(_MIN_LOG_WIDTH, log.scrollable_content_region.width)

    def _write_log_lines(self, log: Log, chunks: list[Any]) -> None:
        width = self._log_line_width(log)
        self._log_width = width
        log.write_lines([fit(_one_line(chunk), width) for chunk in chunks])

    def compose(self) -> ComposeResult:
        with Horizontal(classes="card-head"):
            yield Static(self._title, classes="card-title")
            yield Static(self.origin, classes="card-origin")
            yield Static("pending", classes="card-status")
            yield Button(self._cancel_label, classes="card-cancel", compact=True, variant="error")
        yield Static("", classes="card-hint")
        yield Static("", classes="card-steps")
        with Horizontal(classes="card-progress"):
            # The card's clock drives the indeterminate animation too, so a fixed
            # clock gives a still picture (snapshot tests).
            yield ProgressBar(
                total=None, show_eta=False, classes="card-bar", clock=Clock(get_time=self._clock)
            )
            yield Static("", classes="card-step")
        with Horizontal(classes="card-meta"):
            yield Static("", classes="card-stats")
            # Messages per second over the last 30 s, as this card saw them arrive.
            yield Sparkline([], classes="card-rate")
        yield Static("", classes="card-chunk")
        yield Log(max_lines=LOG_LINES, classes="card-log")
        yield Static("", classes="card-text")
        yield Static("", classes="card-outcome")

    def on_mount(self) -> None:
        self._composed = True
        self.query_one(".card-log").display = False  # shown with the first chunk
        self.query_one(".card-hint").display = False
        self.query_one(".card-steps").display = False  # shown once two steps are known
        self.query_one(".card-text").display = False
        self.query_one(".card-outcome").display = False
        self.refresh_from_state()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.CancelRequested(self))

    # -- batched updates --------------------------------------------------------

    def refresh_from_state(self) -> None:
        """Apply every change since the last call: one widget update per batch, not per message."""
        if not self._composed:
            return
        # NoMatches: the app is closing and this card's children are already gone.
        with contextlib.suppress(NoMatches):
            self._apply(self.state, self._clock())

    def _apply(self, state: StreamState, now: float) -> None:
        if state.version != self._applied_version:
            self._applied_version = state.version
            self._apply_status(state)
            self._apply_title(state)
            self._apply_log(state)
            self._apply_progress(state)
            self._apply_steps(state)
            self._apply_hint(state)
            self._apply_outcome(state)
        self._apply_stats(state, now)
        self._apply_rate(state, now)

    def _apply_status(self, state: StreamState) -> None:
        if state.status == self._status:
            return
        # One restyle of the card's widgets for the swap, not one per class: each
        # costs tens of milliseconds on a small machine.
        self.remove_class(f"-{self._status}" if self._status else "-pending", update=False)
        self._status = state.status
        self.add_class(f"-{state.status}")
        self.query_one(".card-status", Static).update(state.status)
        self.query_one(".card-cancel", Button).display = not state.finished

    def _apply_title(self, state: StreamState) -> None:
        if state.run_id and state.run_id != self._shown_run_id:
            self._shown_run_id = state.run_id
            self.query_one(".card-title", Static).update(f"{self._title} · {state.run_id}")
            # A watched URL turned out to be a streambind run: Cancel now cancels it.
            self.query_one(".card-cancel", Button).label = self._cancel_label

    def _apply_log(self, state: StreamState) -> None:
        """``stream.chunks`` into the log (or, for text pieces, the assembled text)."""
        count = len(state.chunks)
        if count == self._applied_chunks:
            return
        first_new = self._applied_chunks
        self._applied_chunks = count
        text = joined_text(state.chunks[first_new:])
        if text is not None:
            self._show_text(text)
            return
        # Only the lines the log keeps are decoded and written: one write per batch.
        log = self.query_one(".card-log", Log)
        log.display = True
        full = log.line_count >= LOG_LINES
        self._write_log_lines(log, state.chunks[max(first_new, count - LOG_LINES) :])
        if full:
            # Textual's Log, once full, repaints the rows the new lines had before it
            # trimmed the oldest: the screen would keep showing old lines. Repainting
            # its few visible rows is cheap and asks for no layout pass.
            log.refresh()

    def _show_text(self, text: str) -> None:
        if not self._text_mode:
            self._text_mode = True
            self.query_one(".card-log").display = False
            self.query_one(".card-text").display = True
        self._text = (self._text + text)[-TEXT_CHARS:]
        self.query_one(".card-text", Static).update(Text(self._text))

    def _apply_progress(self, state: StreamState) -> None:
        """``stream.chunk`` into the bar, its step label and the latest-chunk line."""
        bar = self.query_one(".card-bar", ProgressBar)
        progress = progress_of(state.chunk)
        fraction = bar_fraction(state)
        if fraction is not None:
            bar.update(total=1.0, progress=fraction)
        step = progress.step or ""
        if step != self._shown_step:  # its width may change: a layout pass, but rarely
            self._shown_step = step
            self.query_one(".card-step", Static).update(step)
        chunk = "" if state.chunk is None else f"chunk: {_one_line(state.chunk)}"
        # One line that never changes size: no layout pass for it.
        self.query_one(".card-chunk", Static).update(Text(chunk[:_CHUNK_CHARS]), layout=False)

    def _apply_steps(self, state: StreamState) -> None:
        """Every step seen (or announced) so far: done, the current one, those to come."""
        tracker = state.steps
        if state.status == "succeeded" and isinstance(state.result, dict):
            tracker.announce(state.result.get("steps"))
        if tracker.known < 2:
            return  # one step is what the label beside the bar already says
        line = steps_line(tracker.steps(bar_fraction(state), state.status == "succeeded"))
        if line == self._shown_steps:
            return
        widget = self.query_one(".card-steps", Static)
        if not self._shown_steps:
            widget.display = True  # its one layout pass: the row appears
        self._shown_steps = line
        # One line that never changes size: no layout pass for it.
        widget.update(Text(line), layout=False)

    def _apply_rate(self, state: StreamState, now: float) -> None:
        """The sparkline of messages per second; frozen once the run has ended."""
        if self._stats_final and self._counted_chunks == len(state.chunks):
            return
        count = len(state.chunks)
        self._arrivals.add(now, count - self._counted_chunks)
        self._counted_chunks = count
        series = self._arrivals.series(now)
        if series != self._shown_series:
            self._shown_series = series
            self.query_one(".card-rate", Sparkline).data = series

    def _apply_stats(self, state: StreamState, now: float) -> None:
        if self._stats_final:
            return
        progress = progress_of(state.chunk)
        parts = []
        if (counts := done_of_total(progress)) is not None:
            parts.append(counts)
        parts.append(format_duration(state.elapsed(now)))
        rate, left = self._rate.update(now, progress)
        if rate is not None and not state.finished:
            parts.append(f"{rate:,.1f}/s")
            parts.append(f"ETA {format_duration(left or 0.0)}")
        parts.append(chunk_count(len(state.chunks)))
        if state.reconnects:
            parts.append(f"{state.reconnects} reconnect{'' if state.reconnects == 1 else 's'}")
        self.query_one(".card-stats", Static).update(" · ".join(parts), layout=False)
        self._stats_final = state.finished

    def _apply_hint(self, state: StreamState) -> None:
        hint = ""
        if state.busy and not state.finished:
            hint = state.busy[:1].upper() + state.busy[1:] + "."
        elif not state.handle_stream and not state.finished:
            hint = HINT_STREAM_OFF
        elif not state.handle_stream and state.streamed and state.finished:
            hint = HINT_STREAM_WAS_OFF.format(n=f"{len(state.chunks):,}")
        elif state.status == "succeeded" and not state.streamed:
            hint = HINT_NO_STREAM
        if hint == self._shown_hint:  # an update is a layout pass: only on a change
            return
        self._shown_hint = hint
        widget = self.query_one(".card-hint", Static)
        widget.update(hint)
        widget.display = bool(hint)

    def _apply_outcome(self, state: StreamState) -> None:
        widget = self.query_one(".card-outcome", Static)
        if state.status == "failed":
            widget.update(Text(f"Error: {state.error_message() or 'unknown error'}"))
        elif state.status == "succeeded" and not self._text_mode:
            widget.update(Text(f"Result: {_one_line(state.result)}"[: _CHUNK_CHARS * 2]))
        elif state.status == "cancelled":
            widget.update("Cancelled.")
        elif state.status == "stopped":
            widget.update("Stopped watching: the stream's source was not asked to cancel anything.")
        else:
            widget.display = False
            return
        widget.display = True


def _one_line(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
