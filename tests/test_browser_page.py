"""The page at / in headless Chromium, against a real server: forms, Run, the card's
binding of stream.chunk and stream.chunks, Cancel, Handle stream off, the Runs view."""

from __future__ import annotations

import asyncio
import json

import flows
import httpx
from browser import Page
from polling import newest_run, run_record
from wire import split_events

from streambind.server import RunningServer

HINT_STREAM_OFF = "Handle stream is off: progress will show when the call finishes."
HINT_NO_STREAM = (
    "This endpoint finished without sending a streaming message: "
    "there was no progress to show, only its result."
)


async def _replayed(server: RunningServer, run_id: str) -> list[object]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        replay = await client.get(f"/api/runs/{run_id}/events")
    return [e.json() for e in split_events(replay.text) if e.event == "message"]


def _run_id(card: dict[str, object]) -> str:
    return str(card["title"]).split(" · ")[1]


async def test_a_form_made_from_the_schema_runs_an_import_to_100_percent_and_succeeded(
    server: RunningServer, page: Page
) -> None:
    await page.open(server.url + "/")
    rows = await page.element("#param-rows")
    # The field says what the schema says: type, bounds, description.
    assert await page.call(rows.get_attribute, "type") == "number"
    assert await page.call(rows.get_attribute, "min") == "1"
    assert await page.call(rows.get_attribute, "max") == "1000000"
    hint = await page.script("return document.querySelector('#hint-rows').textContent")
    assert hint.startswith("whole number, 1..1000000 · Rows to generate")
    assert (
        await page.script(
            "return document.querySelector('#param-rows').getAttribute('aria-describedby')"
        )
        == "hint-rows error-rows"
    )

    await page.choose("import", rows="120", batch_size="10", delay_ms="30")
    await page.run()
    # Mid-run the bar is a real progress bar with a value, the step its label.
    moving = await page.card_until(
        lambda c: c["bar"] is not None and 0 < c["bar"] < 1, "the bar shows part of the run"
    )
    assert moving["status"] == "running"
    assert moving["step"] == "import"
    assert "/120" in moving["stats"]
    done = await page.card_until(lambda c: c["status"] == "succeeded", "the run succeeds")
    assert done["bar"] == 1
    assert "-succeeded" in done["classes"]
    assert done["cancel"] is None  # nothing left to cancel
    assert done["outcome"].startswith('Result: {"imported":120,"table":"people"')
    # stream.chunks in the log, every chunk once, as the server replays them.
    chunks = [json.loads(line) for line in done["log"]]
    assert chunks == await _replayed(server, _run_id(done))
    assert chunks[-1] == {"step": "publish", "rows": 120}
    assert done["stats"].endswith("14 chunks")
    assert done["steps"] == "import ✓publish ✓"
    announced = await page.script("return document.querySelector('#announcer').textContent")
    assert announced == "import: succeeded"


async def test_the_bar_follows_the_tuis_rules_busy_until_a_chunk_says_how_far(
    server: RunningServer, page: Page
) -> None:
    await page.open(server.url + "/")
    fractions = await page.call(
        page.driver.execute_async_script,
        """
        const done = arguments[arguments.length - 1];
        import("./static/progress.js").then(({ barFraction }) => done([
          { step: "import", done: 30, total: 120 },
          { progress: 0.5 },
          { percent: 75 },
          { done: 3, total: 0, percent: 10 },
          { step: "publish", rows: 120 },
          "plain text",
        ].map((chunk) => barFraction({ chunk, status: "running" }))
          .concat([barFraction({ chunk: { step: "publish" }, status: "succeeded" })])));
        """,
    )
    assert fractions == [0.25, 0.5, 0.75, 0.1, None, None, 1]


