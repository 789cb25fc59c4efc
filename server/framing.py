"""Server-Sent Events framing: turning one event into the exact bytes sent on the wire."""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "PING",
    "NotJSONSerialisable",
    "encode_event",
    "retry_field",
    "to_json",
]

PING = b": ping\n\n"

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_ascii_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)


class NotJSONSerialisable(TypeError):
    """``ctx.send`` was given a value that JSON cannot represent."""


def to_json(data: Any) -> str:
    """Compact JSON for an event's ``data:`` line.

    JSON text never holds a raw CR or LF (they are escaped inside strings), so
    one event is always exactly one ``data:`` line and cannot break framing.
    """
    try:
        text = _encoder.encode(data)
    except (TypeError, ValueError) as exc:
        raise NotJSONSerialisable(f"ctx.send() needs JSON-serialisable data: {exc}") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate cannot travel as UTF-8; \u escapes keep it representable.
        text = _ascii_encoder.encode(data)
    return text


def encode_event(seq: int | None, event: str, data_json: str) -> bytes:
    """One complete event: ``id``, ``event``, ``data`` and the blank line that dispatches it.

    With ``seq=None`` the event carries no id, so the client's last event id stays put.
    """
    if seq is None:
        return f"event: {event}\ndata: {data_json}\n\n".encode()
    return f"id: {seq}\nevent: {event}\ndata: {data_json}\n\n".encode()


def retry_field(milliseconds: int) -> bytes:
    """The reconnection delay a client should use; sent once at the start of each stream."""
    return f"retry: {int(milliseconds)}\n\n".encode()
