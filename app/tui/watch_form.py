"""The panel that watches any SSE URL: method, URL, JSON body and headers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, Label, Select, Static

from ..headers import header_problem

__all__ = ["WatchForm", "WatchRequest", "parse_headers"]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class WatchRequest:
    method: str
    url: str
    body: Any
    headers: dict[str, str]


def parse_headers(text: str) -> dict[str, str]:
    """``Name: value; Other: value`` (or one per line) into a dict; ValueError says why not."""
    headers: dict[str, str] = {}
    for part in text.replace("\n", ";").split(";"):
        if not part.strip():
            continue
        name, colon, value = part.partition(":")
        if not colon or not name.strip():
            raise ValueError(f"{part.strip()!r} is not 'Name: value'")
        if (problem := header_problem(name.strip(), value.strip())) is not None:
            raise ValueError(problem)
        headers[name.strip()] = value.strip()
    return headers


class WatchForm(Vertical):
    class WatchRequested(Message):
        def __init__(self, request: WatchRequest) -> None:
            super().__init__()
            self.request = request

    def compose(self) -> ComposeResult:
        yield Static("Watch any SSE stream", classes="form-title")
        yield Static(
            "Follow a Server-Sent Events URL of any server, with the same card.",
            classes="form-description",
        )
        with Horizontal(classes="field"):
            yield Label("method", classes="field-label")
            yield Select(
                [(m, m) for m in METHODS], value="GET", allow_blank=False, id="watch-method",
                compact=True,
            )  # fmt: skip
        with Horizontal(classes="field"):
            yield Label("url", classes="field-label")
            yield Input(placeholder="http://host/path", id="watch-url", compact=True)
        with Horizontal(classes="field"):
            yield Label("json body", classes="field-label")
            yield Input(placeholder='{"prompt": "hi"}', id="watch-body", compact=True)
        with Horizontal(classes="field"):
            yield Label("headers", classes="field-label")
            yield Input(placeholder="Authorization: Bearer …", id="watch-headers", compact=True)
        yield Static("", id="watch-error", classes="field-error")
        yield Button("Watch", id="watch-go", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#watch-error").display = False

    def request(self) -> WatchRequest | None:
        """The request the fields describe, or None after showing what is wrong."""
        error = self.query_one("#watch-error", Static)
        url = self.query_one("#watch-url", Input).value.strip()
        body_text = self.query_one("#watch-body", Input).value.strip()
        problem = ""
        body: Any = None
        headers: dict[str, str] = {}
        if not url.startswith(("http://", "https://")):
            problem = "url must start with http:// or https://"
        else:
            try:
                body = json.loads(body_text) if body_text else None
            except ValueError as exc:
                problem = f"json body is not JSON: {exc}"
            try:
                headers = parse_headers(self.query_one("#watch-headers", Input).value)
            except ValueError as exc:
                problem = problem or f"headers: {exc}"
        error.update(problem)
        error.display = bool(problem)
        if problem:
            return None
        method = str(self.query_one("#watch-method", Select).value)
        return WatchRequest(method, url, body, headers)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "watch-go":
            event.stop()
            self.submit()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def submit(self) -> None:
        if (request := self.request()) is not None:
            self.post_message(self.WatchRequested(request))
