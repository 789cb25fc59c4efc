"""``streambind runs``, ``follow`` and ``watch``: the server's runs, any run, any SSE URL.

``follow`` and ``watch`` show what ``call`` shows, with its exit statuses.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from .call_command import EXIT_FAILED, EXIT_USAGE, show_call
from .client import ClientError, StreamClient
from .runs_view import columns_for, fit, run_row

__all__ = ["parse_header", "run_follow", "run_runs", "run_watch"]


async def run_runs(url: str, *, token: str | None, as_json: bool) -> int:
    """Print the server's runs once, newest first: a table, or one JSON line per run."""
    async with StreamClient(url, token) as client:
        try:
            runs = await client.runs()
        except ClientError as exc:
            Console(stderr=True, highlight=False, soft_wrap=True).print(
                f"[red]streambind runs:[/] {exc}"
            )
            return EXIT_FAILED
    if as_json:
        for run in runs:
            sys.stdout.write(json.dumps(run, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return 0
    out = Console(highlight=False)
    if not runs:
        out.print("No runs: the server keeps none right now.")
        return 0
    out.print(runs_table(runs, out))
    return 0


#: On a terminal, the widest a cell of each column is shown (cut with ``…``), and which
#: columns give way, in order, when even that does not fit. The id is never cut.
_CELL_WIDTHS = {"endpoint": 20, "status": 9, "progress": 28, "started": 8, "duration": 8,
                "node": 24}  # fmt: skip
_DROPPED_FIRST = ("duration", "started", "node", "progress")


def runs_table(runs: list[dict[str, Any]], out: Console) -> Table:
    """The runs as a table for ``out``; a run id is never shortened, since it is copied
    from here into ``follow``. Written to a file or a pipe, nothing is cut; on a narrow
    terminal, long cells are cut with ``…`` and the least needed columns give way."""
    now = datetime.now(UTC)
    rows = [run_row(run, now) for run in runs]
    columns = columns_for(runs)
    if out.is_terminal:
        rows = [
            {
                key: text if key == "id" else fit(text, _CELL_WIDTHS[key])
                for key, text in row.items()
            }
            for row in rows
        ]

        headings = dict(columns)

        def width(keys: list[str]) -> int:
            return sum(max(len(headings[k]), *(len(row[k]) for row in rows)) + 2 for k in keys)

        for dropped in _DROPPED_FIRST:
            if width([key for key, _ in columns]) <= out.width:
                break
            columns = [column for column in columns if column[0] != dropped]
        # Still too wide: the endpoint's name gives way too, down to a few characters.
        excess = width([key for key, _ in columns]) - out.width
        if excess > 0:
            longest = max(len(row["endpoint"]) for row in rows)
            keep = max(8, longest - excess)
            rows = [{**row, "endpoint": fit(row["endpoint"], keep)} for row in rows]
    table = Table(box=None, header_style="bold")
    for key, heading in columns:
        id_width = max(len(row[key]) for row in rows) if key == "id" else None
        table.add_column(heading, no_wrap=True, min_width=id_width)
    for row in rows:
        table.add_row(*(row[key] for key, _ in columns))
    if not out.is_terminal:
        unbounded = out.options.update_width(1_000_000)
        out.width = max(out.width, Measurement.get(out, unbounded, table).maximum)
    return table


async def run_follow(url: str, run_id: str, *, token: str | None, as_json: bool) -> int:
    """Replay one run from its first event, then follow it live, as ``call`` shows a run."""
    async with StreamClient(url, token) as client:
        return await show_call(client.follow(run_id), as_json)


def parse_header(text: str) -> tuple[str, str]:
    """``Name: value`` (as curl's ``-H`` takes it); ValueError says what is wrong."""
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise ValueError(f"-H {text!r}: write it as 'Name: value'")
    return name.strip(), value.strip()


async def run_watch(
    url: str,
    *,
    method: str | None,
    data: str | None,
    headers: list[str],
    as_json: bool,
) -> int:
    """Follow any SSE URL as the Watch URL panel does; ``-d`` sends a JSON body (POST)."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        err.print(f"[red]streambind watch:[/] {url!r} is not an http:// or https:// URL")
        return EXIT_USAGE
    body: Any = None
    try:
        if data is not None:
            body = json.loads(data)
        extra = dict(parse_header(h) for h in headers)
    except ValueError as exc:
        problem = f"-d is not JSON: {exc}" if isinstance(exc, json.JSONDecodeError) else exc
        err.print(f"[red]streambind watch:[/] {problem}")
        return EXIT_USAGE
    verb = (method or ("POST" if data is not None else "GET")).upper()
    async with StreamClient(f"{parts.scheme}://{parts.netloc}") as client:
        call = client.watch(url, method=verb, body=body, headers=extra)
        return await show_call(call, as_json)
