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
from .progress import bar_fraction, chunk_count, done_of_total, joined_text, latest_progress
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
#: See cli.EXIT_OUTPUT_CLOSED: the reader of ``--json`` lines went away.
EXIT_OUTPUT_CLOSED = 141
_REFRESH_S = 0.1

#: Errors that say the user typed something wrong: exit status 2, as for the client's own
#: checks. A parameter the server (or the workflow) refused, a run or URL that is not there.
_USAGE_ERRORS = frozenset(
    {"invalid_params", "invalid_body", "invalid_request", "not_found", "http_404"}
)


def _console(*, stderr: bool = False) -> Console:
    # soft_wrap: a message is one line however long, never broken in mid-phrase.
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def exit_status(state: StreamState) -> int:
    """0 succeeded, 2 what the user typed was refused, 3 cancelled or stopped, else 1."""
    if state.status == "succeeded":
        return 0
    if state.status in ("cancelled", "stopped"):
        return EXIT_CANCELLED
    if state.error and state.error.get("type") in _USAGE_ERRORS:
        return EXIT_USAGE
    return EXIT_FAILED


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
    err = _console(stderr=True)
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

    0 succeeded, 1 failed, 2 refused as typed, 3 cancelled (Ctrl-C cancels the run on the
    server too; for a watched stream that is no run, it stops watching).
    """
    out = _console()
    err = _console(stderr=True)
    if as_json:
        output_closed = False

        def print_chunk(chunk: Any) -> None:
            nonlocal output_closed
            if output_closed:
                return
            try:
                _print_line({"chunk": chunk})
            except BrokenPipeError:
                # The reader went away (``| head``): stop following, cancel nothing.
                output_closed = True
                call.leave()

        call.on_chunk = print_chunk
        state = await _run_interruptibly(call)
        if output_closed:
            return EXIT_OUTPUT_CLOSED
        _print_line(_summary(state))
    else:
        state = await _run_with_progress(call, out)
        _print_outcome(state, out, err)
    return exit_status(state)


async def _run_interruptibly(call: StreamCall) -> StreamState:
    task = asyncio.ensure_future(call.run())
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # Ctrl-C: close the stream and cancel the run on the server too.
        await call.cancel()
        return await task


async def _run_with_progress(call: StreamCall, out: Console) -> StreamState:
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
            text = joined_text(state.chunks.between(printed))
            printed = state.chunks.received
            if text is not None:
                streamed_text = True
                bar.console.print(text, end="")
            progress = latest_progress(state)
            counts = " · ".join(
                part
                for part in (done_of_total(progress), chunk_count(state.chunks.received))
                if part is not None
            )
            description = progress.step or label
            if state.busy:
                description = f"{label}: {state.busy}"
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
        err.print(f"[yellow]cancelled[/] after {chunk_count(state.chunks.received)}")
    elif state.status == "stopped":
        err.print(
            f"[yellow]stopped watching[/] after {chunk_count(state.chunks.received)}; "
            "the stream's source was not asked to cancel anything"
        )
    else:
        err.print(f"[red]failed:[/] {state.error_message()}")


def _summary(state: StreamState) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "status": state.status,
        "result": state.result,
        "run_id": state.run_id,
        "chunks": state.chunks.received,
    }
    if state.error:
        summary["error"] = state.error
    return summary


def _print_line(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()
