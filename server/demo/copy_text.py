"""Staged rows as the bytes of a PostgreSQL ``COPY … FROM STDIN`` in text format.

A batch is formatted in one pass instead of handing psycopg one row at a time
(``write_row``): about a fifth of the Python time (0.2 against 1.1 µs a row here).
That matters because a large import's Python work (reading or generating rows,
encoding them) shares one interpreter with the event loop that sends them.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import DataError

from .backend import Row

__all__ = ["copy_text"]

_NULL = "\\N"
# COPY's text format gives these four characters a meaning; a value holding one is
# written escaped. NUL cannot be in a PostgreSQL text value at all.
_SPECIAL = ("\\", "\t", "\n", "\r", "\0")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(rows: Sequence[Row], first: int) -> bytes:
    """Lines ``seq<TAB>name<TAB>born<TAB>birthplace``, ``seq`` counting from ``first``."""
    # One check for the whole batch: most batches hold no special character, and
    # then every value is written as it is.
    texts = "".join([name + (place or "") for name, _, place in rows])
    if any(c in texts for c in _SPECIAL):
        rows = [_escaped(row) for row in rows]
    null = _NULL
    return "".join(
        [
            f"{seq}\t{name}\t{null if born is None else born}\t{null if place is None else place}\n"
            for seq, (name, born, place) in enumerate(rows, first)
        ]
    ).encode()


def _escaped(row: Row) -> Row:
    name, born, place = row
    return (_escape(name), born, None if place is None else _escape(place))


def _escape(value: str) -> str:
    if "\0" in value:
        # psycopg's own words for it, as when it wrote the rows itself.
        raise DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    return value.translate(_ESCAPES)
