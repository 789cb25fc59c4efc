"""Nothing a server sends can crash the CLI or the TUI, and a watch keeps bounded memory.

The servers here answer as streambind does in form but not in content: fields of the wrong
type, JSON nested too deep to decode, a health answer far larger than any health answer,
an endless stream. Each command and the TUI must say what is wrong, or show what it can,
and never end in a traceback.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import pytest
from aiohttp import web
from foreign import serve
from test_tui import until

from streambind.app import shapes
from streambind.app.chunks import Chunks
from streambind.app.client import ClientSettings, StreamClient
from streambind.app.forms import fields, parse_value
from streambind.app.tui.app import StreambindApp
from streambind.app.tui.runs_table import RunsTable

ODD_RUN = {
    "id": "run-odd",
    "endpoint": "import",
    "status": "running",
    "params": "nope",
    "events": "many",
    "followers": -3,
    "last_event_id": True,
    "created": 12,
    "finished": ["soon"],
    "last_message": {"done": "a", "total": []},
}
ODD_ENDPOINT = {
    "name": "import",
    "description": 3,
    "params": {
        "type": "object",
        "required": "rows",
        "properties": {
            "rows": {"type": "integer", "minimum": "one", "maximum": [], "default": 5},
            "name": {"type": "string", "enum": 7, "pattern": "(", "maxLength": "long"},
            "mode": {"anyOf": ["text", {"type": "string"}, {"type": "null"}]},
            "broken": "not a schema",
        },
    },
}


def _odd_server(*, deep: bool = False, health_bytes: int = 0) -> web.Application:
    """A server whose answers have streambind's form and nonsense for content."""

    def answer(body: Any) -> web.Response:
        if deep:  # nested far beyond what a decoder's recursion allows
            return web.Response(text="[" * 200_000 + "]" * 200_000, content_type="application/json")
        return web.json_response(body)

    async def endpoints(request: web.Request) -> web.Response:
        return answer({"endpoints": [ODD_ENDPOINT, "junk", {"name": 5}, {"params": {}}]})

    async def runs(request: web.Request) -> web.Response:
        return answer({"runs": [ODD_RUN, {"id": 5, "status": None}, "junk", {"id": ""}]})

    async def run(request: web.Request) -> web.Response:
        return answer({**ODD_RUN, "status": "succeeded", "result": {"rows": "all"}})

    async def events(request: web.Request) -> web.Response:
        return web.Response(status=204)  # nothing left to replay: the record says the rest

    async def start(request: web.Request) -> web.Response:
        return answer({"result": "done"})

    async def health(request: web.Request) -> web.Response:
        if health_bytes:
            return web.Response(status=503, body=b" " * health_bytes)
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/api/endpoints", endpoints)
    app.router.add_get("/api/runs", runs)
    app.router.add_get("/api/runs/{id}", run)
    app.router.add_get("/api/runs/{id}/events", events)
    app.router.add_post("/api/endpoints/{name}", start)
    app.router.add_get("/healthz", health)
    return app


async def _cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streambind.app.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


# -- the shapes, checked where they arrive ----------------------------------------------


def test_a_run_keeps_only_its_fields_of_the_documented_types() -> None:
    record = shapes.run_record(ODD_RUN)
    assert record == {
        "id": "run-odd",
        "endpoint": "import",
        "status": "running",
        "last_message": {"done": "a", "total": []},
    }
    for nameless in ({"id": 5}, {"id": ""}, {"status": "running"}, "junk", None, []):
        assert shapes.run_record(nameless) is None
    good = {"id": "r", "events": 3, "followers": 0, "last_event_id": 4, "params": {"a": 1}}
    assert shapes.run_record(good) == good


def test_an_endpoint_schema_is_cut_to_what_a_form_can_act_on() -> None:
    endpoint = shapes.endpoint_description(ODD_ENDPOINT)
    assert endpoint is not None and "description" not in endpoint
    flat = fields(endpoint["params"])
    assert set(flat) == {"rows", "name", "mode"}  # "broken" is no schema
    assert flat["rows"] == {"type": "integer", "default": 5, "required": False}
    assert flat["name"] == {"type": "string", "required": False}  # no enum, pattern, bound
    assert flat["mode"] == {"type": "string", "nullable": True, "required": False}
    # Every field still parses what a person types, the server applying what was dropped.
    assert parse_value(flat["rows"], "12") == 12
    assert parse_value(flat["name"], "((") == "(("
    assert parse_value(flat["mode"], "") is None
    assert shapes.endpoint_description({"name": "x", "params": "nope"}) == {
        "name": "x",
        "params": {"type": "object", "properties": {}, "required": []},
    }


