"""Small screens over the app: one message pretty-printed, and the log's search prompt."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

__all__ = ["MessageScreen", "SearchScreen"]


class MessageScreen(ModalScreen[None]):
    """One message of ``stream.chunks``, whole and indented; Escape or Enter closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "dismiss", "Close"),
    ]

    def __init__(self, title: str, message: Any) -> None:
        super().__init__()
        self._title = title
        self.message = message

    @property
    def text(self) -> str:
        """The message as shown: a string as it is, anything else as indented JSON."""
        if isinstance(self.message, str):
            return self.message
        return json.dumps(self.message, indent=2, ensure_ascii=False)

    def compose(self) -> ComposeResult:
        body: Any = self.text
        if not isinstance(self.message, str):
            body = Syntax(self.text, "json", theme="ansi_dark", word_wrap=True)
        with Vertical(id="message-dialog"):
            yield Static(self._title, id="message-title")
            with VerticalScroll(id="message-body"):
                yield Static(body)


class SearchScreen(ModalScreen[str | None]):
    """Asks for the text to look for; Enter returns it, Escape returns None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Cancel")]

    def __init__(self, last: str = "") -> None:
        super().__init__()
        self._last = last

    def compose(self) -> ComposeResult:
        with Vertical(id="search-dialog"):
            yield Static("Search the log (Enter finds the next match above)")
            yield Input(self._last, placeholder="text", id="search-text")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)
