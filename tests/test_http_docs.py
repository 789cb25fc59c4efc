"""docs/http-api.md's curl examples, run as written (the documented address replaced by a
live server's) and compared with what the page shows."""

from __future__ import annotations

import asyncio
import json
import re
import shutil

import httpx
import pytest
from conftest import StartServer
from docblocks import DOCUMENTED_SERVER, commands, example

from streambind.server import RunningServer

#: The run id the page's examples show.
PAGE_RUN = "8918f7cad257419d"


@pytest.fixture(autouse=True)
def _needs_curl() -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed: the page's examples are curl commands")


async def _curl(command: str, url: str, run_id: str = PAGE_RUN) -> str:
    """One documented command's output, run by the shell against ``url``."""
    assert command.startswith("curl ")
    here = command.replace(DOCUMENTED_SERVER, url).replace(PAGE_RUN, run_id)
    process = await asyncio.create_subprocess_shell(
        here, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode().replace("\r\n", "\n")


def _shown(block: str) -> list[str]:
    """What the page shows after each command of a console block."""
    outputs: list[str] = []
    continued = False  # the line before ended a command's line with a backslash
    for line in block.splitlines():
        if line.startswith("$ ") or continued:
            if not continued:
                outputs.append("")
            continued = line.endswith("\\")
        elif outputs:
            outputs[-1] += line + "\n"
    return outputs


def _head_and_body(answer: str) -> tuple[list[str], str]:
    head, _, body = answer.partition("\n\n")
    return head.splitlines(), body


async def test_listing_endpoints_shows_the_import_schema(server: RunningServer) -> None:
    block = example("http-endpoints")
    [command] = commands(block, "$ ")
    endpoints = json.loads(await _curl(command, server.url))["endpoints"]
    first = endpoints[0]
    shown = _shown(block)[0]
    assert f'"name": "{first["name"]}", "title": "{first["title"]}"' in shown
    schema = first["params"]
    for key in ("$schema", "title", "type"):
        assert f'"{key}": {json.dumps(schema[key])}' in shown
    rows = re.search(r'"rows": \{"description": "\.\.\.", (.*?)\}', shown, re.DOTALL)
    assert rows is not None
    documented = json.loads("{" + " ".join(rows.group(1).split()) + "}")
    assert documented == {k: v for k, v in schema["properties"]["rows"].items() if k in documented}
    assert f'"additionalProperties": {json.dumps(schema["additionalProperties"])}' in shown


async def test_starting_a_run_streams_what_the_page_shows(server: RunningServer) -> None:
    block = example("http-start-run")
    [command] = commands(block, "$ ")
    assert '\'{"rows": 40, "delay_ms": 100}\'' in command
    async with httpx.AsyncClient(base_url=server.url) as client:
        before = {run["id"] for run in (await client.get("/api/runs")).json()["runs"]}
        sent = await _curl(command, server.url)
        [run_id] = {run["id"] for run in (await client.get("/api/runs")).json()["runs"]} - before
    assert sent.replace(run_id, PAGE_RUN).strip() == _shown(block)[0].strip()


async def test_a_run_that_sends_nothing_answers_its_result(server: RunningServer) -> None:
    block = example("http-silent")
    [command] = commands(block, "$ ")
    head, body = _head_and_body(await _curl(command, server.url))
    shown_head, shown_body = _head_and_body(_shown(block)[0])
    assert head[0].strip() == shown_head[0]
    documented = dict(line.split(": ", 1) for line in shown_head[1:])
    answered = dict(line.split(": ", 1) for line in head[1:])
    assert re.fullmatch(r"[0-9a-f]{16}", answered["X-Run-Id"])
    assert answered["Content-Type"] == documented["Content-Type"]
    assert set(json.loads(body)) == set(json.loads(shown_body))
    assert json.loads(body)["streamed"] is False


async def test_invalid_parameters_get_the_error_the_page_shows(server: RunningServer) -> None:
    block = example("http-invalid-params")
    [command] = commands(block, "$ ")
    assert json.loads(await _curl(command, server.url)) == json.loads(_shown(block)[0])


async def test_following_a_run_lists_it_and_replays_after_last_event_id(
    server: RunningServer,
) -> None:
    block = example("http-runs")
    listing, detail, events = commands(block, "$ ")
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        answer = await client.post("/api/endpoints/import", json={"rows": 40, "delay_ms": 100})
    run_id = answer.headers["x-run-id"]
    [run] = json.loads(await _curl(listing, server.url))["runs"]
    documented = json.loads(_shown(block)[0].replace("{...}", "{}"))["runs"][0]
    assert set(run) == set(documented)
    for key in ("endpoint", "status", "events", "last_message"):
        assert run[key] == documented[key], key
    record = json.loads(await _curl(detail, server.url, run_id))
    assert record["result"]["imported"] == 40
    replay = await _curl(events, server.url, run_id)
    shown = _shown(block)[2].removesuffix("...\n")
    assert replay.startswith(shown)


async def test_events_no_longer_kept_are_410_as_the_page_shows(start: StartServer) -> None:
    server = await start(log_max_bytes=4000)
    block = example("http-events-gone")
    [command] = commands(block, "$ ")
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        answer = await client.post("/api/endpoints/firehose", json={"n": 2000})
    run_id = answer.headers["x-run-id"]
    head, body = _head_and_body(await _curl(command, server.url, run_id))
    shown_head, shown_body = _head_and_body(_shown(block)[0])
    assert head[0].strip() == shown_head[0]
    answered = dict(line.split(": ", 1) for line in head[1:])
    documented = dict(line.split(": ", 1) for line in shown_head[1:])
    assert answered["X-Run-Id"] == run_id
    assert answered["Content-Type"] == documented["Content-Type"]
    error = json.loads(body)["error"]
    shown = json.loads(" ".join(shown_body.split()))["error"]
    assert set(error) == set(shown)
    assert (error["type"], error["run"]) == (shown["type"], f"/api/runs/{run_id}")
    kept = error["first_kept"]
    assert error["message"] == shown["message"].replace(PAGE_RUN, run_id).replace(
        str(shown["first_kept"]), str(kept)
    )