# -- the command line -------------------------------------------------------------------


async def test_runs_follow_and_call_show_what_they_can_of_odd_answers() -> None:
    async with serve(_odd_server()) as url:
        table = await _cli("runs", "--url", url)
        as_json = await _cli("runs", "--json", "--url", url)
        follow = await _cli("follow", "run-odd", "--url", url)
        call = await _cli("call", "import", "-p", "rows=3", "--url", url)
    for _, out, err in (table, as_json, follow, call):
        assert "Traceback" not in err + out
    assert table[0] == 0 and "run-odd" in table[1] and "running" in table[1]
    assert as_json[0] == 0 and as_json[1].count("\n") == 1  # one run has an id to show
    assert follow[0] == 0, follow[2]  # the record says the run succeeded
    assert call[0] == 0, call[2]


async def test_json_nested_beyond_any_decoder_is_one_line_not_a_recursion_error() -> None:
    async with serve(_odd_server(deep=True)) as url:
        runs = await _cli("runs", "--url", url)
        call = await _cli("call", "import", "--url", url)
    assert runs == (1, "", f"streambind runs: {url}/api/runs did not answer with JSON\n")
    assert call[0] == 1 and "Traceback" not in call[2]
    assert f"{url}/api/endpoints did not answer with JSON" in call[2]


async def test_the_tui_shows_odd_answers_and_an_oversized_health_answer() -> None:
    async with serve(_odd_server(health_bytes=8 * 1024 * 1024)) as url:
        app = StreambindApp(url)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: "reconnecting" in str(app.sub_title), "health is read")
            await pilot.press("a")
            table = app.query_one(RunsTable)
            await until(pilot, lambda: table.table.row_count == 1, "the run with an id is listed")
            cells = [str(cell) for cell in table.table.get_row("run-odd")]
            assert "import" in cells and "running" in cells
            await pilot.press("enter")  # open it: its record says it succeeded
            await until(pilot, lambda: app.cards and app.cards[0].state.finished, "the card ends")
            assert app.cards[0].state.status == "succeeded"
        assert app.return_code in (0, None)


# -- what a watch keeps -----------------------------------------------------------------


def test_chunks_keep_the_newest_and_count_every_one() -> None:
    chunks = Chunks(limit=3)
    for n in range(10):
        chunks.add(f'{{"n":{n}}}', True)
    assert len(chunks) == 3 and chunks.received == 10 and chunks.first_kept == 7
    assert chunks == [{"n": 7}, {"n": 8}, {"n": 9}]
    assert chunks[0] == {"n": 7} and chunks[-1] == {"n": 9}
    with pytest.raises(IndexError):
        chunks[3]
    assert chunks.between(8) == [{"n": 8}, {"n": 9}]
    assert chunks.between(2) == [{"n": 7}, {"n": 8}, {"n": 9}]  # older ones are gone
    assert chunks.between(7, 8) == [{"n": 7}]
    chunks.add_json([f'{{"n":{n}}}' for n in range(10, 20)])
    assert list(chunks) == [{"n": 17}, {"n": 18}, {"n": 19}] and chunks.received == 20
    # Letting the oldest go is a cut now and then: never more than twice the limit held.
    assert len(chunks._items) <= 6


async def test_a_watch_of_an_endless_stream_keeps_the_newest_messages_only() -> None:
    sent = 20_000

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for start in range(0, sent, 1000):
            await response.write(
                b"".join(b'data: {"n":%d}\n\n' % n for n in range(start, start + 1000))
            )
        await asyncio.Event().wait()  # endless: the caller stops watching
        return response

    app = web.Application()
    app.router.add_get("/ticks", endless)
    async with serve(app) as url:
        settings = ClientSettings(max_chunks=500)
        async with StreamClient(url, settings=settings) as client:
            call = client.watch(f"{url}/ticks")
            all_arrived = asyncio.Event()
            call.on_chunk = lambda _: (
                all_arrived.set() if call.state.chunks.received == sent else None
            )
            task = asyncio.create_task(call.run())
            await asyncio.wait_for(all_arrived.wait(), 60)
            await call.cancel()
            state = await task
    assert state.status == "stopped"
    assert state.chunks.received == sent and len(state.chunks) == 500
    assert state.chunks[0] == {"n": sent - 500} and state.chunk == {"n": sent - 1}


def test_max_chunks_must_keep_at_least_one() -> None:
    with pytest.raises(ValueError, match="max_chunks must be at least 1"):
        ClientSettings(max_chunks=0)
    assert ClientSettings(max_chunks=None).max_chunks is None
