"""`streambind runs`, `follow` and `watch`: what they print and their exit statuses."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import flows
import httpx
from polling import newest_run, run_record
from wire import split_events

TESTS = Path(__file__).parent


async def _cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streambind.app.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(TESTS), "COLUMNS": "120"},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _lines(out: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in out.splitlines()]


async def test_follow_replays_a_finished_run_as_json_lines(server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.url) as client:
        started = await client.post("/api/endpoints/pipeline", json={"rows": 40, "delay_ms": 0})
    run_id = started.headers["x-run-id"]
    sent = [e.json() for e in split_events(started.text) if e.event == "message"]
    code, out, _ = await _cli("follow", run_id, "--json", "--url", server.url)
    assert code == 0
    lines = _lines(out)
    assert [line["chunk"] for line in lines[:-1]] == sent
    assert sent[0] == {"steps": ["validate", "import", "publish", "index"]}
    assert lines[-1]["status"] == "succeeded"
    assert lines[-1]["run_id"] == run_id
    assert lines[-1]["result"]["imported"] == 40


async def test_follow_shows_the_steps_of_a_pipeline_and_its_result(server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.url) as client:
        started = await client.post("/api/endpoints/pipeline", json={"rows": 40, "delay_ms": 0})
    code, out, _ = await _cli("follow", started.headers["x-run-id"], "--url", server.url)
    assert code == 0
    assert "validate ✓  import ✓  publish ✓  index ✓" in out
    assert '"imported": 40' in out


async def test_follow_takes_a_running_run_to_its_end(server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        running = asyncio.create_task(
            client.post("/api/endpoints/hold", json={"key": "cli-follow", "before": 2, "after": 3})
        )
        run = await newest_run(client, lambda r: r["events"] == 2, "the first messages")
        follow = asyncio.create_task(_cli("follow", run["id"], "--json", "--url", server.url))
        # Released once the follower is attached, so it sees both the replay and live events.
        await run_record(client, run["id"], lambda r: r["followers"] >= 2, "follow attached")
        flows.release("cli-follow")
        code, out, _ = await follow
        await running
    assert code == 0
    lines = _lines(out)
    assert [line["chunk"] for line in lines[:-1]] == [{"n": n} for n in range(1, 6)]
    assert lines[-1]["result"] == {"released": "cli-follow"}


async def test_follow_of_a_failed_run_exits_1_and_of_a_cancelled_run_exits_3(server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.url) as client:
        failed = await client.post("/api/endpoints/flaky", json={"delay_ms": 0})
        code, out, _ = await _cli(
            "follow", failed.headers["x-run-id"], "--json", "--url", server.url
        )
        assert code == 1
        assert _lines(out)[-1]["error"]["type"] == "FlakyFailure"

        held = asyncio.create_task(client.post("/api/endpoints/hold", json={"key": "cli-c3"}))
        run = await newest_run(client, lambda r: r["events"] == 1, "the first message")
        await client.delete(f"/api/runs/{run['id']}")
        await held
    code, out, _ = await _cli("follow", run["id"], "--json", "--url", server.url)
    assert code == 3
    assert _lines(out)[-1]["status"] == "cancelled"


async def test_follow_of_a_run_the_server_does_not_know_exits_2_with_a_clear_message(
    server,
) -> None:  # type: ignore[no-untyped-def]
    # The id is what the user typed: a usage error, as a bad option is.
    code, _, err = await _cli("follow", "0123456789abcdef", "--url", server.url)
    assert code == 2
    assert "no run with id '0123456789abcdef'" in err
    assert "does not know this run, or no longer keeps it" in err
    assert "Traceback" not in err


async def test_watch_follows_any_sse_url_with_a_body_and_headers(server) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = await _cli(
        "watch", f"{server.url}/api/endpoints/import", "-d", '{"rows": 20, "delay_ms": 0}',
        "-H", "X-Anything: yes", "--json",
    )  # fmt: skip
    assert code == 0
    lines = _lines(out)
    assert lines[0] == {"chunk": {"step": "import", "done": 0, "total": 20}}
    assert lines[-1]["status"] == "succeeded"
    assert lines[-1]["result"]["imported"] == 20


async def test_watch_exit_statuses_follow_call(server) -> None:  # type: ignore[no-untyped-def]
    url = f"{server.url}/api/endpoints/flaky"
    failed = await _cli("watch", url, "-X", "post", "-d", '{"delay_ms": 0}', "--json")
    assert failed[0] == 1
    assert _lines(failed[1])[-1]["error"]["type"] == "FlakyFailure"
    for bad in (["watch", "not-a-url"], ["watch", url, "-d", "{"], ["watch", url, "-H", "nocolon"]):
        code, _, err = await _cli(*bad)
        assert code == 2, bad
        assert "streambind watch:" in err


async def test_runs_lists_every_run_newest_first(server) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=server.url) as client:
        first = await client.post("/api/endpoints/import", json={"rows": 10, "delay_ms": 0})
        second = await client.post("/api/endpoints/flaky", json={"delay_ms": 0})
    code, out, _ = await _cli("runs", "--json", "--url", server.url)
    assert code == 0
    runs = _lines(out)
    assert [r["id"] for r in runs] == [second.headers["x-run-id"], first.headers["x-run-id"]]
    assert runs[1]["last_message"] == {"step": "publish", "rows": 10}
    code, out, _ = await _cli("runs", "--url", server.url)
    assert code == 0
    assert out.index("flaky") < out.index("import")
    assert "failed" in out and "succeeded" in out and "100%" in out
    assert "node" not in out  # no run here has a node


async def test_follow_of_a_run_whose_events_were_trimmed_exits_1_and_says_so(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(log_max_bytes=4000)
    async with httpx.AsyncClient(base_url=server.url) as client:
        done = await client.post("/api/endpoints/firehose", json={"n": 2000})
    code, _, err = await _cli("follow", done.headers["x-run-id"], "--url", server.url)
    assert code == 1
    assert "no longer keeps this run's events" in " ".join(err.split())
