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
from itertools import repeat

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
        carried = self._data
        events: list[EventFields] = []
        # A chunk of a busy stream is mostly whole blocks in one spelling: those are read
        # in bulk, and only the lines around them (the block the previous chunk began,
        # the one the next chunk ends) line by line.
        blocks_start = _after_first_blank(lines)
        blocks_end = _after_last_blank(lines)
        if blocks_start < blocks_end:
            self._read_lines(lines[:blocks_start], events)
            if not self._read_blocks(lines[blocks_start:blocks_end], events):
                self._read_lines(lines[blocks_start:blocks_end], events)
            self._read_lines(lines[blocks_end:], events)
        else:
            self._read_lines(lines, events)
        data = self._data
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

    def _read_lines(self, lines: list[str], events: list[EventFields]) -> None:
        """The standard's line rules, in one loop with the block's fields in locals."""
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

    def _read_blocks(self, lines: list[str], events: list[EventFields]) -> bool:
        """Whole blocks that all repeat the first one's spelling, read column by column.

        ``lines`` start a block and end with a blank line, so nothing is pending before
        or after them. The spellings read here are one ``data: `` line with ``id: ``
        and ``event: message`` lines in any order: what streambind and most servers
        send. They are read as the line rules read them, with string methods over all
        the blocks at once instead of a loop per line (a firehose's chunk holds
        hundreds of blocks). False, having changed nothing, if any block differs.
        """
        size = lines.index("") + 1  # lines per block, its blank line included
        # Every line is checked in its column: the blank lines here, the others below.
        if any(lines[size - 1 :: size]):
            return False
        data: list[str] | None = None
        ids: list[str] | None = None
        for position in range(size - 1):
            column = lines[position::size]
            head = column[0]
            if head.startswith("data: ") and data is None:  # two data lines would join
                data = _values(column, "data: ")
                if data is None:
                    return False
            elif head.startswith("id: "):  # a later id line wins, as in the loop
                ids = _values(column, "id: ")
                if ids is None or "\0" in "".join(ids):
                    return False  # the standard ignores an id with a NUL: left to the loop
            elif head != "event: message" or column.count(head) != len(column):
                return False  # ("message" is also the type of a block without this line)
        if data is None:
            return False
        if ids is None:  # the blocks carry the id the stream last set
            ids = [self._id] * len(data)
        else:
            self._id = ids[-1]
        self.last_event_id = self._id
        events += zip(repeat("message"), data, ids, repeat(self.retry))
        return True

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


def _after_first_blank(lines: list[str]) -> int:
    """The index just after the first blank line, or len(lines) if there is none."""
    try:
        return lines.index("") + 1
    except ValueError:
        return len(lines)


def _after_last_blank(lines: list[str]) -> int:
    """The index just after the last blank line, or 0 if there is none."""
    try:
        return len(lines) - lines[::-1].index("")
    except ValueError:
        return 0


def _values(column: list[str], prefix: str) -> list[str] | None:
    """The values of lines that all start with ``prefix``, or None if one does not.

    Lines hold no line feed, so once joined by one, every line after the first starts
    with the prefix exactly where ``\\n`` + prefix is found: one count checks them all,
    and one split takes the values.
    """
    joined = "\n".join(column)
    separator = "\n" + prefix
    if not joined.startswith(prefix) or joined.count(separator) != len(column) - 1:
        return None
    return joined[len(prefix) :].split(separator)


def _too_large(what: str, limit: int) -> StreamTooLarge:
    return StreamTooLarge(f"{what} of the stream is larger than the limit of {limit:,} characters")
