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

from httpx_sse import ServerSentEvent

__all__ = ["EventFields", "SSEDecoder", "ServerSentEvent"]

#: One event's type, data, id and the stream's reconnection time, as ``ServerSentEvent``
#: takes them.
EventFields = tuple[str, str, str, int | None]


class SSEDecoder:
    """Feed it the bytes of one stream, in chunks of any size; it returns whole events."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._at_start = True  # a byte-order mark is only stripped at the very start
        self._partial = ""  # a line whose end has not arrived yet
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
        self._partial = ""
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
        if self._partial:
            lines[0] = self._partial + lines[0]
        self._partial = lines.pop()
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
        self._data, self._event, self._id = data, event_type, event_id
        return events
