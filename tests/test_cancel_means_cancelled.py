"""Cancel means cancelled: what a card or ``call`` shows as cancelled is cancelled on the server.

With Handle stream on or off, from the TUI, the client library and ``streambind call``; a
watched streambind run is cancelled too, while any other watched stream is only stopped.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import flows
import httpx
from aiohttp import web
from foreign import serve
from polling import newest_run, run_record, wait_for
from test_tui import SIZE, ready, select, text_of, until

from streambind.app.client import StreamClient
from streambind.app.tui.app import NOTHING_TO_CANCEL, StreambindApp

TESTS = Path(__file__).parent


async def _cancelled_on_the_server(
    url: str, run_id: str, reason: str = "requested"
) -> dict[str, object]:
    """The run's record once it says ``cancelled``; its message count must then hold still,
    and its ``cancelled`` event say why."""
    async with httpx.AsyncClient(base_url=url) as client:
        record = await run_record(client, run_id, lambda r: r["status"] == "cancelled", "cancel")
        # Cancelled means nothing more is published: the count is the same a moment later,
        # and the replay ends with the cancelled event right after the last message.
        again = (await client.get(f"/api/runs/{run_id}")).json()
        assert again["events"] == record["events"]
        replay = await client.get(f"/api/runs/{run_id}/events")
        assert replay.text.rstrip().endswith(f'data: {{"status":"cancelled","reason":"{reason}"}}')
    return record


async def test_cancelling_a_call_with_handle_stream_off_cancels_its_run(server) -> None:  # type: ignore[no-untyped-def]
    async with StreamClient(server.url) as client:
        call = client.call("hold", {"key": "off-cancel", "before": 2}, handle_stream=False)
        task = asyncio.create_task(call.run())
        # The run's id is known from the first response, while nothing is shown yet.
        for _ in range(3000):
            if call.state.run_id:
                break
            await asyncio.sleep(0.01)
        assert call.state.run_id is not None
        assert call.state.chunks == [] and call.state.status == "running"
        await call.cancel()
        state = await task
    assert state.status == "cancelled"
    record = await _cancelled_on_the_server(server.url, state.run_id)
    assert record["events"] == 2
    # What had arrived, held back while the call ran, is applied at its end.
    assert state.chunks == [{"n": 1}, {"n": 2}]


async def test_cancelling_before_the_first_message_cancels_the_run_at_once(start) -> None:  # type: ignore[no-untyped-def]
    # The run's id travels with the response's headers, which come with the first message:
    # a caller that leaves before then cannot be waited for, whatever the detach grace.
    server = await start(detach_grace=300)
    async with StreamClient(server.url) as client:
        call = client.call("hold", {"key": "early-cancel", "before": 0})
        task = asyncio.create_task(call.run())
        async with httpx.AsyncClient(base_url=server.url) as http:
            run = await newest_run(http, lambda r: r["status"] == "running", "the run to start")
        await call.cancel()
        state = await task
    assert state.status == "cancelled" and state.run_id is None
    await _cancelled_on_the_server(server.url, run["id"], "caller_left")


async def test_the_tui_cancels_a_run_with_handle_stream_off(server) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(server.url)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "hold", key="tui-off-cancel", before="1")
        await pilot.press("h")
        await pilot.press("r")
        await until(pilot, lambda: app.cards and app.cards[0].state.run_id, "the run's id")
        card = app.cards[0]
        assert card.state.chunks == []  # Handle stream off: nothing shown yet
        await pilot.press("c")
        await until(pilot, lambda: card.state.status == "cancelled", "the card is cancelled")
        await _cancelled_on_the_server(server.url, card.state.run_id)


async def test_ctrl_c_on_call_no_stream_cancels_the_run(server) -> None:  # type: ignore[no-untyped-def]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streambind.app.cli", "call", "hold", "-p", "key=cli-off",
        "--no-stream", "--json", "--url", server.url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
    )  # fmt: skip
    async with httpx.AsyncClient(base_url=server.url) as client:
        run = await newest_run(client, lambda r: r["events"] == 1, "the first message")
    process.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 3, err.decode()
    assert '"status": "cancelled"' in out.decode().splitlines()[-1]
    await _cancelled_on_the_server(server.url, run["id"])


async def test_cancelling_a_watched_run_cancels_it_on_the_server(server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.url) as http:
        started = asyncio.create_task(
            http.post("/api/endpoints/hold", json={"key": "watched", "before": 1})
        )
        run = await newest_run(http, lambda r: r["events"] == 1, "the first message")
        app = StreambindApp(server.url)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await pilot.press("w")
            app.query_one("#watch-url").value = f"{server.url}/api/runs/{run['id']}/events"
            await pilot.press("enter")
            await until(pilot, lambda: app.cards and app.cards[0].state.chunks, "a chunk")
            card = app.cards[0]
            assert card.call.cancels_run  # it answered with X-Run-Id: a streambind run
            await pilot.pause(0.2)
            assert str(card.query_one(".card-cancel").label) == "Cancel"
            await pilot.press("escape", "c")  # out of the URL field, then Cancel
            await until(pilot, lambda: card.state.status == "cancelled", "cancelled")
        await _cancelled_on_the_server(server.url, run["id"])
        await started


def _endless_stream() -> web.Application:
    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'id: 1\ndata: {"n": 1}\n\n')
        await asyncio.Event().wait()  # until the client goes
        return response

    app = web.Application()
    app.router.add_get("/events", events)
    return app


async def test_any_other_watched_stream_is_stopped_not_cancelled(server) -> None:  # type: ignore[no-untyped-def]
    async with serve(_endless_stream()) as other:
        app = StreambindApp(server.url)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await pilot.press("w")
            app.query_one("#watch-url").value = f"{other}/events"
            await pilot.press("enter")
            await until(pilot, lambda: app.cards and app.cards[0].state.chunks, "a chunk")
            card = app.cards[0]
            await pilot.pause(0.2)
            assert not card.call.cancels_run
            assert str(card.query_one(".card-cancel").label) == "Stop"
            await pilot.press("escape", "c")
            await until(pilot, lambda: card.state.finished, "the watch ends")
            await pilot.pause(0.2)
            assert card.state.status == "stopped"
            assert text_of(card, ".card-status") == "stopped"
            assert "Stopped watching" in text_of(card, ".card-outcome")
            assert "ancel" not in text_of(card, ".card-status")


async def test_c_with_no_run_of_this_window_says_where_the_servers_runs_are(server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.url) as http:
        started = asyncio.create_task(http.post("/api/endpoints/hold", json={"key": "curl"}))
        await newest_run(http, lambda r: r["events"] == 1, "a run started elsewhere")
        app = StreambindApp(server.url)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await pilot.press("c")
            await until(pilot, lambda: bool(app._notifications), "a notification")
            messages = [n.message for n in app._notifications]
            assert NOTHING_TO_CANCEL in messages
            assert "Runs tab" in NOTHING_TO_CANCEL and "this window" in NOTHING_TO_CANCEL
        flows.release("curl")
        await started

    async def running() -> int:
        async with httpx.AsyncClient(base_url=server.url) as http:
            runs = (await http.get("/api/runs")).json()["runs"]
        return sum(r["status"] == "running" for r in runs)

    await wait_for(running, lambda n: n == 0, "the run started elsewhere to end by itself")
