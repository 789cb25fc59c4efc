"""A run's record in Redis (the hash at ``Keys.run``), written and read."""

from __future__ import annotations

import json
from typing import Any

from ..run import ExecutedRun, FollowedRun, RunRecord

__all__ = [
    "FOLLOWED_FIELDS",
    "LISTED_FIELDS",
    "OUTCOME_FIELDS",
    "listed_record",
    "pairs",
    "record_of",
    "update",
]

# What every reader of a record reads: what the run is, where and how far.
_ABOUT = ("endpoint", "params", "node", "status", "created", "finished", "messages")
#: The fields a list of runs reads of each (``HMGET``), in this order.
LISTED_FIELDS = (*_ABOUT, "last_message")
#: The fields a node following a run reads of it, and those of its outcome, which may be
#: large (a message, a result) and are read only when they are shown.
FOLLOWED_FIELDS = (*_ABOUT, "last_seq", "error")
OUTCOME_FIELDS = ("last_message", "result")


def record_of(run: ExecutedRun, node: str) -> dict[str, Any]:
    """The whole record of a run this node executes."""
    return {
        "endpoint": run.endpoint_name,
        "params": json.dumps(run.params),
        "node": node,
        "status": run.status,
        "created": repr(run.created),
        "finished": repr(run.finished) if run.finished is not None else "",
        "messages": run.messages,
        "last_message": run.last_message_json or "",
        "last_seq": run.log.last_seq,
        "result": run.result_json or "",
        "error": json.dumps(run.error) if run.error is not None else "",
    }


def pairs(mapping: dict[str, Any]) -> list[Any]:
    """A mapping as HSET's arguments: key, value, key, value..."""
    return [item for pair in mapping.items() for item in pair]


def update(run: FollowedRun, fields: dict[str, str]) -> None:
    """Bring another node's run up to date with its record."""
    run.node = fields.get("node") or None
    run.status = fields.get("status", "running")
    run.messages = int(fields.get("messages") or 0)
    if "last_message" in fields:
        run.last_message_kept = fields["last_message"].encode() or None
    finished = fields.get("finished")
    run.finished = float(finished) if finished else None
    if "result" in fields:
        run.result_json = fields["result"] or None
    error = fields.get("error")
    run.error = json.loads(error) if error else None


def listed_record(run_id: str, fields: dict[str, str]) -> RunRecord:
    """The record of a listed run, from its ``LISTED_FIELDS``."""
    finished = fields["finished"]
    return RunRecord(
        id=run_id,
        endpoint=fields["endpoint"],
        params=json.loads(fields["params"] or "{}"),
        status=fields["status"] or "running",
        created=float(fields["created"] or 0),
        finished=float(finished) if finished else None,
        messages=int(fields["messages"] or 0),
        last_message_json=fields["last_message"].encode() or None,
        node=fields["node"] or None,
    )
