"""The command line at its edges: a closed pipe, bad option values, one rule for exit
statuses, messages on one line, and run ids that are never cut."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from foreign import serve
from polling import newest_run

TESTS = Path(__file__).parent
CLI = (sys.executable, "-m", "streambind.app.cli")


async def _cli(*args: str, columns: int = 80) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *CLI, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(TESTS), "COLUMNS": str(columns)},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _first_lines_then_close(args: tuple[str, ...], lines: int) -> tuple[int, str, list[str]]:
    """What ``streambind ARGS | head -LINES`` does: read that many lines, then close the pipe."""
    process = await asyncio.create_subprocess_exec(
        *CLI, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    read = [(await process.stdout.readline()).decode() for _ in range(lines)]
    process.stdout.feed_eof()
    # Closing our end of the pipe, as head does when it exits.
    transport = process._transport  # type: ignore[attr-defined]
    transport.get_pipe_transport(1).close()
    err = (await asyncio.wait_for(process.stderr.read(), 120)).decode()
    code = await asyncio.wait_for(process.wait(), 120)
    return code, err, read


async def test_call_json_into_a_closed_pipe_ends_quietly(server) -> None:  # type: ignore[no-untyped-def]
    code, err, lines = await _first_lines_then_close(
        ("call", "import", "-p", "rows=100000", "-p", "batch_size=10", "-p", "delay_ms=1",
         "--json", "--url", server.url),
        1,
    )  # fmt: skip
    assert lines[0].startswith('{"chunk": {"step": "import"')
    assert err == ""  # no traceback, no "Exception ignored"
    assert code == 141  # as a shell reports a program that a closed pipe ended


async def test_follow_json_into_a_closed_pipe_ends_quietly_and_leaves_the_run(server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        started = asyncio.create_task(
            client.post(
                "/api/endpoints/import", json={"rows": 100000, "batch_size": 10, "delay_ms": 1}
            )
        )
        run = await newest_run(client, lambda r: r["events"] >= 1, "a running import")
        code, err, lines = await _first_lines_then_close(
            ("follow", run["id"], "--json", "--url", server.url), 3
        )
        assert len(lines) == 3 and all(line.startswith('{"chunk"') for line in lines)
        assert err == ""
        assert code == 141
        # Following is not owning: the run goes on for its own caller.
        record = (await client.get(f"/api/runs/{run['id']}")).json()
        assert record["status"] == "running"
        await client.delete(f"/api/runs/{run['id']}")
        await started


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("serve", "--port", "99999"), "99999 is not a port number (0 to 65535)"),
        (("serve", "--port", "http"), "'http' is not a port number"),
        (("serve", "--max-runs", "0"), "must be at least 1"),
        (("serve", "--ping", "soon"), "'soon' is not a number of seconds"),
        (("serve", "--ping", "0"), "--ping must be more than 0 seconds"),
        (("call", "import", "--url", "notaurl"), "'notaurl' is not an http:// or https:// URL"),
        (("runs", "--url", "http://127.0.0.1:99999"), "has no valid port"),
        (("watch", "notaurl"), "'notaurl' is not an http:// or https:// URL"),
    ],
)
async def test_a_bad_option_value_is_one_line_and_status_2(
    args: tuple[str, ...], complaint: str
) -> None:
    code, out, err = await _cli(*args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1, err  # one line, no usage block, no traceback
    assert complaint in err
    assert "--help" in err


async def test_a_parameter_the_workflow_refuses_exits_2_like_one_the_client_refuses(server) -> None:  # type: ignore[no-untyped-def]
    code, _, err = await _cli("call", "import", "-p", "source=nope.csv", "--url", server.url)
    assert code == 2
    # Field and reason apart, on one line however long.
    assert "1 parameter is invalid: source: no file named 'nope.csv'" in err
    assert err.count("\n") == 1
    code, _, err = await _cli("call", "import", "-p", "rows=many", "--url", server.url)
    assert code == 2
    assert "-p rows" in err


async def test_a_long_message_is_never_broken_mid_phrase(server) -> None:  # type: ignore[no-untyped-def]
    name = "x" * 150
    code, _, err = await _cli("call", "import", "-p", f"source={name}.csv", "--url", server.url)
    assert code == 2
    assert err.count("\n") == 1 and f"{name}.csv" in err


def _runs_on_nodes() -> web.Application:
    runs = [
        {
            "id": f"{i:02d}" + "6510f536c92a4b"[:14],
            "endpoint": "transcode-video-segments",
            "status": "running",
            "created": "2026-12-01T10:00:00.000Z",
            "finished": None,
            "events": 3,
            "last_message": {"step": "transcoding-video-segments-part-one", "percent": 40},
            "node": f"worker-node-with-a-long-name-{i}.example.internal:41234:abcdef",
        }
        for i in range(3)
    ]

    async def list_runs(request: web.Request) -> web.Response:
        return web.json_response({"runs": runs})

    app = web.Application()
    app.router.add_get("/api/runs", list_runs)
    return app


@pytest.mark.parametrize("columns", [50, 80, 200])
async def test_runs_never_cuts_a_run_id(columns: int) -> None:
    async with serve(_runs_on_nodes()) as url:
        code, out, err = await _cli("runs", "--url", url, columns=columns)
    assert code == 0, err
    for i in range(3):
        run_id = f"{i:02d}6510f536c92a4b"
        assert run_id in out  # whole, so that it can be pasted into follow
    assert "node" in out.splitlines()[0]


@pytest.mark.parametrize("width", [40, 60, 100])
def test_on_a_narrow_terminal_ids_stay_whole_and_columns_give_way(width: int) -> None:
    from io import StringIO

    from rich.console import Console

    from streambind.app.follow_command import runs_table

    runs = [
        {"id": f"{i:02d}6510f536c92a4b", "endpoint": "transcode-video-segments",
         "status": "succeeded", "created": "2026-12-01T10:00:00.000Z",
         "finished": "2026-12-01T10:01:00.000Z", "events": 3, "node": "n" * 40}
        for i in range(3)
    ]  # fmt: skip
    console = Console(file=StringIO(), width=width, force_terminal=True, color_system=None)
    console.print(runs_table(runs, console))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    for i in range(3):
        assert f"{i:02d}6510f536c92a4b" in text
    assert "succeeded" in text  # the status never gives way
    assert "transcod" in text and ("…" in text or width >= 100)
