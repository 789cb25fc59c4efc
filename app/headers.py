"""Which header names and values HTTP can carry, said in words a person can act on."""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["header_problem", "headers_problem", "last_event_id_header"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Visible ASCII, with spaces and tabs inside but not at either end (RFC 9110 field-value).
_VALUE = re.compile(r"([\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?)?")
# What an event id may hold to go back as Last-Event-ID: anything but controls and
# whitespace at either end; other characters travel as UTF-8, as browsers send them.
_FORBIDDEN_IN_ID = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|^[ \t]|[ \t]$")


def header_problem(name: str, value: str) -> str | None:
    """Why ``name: value`` cannot be sent as typed, or None when it can."""
    if not _TOKEN.fullmatch(name):
        return f"{name!r} is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)"
    if _VALUE.fullmatch(value):
        return None
    if not value.isascii():
        encoded = "".join(c if c.isascii() else _percent(c) for c in value)
        return (
            f"{name}: {value!r} is not ASCII, and header values must be; "
            f"percent-encode it ({encoded}) if the server expects that"
        )
    return f"{name}: {value!r} has control characters or spaces at an end"


def headers_problem(headers: Mapping[str, str]) -> str | None:
    """The first header that cannot be sent, said why; None when all can."""
    for name, value in headers.items():
        if (problem := header_problem(name, value)) is not None:
            return problem
    return None


def last_event_id_header(event_id: str) -> bytes | None:
    """``Last-Event-ID``'s value for an id (UTF-8, as the WHATWG standard says), or None.

    None means no HTTP header can carry this id: it has control characters, or spaces at
    an end.
    """
    if _FORBIDDEN_IN_ID.search(event_id):
        return None
    return event_id.encode("utf-8", "surrogatepass")


def _percent(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
