"""What a server's JSON answers may hold, checked once, where they arrive.

The client does not trust a server to be streambind, or to be well: a run or an endpoint
is read through these functions, which keep each documented field only when it has its
documented type and drop it otherwise. Everything downstream (``runs``, ``follow``, the
TUI's tables and forms, the MCP bridge) may then use ``.get`` with a default and format
what it gets, and no answer can end any of them in a traceback.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["endpoint_description", "run_record"]

#: A run's fields (``GET /api/runs``, ``GET /api/runs/{id}``) and the type each must have;
#: the others (``last_message``, ``result``, fields of newer servers) may be any JSON.
_RUN_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "endpoint": str,
    "status": str,
    "created": str,
    "finished": str,
    "node": str,
    "params": dict,
    "events": int,
    "messages": int,
    "followers": int,
    "last_event_id": int,
    "error": dict,
}

#: A parameter's schema keywords the client acts on, and the type each must have.
_SCHEMA_KEYWORDS: dict[str, type | tuple[type, ...]] = {
    "type": str,
    "description": str,
    "title": str,
    "minimum": (int, float),
    "maximum": (int, float),
    "minLength": int,
    "maxLength": int,
    "nullable": bool,
}


def _has_type(value: Any, kind: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # JSON's true is not a count
        return kind is bool or (isinstance(kind, tuple) and bool in kind)
    if kind is int and isinstance(value, int):
        return value >= 0  # counts and ids of events are never negative
    return isinstance(value, kind)


def run_record(value: Any) -> dict[str, Any] | None:
    """A run as the server described it, each ill-typed field dropped; None when it has
    no id to follow it by."""
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"]:
        return None
    return {
        key: item
        for key, item in value.items()
        if (kind := _RUN_FIELDS.get(key)) is None or _has_type(item, kind)
    }


def endpoint_description(value: Any) -> dict[str, Any] | None:
    """An endpoint (``GET /api/endpoints``) with a parameters schema every form can read;
    None when it has no name to call it by."""
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"]:
        return None
    endpoint = dict(value)
    if not isinstance(endpoint.get("description"), str):
        endpoint.pop("description", None)
    endpoint["params"] = _params_schema(value.get("params"))
    return endpoint


def _params_schema(value: Any) -> dict[str, Any]:
    schema = dict(value) if isinstance(value, dict) else {"type": "object"}
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    schema["properties"] = {
        name: _param_schema(member)
        for name, member in properties.items()
        if isinstance(member, dict)
    }
    required = schema.get("required")
    required = required if isinstance(required, list) else []
    schema["required"] = [name for name in required if isinstance(name, str)]
    return schema


def _param_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """One parameter's schema with only the keywords a form can act on in their types:
    an ill-typed bound or a pattern that does not compile is left for the server to apply."""
    out = {
        key: item
        for key, item in schema.items()
        if (kind := _SCHEMA_KEYWORDS.get(key)) is None or _has_type(item, kind)
    }
    enum = out.get("enum")
    if enum is not None and not (isinstance(enum, list) and all(isinstance(e, str) for e in enum)):
        del out["enum"]
    pattern = out.get("pattern")
    if pattern is not None and not _compiles(pattern):
        del out["pattern"]
    members = out.get("anyOf")
    if members is not None:
        if isinstance(members, list):
            out["anyOf"] = [_param_schema(m) for m in members if isinstance(m, dict)]
        else:
            del out["anyOf"]
    return out


def _compiles(pattern: Any) -> bool:
    if not isinstance(pattern, str):
        return False
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return False
    return True
