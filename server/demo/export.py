"""The ``export`` workflow: the people table written to a CSV or NDJSON file, with progress."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
from pathlib import Path
from typing import IO, Annotated, Any, Literal

from streambind.server import InvalidParam, Param, RunContext, endpoint

from .export_files import claim, partial_path, release
from .pacing import DelayMs, pause
from .resources import db, exports
from .threads import in_thread, in_thread_to_the_end

_FIELDS = ("id", "run_id", "name", "born", "birthplace")
#: Messages an export sends when no batch size is given: with the default pause a person
#: can watch it, about four seconds, however big the table is.
_MESSAGES = 40


@endpoint(
    "export",
    title="Export a file",
    description=(
        "Writes the people table (or one import of it) to a CSV or NDJSON file in the "
        "data directory's exports/ folder, reporting rows and bytes written; the result "
        "gives the file's path, size and SHA-256."
    ),
)
async def export(
    ctx: RunContext,
    format: Annotated[Literal["csv", "ndjson"], Param("File format")] = "csv",
    run_id: Annotated[
        str,
        Param(
            "Export only the rows the import run with this id added; empty for all", max_length=64
        ),
    ] = "",
    batch_size: Annotated[
        int,
        Param(
            "Rows per message; 0 for about 40 messages, whatever the table's size",
            minimum=0,
            maximum=100_000,
        ),
    ] = 0,
    delay_ms: DelayMs = 100,
) -> dict[str, Any]:
    kept = ctx.resource(exports)
    folder = kept.folder
    final = folder / f"people-{ctx.run_id}.{format}"
    partial = partial_path(final)
    writer = _ExportWriter(partial, format)
    try:
        async with db(ctx).export_rows(run_id) as export_rows:
            total = export_rows.total
            if run_id and total == 0:
                raise InvalidParam("run_id", f"no import run with id {run_id!r} added rows")
            await ctx.send({"step": "export", "done": 0, "total": total, "bytes": writer.size})
            done = 0
            per_message = batch_size or max(1, -(-total // _MESSAGES))  # ceiling division
            async with contextlib.aclosing(export_rows.batches(per_message)) as batches:
                async for rows in batches:
                    await in_thread(writer.write_rows, rows)
                    done += len(rows)
                    await ctx.send(
                        {"step": "export", "done": done, "total": total, "bytes": writer.size}
                    )
                    await pause(delay_ms)
        await in_thread_to_the_end(writer.finish, final)
    except BaseException:
        writer.abandon()
        raise
    await in_thread(kept.prune)
    return {
        "path": str(final),
        "file": f"exports/{final.name}",
        "format": format,
        "rows": done,
        "bytes": writer.size,
        "sha256": writer.sha256.hexdigest(),
    }


class _ExportWriter:
    """Writes to ``*.<pid>.partial`` while hashing; renamed into place only when complete."""

    def __init__(self, path: Path, format: str) -> None:
        self.path = path
        self.format = format
        self.sha256 = hashlib.sha256()
        self.size = 0
        claim(path)  # before it exists, so no server starting meanwhile deletes it
        self._file: IO[bytes] = path.open("wb")
        if format == "csv":
            self._write(_csv_line(_FIELDS))

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self.sha256.update(data)
        self.size += len(data)

    def write_rows(self, rows: list[tuple[Any, ...]]) -> None:
        if self.format == "csv":
            self._write(b"".join(_csv_line(row) for row in rows))
        else:
            self._write(
                b"".join(
                    json.dumps(dict(zip(_FIELDS, row, strict=True)), ensure_ascii=False).encode()
                    + b"\n"
                    for row in rows
                )
            )

    def finish(self, final: Path) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.path, final)
        release(self.path)

    def abandon(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        self.path.unlink(missing_ok=True)
        release(self.path)


def _csv_line(values: tuple[Any, ...]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue().encode()
