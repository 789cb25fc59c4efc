"""A run's messages as MCP progress: a value that never goes back, a total, a message.

MCP's ``notifications/progress`` carries one number that must not decrease within a call,
an optional total and a message. A run reports ``done``/``total`` (else ``progress`` 0..1,
else ``percent`` 0..100, as ``progress_of`` reads them), per named step, and a step that
starts its own count would make that number fall. So each count that starts again (a new
step, or a value below the last) is laid after what was reached before: ``pipeline``'s
validate 0..1000 then import 0..1000 becomes 0..1000 then 1000..2000 of 2000. A message
that says nothing of how far along the run is (``{"step": "publish", "rows": N}``) keeps
the value and total, and only its step becomes the message. A text stream
(``{"text": ...}`` pieces, no counts) counts its pieces, and its pieces are the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..progress import progress_of, text_piece

__all__ = ["ProgressTrack", "Tick"]


@dataclass(frozen=True)
class Tick:
    """One progress notification's content."""

    progress: float
    total: float | None
    message: str | None
    #: The message is a text piece (to be joined with others, never replaced by them).
    piece: bool = False


class ProgressTrack:
    """Turns the messages of one call into ``Tick``s, one each (``tick``) or one for many
    (``tick_many``); one per call."""

    def __init__(self) -> None:
        self._progress = 0.0
        self._total: float | None = None
        #: Where the current count starts in the call's own scale.
        self._offset = 0.0
        #: The current count's last value and step, as the run sent them.
        self._value: float | None = None
        self._step: str | None = None
        self._pieces = 0

    def tick(self, chunk: Any) -> Tick:
        text = self._take(chunk)
        if text is not None:
            return Tick(self._progress, self._total, text, piece=True)
        return Tick(self._progress, self._total, _step(chunk))

    def tick_many(self, chunks: Sequence[Any]) -> Tick:
        """One tick for many messages (a relay that fell behind): the newest's progress, with
        every text piece counted and joined. Of the other messages only each step's last is
        read, which is enough for a step that starts among them to be laid after the last."""
        pieces: list[str] = []
        last = len(chunks) - 1
        for index, chunk in enumerate(chunks):
            if text_piece(chunk) is not None or index == last:
                if (text := self._take(chunk)) is not None:
                    pieces.append(text)
            elif _step(chunks[index + 1]) != _step(chunk):
                self._take(chunk)
        newest = chunks[-1]
        if text_piece(newest) is not None:
            return Tick(self._progress, self._total, "".join(pieces), piece=True)
        return Tick(self._progress, self._total, _step(newest))

    def _take(self, chunk: Any) -> str | None:
        """Take a message in; its text, when it is a text piece."""
        position = progress_of(chunk)
        scaled = _scaled(position.fraction, position.done, position.total)
        if scaled is not None:
            value, total = scaled
            if self._value is not None and (value < self._value or position.step != self._step):
                # A count that starts again: laid after what was reached, never below it.
                self._offset = self._progress
            self._value, self._step = value, position.step
            self._progress = max(self._progress, self._offset + value)
            self._total = max(self._progress, self._offset + total)
            return None
        text = text_piece(chunk)
        if text is not None and self._value is None:
            self._pieces += 1
            self._progress = float(self._pieces)
        return text


def _step(chunk: Any) -> str | None:
    step = chunk.get("step") if isinstance(chunk, dict) else None
    return step if isinstance(step, str) else None


def _scaled(
    fraction: float | None, done: float | None, total: float | None
) -> tuple[float, float] | None:
    """The value and total a message states: its counts, else its fraction of 1."""
    if done is not None and total is not None:
        return done, total
    if fraction is not None:
        return fraction, 1.0
    return None
