"""How a run ended, as an MCP tool result: ``structuredContent``, a short text, ``isError``.

One shape whether the ending comes from a call's own ``StreamState`` or, for a task, from
the run's record (``GET /api/runs/{id}``): a run that succeeded gives its result; one that
failed, or was cancelled, is a tool error saying so; parameters the server refused name
each field. The run's id is in the text and in ``_meta`` so a person can open the same run
in the terminal UI's Runs tab or ``streambind follow`` it.
"""

from __future__ import annotations

import json
from typing import Any

import mcp.types as types

from ..state import StreamState

__all__ = ["RUN_ID_META_KEY", "TEXT_LIMIT", "call_result", "record_result", "summary"]

#: Where a result and a progress notification carry the run's id.
RUN_ID_META_KEY = "streambind/run_id"
#: Characters of JSON the text rendering shows; the whole value is in structuredContent.
TEXT_LIMIT = 2000


def call_result(state: StreamState) -> types.CallToolResult:
    """The result of one call, from its state once ``run()`` returned."""
    reason = state.cancel_reason
    return _result(state.name, state.status, state.run_id, state.result, state.error, reason)


def record_result(name: str, record: dict[str, Any]) -> types.CallToolResult:
    """The result of a finished run, from its record."""
    error = record.get("error") if isinstance(record.get("error"), dict) else None
    run_id = record.get("id") if isinstance(record.get("id"), str) else None
    return _result(name, str(record.get("status")), run_id, record.get("result"), error, None)


def _result(
    name: str,
    status: str,
    run_id: str | None,
    result: Any,
    error: dict[str, Any] | None,
    cancel_reason: str | None,
) -> types.CallToolResult:
    where = f" (run {run_id})" if run_id else ""
    meta = {RUN_ID_META_KEY: run_id} if run_id else None
    if status == "succeeded":
        # structuredContent is an object: any other value is given under "result".
        structured = result if isinstance(result, dict) else {"result": result}
        text = f"{name} succeeded{where}: {summary(result)}"
        return _tool_result(text, structured, meta, is_error=False)
    if status == "cancelled":
        why = f": {cancel_reason}" if cancel_reason else ""
        text = f"{name} was cancelled{where}{why}"
        structured = _known(status="cancelled", run_id=run_id, reason=cancel_reason)
        return _tool_result(text, structured, meta, is_error=True)
    error = error or {"type": "failed", "message": f"the run {status}"}
    text = f"{name} failed{where}: {_error_text(error)}"
    structured = _known(status="failed", run_id=run_id, error=error)
    return _tool_result(text, structured, meta, is_error=True)


def _known(**fields: Any) -> dict[str, Any]:
    """The fields that are known: a call the server refused started no run, has no run_id."""
    return {name: value for name, value in fields.items() if value is not None}


def _tool_result(
    text: str, structured: dict[str, Any], meta: dict[str, Any] | None, is_error: bool
) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=text)],
        structured_content=structured,
        is_error=is_error,
        _meta=meta,
    )


def _error_text(error: dict[str, Any]) -> str:
    """``type: message``, then each refused field with why (``rows: must be an integer``)."""
    kind, message = error.get("type"), str(error.get("message", ""))
    text = f"{kind}: {message}" if isinstance(kind, str) and kind else message
    fields = error.get("fields")
    if isinstance(fields, dict) and fields:
        text += " (" + "; ".join(f"{field}: {why}" for field, why in fields.items()) + ")"
    return text


def summary(value: Any, limit: int = TEXT_LIMIT) -> str:
    """A value as compact JSON, cut with ``…`` past ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
