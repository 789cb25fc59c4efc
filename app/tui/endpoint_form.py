"""The form for one endpoint, read from its JSON Schema: a field per parameter with its help
and limits, Advanced › Handle stream, Run, and the ``streambind call`` line it stands for."""

from __future__ import annotations

import shlex
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Checkbox, Collapsible, Input, Label, Select, Static

from ..forms import fields, format_value, parse_value

__all__ = ["EndpointForm", "call_command_line", "field_help"]

_INVALID = object()


def field_help(schema: dict[str, Any]) -> str:
    """What a field's help line says: its description, then its limits and whether it is
    needed (``1 to 1,000,000 · default 1000``, ``optional``, ``required``)."""
    notes = []
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        notes.append(f"{_number(low)} to {_number(high)}")
    elif low is not None:
        notes.append(f"at least {_number(low)}")
    elif high is not None:
        notes.append(f"at most {_number(high)}")
    if schema.get("maxLength") is not None:
        notes.append(f"up to {schema['maxLength']:,} characters")
    if schema.get("required"):
        notes.append("required")
    elif "default" in schema and schema["default"] not in ("", None):
        notes.append(f"default {format_value(schema['default'])}")
    else:
        notes.append("optional")
    description = str(schema.get("description") or "").strip()
    return " · ".join([description, *notes] if description else notes)


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else format_value(value)


def call_command_line(
    name: str, values: dict[str, Any], schema: dict[str, dict[str, Any]], handle_stream: bool
) -> str:
    """The ``streambind call`` line that runs what the form holds (parameters left at their
    defaults are left out)."""
    words = ["streambind", "call", name]
    for key, value in values.items():
        if "default" in schema.get(key, {}) and schema[key]["default"] == value:
            continue
        words += ["-p", f"{key}={_text(value)}"]
    if not handle_stream:
        words.append("--no-stream")
    return shlex.join(words)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


class EndpointForm(Vertical):
    """Built from an endpoint's schema (``GET /api/endpoints``)."""

    class RunRequested(Message):
        """The "On click" trigger: Run pressed, or Enter in a field."""

    class CallLineChanged(Message):
        """The ``streambind call`` line that the form's values stand for."""

        def __init__(self, line: str) -> None:
            super().__init__()
            self.line = line

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
                marker = " *" if schema.get("required") else ""
                yield Label(f"{name}{marker}", classes="field-label")
                yield self._field(name, schema)
            yield Static(field_help(schema), classes="field-help", id=f"help-{name}")
            yield Static("", classes="field-error", id=f"error-{name}")
        with Collapsible(title="Advanced", collapsed=False, id="advanced"):
            yield Checkbox("Handle stream", value=self._handle_stream, id="handle-stream")

    def _field(self, name: str, schema: dict[str, Any]) -> Widget:
        default = schema.get("default")
        field_id = f"param-{name}"
        if schema.get("enum"):
            options = [(choice, choice) for choice in schema["enum"]]
            return Select(options, value=default, allow_blank=False, id=field_id, compact=True)
        if schema.get("type") == "boolean":
            return Checkbox(name, value=bool(default), id=field_id, compact=True)
        # The description is the help line below, not a placeholder a default would hide.
        placeholder = "required" if schema.get("required") else ""
        return Input(format_value(default), placeholder=placeholder, id=field_id, compact=True)

    @property
    def handle_stream(self) -> bool:
        return self.query_one("#handle-stream", Checkbox).value

    def toggle_handle_stream(self) -> bool:
        switch = self.query_one("#handle-stream", Checkbox)
        switch.value = not switch.value
        return switch.value

    def first_field(self) -> Widget | None:
        found = self.query(".field Input, .field Select, .field Checkbox")
        return found.first() if found else None

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

    def show_errors(self, errors: dict[str, str]) -> None:
        """The server's ``invalid_params``, each on the field it names."""
        for name, why in errors.items():
            if name in self.params:
                self._show_error(name, why)
                field = self.query_one(f"#param-{name}")
                field.add_class("-invalid")

    def _show_error(self, name: str, message: str) -> None:
        error = self.query_one(f"#error-{name}", Static)
        error.update(message)
        error.display = bool(message)

    def _check(self, name: str, field: Input) -> Any:
        """The field's value, its error shown or cleared; ``_INVALID`` when it is wrong."""
        try:
            value = parse_value(self.params[name], field.value)
        except ValueError as exc:
            self._show_error(name, str(exc))
            field.add_class("-invalid")
            return _INVALID
        field.remove_class("-invalid")
        self._show_error(name, "")
        return value

    def _show_call_line(self) -> None:
        values: dict[str, Any] = {}
        for name, schema in self.params.items():
            widget = self.query_one(f"#param-{name}")
            if isinstance(widget, Input):
                try:
                    values[name] = parse_value(schema, widget.value)
                except ValueError:
                    values[name] = widget.value
            else:
                values[name] = widget.value  # type: ignore[attr-defined]
        line = call_command_line(self.endpoint["name"], values, self.params, self.handle_stream)
        self.post_message(self.CallLineChanged(line))

    def on_input_changed(self, event: Input.Changed) -> None:
        # Checked as it is typed, so a message never outlives the mistake it is about.
        field_id = event.input.id or ""
        if field_id.startswith("param-") and field_id[6:] in self.params:
            self._check(field_id[6:], event.input)
        self._show_call_line()

    def on_checkbox_changed(self) -> None:
        self._show_call_line()

    def on_select_changed(self) -> None:
        self._show_call_line()

    def on_mount(self) -> None:
        for error in self.query(".field-error"):
            error.display = False
        self._show_call_line()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.RunRequested())
