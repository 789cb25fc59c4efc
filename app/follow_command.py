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
from rich.table import Table

from .call_command import EXIT_FAILED, EXIT_USAGE, show_call
from .client import ClientError, StreamClient
from .runs_view import columns_for, run_row

__all__ = ["parse_header", "run_follow", "run_runs", "run_watch"]


async def run_runs(url: str, *, token: str | None, as_json: bool) -> int:
    """Print the server's runs once, newest first: a table, or one JSON line per run."""
    async with StreamClient(url, token) as client:
        try:
            runs = await client.runs()
        except ClientError as exc:
            Console(stderr=True, highlight=False).print(f"[red]streambind runs:[/] {exc}")
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
    columns = columns_for(runs)
    table = Table(*(heading for _, heading in columns), box=None, header_style="bold")
    now = datetime.now(UTC)
    for run in runs:
        cells = run_row(run, now)
        table.add_row(*(cells[key] for key, _ in columns))
    out.print(table)
    return 0


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
    err = Console(stderr=True, highlight=False)
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
