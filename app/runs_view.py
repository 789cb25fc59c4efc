"""The runs table (``GET /api/runs``) as text, for the Runs tab and ``streambind runs``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from .progress import format_duration, progress_of

__all__ = ["COLUMNS", "columns_for", "fit", "parse_time", "progress_label", "run_row"]

#: Column key and heading, in order; ``node`` is shown only when some run has one.
COLUMNS = (
    ("id", "run"),
    ("endpoint", "endpoint"),
    ("status", "status"),
    ("progress", "progress"),
    ("started", "started"),
    ("duration", "duration"),
    ("node", "node"),
)


def columns_for(runs: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """The columns to show: ``node`` only when some run says which node runs it."""
    with_node = any(run.get("node") for run in runs)
    return [c for c in COLUMNS if c[0] != "node" or with_node]


def fit(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, a cut shown with ``…``."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def parse_time(text: Any) -> datetime | None:
    """The server's ISO 8601 times (``2026-11-29T07:12:35.123Z``), or None."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def progress_label(run: dict[str, Any]) -> str:
    """How far the run is, from its latest chunk: ``import 45%``, ``100%``, or a count."""
    if run.get("status") == "succeeded":
        return "100%"
    progress = progress_of(run.get("last_message"))
    if progress.fraction is not None:
        percent = f"{progress.fraction * 100:.0f}%"
        return f"{progress.step} {percent}" if progress.step else percent
    # "messages" from servers since 0.2, "events" (the same count) from older ones.
    count = run.get("messages", run.get("events")) or 0
    return f"{count:,} chunk{'' if count == 1 else 's'}" if count else ""


def run_row(run: dict[str, Any], now: datetime, tz: tzinfo | None = None) -> dict[str, str]:
    """One run's cells by column key; ``now`` (aware) is when the table is drawn.

    ``started`` is shown in ``tz`` (default: the local time zone).
    """
    created = parse_time(run.get("created"))
    finished = parse_time(run.get("finished"))
    duration = ""
    if created is not None:
        seconds = ((finished or now) - created).total_seconds()
        duration = format_duration(max(0.0, seconds))
    return {
        "id": str(run.get("id", "")),
        "endpoint": str(run.get("endpoint", "")),
        "status": str(run.get("status", "")),
        "progress": progress_label(run),
        "started": created.astimezone(tz).strftime("%H:%M:%S") if created else "",
        "duration": duration,
        "node": str(run.get("node") or ""),
    }