async def test_wrong_values_are_refused_by_the_form_and_the_servers_errors_shown(
    server: RunningServer, page: Page
) -> None:
    await page.open(server.url + "/")
    await page.choose("import", rows="0")
    await page.click("#run")
    error = await page.element("#error-rows")
    assert await page.call(lambda: error.text) == "rows must be at least 1"
    assert await page.script("return document.activeElement.id") == "param-rows"
    assert await page.cards() == 0
    await page.choose("greet", name="   ")
    await page.click("#run")
    assert await page.call(lambda: page.driver.find_element("id", "error-name").text) == (
        "name is required"
    )
    assert await page.cards() == 0
    # A workflow that fails before its first message: the server's 500, on the card.
    await page.choose("flaky", fail_at="0", delay_ms="0")
    await page.run()
    failed = await page.card_until(lambda c: c["status"] == "failed", "the run fails")
    assert failed["outcome"] == "Error: step 0 of 10 failed, as asked (fail_at=0)"
    assert "-failed" in failed["classes"]
    # ... and mid-stream: the error event.
    await page.choose("flaky", fail_at="3", delay_ms="0")
    await page.run()
    failed = await page.card_until(lambda c: c["status"] == "failed", "the second run fails")
    assert failed["outcome"] == "Error: step 3 of 10 failed, as asked (fail_at=3)"
    assert len(failed["log"]) == 2


async def test_cancel_ends_the_card_cancelled_and_cancels_the_run_on_the_server(
    server: RunningServer, client: httpx.AsyncClient, page: Page
) -> None:
    await page.open(server.url + "/")
    await page.choose("hold", key="cancel-me", before="2")
    await page.run()
    running = await page.card_until(lambda c: len(c["log"]) == 2, "both chunks are shown")
    assert running["status"] == "running"
    assert running["cancel"] == "Cancel"
    # Its chunks say nothing of how far it is: the bar is busy, in the running colour.
    assert running["bar"] is None and "-running" in running["classes"]
    assert await page.script(
        "return document.querySelector('.card progress').matches(':indeterminate')"
    )
    await page.click(".card .card-cancel")
    cancelled = await page.card_until(lambda c: c["status"] == "cancelled", "the card cancels")
    assert cancelled["outcome"] == "Cancelled."
    assert cancelled["cancel"] is None
    record = await run_record(
        client, _run_id(running), lambda r: r["status"] != "running", "the run to end"
    )
    assert record["status"] == "cancelled"


async def test_handle_stream_off_holds_back_until_the_end_and_still_cancels(
    server: RunningServer, client: httpx.AsyncClient, page: Page
) -> None:
    await page.open(server.url + "/")
    await page.choose("hold", key="held", before="3", after="2")
    await page.fill("#handle-stream", False)
    await page.run()
    # The run's id is known from the first response, while its chunks are held back.
    waiting = await page.card_until(lambda c: " · " in c["title"], "the run's id is shown")
    record = await run_record(
        client, _run_id(waiting), lambda r: r.get("events") == 3, "three chunks sent"
    )
    waiting = await page.card()
    assert waiting["status"] == "running"
    assert waiting["hint"] == HINT_STREAM_OFF
    assert waiting["log"] == [] and waiting["bar"] is None and waiting["chunk"] == ""
    flows.release("held")
    done = await page.card_until(lambda c: c["status"] == "succeeded", "the run succeeds")
    assert [json.loads(line) for line in done["log"]] == [{"n": n} for n in range(1, 6)]
    assert done["hint"] == "Handle stream was off: all 5 chunks arrived at once, at the end."
    assert record["id"] == _run_id(done)

    # Cancel sends DELETE with Handle stream off too: the switch stays off for the next run.
    await page.choose("hold", key="held-cancelled", before="1")
    assert await page.script("return document.querySelector('#handle-stream').checked") is False
    await page.run()
    waiting = await page.card_until(lambda c: " · " in c["title"], "the second run's id")
    await page.click(".card .card-cancel")
    await page.card_until(lambda c: c["status"] == "cancelled", "the card cancels")
    record = await run_record(
        client, _run_id(waiting), lambda r: r["status"] != "running", "the run to end"
    )
    assert record["status"] == "cancelled"


