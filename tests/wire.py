"""Test helpers that read Server-Sent Events off the wire, line by line, as a browser would."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Event:
    event: str
    data: str
    id: str | None

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class Comment:
    text: str


async def events(response: httpx.Response) -> AsyncIterator[Event | Comment]:
    """Events and comments as they complete. The server only ever sends LF line endings."""
    buffer = b""
    fields: list[tuple[str, str]] = []
    async for chunk in response.aiter_bytes():
        buffer += chunk
        while b"\n" in buffer:
            raw, buffer = buffer.split(b"\n", 1)
            line = raw.decode()
            if line.startswith(":"):
                yield Comment(line[1:].strip())
            elif line:
                name, _, value = line.partition(":")
                fields.append((name, value[1:] if value.startswith(" ") else value))
            elif fields:
                found = dict(fields)
                if "data" in found:
                    yield Event(found.get("event", "message"), found["data"], found.get("id"))
                fields = []


async def collect(response: httpx.Response) -> list[Event]:
    """Every event of a stream, to its end (comments left out)."""
    return [e async for e in events(response) if isinstance(e, Event)]


def split_events(body: str) -> list[Event]:
    """Parse a complete stream body."""
    out = []
    for block in body.split("\n\n"):
        fields = dict(
            (name, value[1:] if value.startswith(" ") else value)
            for name, _, value in (line.partition(":") for line in block.split("\n"))
            if name
        )
        if "data" in fields:
            out.append(Event(fields.get("event", "message"), fields["data"], fields.get("id")))
    return out
