"""The ``import`` and ``pipeline`` workflows: rows into the ``people`` table."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from streambind.server import Param, RunContext, endpoint

from .backend import INDEXES, EncodedBatch
from .pacing import DelayMs, pause
from .resources import db
from .rows import RowSource, open_source
from .threads import in_thread

Rows = Annotated[
    int, Param("Rows to generate when no source is given", minimum=1, maximum=1_000_000)
]
BatchSize = Annotated[
    int, Param("Rows per batch; one message per batch", minimum=1, maximum=10_000)
]
Source = Annotated[
    str,
    Param(
        "A CSV file (name,born,birthplace) in the data directory's imports/ folder, "
        "such as presidents.csv; empty to generate rows",
        max_length=255,
    ),
]


#: The steps ``pipeline`` goes through, in order (its first message and its result list them).
PIPELINE_STEPS = ("validate", "import", "publish", "index")


@endpoint(
    "import",
    title="Import rows",
    description=(
        "Imports rows into the people table of the server's database (SQLite, or "
        "PostgreSQL with --database), one batch at a time, reporting done/total after "
        "each batch. Readers never see a partial import."
    ),
)
async def import_rows(
    ctx: RunContext,
    rows: Rows = 1000,
    batch_size: BatchSize = 25,
    delay_ms: DelayMs = 100,
    source: Source = "",
) -> dict[str, Any]:
    rows_source = await in_thread(open_source, ctx.data_dir, source, rows, ctx.run_id)
    imported = await load_and_publish(ctx, rows_source, batch_size, delay_ms, step="import")
    return {
        "imported": imported,
        "table": "people",
        "run_id": ctx.run_id,
        "source": rows_source.label,
    }


@endpoint(
    "pipeline",
    title="Validate, import, index",
    description=(
        "Named steps, each reporting its own done/total with `step` set: "
        "validate the rows, import them (then publish them at once), then build the "
        'table\'s indexes. Its first message announces them: {"steps": ["validate", '
        '"import", "publish", "index"]}.'
    ),
)
async def pipeline(
    ctx: RunContext,
    rows: Rows = 1000,
    batch_size: BatchSize = 50,
    delay_ms: DelayMs = 100,
    source: Source = "",
) -> dict[str, Any]:
    rows_source = await in_thread(open_source, ctx.data_dir, source, rows, ctx.run_id)

    # Announced up front, so a follower can show the steps still to come.
    await ctx.send({"steps": list(PIPELINE_STEPS)})
    validated = 0
    batches = rows_source.batches(batch_size)
    await ctx.send({"step": "validate", "done": 0, "total": rows_source.total})
    # Reading a batch is where CsvSource checks each row; a bad one stops the run here.
    while (batch := await in_thread(next, batches, None)) is not None:
        validated += len(batch)
        await ctx.send({"step": "validate", "done": validated, "total": rows_source.total})
        await pause(delay_ms)

    imported = await load_and_publish(ctx, rows_source, batch_size, delay_ms, step="import")

    total = len(INDEXES)
    built: list[str] = []
    await ctx.send({"step": "index", "done": 0, "total": total})
    async for name in db(ctx).create_indexes():
        built.append(name)
        await ctx.send({"step": "index", "done": len(built), "total": total, "index": name})
        await pause(delay_ms)

    return {
        "imported": imported,
        "table": "people",
        "run_id": ctx.run_id,
        "source": rows_source.label,
        "indexes": built,
        "steps": list(PIPELINE_STEPS),
    }


async def load_and_publish(
    ctx: RunContext, source: RowSource, batch_size: int, delay_ms: int, *, step: str
) -> int:
    """Stage every row of ``source`` batch by batch, then publish them at once."""
    staged = await db(ctx).stage(ctx.run_id)
    ahead: asyncio.Future[EncodedBatch | None] | None = None
    try:
        done = 0
        total = source.total
        # Sent before the first batch, so the caller learns the total at once and a
        # bad row in the first batch still arrives as an error event of a stream.
        await ctx.send({"step": step, "done": 0, "total": total})
        batches = source.batches(batch_size)

        def next_encoded() -> EncodedBatch | None:
            batch = next(batches, None)
            return None if batch is None else staged.encode(batch)

        ahead = asyncio.ensure_future(in_thread(next_encoded))
        while (batch := await ahead) is not None:
            # The next batch is read (or generated) and encoded while this one is
            # being stored: on PostgreSQL, while the server parses this one's COPY.
            ahead = asyncio.ensure_future(in_thread(next_encoded))
            done += await staged.add(batch)
            await ctx.send({"step": step, "done": done, "total": max(total, done)})
            await pause(delay_ms)
        # One transaction that can take a while on a big import: the caller sees what the
        # run is doing (no done/total: the bar shows it busy, not finished).
        await ctx.send({"step": "publish", "rows": done})
        return await staged.publish(source.label)
    except BaseException:
        if ahead is not None:
            ahead.cancel()  # in_thread lets a running read finish first
            await asyncio.wait([ahead])
            if not ahead.cancelled():
                ahead.exception()  # the error that matters is the one being raised
        await staged.discard()
        raise
