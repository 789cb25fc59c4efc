"""Where imported rows come from: generated people, or a CSV file in imports/."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from streambind.server import InvalidParam

from .backend import Row
from .sqlite import COLUMNS, imports_dir

__all__ = ["CsvSource", "GeneratedSource", "RowSource", "open_source"]

_FIRST = [
    "Ada",
    "Alan",
    "Barbara",
    "Claude",
    "Dennis",
    "Edsger",
    "Frances",
    "Grace",
    "Guido",
    "Hedy",
    "Ivan",
    "Jean",
    "Ken",
    "Linus",
    "Margaret",
    "Niklaus",
    "Radia",
    "Rasmus",
    "Shafi",
    "Sophie",
    "Tim",
    "Yukihiro",
    "Anita",
    "Donald",
    "John",
    "Karen",
]
_LAST = [
    "Lovelace",
    "Turing",
    "Liskov",
    "Shannon",
    "Ritchie",
    "Dijkstra",
    "Allen",
    "Hopper",
    "Rossum",
    "Lamarr",
    "Sutherland",
    "Sammet",
    "Thompson",
    "Torvalds",
    "Hamilton",
    "Wirth",
    "Perlman",
    "Lerdorf",
    "Goldwasser",
    "Wilson",
    "Berners-Lee",
    "Matsumoto",
    "Borg",
    "Knuth",
    "Backus",
    "Jones",
]
_PLACES = [
    "Amsterdam",
    "Berlin",
    "Cambridge",
    "Dublin",
    "Edinburgh",
    "Helsinki",
    "Kyoto",
    "Lisbon",
    "Montreal",
    "Oslo",
    "Paris",
    "Prague",
    "Seoul",
    "Sydney",
    "Toronto",
    "Zurich",
]

#: Every first name with every last name, each pair as likely as the other.
_NAMES = [f"{first} {last}" for first in _FIRST for last in _LAST]
_BORN = range(1900, 2011)


class RowSource:
    """A known number of rows, handed out in batches."""

    label: str
    total: int

    def batches(self, size: int) -> Iterator[list[Row]]:
        raise NotImplementedError


class GeneratedSource(RowSource):
    """``count`` made-up people, the same ones for the same seed."""

    def __init__(self, count: int, seed: str) -> None:
        self.label = f"generated:{count}"
        self.total = count
        self._seed = seed

    def batches(self, size: int) -> Iterator[list[Row]]:
        rng = random.Random(self._seed)
        # A batch's columns drawn whole by ``choices`` (a third of the time of drawing
        # each value with ``choice`` and ``randint``): generating a large import shares
        # one interpreter with the event loop that stores its rows.
        left = self.total
        while left > 0:
            n = min(size, left)
            left -= n
            names = rng.choices(_NAMES, k=n)
            borns = rng.choices(_BORN, k=n)
            places = rng.choices(_PLACES, k=n)
            yield list(zip(names, borns, places, strict=True))


class CsvSource(RowSource):
    """A CSV file with the header ``name,born,birthplace`` (``born`` and ``birthplace`` optional).

    Opening it checks the header and counts the rows; a malformed row is
    reported, with its line number, only when ``batches`` reaches it.
    """

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.label = name
        try:
            with self._open() as f:
                reader = csv.reader(f, strict=True)
                try:
                    header = next(reader, None)
                except csv.Error as exc:
                    raise InvalidParam("source", f"{name}: unreadable header: {exc}") from None
                self._columns = self._check_header(header)
                # Rows have as many fields as the header names, which may be fewer
                # than COLUMNS: the columns it leaves out are NULL.
                self._width = len(header)  # type: ignore[arg-type]
                self.total = 0
                try:
                    for _ in reader:
                        self.total += 1
                except (csv.Error, UnicodeDecodeError):
                    pass  # batches() reports it where it stands
        except UnicodeDecodeError:
            raise InvalidParam("source", f"{name} is not UTF-8 text") from None

    def _open(self) -> TextIO:
        return self.path.open(encoding="utf-8-sig", newline="")

    def _check_header(self, header: list[str] | None) -> list[int | None]:
        if not header or not any(h.strip() for h in header):
            raise InvalidParam("source", f"{self.label} is empty: it needs a header line")
        names = [h.strip().lower() for h in header]
        unknown = [h for h in names if h not in COLUMNS]
        if unknown or "name" not in names or len(set(names)) != len(names):
            raise InvalidParam(
                "source",
                f"{self.label}: the header must name the columns {', '.join(COLUMNS)} "
                f"(name is required, each at most once); found {', '.join(header)[:200]}",
            )
        return [names.index(c) if c in names else None for c in COLUMNS]

    def batches(self, size: int) -> Iterator[list[Row]]:
        with self._open() as f:
            # strict: an unclosed quote is an error, not a field that swallows the file.
            reader = csv.reader(f, strict=True)
            next(reader)
            batch: list[Row] = []
            while True:
                line = reader.line_num + 1  # where the record starts; it may span lines
                try:
                    record = next(reader, None)
                except (csv.Error, UnicodeDecodeError) as exc:
                    raise ValueError(f"{self.label} line {line}: {exc}") from None
                if record is None:
                    break
                if not record:
                    continue  # a blank line
                batch.append(self._row(record, line))
                if len(batch) == size:
                    yield batch
                    batch = []
            if batch:
                yield batch

    def _row(self, record: list[str], line: int) -> Row:
        if len(record) != self._width:
            raise ValueError(
                f"{self.label} line {line}: expected {self._width} fields, found {len(record)}"
            )
        name_at, born_at, place_at = self._columns
        name = record[name_at].strip()  # type: ignore[index]
        if not name:
            raise ValueError(f"{self.label} line {line}: name is empty")
        born: int | None = None
        if born_at is not None and record[born_at].strip():
            try:
                born = int(record[born_at])
            except ValueError:
                raise ValueError(
                    f"{self.label} line {line}: born must be a whole number, "
                    f"not {record[born_at][:40]!r}"
                ) from None
        place = (record[place_at].strip() or None) if place_at is not None else None
        return (name, born, place)


def open_source(data_dir: Path, source: str, rows: int, seed: str) -> RowSource:
    """The rows an import or pipeline run works on; ``source=""`` generates ``rows`` rows.

    Blocks (it reads the file): call it through ``asyncio.to_thread``.
    """
    if not source:
        return GeneratedSource(rows, seed)
    if "/" in source or "\\" in source or ".." in source or "\0" in source:
        raise InvalidParam(
            "source", "must be the name of a file in the imports folder, without a path"
        )
    folder = imports_dir(data_dir).resolve()
    try:
        path = folder / source
        if not path.exists() and not source.lower().endswith(".csv"):
            path = folder / f"{source}.csv"
        found = path.is_file()
        if found and not path.resolve().is_relative_to(folder):
            raise InvalidParam("source", f"{source} points outside the imports folder")
        if found:
            return CsvSource(path, path.name)
    except OSError as exc:
        # A name longer than the file system allows (252 zeros, or 200 "é" in 400 bytes),
        # a file that may not be read: the client's mistake, said without the server's path.
        raise InvalidParam("source", f"cannot open {source!r}: {exc.strerror or exc}") from None
    available = sorted(p.name for p in folder.glob("*.csv"))
    raise InvalidParam(
        "source",
        f"no file named {source!r} in the imports folder; "
        f"available: {', '.join(available) or 'none'}",
    )
