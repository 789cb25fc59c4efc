"""Requests no HTTP client would send: bytes on a raw socket, the answer, and what is logged."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from conftest import StartServer

TOKEN = "s3cret-token"


async def _exchange(port: int, request: bytes) -> tuple[int, bytes]:
    """Send raw bytes, read until the server closes; the status and the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        answer = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(("aiohttp", "streambind"))]


@pytest.mark.parametrize(
    "value",
    [b"Bearer \xff\xfe", b"Bearer " + TOKEN.encode() + b"\x80", b"\xc3(", b"Bearer \xed\xa0\x80"],
)
async def test_a_non_utf8_authorization_header_is_401_not_500(
    start: StartServer, caplog: pytest.LogCaptureFixture, value: bytes
) -> None:
    server = await start(token=TOKEN)
    status, body = await _exchange(
        server.port,
        b"GET /api/endpoints HTTP/1.1\r\nHost: x\r\nAuthorization: "
        + value
        + b"\r\nConnection: close\r\n\r\n",
    )
    assert status == 401, body
    assert json.loads(body)["error"]["type"] == "unauthorized"
    assert not [r for r in _server_records(caplog) if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
    ids=["header without colon", "bad content-length", "header line too long", "version", "ctl"],
)
async def test_a_malformed_request_is_a_json_400_and_one_warning_line(
    start: StartServer, caplog: pytest.LogCaptureFixture, request_bytes: bytes
) -> None:
    server = await start()
    caplog.set_level(logging.DEBUG)
    status, body = await _exchange(server.port, request_bytes)
    assert status == 400, body
    assert json.loads(body)["error"]["type"] == "bad_request"
    records = [r for r in _server_records(caplog) if r.levelno >= logging.WARNING]
    assert len(records) == 1, [r.getMessage() for r in records]
    (record,) = records
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert "\n" not in record.getMessage()
    assert record.getMessage().startswith("malformed request from 127.0.0.1: ")


async def test_a_flood_of_malformed_requests_logs_a_bounded_number_of_lines(
    start: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start()
    flood = 300
    for _ in range(flood):
        status, _ = await _exchange(server.port, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        assert status == 400
    lines = [r for r in _server_records(caplog) if r.levelno >= logging.WARNING]
    # 20 lines a minute and one saying the rest are only counted; the flood takes well
    # under a minute, and even over several the count stays a small fraction of it.
    assert 20 <= len(lines) <= 21 * 3, len(lines)
    assert any("the rest are only counted" in r.getMessage() for r in lines)
    assert all(r.exc_info is None for r in lines)
