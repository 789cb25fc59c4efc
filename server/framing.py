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
    "utf8",
]

PING = b": ping\n\n"

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class NotJSONSerialisable(TypeError):
    """``ctx.send`` was given a value that JSON cannot represent."""


def to_json(data: Any) -> str:
    """Compact JSON for an event's ``data:`` line.

    JSON text never holds a raw CR or LF (they are escaped inside strings), so
    one event is always exactly one ``data:`` line and cannot break framing.
    """
    try:
        return _encoder.encode(data)
    except (TypeError, ValueError) as exc:
        raise NotJSONSerialisable(f"ctx.send() needs JSON-serialisable data: {exc}") from None


def utf8(json_text: str) -> bytes:
    """JSON text as UTF-8 bytes.

    A lone surrogate (possible in a Python string, impossible in UTF-8) can only
    stand inside a JSON string, where ``backslashreplace`` writes it as the JSON
    escape ``\\udxxx``: the bytes stay valid JSON. Valid text costs nothing extra.
    """
    return json_text.encode("utf-8", "backslashreplace")


def encode_event(seq: int | None, event: str, data_json: str) -> bytes:
    """One complete event: ``id``, ``event``, ``data`` and the blank line that dispatches it.

    With ``seq=None`` the event carries no id, so the client's last event id stays put.
    """
    if seq is None:
        return utf8(f"event: {event}\ndata: {data_json}\n\n")
    return utf8(f"id: {seq}\nevent: {event}\ndata: {data_json}\n\n")


def retry_field(milliseconds: int) -> bytes:
    """The reconnection delay a client should use; sent once at the start of each stream."""
    return f"retry: {int(milliseconds)}\n\n".encode()
