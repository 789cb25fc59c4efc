"""The HTTP contract of POST /api/endpoints/{name}, checked on the exact bytes of the response."""

from __future__ import annotations

import json

import httpx
from wire import collect, split_events


async def test_endpoints_are_listed_with_their_parameter_schema(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/endpoints")
    assert response.status_code == 200
    endpoints = response.json()["endpoints"]
    names = [e["name"] for e in endpoints]
    assert names[0] == "import"
    for builtin in ("pipeline", "export", "write-text", "flaky", "silent", "firehose"):
        assert builtin in names
    assert names.index("firehose") < names.index("hold"), "user workflows come after built-ins"
    imp = endpoints[0]
    assert set(imp) == {"name", "title", "description", "params"}
    # Each endpoint's parameters are one JSON Schema (draft 2020-12) object.
    params = imp["params"]
    assert params["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert params["type"] == "object" and params["additionalProperties"] is False
    assert params["required"] == []
    assert params["properties"]["rows"] == {
        "type": "integer",
        "default": 1000,
        "description": "Rows to generate when no source is given",
        "minimum": 1,
        "maximum": 1_000_000,
    }
    assert params["properties"]["source"]["type"] == "string"
    export = next(e for e in endpoints if e["name"] == "export")
    assert export["params"]["properties"]["format"]["enum"] == ["csv", "ndjson"]


async def test_first_send_starts_an_sse_response_with_exact_framing(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/endpoints/import", json={"rows": 40, "batch_size": 20, "delay_ms": 0}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert "connection" not in response.headers
    run_id = response.headers["x-run-id"]
    body = response.text
    assert body.startswith("retry: 3000\n\n")
    expected_messages = (
        'id: 1\nevent: message\ndata: {"step":"import","done":0,"total":40}\n\n'
        'id: 2\nevent: message\ndata: {"step":"import","done":20,"total":40}\n\n'
        'id: 3\nevent: message\ndata: {"step":"import","done":40,"total":40}\n\n'
        'id: 4\nevent: message\ndata: {"step":"publish","rows":40}\n\n'
    )
    assert body[len("retry: 3000\n\n") :].startswith(expected_messages)
    terminal = body[len("retry: 3000\n\n") + len(expected_messages) :]
    assert terminal == (
        "id: 5\nevent: end\ndata: "
        + json.dumps(
            {
                "status": "succeeded",
                "result": {
                    "imported": 40,
                    "table": "people",
                    "run_id": run_id,
                    "source": "generated:40",
                },
            },
            separators=(",", ":"),
        )
        + "\n\n"
    )


async def test_a_workflow_that_never_sends_gets_an_ordinary_json_response(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/endpoints/silent")
    assert response.status_code == 200
    # Exactly what docs/http-api.md says, as for every other JSON answer.
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    listed = await client.get("/api/endpoints")
    assert listed.headers["content-type"] == response.headers["content-type"]
    assert response.headers["x-run-id"]
    assert response.json() == {"people": 0, "imports": 0, "streamed": False}
    run = (await client.get(f"/api/runs/{response.headers['x-run-id']}")).json()
    assert run["status"] == "succeeded"
    assert run["events"] == 0


async def test_a_failure_mid_stream_is_an_error_event_with_the_next_id(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/endpoints/flaky", json={"fail_at": 3, "delay_ms": 0})
    events = split_events(response.text)
    assert [e.id for e in events] == ["1", "2", "3"]
    assert [e.event for e in events] == ["message", "message", "error"]
    assert events[-1].json() == {
        "status": "failed",
        "error": {"type": "FlakyFailure", "message": "step 3 of 10 failed, as asked (fail_at=3)"},
    }


async def test_a_failure_before_any_send_is_a_500_without_traceback(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/endpoints/flaky", json={"fail_at": 0})
    assert response.status_code == 500
    assert response.headers["x-run-id"]
    assert response.json() == {
        "error": {"type": "FlakyFailure", "message": "step 0 of 10 failed, as asked (fail_at=0)"}
    }
    assert "Traceback" not in response.text


async def test_each_event_is_delivered_while_the_workflow_is_still_running(
    client: httpx.AsyncClient,
) -> None:
    import flows

    async with client.stream(
        "POST", "/api/endpoints/hold", json={"key": "live-delivery", "before": 2, "after": 1}
    ) as response:
        received = []
        async for event in _events(response):
            received.append(event)
            if len(received) == 2:
                # Both arrived although the workflow has not finished: no buffering.
                assert (await client.get(f"/api/runs/{response.headers['x-run-id']}")).json()[
                    "status"
                ] == "running"
                flows.release("live-delivery")
    assert [e.json() for e in received[:3]] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert received[3].event == "end"
    assert received[3].id == "4"


async def test_send_of_a_value_json_cannot_hold_is_a_clear_error(
    client: httpx.AsyncClient,
) -> None:
    first = await client.post("/api/endpoints/unsendable", json={"when": "first"})
    assert first.status_code == 500
    assert first.json()["error"]["type"] == "NotJSONSerialisable"
    assert "JSON-serialisable" in first.json()["error"]["message"]

    later = split_events(
        (await client.post("/api/endpoints/unsendable", json={"when": "later"})).text
    )
    assert [e.event for e in later] == ["message", "error"]
    assert later[1].json()["error"]["type"] == "NotJSONSerialisable"

    result = await client.post("/api/endpoints/unsendable", json={"when": "result"})
    assert result.status_code == 500
    assert "return value" in result.json()["error"]["message"]


async def test_text_with_newlines_and_separators_stays_one_data_line(
    client: httpx.AsyncClient,
) -> None:
    text = "line one\nline two\r\nthree\rU+2028:\u2028 NUL:\x00 emoji:\U0001f600 data: x\n\n"
    response = await client.post("/api/endpoints/echo", json={"text": text})
    body = response.text
    message = body.split("\n\n")[1]
    assert message.count("\n") == 2  # id, event, data: nothing else breaks the frame
    assert split_events(body)[0].json() == {"text": text}


async def test_idle_streams_get_ping_comments(start) -> None:  # type: ignore[no-untyped-def]
    import flows
    from wire import Comment, events

    server = await start(ping_interval=0.05)
    async with (
        httpx.AsyncClient(base_url=server.url) as client,
        client.stream("POST", "/api/endpoints/hold", json={"key": "pings"}) as response,
    ):
        seen = []
        async for item in events(response):
            seen.append(item)
            if isinstance(item, Comment):
                assert item.text == "ping"
                flows.release("pings")
    kinds = [type(i).__name__ for i in seen]
    assert kinds[0] == "Event" and "Comment" in kinds and kinds[-1] == "Event"
    assert seen[-1].event == "end"


async def test_many_messages_arrive_in_order_without_gaps(client: httpx.AsyncClient) -> None:
    async with client.stream("POST", "/api/endpoints/firehose", json={"n": 20_000}) as response:
        events = await collect(response)
    assert [int(e.id) for e in events] == list(range(1, 20_002))
    assert events[-1].event == "end"
    assert events[-1].json()["result"] == {"sent": 20_000}
    assert events[12_344].json() == {"step": "import", "done": 12_345, "total": 20_000}


async def _events(response: httpx.Response):  # type: ignore[no-untyped-def]
    from wire import Event, events

    async for item in events(response):
        if isinstance(item, Event):
            yield item


async def test_a_workflow_exception_is_logged_with_its_traceback(
    client: httpx.AsyncClient, caplog
) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level("ERROR", logger="streambind.server"):
        await client.post("/api/endpoints/flaky", json={"fail_at": 0})
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.exc_info is not None
    assert "FlakyFailure" in caplog.text
    assert "Traceback" in caplog.text
