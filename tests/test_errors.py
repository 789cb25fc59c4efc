"""Every error status of the contract with its JSON body, and the server still serving after."""

from __future__ import annotations

import asyncio
import logging

import flows
import httpx
import pytest


def _error(response: httpx.Response) -> dict:
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert {"type", "message"} <= set(body["error"])
    return body["error"]


async def test_unknown_endpoint_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/endpoints/nope")
    assert response.status_code == 404
    assert _error(response) == {"type": "not_found", "message": "no endpoint named 'nope'"}


async def test_unknown_path_is_404_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nothing-here")
    assert response.status_code == 404
    assert _error(response)["type"] == "not_found"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[1, 2]", "the body must be a JSON object of parameters, not an array"),
        (b'"rows"', "the body must be a JSON object of parameters, not a string"),
        (b"null", "the body must be a JSON object of parameters, not null"),
        (b"42", "the body must be a JSON object of parameters, not a number"),
        (b"{rows: 1}", "the body is not valid JSON"),
        (b'{"rows": NaN}', "NaN is not a JSON number"),
        (b'{"rows": Infinity}', "Infinity is not a JSON number"),
        (b'{"rows": "\xff"}', "the body is not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_400(
    client: httpx.AsyncClient, content: bytes, message: str
) -> None:
    response = await client.post(
        "/api/endpoints/import", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    error = _error(response)
    assert error["type"] == "invalid_body"
    assert message in error["message"]


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"rowz": 5}, {"rowz": "unknown parameter"}),
        ({"rows": "5"}, {"rows": "must be an integer, not a string"}),
        ({"rows": True}, {"rows": "must be an integer, not a boolean"}),
        ({"rows": 1.5}, {"rows": "must be an integer, not a fractional number"}),
        ({"rows": 0}, {"rows": "must be at least 1"}),
        ({"rows": 10**30}, {"rows": "must be at most 1000000"}),
        (
            {"rows": -3, "delay_ms": None},
            {"rows": "must be at least 1", "delay_ms": "must not be null"},
        ),
        ({"source": "x" * 256}, {"source": "must be at most 255 characters long"}),
    ],
)
async def test_wrong_parameters_are_400_with_a_message_per_field(
    client: httpx.AsyncClient, params: dict, fields: dict
) -> None:
    response = await client.post("/api/endpoints/import", json=params)
    assert response.status_code == 400
    error = _error(response)
    assert error["type"] == "invalid_params"
    assert error["fields"] == fields


async def test_literal_parameters_accept_only_their_choices(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/endpoints/export", json={"format": "xml"})
    assert response.status_code == 400
    assert _error(response)["fields"] == {"format": "must be one of csv, ndjson"}


async def test_a_body_over_one_mebibyte_is_413(client: httpx.AsyncClient) -> None:
    big = b'{"source": "' + b"x" * (1024 * 1024) + b'"}'
    response = await client.post(
        "/api/endpoints/import", content=big, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert _error(response)["type"] == "payload_too_large"


async def test_a_non_json_content_type_with_a_body_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/endpoints/import", data={"rows": "5"})
    assert response.status_code == 415
    error = _error(response)
    assert error["type"] == "unsupported_media_type"
    assert "application/x-www-form-urlencoded" in error["message"]


async def test_an_empty_body_with_any_content_type_uses_the_defaults(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/endpoints/silent", content=b"", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200


async def test_a_wrong_method_is_405_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/endpoints/import")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert _error(response)["type"] == "method_not_allowed"


async def test_the_run_limit_answers_429_with_retry_after(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(max_runs=1)
    async with httpx.AsyncClient(base_url=server.url) as client:
        async with client.stream("POST", "/api/endpoints/hold", json={"key": "limit"}) as held:
            chunks = held.aiter_bytes()
            body = await anext(chunks)  # the first event is out: the run is running
            refused = await client.post("/api/endpoints/silent")
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "1"
            assert _error(refused)["type"] == "too_many_runs"
            flows.release("limit")
            body += b"".join([chunk async for chunk in chunks])
        assert b"event: end" in body
        assert (await client.post("/api/endpoints/silent")).status_code == 200


async def test_a_body_that_arrives_too_slowly_is_cut_off(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(body_timeout=0.2)
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(
        b"POST /api/endpoints/silent HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 20\r\n\r\n{"
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    assert head.startswith(b"HTTP/1.1 408")
    writer.close()


async def test_the_server_keeps_serving_after_bad_requests(client: httpx.AsyncClient) -> None:
    for content in (b"{", b"[]", b"\xff\xfe"):
        await client.post(
            "/api/endpoints/import", content=content, headers={"Content-Type": "application/json"}
        )
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.post("/api/endpoints/silent")).status_code == 200


async def test_refused_runs_log_one_line_and_failed_runs_tracebacks_are_bounded(
    start,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = await start()
    caplog.set_level(logging.INFO, logger="streambind.server")
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        refused = [
            await client.post("/api/endpoints/import", json={"source": "missing.csv"})
            for _ in range(60)
        ]
        failed = [await client.post("/api/endpoints/flaky", json={"fail_at": 0}) for _ in range(60)]
    assert {r.status_code for r in refused} == {400}
    assert {r.status_code for r in failed} == {500}
    records = [r for r in caplog.records if r.name == "streambind.server"]

    def about(response: httpx.Response) -> list[logging.LogRecord]:
        run_id = response.headers["x-run-id"]
        return [r for r in records if run_id in r.getMessage() and r.levelno > logging.INFO]

    # A workflow's InvalidParam is the client's mistake: one INFO line, no traceback.
    for response in refused:
        assert about(response) == []
        run_id = response.headers["x-run-id"]
        lines = [r for r in records if run_id in r.getMessage() and "refused" in r.getMessage()]
        assert len(lines) == 1 and lines[0].exc_info is None
    # A real failure is one ERROR line each; only the first 20 carry their traceback.
    for response in failed:
        (line,) = about(response)
        assert line.levelno == logging.ERROR
        assert "FlakyFailure" in line.getMessage() or line.exc_info is not None
    assert sum(1 for r in records if r.exc_info) == 20
