"""``stream.chunks``: the messages of a stream, in order, kept compactly.

A million small messages held as decoded dicts cost about half a gigabyte; held as
their JSON text they cost a fifth of that. Each message is decoded once as it
arrives (that is how ``stream.chunk`` and ``on_chunk`` get it) and again only when
it is read back from here. An endless stream would still grow without end, so a call
keeps the newest ``ClientSettings.max_chunks`` and counts the rest (``received``).
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
    """A read-only sequence of the newest messages (every one, without a ``limit``);
    compares equal to a list of the same values."""

    __slots__ = ("_dropped", "_items", "limit")

    def __init__(self, limit: int | None = None) -> None:
        #: The most messages kept: the newest. None keeps every one.
        self.limit = limit
        # Up to twice ``limit`` are held, the oldest out of view, so that letting the
        # oldest go is one cut now and then rather than a shift per message.
        self._items: list[str] = []
        self._dropped = 0

    def add(self, data_text: str, is_json: bool) -> None:
        self._items.append(data_text if is_json else _Raw(data_text))
        if self.limit is not None and len(self._items) > 2 * self.limit:
            self._let_oldest_go()

    def add_json(self, data_texts: Sequence[str]) -> None:
        """Add messages that are all JSON (a firehose's chunk of them, in one call)."""
        self._items += data_texts
        if self.limit is not None and len(self._items) > 2 * self.limit:
            self._let_oldest_go()

    def _let_oldest_go(self) -> None:
        assert self.limit is not None
        cut = len(self._items) - self.limit
        del self._items[:cut]
        self._dropped += cut

    @property
    def received(self) -> int:
        """Every message added, those no longer kept included."""
        return self._dropped + len(self._items)

    @property
    def first_kept(self) -> int:
        """The number (from 0, in arrival order) of the oldest message still kept."""
        return self.received - len(self)

    def between(self, first: int, stop: int | None = None) -> list[Any]:
        """The kept messages numbered ``first`` up to ``stop`` (all the newer ones)."""
        offset = self.first_kept
        end = None if stop is None else max(0, stop - offset)
        return self[max(0, first - offset) : end]

    @property
    def _start(self) -> int:
        """Where the kept messages begin in ``_items``."""
        if self.limit is None:
            return 0
        return max(0, len(self._items) - self.limit)

    def __len__(self) -> int:
        return len(self._items) - self._start

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        start = self._start
        if isinstance(index, slice):
            first, stop, step = index.indices(len(self))
            return [_value(item) for item in self._items[start + first : start + stop : step]]
        if not -len(self) <= index < len(self):
            raise IndexError("chunk index out of range")
        return _value(self._items[start + index if index >= 0 else index])

    def __iter__(self) -> Iterator[Any]:
        return (_value(item) for item in self._items[self._start :])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Chunks):
            return self._items[self._start :] == other._items[other._start :]
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