async def test_an_endpoint_that_never_streams_ends_with_its_result_explained(
    server: RunningServer, page: Page
) -> None:
    await page.open(server.url + "/")
    await page.choose("silent")
    await page.run()
    done = await page.card_until(lambda c: c["status"] == "succeeded", "the run succeeds")
    assert done["hint"] == HINT_NO_STREAM
    assert done["outcome"].startswith('Result: {"people":0,"imports":0,"streamed":false}')
    assert done["bar"] == 1 and done["log"] == []
    assert " · " in done["title"]  # X-Run-Id of the plain JSON answer


async def test_text_pieces_are_assembled_as_they_arrive(server: RunningServer, page: Page) -> None:
    await page.open(server.url + "/")
    await page.choose("echo", text="na", times="8")
    await page.run()
    done = await page.card_until(lambda c: c["status"] == "succeeded", "the run succeeds")
    assert done["text"] == "na" * 8
    assert done["log"] == []


async def test_the_runs_view_opens_any_run_replayed_from_the_start_then_live(
    server: RunningServer, client: httpx.AsyncClient, page: Page
) -> None:
    # A run started elsewhere (as curl would): two chunks sent, then it waits.
    elsewhere = asyncio.ensure_future(
        client.post("/api/endpoints/hold", json={"key": "opened", "before": 2, "after": 2})
    )
    run = await newest_run(client, lambda r: r["events"] == 2, "the run to send two chunks")
    await page.open(server.url + "/")
    await page.click("#tab-runs")
    await page.element(f'#runs-table tr[data-id="{run["id"]}"]')
    row = await page.script(
        f"""return [...document.querySelector('#runs-table tr[data-id="{run["id"]}"]').cells]
            .map((cell) => cell.textContent)"""
    )
    assert row[:4] == [run["id"][:8], "hold", "running", "2 chunks"]
    label = await page.script(
        "return document.querySelector(arguments[0]).getAttribute('aria-label')",
        f'#runs-table tr[data-id="{run["id"]}"] button',
    )
    assert label == f"Open run {run['id']} (hold)"
    await page.click(f'#runs-table tr[data-id="{run["id"]}"] button')
    replayed = await page.card_until(lambda c: len(c["log"]) == 2, "the replay shows")
    assert replayed["origin"] == "via Runs view"
    assert replayed["status"] == "running"
    assert replayed["title"] == f"hold · {run['id']}"
    flows.release("opened")
    done = await page.card_until(lambda c: c["status"] == "succeeded", "it follows live")
    assert [json.loads(line) for line in done["log"]] == [{"n": n} for n in range(1, 5)]
    # The table follows it too, and opening it again shows the same card, not a second.
    await page.until(
        lambda d: (
            d.execute_script(
                "return document.querySelector(arguments[0]).textContent",
                f'#runs-table tr[data-id="{run["id"]}"] td[data-key="status"]',
            )
            == "succeeded"
        ),
        "the table says succeeded",
    )
    await page.click(f'#runs-table tr[data-id="{run["id"]}"] button')
    assert await page.cards() == 1
    assert await page.script("return document.activeElement.className") == "card-title"
    await elsewhere


async def test_a_busy_server_is_asked_again_after_retry_after_saying_so(start, page: Page) -> None:  # type: ignore[no-untyped-def]
    server = await start(max_runs=1)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as other:
        busy = asyncio.ensure_future(
            other.post("/api/endpoints/hold", json={"key": "busy", "before": 1})
        )
        await newest_run(other, lambda r: r["events"] == 1, "the first run to hold")
        await page.open(server.url + "/")
        await page.choose("echo", text="hello", times="1")
        await page.run()
        waiting = await page.card_until(
            lambda c: (c["hint"] or "").startswith("Server busy ("), "the card says busy"
        )
        assert "retrying in 1 s" in waiting["hint"]
        assert waiting["status"] == "running"
        flows.release("busy")
        done = await page.card_until(lambda c: c["status"] == "succeeded", "the retry runs")
        assert done["hint"] is None
        assert done["text"] == "hello"
        await busy
