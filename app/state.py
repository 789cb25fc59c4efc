"""``StreamState``: everything known about one call, and the rules that apply events to it.

The transport (``client.py``) reads bytes and decodes events; what each event means for
``stream.chunk``, ``stream.chunks``, the status and the result is decided here, once,
for the TUI, ``streambind call`` and scripts alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .chunks import Chunks
from .jsondecode import decode_each, decode_json
from .sse import EventFields
from .steps import StepTracker

__all__ = ["CANCELLED_HERE", "CANCEL_REASONS", "DONE_SENTINEL", "TERMINAL", "StreamState"]

#: How a call can end. ``stopped``: the client stopped watching a stream that is not a
#: streambind run, which nothing on the client's side can cancel.
TERMINAL = ("succeeded", "failed", "cancelled", "stopped")
#: What the server's ``cancelled`` event says of why, in words a card can show.
CANCEL_REASONS = {
    "requested": "a cancel was asked for (DELETE)",
    "abandoned": "nobody followed it within the server's grace period",
    "caller_left": "its caller left before the run sent anything",
    "shutdown": "the server shut down",
}
#: What a cancel asked for by this client says.
CANCELLED_HERE = "cancelled here"
#: The sentinel OpenAI-style APIs send as their last message.
DONE_SENTINEL = "[DONE]"


@dataclass(eq=False)
class StreamState:
    """Everything known about one call; UIs bind ``chunk`` and ``chunks``."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    handle_stream: bool = True
    status: str = "pending"
    #: The latest message (``stream.chunk``), JSON-decoded where it is JSON.
    chunk: Any = None
    #: The messages so far, in order (``stream.chunks``), kept compactly: the newest
    #: ``ClientSettings.max_chunks`` of them (``chunks.received`` counts every one).
    chunks: Chunks = field(default_factory=Chunks)
    result: Any = None
    error: dict[str, Any] | None = None
    run_id: str | None = None
    last_event_id: str = ""
    #: Whether the response was an event stream (False: one plain JSON response).
    streamed: bool = False
    reconnects: int = 0
    #: The stream is down and the call is waiting to resume it.
    reconnecting: bool = False
    #: Why the run was cancelled, in words: as the server's ``cancelled`` event says
    #: (``CANCEL_REASONS``), or ``cancelled here`` when this client asked.
    cancel_reason: str | None = None
    #: While the server answers that it is busy and the call waits to ask again: why.
    busy: str | None = None
    bytes_received: int = 0
    started_at: float | None = None
    first_chunk_at: float | None = None
    finished_at: float | None = None
    #: Bumped on every change, so a UI can apply changes in batches on a timer.
    version: int = 0
    #: The named steps the chunks have gone through (``step``, ``steps``), in order.
    steps: StepTracker = field(default_factory=StepTracker)
    #: (chunk, what it says of progress), kept by ``progress.latest_progress``: the bar,
    #: the line, the stats and the steps of one frame all ask, and the chunk is read once.
    progress_memo: tuple[Any, Any] | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def elapsed(self, now: float) -> float:
        if self.started_at is None:
            return 0.0
        return (self.finished_at if self.finished_at is not None else now) - self.started_at

    def error_message(self) -> str:
        if not self.error:
            return ""
        message = str(self.error.get("message", ""))
        fields = self.error.get("fields")
        if isinstance(fields, dict) and fields:
            message += ": " + "; ".join(f"{k}: {v}" for k, v in fields.items())
        return message

    # -- changes --------------------------------------------------------------------

    def start(self, now: float) -> None:
        self.started_at = now
        self.status = "running"
        self.version += 1

    def finish(self, status: str, now: float) -> None:
        """End the call (once: a later end changes nothing)."""
        if self.status in TERMINAL:
            return
        self.status = status
        self.finished_at = now
        self.version += 1

    def fail(self, kind: str, message: str, now: float, **details: Any) -> None:
        if self.status in TERMINAL:
            return
        self.error = {"type": kind, "message": message, **details}
        self.finish("failed", now)

    def fail_with(self, error: dict[str, Any], now: float) -> None:
        """End as failed with an error the server described."""
        if self.status in TERMINAL:
            return
        self.error = error
        self.finish("failed", now)

    def take_held(self, held: StreamState, now: float) -> None:
        """Handle stream off: take in, at the end, what ``held`` received meanwhile.

        The content (messages, steps, result, error) is ``held``'s; how the call ended is
        this state's when it has already ended (a cancel), else ``held``'s.
        """
        self.chunks = held.chunks
        self.chunk = held.chunk
        self.steps = held.steps
        self.last_event_id = held.last_event_id
        self.first_chunk_at = held.first_chunk_at
        if held.result is not None:
            self.result = held.result
        self.version += 1 + held.chunks.received
        if self.finished:
            return
        if held.finished:
            self.error = held.error
            self.finish(held.status, now)
        else:
            self.fail("protocol_error", "the call ended without saying how", now)

    def take_result(self, result: Any, now: float) -> None:
        """A whole response that was not a stream: its body is the result."""
        self.result = result
        self.finish("succeeded", now)

    def apply_events(
        self,
        events: Sequence[EventFields],
        clock: Callable[[], float],
        on_chunk: Callable[[Any], None] | None = None,
    ) -> bool:
        """Apply a chunk's events in order, ``on_chunk`` called with each message; True
        once one of them has ended the call (the events after it are left unapplied)."""
        # Without on_chunk nobody sees the state between two messages, so the plain
        # messages that lead (a busy stream's whole chunk, often) are applied together.
        start = self._apply_messages(events, clock) if on_chunk is None else 0
        for index in range(start, len(events)):
            event_type, text, event_id, _ = events[index]
            if self.apply_event(event_type, text, event_id, clock) and on_chunk is not None:
                on_chunk(self.chunk)
            if self.status in TERMINAL:
                return True
        return False

    def _apply_messages(self, events: Sequence[EventFields], clock: Callable[[], float]) -> int:
        """Apply the plain messages the events start with, as ``apply_event`` would one by
        one; how many it applied (0: apply them one by one).

        A plain message (type ``message``, JSON: so not ``[DONE]``) only adds to ``chunks``,
        ``steps`` and ``version`` and becomes ``chunk``: for a run of them, a few calls
        do that instead of a few per message.
        """
        if len(events) < 2:
            return 0
        types, texts, ids, _ = zip(*events, strict=True)
        count = len(events)
        if types.count("message") != count:
            count = next(i for i, event_type in enumerate(types) if event_type != "message")
        if count < 2:
            return 0
        texts = texts[:count]
        values = decode_each(texts)
        if values is None:  # some are not JSON ([DONE] included), or are left to json.loads
            return 0
        last_id = next(filter(None, reversed(ids[:count])), "")  # an empty id changes nothing
        if last_id:
            self.last_event_id = last_id
        self.chunks.add_json(texts)
        self.chunk = values[-1]
        self.steps.see_all(values)
        if self.first_chunk_at is None:
            self.first_chunk_at = clock()
        self.version += count
        return count

    def apply_event(
        self, event_type: str, text: str, event_id: str, clock: Callable[[], float]
    ) -> bool:
        """Apply one event as it arrives; True when it was a message (a new ``chunk``)."""
        if event_id:
            self.last_event_id = event_id
        if text == DONE_SENTINEL:
            self.finish("succeeded", clock())
            return False
        # The message's value: JSON where it is JSON, else the text.
        try:
            data, is_json = decode_json(text), True
        except ValueError:
            data, is_json = text, False
        if event_type != "message" and self._end_on_terminal_event(event_type, data, clock):
            return False
        self.chunks.add(text, is_json)
        self.chunk = data
        if is_json:
            self.steps.see(data)
        if self.first_chunk_at is None:
            self.first_chunk_at = clock()
        self.version += 1
        return True

    def _end_on_terminal_event(self, name: str, data: Any, clock: Callable[[], float]) -> bool:
        """End the call if this is one of streambind's terminal events; False if it is not.

        Other servers' events of these names, with other data, are ordinary messages.
        """
        if not isinstance(data, dict):
            return False
        status = data.get("status")
        if name == "end" and status == "succeeded":
            self.result = data.get("result")
            self.finish("succeeded", clock())
        elif name == "error" and status in ("failed", "fell_behind"):
            error = data.get("error")
            self.fail_with(error if isinstance(error, dict) else {"message": str(error)}, clock())
        elif name == "cancelled" and status == "cancelled":
            reason = data.get("reason")
            if self.cancel_reason is None and isinstance(reason, str):
                self.cancel_reason = CANCEL_REASONS.get(reason, reason)
            self.finish("cancelled", clock())
        else:
            return False
        return True
