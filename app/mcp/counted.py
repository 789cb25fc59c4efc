"""``CountedChunks``: ``stream.chunks`` that counts messages without keeping them.

The bridge relays each message as it arrives and never reads it again, so a long run costs
it no memory per message. The stream client reads only the count (``received``: to tell a
reconnection that brought messages from one that did not); the messages are not there.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..chunks import Chunks

__all__ = ["CountedChunks"]


class CountedChunks(Chunks):
    __slots__ = ("_count",)

    def __init__(self) -> None:
        super().__init__()
        self._count = 0

    def add(self, data_text: str, is_json: bool) -> None:
        self._count += 1

    def add_json(self, data_texts: Sequence[str]) -> None:
        self._count += len(data_texts)

    def __len__(self) -> int:
        return self._count

    @property
    def received(self) -> int:
        return self._count
