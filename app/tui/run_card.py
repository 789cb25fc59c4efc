"""One run on the board: its line binds ``stream.chunk``; expanded, its card shows the steps,
the rate, the log bound to ``stream.chunks`` (or the text as it is assembled) and the end."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Button, Sparkline, Static

from ..client import StreamCall
from ..progress import (
    RateMeter,
    bar_fraction,
    chunk_count,
    done_of_total,
    format_duration,
    joined_text,
    latest_progress,
)
from ..rates import MessageRate
from ..run_line import line_parts, short_label
from ..runs_view import fit
from ..state import CANCELLED_HERE, StreamState
from ..steps import steps_line
from .message_log import MessageLog
from .run_line import RunLine

__all__ = [
    "FROM_RUNS_TAB",
    "FROM_THIS_TUI",
    "FROM_WATCHED_URL",
    "HINT_NO_STREAM",
    "HINT_STREAM_OFF",
    "RunCard",
]

#: Where a card's run came from, as its card says.
FROM_THIS_TUI = "started here"
FROM_RUNS_TAB = "via Runs tab"
FROM_WATCHED_URL = "watched URL"

#: Log lines kept on screen; ``stream.chunks`` itself keeps every message.
LOG_LINES = 200
#: Characters of assembled text kept on screen for text streams.
TEXT_CHARS = 200_000
_RESULT_CHARS = 600
#: Log lines are cut (with ``…``) to the log's width, but never below this.

HINT_STREAM_OFF = "Handle stream is off: progress will show when the call finishes."
HINT_STREAM_WAS_OFF = "Handle stream was off: all {n} chunks arrived at once, at the end."
HINT_NO_STREAM = (
    "This endpoint finished without sending a streaming message: "
    "there was no progress to show, only its result."
)


class RunCard(Vertical, can_focus=True):
    """A run's line, and its card when expanded (Enter). ``refresh_from_state`` applies
    what arrived since the last time: one batch of widget updates, never one per message."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "expand", "Expand"),
        Binding("c", "cancel", "Cancel"),
        Binding("y", "copy_result", "Copy result", show=False),
        Binding("s", "save_chunks", "Save NDJSON", show=False),
        Binding("x", "dismiss", "Dismiss"),
    ]

    class CancelRequested(Message):
        def __init__(self, card: RunCard) -> None:
            super().__init__()
            self.card = card

    class DismissRequested(Message):
        def __init__(self, card: RunCard) -> None:
            super().__init__()
            self.card = card

    class SaveRequested(Message):
        def __init__(self, card: RunCard) -> None:
            super().__init__()
            self.card = card

    def __init__(
        self,
        call: StreamCall,
        title: str,
        clock: Callable[[], float],
        origin: str = FROM_THIS_TUI,
        detail: str = "",
    ) -> None:
        super().__init__(classes="card -pending")
        self.call = call
        self.origin = origin
        self._title = title
        self._detail = detail
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
        self._shown_run_id: str | None = None
        self._shown_hint = ""
        self._shown_stats = ""
        self._cancel_label = ""
        self._composed = False  # the app's timer may tick before the children exist

    # -- what it is ---------------------------------------------------------------------

    @property
    def state(self) -> StreamState:
        return self.call.state

    @property
    def expanded(self) -> bool:
        return self.has_class("-expanded")

    @property
    def label(self) -> str:
        """``import·0dd5``: what the footer and the palette call this run."""
        return short_label(self._title, self.state.run_id)

    def compose(self) -> ComposeResult:
        yield RunLine(self._title, self._detail)
        with Vertical(classes="card-body"):
            with Horizontal(classes="card-head"):
                yield Static(self._identity(), classes="card-title")
                yield Static("pending", classes="card-status")
                yield Button("Cancel", classes="card-cancel", compact=True, variant="error")
            yield Static("", classes="card-hint")
            yield Static("", classes="card-steps")
            with Horizontal(classes="card-meta"):
                yield Static("", classes="card-stats")
                # Messages per second over the last 30 s, as this card saw them arrive.
                yield Sparkline([], classes="card-rate")
            yield MessageLog(max_lines=LOG_LINES, classes="card-log")
            with VerticalScroll(classes="card-text", can_focus=True):
                yield Static("", classes="card-text-body")
            yield Static("", classes="card-outcome")

    def _identity(self) -> str:
        run = self.state.run_id or "no run id yet"
        return f"{self._title} · {run} · {self.origin}"

    def on_mount(self) -> None:
        self._composed = True
        for selector in (".card-log", ".card-hint", ".card-steps", ".card-text", ".card-outcome"):
            self.query_one(selector).display = False  # each appears when it has something
        self._relabel_cancel()
        self.refresh_from_state()

    # -- keys and buttons ------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.CancelRequested(self))

    def on_click(self) -> None:
        self.focus()

    def action_expand(self) -> None:
        self.set_expanded(not self.expanded)

    def set_expanded(self, expanded: bool) -> None:
        self.set_class(expanded, "-expanded")
        self._bindings.key_to_bindings["enter"] = [
            Binding("enter", "expand", "Collapse" if expanded else "Expand")
        ]
        if self.is_mounted:
            self.refresh_bindings()
        if expanded:
            self._applied_version = -1  # the body catches up with everything at once
            self.refresh_from_state()

    def action_cancel(self) -> None:
        self.post_message(self.CancelRequested(self))

    def action_dismiss(self) -> None:
        self.post_message(self.DismissRequested(self))

    def action_copy_result(self) -> None:
        state = self.state
        if state.status == "succeeded":
            self.app.copy_to_clipboard(json.dumps(state.result, ensure_ascii=False))
            self.notify(f"The result of {self.label} is on the clipboard.", timeout=3)
        elif state.error:
            self.app.copy_to_clipboard(json.dumps(state.error, ensure_ascii=False))
            self.notify(f"The error of {self.label} is on the clipboard.", timeout=3)

    def action_save_chunks(self) -> None:
        self.post_message(self.SaveRequested(self))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        state = self.state
        if action == "cancel":
            return not state.finished
        if action == "copy_result":
            return state.status == "succeeded" or bool(state.error)
        if action == "save_chunks":
            return len(state.chunks) > 0
        if action == "expand":
            return True
        return True

    def _relabel_cancel(self) -> None:
        """The footer names what ``c`` acts on: ``Cancel import·0dd5``, or ``Stop`` for a
        watched stream that is not a streambind run."""
        verb = "Cancel" if self.call.cancels_run else "Stop"
        wanted = f"{verb} {self.label}"
        if wanted == self._cancel_label:
            return
        self._cancel_label = wanted
        self._bindings.key_to_bindings["c"] = [Binding("c", "cancel", wanted)]

        with contextlib.suppress(NoMatches):
            self.query_one(".card-cancel", Button).label = verb
        self.refresh_bindings()

    # -- batched updates --------------------------------------------------------------------

    def refresh_from_state(self) -> None:
        """Apply every change since the last call: one widget update per batch, not per message."""
        if not self._composed:
            return
        # NoMatches: the app is closing and this card's children are already gone.
        with contextlib.suppress(NoMatches):
            self._apply(self.state, self._clock())

    def _apply(self, state: StreamState, now: float) -> None:
        parts = line_parts(state, now, self._rate)
        self.query_one(RunLine).show(parts, None if state.finished else now)
        changed = state.version != self._applied_version
        if changed:
            self._apply_status(state)
            self._apply_identity(state)
        if not self.expanded:
            self._count_arrivals(state, now)
            return
        if changed:
            self._applied_version = state.version
            self._apply_log(state)
            self._apply_steps(state)
            self._apply_hint(state)
            self._apply_outcome(state)
        self._apply_stats(state, now, parts.rate, parts.eta)
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
        self.refresh_bindings()

    def _apply_identity(self, state: StreamState) -> None:
        if state.run_id != self._shown_run_id:
            self._shown_run_id = state.run_id
            self.query_one(".card-title", Static).update(self._identity())
        self._relabel_cancel()  # a watched URL may turn out to be a streambind run

    def _apply_log(self, state: StreamState) -> None:
        """``stream.chunks`` into the log (or, for text pieces, the assembled text)."""
        count = state.chunks.received
        if count == self._applied_chunks:
            return
        first_new = self._applied_chunks
        self._applied_chunks = count
        text = joined_text(state.chunks.between(first_new))
        if text is not None and (self._text_mode or first_new == 0):
            self._show_text(text)
            return
        if self._text_mode:  # a stream that was text, then was not: the log from now on
            self._text_mode = False
            self.query_one(".card-text").display = False
        # Only the lines the log keeps are decoded and written: one write per batch.
        log = self.query_one(MessageLog)
        log.display = True
        full = log.line_count >= LOG_LINES
        first = max(first_new, count - LOG_LINES)
        self._write_log_lines(log, state.chunks.between(first))
        log.kept(count - log.line_count)
        if full:
            # Textual's Log, once full, repaints the rows the new lines had before it
            # trimmed the oldest: the screen would keep showing old lines. Repainting
            # its few visible rows is cheap and asks for no layout pass.
            log.refresh()

    def _write_log_lines(self, log: MessageLog, chunks: list[Any]) -> None:
        log.write_texts([_one_line(chunk) for chunk in chunks])

    def _show_text(self, text: str) -> None:
        scroll = self.query_one(".card-text", VerticalScroll)
        if not self._text_mode:
            self._text_mode = True
            self.query_one(MessageLog).display = False
            scroll.display = True
        # Follow the newest text while the reader is at the end; leave them where they
        # scrolled back to otherwise.
        following = scroll.scroll_y >= scroll.max_scroll_y - 1
        self._text = (self._text + text)[-TEXT_CHARS:]
        self.query_one(".card-text-body", Static).update(Text(self._text))
        if following:
            scroll.call_after_refresh(scroll.scroll_end, animate=False)

    def _apply_steps(self, state: StreamState) -> None:
        """Every step seen (or announced) so far: done, the current one, those to come."""
        tracker = state.steps
        if state.status == "succeeded" and isinstance(state.result, dict):
            tracker.announce(state.result.get("steps"))
        if tracker.known < 2:
            return  # one step is what the line already says
        line = steps_line(tracker.steps(bar_fraction(state), state.status == "succeeded"))
        if line == self._shown_steps:
            return
        widget = self.query_one(".card-steps", Static)
        if not self._shown_steps:
            widget.display = True  # its one layout pass: the row appears
        self._shown_steps = line
        # One line that never changes size: no layout pass for it.
        widget.update(Text(line), layout=False)

    def _count_arrivals(self, state: StreamState, now: float) -> None:
        count = state.chunks.received
        if count != self._counted_chunks:
            self._arrivals.add(now, count - self._counted_chunks)
            self._counted_chunks = count

    def _apply_rate(self, state: StreamState, now: float) -> None:
        """The sparkline of messages per second; it stands still once the run has ended."""
        self._count_arrivals(state, now)
        if state.finished and self._shown_series:
            return
        series = self._arrivals.series(now)
        if series != self._shown_series:
            self._shown_series = series
            self.query_one(".card-rate", Sparkline).data = series

    def _apply_stats(self, state: StreamState, now: float, rate: str, eta: str) -> None:
        progress = latest_progress(state)
        parts = [done_of_total(progress), format_duration(state.elapsed(now))]
        if not state.finished:
            parts += [rate, eta]
        parts.append(chunk_count(state.chunks.received))
        if state.reconnects and not state.reconnecting:
            parts.append(f"{state.reconnects} reconnect{'' if state.reconnects == 1 else 's'}")
        stats = " · ".join(part for part in parts if part)
        if stats != self._shown_stats:
            self._shown_stats = stats
            self.query_one(".card-stats", Static).update(stats, layout=False)

    def _apply_hint(self, state: StreamState) -> None:
        hint = ""
        if state.busy and not state.finished:
            hint = state.busy[:1].upper() + state.busy[1:] + "."
        elif not state.handle_stream and not state.finished:
            hint = HINT_STREAM_OFF
        elif not state.handle_stream and state.streamed and state.finished:
            hint = HINT_STREAM_WAS_OFF.format(n=f"{state.chunks.received:,}")
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
            widget.update(Text(fit(f"Result: {_one_line(state.result)}", _RESULT_CHARS)))
        elif state.status == "cancelled" and state.cancel_reason == CANCELLED_HERE:
            widget.update("Cancelled here.")
        elif state.status == "cancelled":
            widget.update(Text(f"Cancelled: {state.cancel_reason or 'by the server'}."))
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
