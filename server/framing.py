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


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# The C encoder, made once: json.dumps builds a new one on every call, which costs
# as much as encoding a small message. No circular-reference bookkeeping (a cycle
# ends in RecursionError, reported the same way). ``"".join(json_parts(value, 0))``
# is compact JSON; None where the C accelerator is missing.
json_parts = (
    json.encoder.c_make_encoder(
        None, _refuse, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    if json.encoder.c_make_encoder is not None
    else None
)


class NotJSONSerialisable(TypeError):
    """``ctx.send`` was given a value that JSON cannot represent."""


def to_json(data: Any) -> str:
    """Compact JSON for an event's ``data:`` line.

    JSON text never holds a raw CR or LF (they are escaped inside strings), so
    one event is always exactly one ``data:`` line and cannot break framing.
    """
    try:
        if json_parts is None:
            return _encoder.encode(data)
        return "".join(json_parts(data, 0))
    except (TypeError, ValueError, RecursionError) as exc:
        if isinstance(exc, RecursionError):
            exc = ValueError("it nests too deeply, or refers to itself")
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
    # utf8() inlined: this runs once per event.
    return f"id: {seq}\nevent: {event}\ndata: {data_json}\n\n".encode("utf-8", "backslashreplace")


def retry_field(milliseconds: int) -> bytes:
    """The reconnection delay a client should use; sent once at the start of each stream."""
    return f"retry: {int(milliseconds)}\n\n".encode()
