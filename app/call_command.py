"""``streambind call``: run one endpoint from a shell, with a progress bar or JSON lines.

``show_call`` is that display and its exit status, for ``follow`` and ``watch`` too.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from .client import ClientError, StreamCall, StreamClient
from .forms import fields, parse_value
from .progress import bar_fraction, chunk_count, done_of_total, joined_text, progress_of
from .settings import ClientSettings
from .state import StreamState
from .steps import steps_line

__all__ = [
    "EXIT_CANCELLED",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "parse_assignments",
    "run_call",
    "show_call",
]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 3
_REFRESH_S = 0.1


class UsageError(Exception):
    pass


def parse_assignments(pairs: list[str], params_schema: dict[str, Any]) -> dict[str, Any]:
    """``-p key=value`` pairs into parameters, typed by the endpoint's JSON Schema."""
    schema = fields(params_schema)
    params: dict[str, Any] = {}
    for pair in pairs:
        key, equals, text = pair.partition("=")
        if not equals or not key:
            raise UsageError(f"-p {pair!r}: write it as key=value")
        if key not in schema:
            known = ", ".join(schema) or "none"
            raise UsageError(f"-p {key}: no such parameter (parameters: {known})")
        try:
            params[key] = parse_value(schema[key], text)
        except ValueError as exc:
            raise UsageError(f"-p {key}: {exc}") from None
    return params


async def run_call(
    url: str,
    name: str,
    assignments: list[str],
    *,
    token: str | None,
    handle_stream: bool,
    as_json: bool,
    settings: ClientSettings | None = None,
) -> int:
    err = Console(stderr=True, highlight=False)
    async with StreamClient(url, token, settings=settings) as client:
        try:
            endpoints = {e["name"]: e for e in await client.endpoints()}
        except ClientError as exc:
            err.print(f"[red]streambind call:[/] {exc}")
            return EXIT_FAILED
        if name not in endpoints:
            err.print(
                f"[red]streambind call:[/] no endpoint named {name!r}; "
                f"the server offers: {', '.join(endpoints)}"
            )
            return EXIT_USAGE
        try:
            params = parse_assignments(assignments, endpoints[name].get("params", {}))
        except UsageError as exc:
            err.print(f"[red]streambind call:[/] {exc}")
            return EXIT_USAGE
        return await show_call(client.call(name, params, handle_stream=handle_stream), as_json)


async def show_call(call: StreamCall, as_json: bool) -> int:
    """Run ``call`` to its end with a progress bar (or JSON lines); its exit status.

    0 succeeded, 1 failed, 3 cancelled (Ctrl-C cancels the run on the server too).
    """
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    if as_json:
        call.on_chunk = lambda chunk: _print_line({"chunk": chunk})
        state = await _run_interruptibly(call)
        _print_line(_summary(state))
    else:
        state = await _run_with_progress(call, out)
        _print_outcome(state, out, err)
    return {"succeeded": 0, "cancelled": EXIT_CANCELLED}.get(state.status, EXIT_FAILED)


async def _run_interruptibly(call: Any) -> StreamState:
    task = asyncio.ensure_future(call.run())
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # Ctrl-C: close the stream and cancel the run on the server too.
        await call.cancel()
        return await task


async def _run_with_progress(call: Any, out: Console) -> StreamState:
    state: StreamState = call.state
    streamed_text = False
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=out,
        transient=False,
    ) as bar:
        label = state.name if state.handle_stream else f"{state.name} (Handle stream off)"
        task_id = bar.add_task(label, total=None, counts="")
        printed = 0

        def show() -> None:
            nonlocal printed, streamed_text
            text = joined_text(state.chunks[printed:])
            printed = len(state.chunks)
            if text is not None:
                streamed_text = True
                bar.console.print(text, end="")
            progress = progress_of(state.chunk)
            counts = " · ".join(
                part
                for part in (done_of_total(progress), chunk_count(len(state.chunks)))
                if part is not None
            )
            description = progress.step or label
            if state.steps.known >= 2:  # validate ✓  import 45%  index ·
                succeeded = state.status == "succeeded"
                description = steps_line(state.steps.steps(bar_fraction(state), succeeded))
            fraction = bar_fraction(state)
            if fraction is not None:
                bar.update(task_id, total=1.0, completed=fraction, counts=counts,
                           description=description)  # fmt: skip
            else:
                bar.update(task_id, counts=counts, description=description)

        runner = asyncio.ensure_future(call.run())
        try:
            while not runner.done():
                await asyncio.wait([runner], timeout=_REFRESH_S)
                show()
        except asyncio.CancelledError:
            await call.cancel()  # Ctrl-C: the run is cancelled on the server too
            await runner
        show()  # the final state, after Ctrl-C too
        if streamed_text:
            bar.console.print()  # end the streamed text's last line before the bar
    return await runner


def _print_outcome(state: StreamState, out: Console, err: Console) -> None:
    if state.status == "succeeded":
        if not state.streamed:
            out.print(
                "[yellow]The endpoint finished without sending a streaming message: "
                "no progress to show, only its result.[/]"
            )
        out.print_json(data=state.result)
    elif state.status == "cancelled":
        err.print(f"[yellow]cancelled[/] after {chunk_count(len(state.chunks))}")
    else:
        err.print(f"[red]failed:[/] {state.error_message()}")


def _summary(state: StreamState) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "status": state.status,
        "result": state.result,
        "run_id": state.run_id,
        "chunks": len(state.chunks),
    }
    if state.error:
        summary["error"] = state.error
    return summary


def _print_line(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()
