"""Turning text typed by a person (a form field, ``-p key=value``) into parameter values.

An endpoint publishes its parameters as one JSON Schema object (``GET /api/endpoints``):
``fields`` reads each property of it into the flat view a form field needs.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["fields", "format_value", "parse_value"]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def fields(params_schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each parameter's schema, flattened: ``X | None`` (``anyOf`` with ``null``) becomes X
    with ``nullable: True``, and ``required: True`` marks what the object requires."""
    required = set(params_schema.get("required", ()))
    flat: dict[str, dict[str, Any]] = {}
    for name, schema in params_schema.get("properties", {}).items():
        field = dict(schema)
        members = field.pop("anyOf", None)
        if members is not None:
            others = [m for m in members if m.get("type") != "null"]
            field["nullable"] = len(others) < len(members)
            for member in others[:1]:
                field = {**member, **field}
        if "enum" in field:
            field.setdefault("type", "string")
        field["required"] = name in required
        flat[name] = field
    return flat


def parse_value(schema: dict[str, Any], text: str) -> Any:
    """The value ``text`` stands for under a parameter's schema (as ``fields`` gives it);
    ValueError says why not."""
    kind = schema.get("type", "string")
    stripped = text.strip()
    if schema.get("nullable") and stripped in ("", "null"):
        return None
    if kind == "integer":
        try:
            value: Any = int(stripped.replace("_", ""))
        except ValueError:
            raise ValueError("must be a whole number") from None
    elif kind == "number":
        try:
            value = float(stripped.replace("_", ""))
        except ValueError:
            raise ValueError("must be a number") from None
    elif kind == "boolean":
        if stripped.lower() in _TRUE:
            value = True
        elif stripped.lower() in _FALSE:
            value = False
        else:
            raise ValueError("must be true or false")
    else:
        value = text
    _check_bounds(schema, value)
    return value


def _check_bounds(schema: dict[str, Any], value: Any) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and value < low:
            raise ValueError(f"must be at least {format_value(low)}")
        if high is not None and value > high:
            raise ValueError(f"must be at most {format_value(high)}")
    elif isinstance(value, str):
        choices = schema.get("enum")
        if choices and value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        max_length = schema.get("maxLength")
        if max_length is not None and len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        min_length = schema.get("minLength") or 0
        if min_length and not value.strip():
            # Blank means not given, as the server reads it too.
            raise ValueError("is required" if schema.get("required") else "must not be blank")
        if len(value) < min_length:
            raise ValueError(f"must be at least {min_length} characters")
        pattern = schema.get("pattern")
        if pattern and not re.search(pattern, value):
            raise ValueError(f"must match the pattern {pattern}")


def format_value(value: Any) -> str:
    """How a default is shown in a form field."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
