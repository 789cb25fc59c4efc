"""The wire vocabulary: the exact bytes of every event a stream carries, defined once.

Every frame the server sends is made here: the messages (``encode_event``), the
terminal events that end a run's stream (``end``, ``error``, ``cancelled``), the
error a follower gets when the events it needs are gone (``fell_behind``), the
``retry:`` field and the keep-alive comment.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = [
    "CANCELLED",
    "CANCEL_REASONS",
    "END",
    "ERROR",
    "MESSAGE",
    "MESSAGE_FRAME",
    "PING",
    "NotJSONSerialisable",
    "cancelled_data",
    "encode_event",
    "end_data",
    "failed_data",
    "fell_behind_event",
    "frame_start",
    "json_bytes",
    "message_data",
    "retry_field",
    "to_json",
    "utf8",
]

#: The event type of every message a workflow sends.
MESSAGE = "message"
#: ``encode_event(seq, MESSAGE, …)`` as a bytes template, ``MESSAGE_FRAME % (seq, data)``
#: for JSON that is already UTF-8: the event log frames each message with it, in place.
MESSAGE_FRAME = b"id: %d\nevent: message\ndata: %b\n\n"
#: The terminal events: exactly one ends every run's stream.
END = "end"
ERROR = "error"
CANCELLED = "cancelled"
#: Why a run was cancelled, as its ``cancelled`` event's ``reason`` says: a ``DELETE`` (on
#: any node), nobody following it through the detach grace, its caller leaving before the
#: response began (so before it could learn the run's id), or the server shutting down.
CANCEL_REASONS = ("requested", "abandoned", "caller_left", "shutdown")

PING = b": ping\n\n"


def cancelled_data(reason: str) -> str:
    """The ``cancelled`` event's data: ``{"status":"cancelled","reason":…}``."""
    assert reason in CANCEL_REASONS, reason
    return to_json({"status": "cancelled", "reason": reason})


# No circular-reference bookkeeping: a cycle ends in RecursionError, reported as deep nesting.
_encoder = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False
)

# orjson encodes the common message about eight times faster than the standard library.
# Where the two differ, orjson refuses and the standard library answers (a ``TypeError``
# sends the value down that path): subclasses of str/int/dict/list, dataclasses and
# datetimes are passed through to be refused here, integers beyond 64 bits, non-string
# keys, lone surrogates and nesting deeper than 254 levels are refused by orjson itself.
# NaN and Infinity are the one silent difference (orjson writes ``null``): output that
# holds ``null`` is therefore encoded again by the standard library, which refuses them.
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_orjson_dumps = orjson.dumps


class NotJSONSerialisable(TypeError):
    """``ctx.send`` was given a value that JSON cannot represent."""


def json_bytes(data: Any) -> bytes:
    """Compact JSON for an event's ``data:`` line, as the UTF-8 bytes a frame holds.

    JSON text never holds a raw CR or LF (they are escaped inside strings), so
    one event is always exactly one ``data:`` line and cannot break framing.
    ``ctx.send`` calls this once per message, which is why it hands over orjson's
    bytes as they are, never decoded and encoded again.
    """
    try:
        encoded = _orjson_dumps(data, None, _ORJSON_OPTIONS)
    except TypeError:
        return utf8(_standard_json(data))
    # partition, not ``in`` or find: bytes' ``in`` first tries the operand as an integer and
    # clears the TypeError (about 150 ns a message here), and find parses its arguments as a
    # tuple (70 ns); partition takes one argument, and finding nothing copies nothing (50 ns).
    if encoded.partition(b"null")[1]:
        return utf8(_standard_json(data))  # a NaN or an Infinity may hide behind it
    return encoded


def to_json(data: Any) -> str:
    """``json_bytes`` as text: a lone surrogate is the JSON escape ``\\udxxx`` in it."""
    return json_bytes(data).decode()


def _standard_json(data: Any) -> str:
    """The standard library's answer: the value as JSON, or why it cannot be."""
    try:
        return _encoder.encode(data)
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


def encode_event(seq: int, event: str, data_json: str) -> bytes:
    """One complete event: ``id``, ``event``, ``data`` and the blank line that dispatches it.

    The one definition of a frame; the event log calls it for every event it keeps,
    but for messages, which it frames with ``MESSAGE_FRAME``, this same frame as a
    bytes template (tests/test_units.py holds the two equal).
    """
    frame = f"id: {seq}\nevent: {event}\ndata: {data_json}\n\n"
    try:
        return frame.encode()  # this runs once per event: the plain call is the fast one
    except UnicodeEncodeError:
        return utf8(frame)  # a lone surrogate, inside a JSON string


def message_data(frame: bytes) -> bytes:
    """The data of a message's frame (``MESSAGE_FRAME``'s), as it was framed."""
    return frame[frame.index(b"\ndata: ") + 7 : -2]


def frame_start(frames: bytes, seq: int) -> int:
    """Where event ``seq`` begins in frames joined back to back (``encode_event``'s, in order).

    A frame begins with its id line and ends with the one blank line in it (its data is
    JSON, which holds no raw line break), so ``\n\nid: <seq>\n`` can only be the boundary
    before event ``seq``. Raises ValueError if it is not in ``frames``.
    """
    head = b"id: %d\n" % seq
    if frames.startswith(head):
        return 0
    at = frames.find(b"\n\n" + head)
    if at < 0:
        raise ValueError(f"event {seq} does not begin in these frames")
    return at + 2


def end_data(result_json: str) -> str:
    """The ``end`` event's data, around a result that is already JSON."""
    return '{"status":"succeeded","result":' + result_json + "}"


def failed_data(error: dict[str, Any]) -> str:
    """The ``error`` event's data when the workflow failed."""
    return to_json({"status": "failed", "error": error})


def fell_behind_event(position: int, message: str, first_kept: int) -> bytes:
    """The ``error`` event a follower gets when the events after ``position`` are gone.

    Its id is the follower's own position, the last event it really has: a client
    that reconnects sends it as ``Last-Event-ID`` and is answered ``410 Gone``,
    so a standard EventSource stops instead of coming back to this error forever.
    """
    data = to_json(
        {
            "status": "fell_behind",
            "error": {"type": "fell_behind", "message": message, "first_kept": first_kept},
        }
    )
    return encode_event(position, ERROR, data)


def retry_field(milliseconds: int) -> bytes:
    """The reconnection delay a client should use; sent once at the start of each stream."""
    return f"retry: {int(milliseconds)}\n\n".encode()
