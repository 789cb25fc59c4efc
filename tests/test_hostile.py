"""Hostile input, one table: each request gets its documented error, nothing is written, and
the server goes on serving."""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json", **AUTH}


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    status: int
    error: str | None  # the error type in the JSON body; None for a non-JSON answer
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    csv: bytes | None = None  # written to imports/case.csv first


def post(name: str, body: bytes, status: int, error: str | None, **kw: object) -> Case:
    return Case(name, "POST", "/api/endpoints/import", status, error, body, **kw)  # type: ignore[arg-type]


def params(name: str, body: str) -> Case:
    return post(name, body.encode(), 400, "invalid_params")


def source(name: str, value: str) -> Case:
    return params(name, json.dumps({"source": value}))


def export(name: str, body: str) -> Case:
    return Case(name, "POST", "/api/endpoints/export", 400, "invalid_params", body.encode())


def csv(name: str, content: bytes) -> Case:
    return post(name, b'{"source": "case.csv"}', 400, "invalid_params", csv=content)


def last_id(name: str, value: str) -> Case:
    headers = {**AUTH, "Last-Event-ID": value}
    return Case(name, "GET", "/api/runs/RUN/events", 400, "invalid_last_event_id", headers=headers)


def token(name: str, headers: dict[str, str], path: str = "/api/endpoints") -> Case:
    return Case(name, "GET", path, 401, "unauthorized", headers=headers)


def method(name: str, verb: str, path: str) -> Case:
    return Case(name, verb, path, 405, "method_not_allowed", headers=dict(AUTH))


def content_type(name: str, value: str) -> Case:
    headers = {**AUTH, "Content-Type": value}
    return post(name, b'{"rows": 5}', 415, "unsupported_media_type", headers=headers)


