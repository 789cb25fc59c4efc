"""``stream.chunks``: every message of a stream, in order, kept compactly.

A million small messages held as decoded dicts cost about half a gigabyte; held as
their JSON text they cost a fifth of that. Each message is decoded once as it
arrives (that is how ``stream.chunk`` and ``on_chunk`` get it) and again only when
it is read back from here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

from .jsondecode import decode_json

__all__ = ["Chunks"]


class _Raw(str):
    """A message that was not JSON: handed back as the text it was."""

    __slots__ = ()


class Chunks(Sequence[Any]):
    """A read-only sequence of messages; compares equal to a list of the same values."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[str] = []

    def add(self, data_text: str, is_json: bool) -> None:
        self._items.append(data_text if is_json else _Raw(data_text))

    def add_json(self, data_texts: Sequence[str]) -> None:
        """Add messages that are all JSON (a firehose's chunk of them, in one call)."""
        self._items += data_texts

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [_value(item) for item in self._items[index]]
        return _value(self._items[index])

    def __iter__(self) -> Iterator[Any]:
        return (_value(item) for item in self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Chunks):
            return self._items == other._items
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(repr(v) for v in self[:3])
        more = f", … {len(self) - 3:,} more" if len(self) > 3 else ""
        return f"Chunks([{shown}{more}])"


def _value(item: str) -> Any:
    return str(item) if isinstance(item, _Raw) else decode_json(item)
