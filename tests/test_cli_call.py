"""`streambind call`: exit codes, --json output, parameters typed by the schema."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Literal

import httpx
import pytest
from polling import newest_run

from streambind.app.call_command import UsageError, parse_assignments
from streambind.server import Param
from streambind.server.params import params_from_signature

TESTS = Path(__file__).parent


async def _call(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streambind.app.cli", "call", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(TESTS), "COLUMNS": "100"},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_json_output_has_a_line_per_chunk_then_the_result(server) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = await _call(
        "import", "-p", "rows=30", "-p", "batch_size=10", "-p", "delay_ms=0", "--json",
        "--url", server.url,
    )  # fmt: skip
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[:-1] == [
        *({"chunk": {"step": "import", "done": d, "total": 30}} for d in (0, 10, 20, 30)),
        {"chunk": {"step": "publish", "rows": 30}},
    ]
    final = lines[-1]
    assert final["status"] == "succeeded"
    assert final["result"]["imported"] == 30
    assert final["chunks"] == 5
    assert final["run_id"] == final["result"]["run_id"]


async def test_a_failed_run_exits_1(server) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = await _call("flaky", "-p", "delay_ms=0", "--json", "--url", server.url)
    assert code == 1
    final = json.loads(out.splitlines()[-1])
    assert final["status"] == "failed"
    assert final["error"]["type"] == "FlakyFailure"


async def test_a_run_cancelled_elsewhere_exits_3(server) -> None:  # type: ignore[no-untyped-def]
    call = asyncio.create_task(_call("hold", "-p", "key=cli-cancel", "--json", "--url", server.url))
    async with httpx.AsyncClient(base_url=server.url) as client:
        run = await newest_run(client, lambda r: r["events"] == 1, "the first message")
        await client.delete(f"/api/runs/{run['id']}")
    code, out, _ = await call
    assert code == 3
    assert json.loads(out.splitlines()[-1])["status"] == "cancelled"


async def test_the_progress_view_ends_with_the_result(server) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = await _call("import", "-p", "rows=40", "-p", "delay_ms=0", "--url", server.url)
    assert code == 0
    assert "100%" in out
    assert '"imported": 40' in out


async def test_no_stream_waits_for_the_whole_response(server) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = await _call(
        "import", "-p", "rows=40", "-p", "delay_ms=0", "--no-stream", "--json",
        "--url", server.url,
    )  # fmt: skip
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 5  # four chunks (the last: publish), all at the end, then the result
    assert lines[-1]["status"] == "succeeded"


async def test_bad_usage_exits_2_with_a_clear_message(server) -> None:  # type: ignore[no-untyped-def]
    code, _, err = await _call("import", "-p", "rows=many", "--url", server.url)
    assert code == 2
    assert "-p rows: must be a whole number" in err
    code, _, err = await _call("nope", "--url", server.url)
    assert code == 2
    assert "no endpoint named 'nope'" in err
    assert "import" in err


async def test_an_unreachable_server_exits_1_without_a_traceback(unused_tcp_port: int) -> None:
    code, _, err = await _call("import", "--url", f"http://127.0.0.1:{unused_tcp_port}")
    assert code == 1
    assert "is the server running" in err
    assert "Traceback" not in err


async def test_without_url_it_runs_an_embedded_server(tmp_path: Path) -> None:
    code, out, _ = await _call("silent", "--json", "--data-dir", str(tmp_path))
    assert code == 0
    assert json.loads(out.splitlines()[-1])["result"] == {
        "people": 0,
        "imports": 0,
        "streamed": False,
    }
    assert (tmp_path / "streambind.db").exists()
    assert "run" in (tmp_path / "streambind.log").read_text()


async def _flow(
    ctx: object,
    name: str,
    rows: Annotated[int, Param(minimum=1)] = 5,
    ratio: float = 0.5,
    fast: bool = False,
    source: str = "",
    limit: int | None = None,
    mode: Literal["a", "b"] = "a",
) -> None: ...


def test_parameters_are_typed_by_the_schema() -> None:
    # The JSON Schema the server publishes for this signature, as the CLI reads it.
    schema = params_from_signature(_flow).json_schema()
    given = ["rows=1_000", "ratio=0.5", "fast=yes", "source=12.csv", "limit=", "mode=b"]
    assert parse_assignments(given, schema) == {
        "rows": 1000,
        "ratio": 0.5,
        "fast": True,
        "source": "12.csv",
        "limit": None,
        "mode": "b",
    }
    assert parse_assignments(["limit=7"], schema) == {"limit": 7}
    for bad, message in [
        ("mode=c", "must be one of a, b"),
        ("limit=x", "must be a whole number"),
        ("rows", "write it as key=value"),
        ("colour=red", "no such parameter"),
        ("rows=0", "must be at least 1"),
        ("fast=maybe", "must be true or false"),
        ("name=", "name: is required"),
        ("name=  ", "name: is required"),
    ]:
        with pytest.raises(UsageError, match=message):
            parse_assignments([bad], schema)