CASES = [
    # Bodies that are not a JSON object of parameters.
    post("unclosed object", b"{", 400, "invalid_body"),
    post("missing value", b'{"rows": }', 400, "invalid_body"),
    post("trailing garbage", b'{"rows": 1} x', 400, "invalid_body"),
    post("single quotes", b"{'rows': 1}", 400, "invalid_body"),
    post("array", b"[1, 2]", 400, "invalid_body"),
    post("string", b'"rows"', 400, "invalid_body"),
    post("null", b"null", 400, "invalid_body"),
    post("number", b"42", 400, "invalid_body"),
    post("boolean", b"true", 400, "invalid_body"),
    post("NaN", b'{"rows": NaN}', 400, "invalid_body"),
    post("Infinity", b'{"rows": Infinity}', 400, "invalid_body"),
    post("-Infinity", b'{"rows": -Infinity}', 400, "invalid_body"),
    post("nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000, 400, "invalid_body"),
    post("deep value", b'{"rows": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", 400, "invalid_body"),
    post("5,000 digits", b'{"rows": ' + b"9" * 5_000 + b"}", 400, "invalid_body"),
    post("invalid UTF-8", b'{"source": "\xff\xfe"}', 400, "invalid_body"),
    post("UTF-16", '{"rows": 5}'.encode("utf-16"), 400, "invalid_body"),
    post("10 MB", b'{"source": "' + b"x" * 10_000_000 + b'"}', 413, "payload_too_large"),
    # Wrong types and values.
    params("string for int", '{"rows": "5"}'),
    params("true for int", '{"rows": true}'),
    params("false for int", '{"rows": false}'),
    params("fraction for int", '{"rows": 1.5}'),
    params("array for int", '{"rows": []}'),
    params("object for int", '{"rows": {}}'),
    params("null for int", '{"rows": null}'),
    params("zero rows", '{"rows": 0}'),
    params("negative rows", '{"rows": -5}'),
    params("huge rows", '{"rows": 1000000000000000000000000000000}'),
    params("1e400", '{"rows": 1e400}'),
    params("negative delay", '{"delay_ms": -1}'),
    params("batch of zero", '{"batch_size": 0}'),
    params("number for string", '{"source": 5}'),
    params("unknown parameter", '{"colour": "red"}'),
    params("long unknown parameter", '{"%s": 1}' % ("k" * 10_000)),
    # Where a source file may come from.
    source("string too long", "x" * 1_001),
    source("parent directory", "../streambind.db"),
    source("absolute path", "/etc/passwd"),
    source("nested path", "imports/../x.csv"),
    source("URL-encoded traversal", "..%2F..%2Fetc%2Fpasswd"),
    source("backslash path", "C:\\x.csv"),
    source("NUL byte", "a\x00.csv"),
    source("newlines", "x\n\ndata: evil"),
    source("missing file", "missing.csv"),
    source("name too long for the file system", "0" * 252),
    source("name of 200 two-byte letters", "é" * 200),
    source("name of 70 emoji", "🙂" * 70),
    source("symlink out of imports", "link.csv"),
    # What an export is asked for.
    export("NUL byte in an export's run_id", json.dumps({"run_id": "a\x00b"})),
    export("unknown run_id to export", json.dumps({"run_id": "0123456789abcdef"})),
    # CSV files that cannot be imported at all.
    csv("empty CSV", b""),
    csv("wrong header", b"title,year\nx,1\n"),
    csv("header without name", b"born\n1900\n"),
    csv("duplicate column", b"name,name\nx,y\n"),
    csv("not UTF-8 CSV", b"name\n\xff\xfe\n"),
    csv("unreadable header", b'"name\n'),
    # Last-Event-ID.
    last_id("not a number", "abc"),
    last_id("negative", "-1"),
    last_id("fraction", "1.5"),
    last_id("hexadecimal", "0x10"),
    last_id("40 digits", "9" * 40),
    Case(
        "unicode digits, in the query",
        "GET",
        "/api/runs/RUN/events?last_event_id=%D9%A1%D9%A2",
        400,
        "invalid_last_event_id",
        headers=dict(AUTH),
    ),
    # Tokens.
    token("no token", {}),
    token("wrong token", {"Authorization": "Bearer nope"}),
    token("almost: a prefix", {"Authorization": f"Bearer {TOKEN[:-1]}"}),
    token("almost: one more", {"Authorization": f"Bearer {TOKEN}x"}),
    token("almost: other case", {"Authorization": f"Bearer {TOKEN.upper()}"}),
    token("basic scheme", {"Authorization": f"Basic {TOKEN}"}),
    token("no scheme", {"Authorization": TOKEN}),
    token("wrong query token", {}, f"/api/endpoints?access_token={TOKEN}!"),
    # Methods.
    method("PUT an endpoint", "PUT", "/api/endpoints/import"),
    method("GET an endpoint", "GET", "/api/endpoints/import"),
    method("DELETE the list", "DELETE", "/api/endpoints"),
    method("POST runs", "POST", "/api/runs"),
    method("PATCH health", "PATCH", "/healthz"),
    # Content types.
    content_type("plain text", "text/plain"),
    content_type("form", "application/x-www-form-urlencoded"),
    content_type("multipart", "multipart/form-data; boundary=x"),
    content_type("xml", "application/xml"),
    # Names.
    Case("unknown endpoint", "POST", "/api/endpoints/nope", 404, "not_found"),
    Case("endpoint in capitals", "POST", "/api/endpoints/IMPORT", 404, "not_found"),
    Case("encoded dots", "POST", "/api/endpoints/%2e%2e", 404, "not_found"),
    Case("newline in a name", "POST", "/api/endpoints/a%0Ab", 404, "not_found"),
    Case("unknown run", "GET", "/api/runs/nope", 404, "not_found", headers=dict(AUTH)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_hostile_input_is_refused_cleanly(start, tmp_path: Path, case: Case) -> None:  # type: ignore[no-untyped-def]
    assert len(CASES) >= 60
    server = await start(token=TOKEN)
    await _refused_cleanly(server, tmp_path, case)
    with contextlib.closing(sqlite3.connect(server.config.data_dir / "streambind.db")) as db:
        assert db.execute("SELECT COUNT(*) FROM people").fetchone() == (0,)


@pytest.mark.parametrize("name", ["0" * 252, "é" * 200, "🙂" * 70])
async def test_a_source_name_too_long_for_the_file_system_is_a_400_naming_the_field(
    start,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
    name: str,
) -> None:
    # Within the 255 characters the schema allows, beyond the 255 bytes a name may take.
    server = await start()
    caplog.set_level(logging.INFO)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        response = await client.post("/api/endpoints/import", json={"source": name})
    assert response.status_code == 400, response.text[:300]
    error = response.json()["error"]
    assert error["type"] == "invalid_params"
    assert list(error["fields"]) == ["source"]
    assert "File name too long" in error["fields"]["source"]
    assert str(server.config.data_dir) not in response.text
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


CSV_CASES = [
    c
    for c in CASES
    if c.csv is not None
    or "source" in c.name.lower()
    or "path" in c.name
    or c.path.endswith("/export")
]


@pytest.mark.parametrize("case", CSV_CASES, ids=[c.name for c in CSV_CASES])
async def test_hostile_csv_files_are_refused_cleanly_on_postgresql(
    start, tmp_path: Path, pg_schema: str, case: Case
) -> None:  # type: ignore[no-untyped-def]
    from databases import PG_URL, Backend

    server = await start(token=TOKEN, database_url=PG_URL, database_schema=pg_schema)
    await _refused_cleanly(server, tmp_path, case)
    backend = Backend("postgresql", server.config.data_dir, pg_schema)
    assert backend.count_people() == 0
    assert backend.staging_leftovers() == []


async def _refused_cleanly(server, tmp_path: Path, case: Case) -> None:  # type: ignore[no-untyped-def]
    data_dir = server.config.data_dir
    outside = tmp_path / "outside.csv"
    outside.write_text("name\nsecret\n")
    (data_dir / "imports" / "link.csv").symlink_to(outside)
    if case.csv is not None:
        (data_dir / "imports" / "case.csv").write_bytes(case.csv)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        path = case.path
        if "RUN" in path:
            done = await client.post("/api/endpoints/silent", headers=AUTH)
            path = path.replace("RUN", done.headers["x-run-id"])
        response = await client.request(
            case.method, path, content=case.body or None, headers=case.headers
        )
        assert response.status_code == case.status, response.text[:300]
        if case.error is not None:
            error = response.json()["error"]
            assert error["type"] == case.error
            assert "Traceback" not in response.text
            assert str(tmp_path) not in response.text
            assert TOKEN not in response.text
        # Nothing was written, and the server serves the next request.
        assert (await client.get("/healthz")).status_code == 200
        counts = await client.post("/api/endpoints/silent", headers=AUTH)
        assert counts.json() == {"people": 0, "imports": 0, "streamed": False}
    assert [p for p in (data_dir / "staging").rglob("*") if p.is_file()] == []
    assert list((data_dir / "exports").iterdir()) == []
