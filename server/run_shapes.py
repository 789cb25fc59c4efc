"""A run as the HTTP API shows it: the summary a list holds, and the detail of one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .run import Run, RunRecord

__all__ = ["run_detail", "run_summary"]


def run_summary(record: RunRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": record.id,
        "endpoint": record.endpoint,
        "params": record.params,
        "status": record.status,
        "created": _iso(record.created),
        "finished": _iso(record.finished) if record.finished is not None else None,
        # "events" came first and stays for the clients that read it; "messages" says
        # what it counts (the terminal event is not among them).
        "events": record.messages,
        "messages": record.messages,
        "last_message": _loads(record.last_message_json),
    }
    if record.node is not None:
        out["node"] = record.node
    return out


def run_detail(run: Run) -> dict[str, Any]:
    out = run_summary(run.record())
    out["followers"] = len(run.delivery.followers)
    out["last_event_id"] = run.log.last_seq
    if run.status == "succeeded":
        out["result"] = _loads(run.result_json)
    if run.error is not None:
        out["error"] = run.error
    return out


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _loads(text: str | bytes | None) -> Any:
    return None if text is None else json.loads(text)
