"""Decoding an event stream exactly as the WHATWG HTML standard tells browsers to.

httpx-sse's decoder gets the common cases right but departs from the standard in a
few: it keeps a leading byte-order mark (losing the first field), dispatches blocks
that set only ``id``, ``event`` or ``retry`` as empty events, and accepts ``retry``
values such as ``-1`` or ``1_000``. This decoder follows the standard's rules and
produces httpx-sse's ``ServerSentEvent`` objects, so code written for httpx-sse
reads its events unchanged.
"""

from __future__ import annotations

import codecs
import sys

from httpx_sse import ServerSentEvent

__all__ = ["EventFields", "SSEDecoder", "ServerSentEvent", "StreamTooLarge"]

#: One event's type, data, id and the stream's reconnection time, as ``ServerSentEvent``
#: takes them.
EventFields = tuple[str, str, str, int | None]


class StreamTooLarge(ValueError):
    """A line or an event longer than the decoder's limit; the message is meant for people."""


class SSEDecoder:
    """Feed it the bytes of one stream, in chunks of any size; it returns whole events."""

    def __init__(
        self, *, max_line_size: int | None = None, max_event_size: int | None = None
    ) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._at_start = True  # a byte-order mark is only stripped at the very start
        #: Limits in characters of decoded text; beyond them ``feed`` raises StreamTooLarge.
        self.max_line_size = max_line_size or sys.maxsize
        self.max_event_size = max_event_size or sys.maxsize
        # A line whose end has not arrived yet, as the pieces that came: joined once, when
        # its end comes, so a long line costs time in proportion to its length.
        self._partial: list[str] = []
        self._partial_size = 0
        self._event_size = 0  # the unfinished event's data lines, counted up to...
        self._event_counted = 0  # ...this many of them: each line is counted once
        #: Characters copied to assemble lines that spanned chunks (linear: each once).
        self.copied = 0
        self._after_cr = False  # the last chunk ended with CR: an LF next belongs to it
        self._data: list[str] = []
        self._event = ""
        self._id = ""
        #: The id of the last dispatched block; the standard keeps it across events.
        self.last_event_id = ""
        #: The reconnection time in milliseconds the stream asked for, if any.
        self.retry: int | None = None
        #: Comment lines seen (``: ping`` keep-alives, for instance).
        self.comments = 0

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        return [ServerSentEvent(*fields) for fields in self.feed_fields(chunk)]

    def feed_fields(self, chunk: bytes) -> list[EventFields]:
        """What ``feed`` returns, as plain tuples: for a client that reads millions of events."""
        return self._feed_text(self._text.decode(chunk))

    def close(self) -> list[ServerSentEvent]:
        """End of stream: an event that was not finished by a blank line is discarded."""
        self._feed_text(self._text.decode(b"", final=True))
        self._partial = []
        self._partial_size = 0
        self._event_size = self._event_counted = 0
        self._data = []
        self._event = ""
        return []

    def _feed_text(self, text: str) -> list[EventFields]:
        if not text:
            return []
        if self._at_start:
            self._at_start = False
            if text[0] == "\ufeff":
                text = text[1:]
        if self._after_cr:
            self._after_cr = False
            if text[:1] == "\n":
                text = text[1:]
        if "\r" in text:
            self._after_cr = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        last = lines.pop()
        if not lines:  # no line ends here: keep the piece, copy nothing
            self._keep_partial(last)
            return []
        if self._partial:
            self._partial.append(lines[0])
            lines[0] = "".join(self._partial)
            self.copied += len(lines[0])
        self._partial = []
        self._partial_size = 0
        self._keep_partial(last)
        # Only a chunk that could reach a limit is checked line by line: for a stream of
        # ordinary events the limits cost nothing.
        if len(lines[0]) + len(text) > self.max_line_size:
            self._check_lines(lines)
        # The standard's line rules, in one loop with the block's fields in locals:
        # this runs once per line of every stream.
        events = []
        data, event_type, event_id = self._data, self._event, self._id
        for line in lines:
            # The usual spellings first; they mean what the general rule at the end says.
            if line.startswith("data: "):
                data.append(line[6:])
            elif not line:  # a blank line dispatches the block
                self.last_event_id = event_id
                if data:
                    joined = data[0] if len(data) == 1 else "\n".join(data)
                    events.append((event_type or "message", joined, event_id, self.retry))
                    data = []
                event_type = ""
            elif line.startswith("id: ") and "\0" not in line:
                event_id = line[4:]
            elif line.startswith("event: "):
                event_type = line[7:]
            elif line[0] == ":":
                self.comments += 1
            else:
                name, colon, value = line.partition(":")
                if colon and value[:1] == " ":
                    value = value[1:]
                if name == "data":
                    data.append(value)
                elif name == "event":
                    event_type = value
                elif name == "id":
                    if "\0" not in value:
                        event_id = value
                elif name == "retry" and value.isascii() and value.isdigit():
                    self.retry = int(value)
        carried = self._data
        self._data, self._event, self._id = data, event_type, event_id
        # An event dispatched here holds at most what was carried in plus this chunk: only
        # near the limit are they measured. For the usual small events this costs nothing.
        if events and self._event_size + len(text) > self.max_event_size:
            for fields in events:
                if len(fields[1]) > self.max_event_size:
                    self._event_too_large()
        if not data:
            self._event_size = self._event_counted = 0
        elif data is carried and len(data) == self._event_counted:
            pass
        else:
            if data is not carried:
                self._event_size = self._event_counted = 0
            new = len(data) - self._event_counted
            self._event_size += sum(map(len, data[self._event_counted :])) + new
            self._event_counted = len(data)
            if self._event_size > self.max_event_size:
                self._event_too_large()
        return events

    def _keep_partial(self, piece: str) -> None:
        if not piece:
            return
        self._partial.append(piece)
        self._partial_size += len(piece)
        if self._partial_size > self.max_line_size:
            raise _too_large("a line", self.max_line_size)

    def _check_lines(self, lines: list[str]) -> None:
        if max(map(len, lines)) > self.max_line_size:
            raise _too_large("a line", self.max_line_size)

    def _event_too_large(self) -> None:
        raise _too_large("an event", self.max_event_size)


def _too_large(what: str, limit: int) -> StreamTooLarge:
    return StreamTooLarge(f"{what} of the stream is larger than the limit of {limit:,} characters")
