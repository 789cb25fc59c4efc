"""The ``write-text`` workflow: a report on the imported data, streamed piece by piece."""

from __future__ import annotations

import re
from typing import Any

from streambind.server import RunContext, endpoint

from .backend import ReportFacts
from .pacing import DelayMs, pause
from .resources import db

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
async def write_text(ctx: RunContext, delay_ms: DelayMs = 120) -> dict[str, Any]:
    text = compose_report(await db(ctx).report_facts())
    pieces = _PIECE.findall(text)
    for piece in pieces:
        await ctx.send({"text": piece})
        await pause(delay_ms)
    return {"text": text, "characters": len(text), "pieces": len(pieces)}


def compose_report(facts: ReportFacts) -> str:
    """A plain-English summary of the people table, from facts read in one snapshot."""
    people, imports, distinct_names = facts.people, facts.imports, facts.distinct_names
    if people == 0 or facts.latest is None:
        return (
            "The people table is empty: no import has been published yet. "
            "Run the import workflow (try source presidents.csv, which ships with "
            "streambind) and ask for this report again."
        )
    latest, places = facts.latest, facts.places
    earliest_born, latest_born, mean_born = facts.earliest_born, facts.latest_born, facts.mean_born
    oldest = facts.oldest

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
