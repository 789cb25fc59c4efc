"""The ``write-text`` workflow: a report on the imported data, streamed piece by piece."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..context import RunContext
from ..registry import endpoint
from .pacing import DelayMs, pause
from .store import read_transaction
from .threads import in_thread

# Words with the space after them: the size of the pieces a language model streams.
_PIECE = re.compile(r"\S+\s*|\s+")


@endpoint(
    "write-text",
    title="Write a report",
    description=(
        "Writes a short report on what the people table holds, computed from the database, "
        'and streams it the way an AI response arrives: {"text": "..."} per piece.'
    ),
)
async def write_text(ctx: RunContext, delay_ms: DelayMs = 25) -> dict[str, Any]:
    text = await in_thread(compose_report, ctx.data_dir)
    pieces = _PIECE.findall(text)
    for piece in pieces:
        await ctx.send({"text": piece})
        await pause(delay_ms)
    return {"text": text, "characters": len(text), "pieces": len(pieces)}


def compose_report(data_dir: Path) -> str:
    """A plain-English summary of the people table, from one consistent snapshot."""
    with read_transaction(data_dir) as db:
        (people,) = db.execute("SELECT COUNT(*) FROM people").fetchone()
        (imports,) = db.execute("SELECT COUNT(*) FROM imports").fetchone()
        if people == 0:
            return (
                "The people table is empty: no import has been published yet. "
                "Run the import workflow (try source presidents.csv, which ships with "
                "streambind) and ask for this report again."
            )
        latest = db.execute(
            "SELECT source, rows, imported_at FROM imports ORDER BY imported_at DESC, rowid DESC"
        ).fetchone()
        earliest_born, latest_born, mean_born = db.execute(
            "SELECT MIN(born), MAX(born), AVG(born) FROM people WHERE born IS NOT NULL"
        ).fetchone()
        places = db.execute(
            "SELECT birthplace, COUNT(*) AS n FROM people WHERE birthplace IS NOT NULL "
            "GROUP BY birthplace ORDER BY n DESC, birthplace LIMIT 3"
        ).fetchall()
        (distinct_names,) = db.execute("SELECT COUNT(DISTINCT name) FROM people").fetchone()
        oldest = None
        if earliest_born is not None:
            oldest = db.execute(
                "SELECT name FROM people WHERE born = ? ORDER BY id LIMIT 1", (earliest_born,)
            ).fetchone()[0]

    lines = [
        f"The people table holds {people:,} {_plural(people, 'row')} "
        f"from {imports:,} {_plural(imports, 'import')}, "
        f"with {distinct_names:,} distinct {_plural(distinct_names, 'name')}.",
        f"The latest import took {latest[1]:,} {_plural(latest[1], 'row')} "
        f"from {latest[0]} at {latest[2]}.",
    ]
    if earliest_born is not None:
        lines.append(
            f"Birth years run from {earliest_born} to {latest_born}, "
            f"averaging {mean_born:.0f}; the earliest born is {oldest}."
        )
    if places:
        listed = ", ".join(f"{place} ({n:,})" for place, n in places)
        lines.append(f"The most common birthplaces are {listed}.")
    return " ".join(lines)


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"
