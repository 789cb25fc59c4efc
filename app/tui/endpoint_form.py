"""The form for one endpoint: a field per parameter, Advanced › Handle stream, and Run."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Collapsible, Input, Label, Select, Static, Switch

from ..forms import fields, format_value, parse_value

__all__ = ["EndpointForm"]

_INVALID = object()


class EndpointForm(Vertical):
    """Built from an endpoint's schema (``GET /api/endpoints``)."""

    class RunRequested(Message):
        """The "On click" trigger: Run pressed, or Enter in a field."""

    def __init__(self, endpoint: dict[str, Any], handle_stream: bool = True) -> None:
        super().__init__(id="form")
        self.endpoint = endpoint
        self._handle_stream = handle_stream

    @property
    def params(self) -> dict[str, dict[str, Any]]:
        """Each parameter's schema, read from the endpoint's JSON Schema."""
        return fields(self.endpoint.get("params", {}))

    def compose(self) -> ComposeResult:
        yield Static(self.endpoint.get("title") or self.endpoint["name"], classes="form-title")
        if self.endpoint.get("description"):
            yield Static(self.endpoint["description"], classes="form-description")
        for name, schema in self.params.items():
            with Horizontal(classes="field"):
                yield Label(name, classes="field-label")
                yield self._field(name, schema)
            yield Static("", classes="field-error", id=f"error-{name}")
        with (
            Collapsible(title="Advanced", collapsed=False, id="advanced"),
            Horizontal(classes="field"),
        ):
            yield Label("Handle stream", classes="field-label")
            yield Switch(value=self._handle_stream, id="handle-stream")
        yield Button("Run", id="run", variant="primary", compact=True)

    def _field(self, name: str, schema: dict[str, Any]) -> Input | Select[str] | Switch:
        default = schema.get("default")
        field_id = f"param-{name}"
        if schema.get("enum"):
            options = [(choice, choice) for choice in schema["enum"]]
            return Select(options, value=default, allow_blank=False, id=field_id, compact=True)
        if schema.get("type") == "boolean":
            return Switch(value=bool(default), id=field_id)
        placeholder = schema.get("description", "")
        if "minimum" in schema or "maximum" in schema:
            low, high = schema.get("minimum", ""), schema.get("maximum", "")
            bounds = f"{format_value(low)}..{format_value(high)}"
            placeholder = f"{bounds} {placeholder}".strip()
        field = Input(format_value(default), placeholder=placeholder, id=field_id, compact=True)
        field.tooltip = schema.get("description") or None
        return field

    @property
    def handle_stream(self) -> bool:
        return self.query_one("#handle-stream", Switch).value

    def toggle_handle_stream(self) -> bool:
        switch = self.query_one("#handle-stream", Switch)
        switch.value = not switch.value
        return switch.value

    def values(self) -> dict[str, Any] | None:
        """Every parameter's value, or None after marking the fields that are wrong."""
        values: dict[str, Any] = {}
        first_bad: Input | None = None
        for name in self.params:
            widget = self.query_one(f"#param-{name}")
            if not isinstance(widget, Input):
                values[name] = widget.value  # type: ignore[attr-defined]
            elif (value := self._check(name, widget)) is not _INVALID:
                values[name] = value
            else:
                first_bad = first_bad or widget
        if first_bad is not None:
            first_bad.focus()
            return None
        return values

    def _check(self, name: str, field: Input) -> Any:
        """The field's value, its error shown or cleared; ``_INVALID`` when it is wrong."""
        error = self.query_one(f"#error-{name}", Static)
        try:
            value = parse_value(self.params[name], field.value)
        except ValueError as exc:
            error.update(f"{name} {exc}")
            error.display = True
            field.add_class("-invalid")
            return _INVALID
        field.remove_class("-invalid")
        error.update("")
        error.display = False
        return value

    def on_input_changed(self, event: Input.Changed) -> None:
        # Checked as it is typed, so a message never outlives the mistake it is about.
        field_id = event.input.id or ""
        if field_id.startswith("param-") and field_id[6:] in self.params:
            self._check(field_id[6:], event.input)

    def on_mount(self) -> None:
        for error in self.query(".field-error"):
            error.display = False

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "run":
            event.stop()
            self.post_message(self.RunRequested())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.RunRequested())
