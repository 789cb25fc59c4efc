"""A run's log of messages (``stream.chunks``): follows the newest, or browses with a cursor.

It keeps the last lines on screen (``stream.chunks`` keeps every message), each cut to the
log's width with ``…`` and cut again when that width changes; ``↑``/``k`` stops following and
puts a cursor on a line, Enter opens that message pretty-printed, ``/`` searches back
through the messages (whole, not as cut), Escape (or End) follows the newest again.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from rich.style import Style
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.strip import Strip
from textual.widgets import Log

from ..runs_view import fit

__all__ = ["MessageLog"]

#: The narrowest a line is cut for, before the log has its width.
_MIN_WIDTH = 20


class MessageLog(Log):
    """``Log`` with a cursor. Lines are numbered by message: ``first_index`` is the index in
    ``stream.chunks`` of the first line kept here."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"message-log--cursor"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Older", show=False),
        Binding("down,j", "cursor(1)", "Newer", show=False),
        Binding("enter", "open", "Open message"),
        Binding("slash", "search", "Search", key_display="/"),
        Binding("escape,end", "follow", "Follow newest", show=False),
    ]

    class OpenRequested(Message):
        """Show message ``index`` of ``stream.chunks`` whole."""

        def __init__(self, log: MessageLog, index: int) -> None:
            super().__init__()
            self.log = log
            self.index = index

    class SearchRequested(Message):
        def __init__(self, log: MessageLog) -> None:
            super().__init__()
            self.log = log

    def __init__(self, *, max_lines: int, classes: str = "") -> None:
        super().__init__(max_lines=max_lines, highlight=True, classes=classes)
        self.first_index = 0
        #: The message the cursor is on (an index of ``stream.chunks``), or None: following.
        self.cursor: int | None = None
        #: The lines whole, as written (the log's own are cut to its width).
        self._texts: deque[str] = deque(maxlen=max_lines)
        #: The width the lines were cut for.
        self._cut_for: int | None = None

    def write_texts(self, texts: list[str]) -> None:
        """Add a line per text, cut to the log's width (the lines before too, when they
        were cut for another width: written before the log had its size, say)."""
        width = self._cut_width()
        if self._cut_for is not None and self._cut_for != width:
            self._cut_again()
        self._texts.extend(texts)
        self._cut_for = width
        self.write_lines([fit(text, width) for text in texts])

    def clear(self) -> MessageLog:
        self._texts.clear()
        super().clear()
        return self

    def _cut_width(self) -> int:
        return max(_MIN_WIDTH, self.scrollable_content_region.width)

    def on_resize(self) -> None:
        if self._cut_for is not None and self._cut_for != self._cut_width():
            self.call_after_refresh(self._cut_again)

    def _cut_again(self) -> None:
        """Cut the lines again for the log's new width, so every cut still shows ``…``
        and nothing is cut that now fits."""
        width = self._cut_width()
        if width == self._cut_for:
            return
        self._cut_for = width
        texts = list(self._texts)
        super().clear()
        self.write_lines([fit(text, width) for text in texts])
        if self.cursor is not None:
            self._put_cursor(self.cursor)

    @property
    def last_index(self) -> int:
        return self.first_index + self.line_count - 1

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        if self.cursor is not None and self.scroll_offset.y + y == self.cursor - self.first_index:
            style = self.get_component_rich_style("message-log--cursor")
            return strip.apply_style(Style(bgcolor=style.bgcolor, bold=True))
        return strip

    def kept(self, first_index: int) -> None:
        """After a write: the first line kept is now message ``first_index``."""
        self.first_index = first_index
        if self.cursor is not None and self.cursor < first_index:
            self.cursor = first_index  # its line was trimmed: the oldest kept instead

    def action_cursor(self, delta: int) -> None:
        if not self.line_count:
            return
        wanted = self.last_index if self.cursor is None else self.cursor + delta
        self._put_cursor(max(self.first_index, min(self.last_index, wanted)))

    def _put_cursor(self, index: int) -> None:
        self.cursor = index
        self.auto_scroll = False  # browsing: new lines must not move the view
        self.scroll_to(y=index - self.first_index - self.size.height // 2, animate=False)
        self.refresh()

    def action_follow(self) -> None:
        self.cursor = None
        self.auto_scroll = True
        self.scroll_end(animate=False)
        self.refresh()

    def action_open(self) -> None:
        if self.line_count:
            index = self.last_index if self.cursor is None else self.cursor
            self.post_message(self.OpenRequested(self, index))

    def action_search(self) -> None:
        self.post_message(self.SearchRequested(self))

    def find(self, text: str) -> bool:
        """Put the cursor on the newest line above it (or the newest, when following) that
        holds ``text``, ignoring case, going round once; False when no line does."""
        if not text or not self.line_count:
            return False
        needle = text.casefold()
        count = self.line_count
        start = count - 1 if self.cursor is None else self.cursor - self.first_index - 1
        texts = self._texts
        for step in range(count):
            line = (start - step) % count
            if needle in texts[line].casefold():
                self._put_cursor(self.first_index + line)
                return True
        return False
