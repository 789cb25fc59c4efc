"""The built-in workflows doing real work on each database, real CSV files, a real export."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import sqlite3
import time
from pathlib import Path

import flows
import httpx
import pytest
from databases import Backend
from polling import run_record
from wire import Event, collect, events, split_events


def _sqlite_people(data_dir: Path) -> int:
    with contextlib.closing(sqlite3.connect(data_dir / "streambind.db")) as db:
        return db.execute("SELECT COUNT(*) FROM people").fetchone()[0]


def _staging_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "staging").rglob("*") if p.is_file()]


@pytest.fixture
async def server(start, backend: Backend):  # type: ignore[no-untyped-def]
    """Every test here runs on each database: the SQLite file, and a PostgreSQL schema."""
    return await start(**backend.settings)


@pytest.fixture
def data_dir(server) -> Path:  # type: ignore[no-untyped-def]
    return server.config.data_dir


async def test_readers_never_see_a_partial_import(
    client: httpx.AsyncClient, data_dir: Path, backend: Backend
) -> None:
    async with client.stream(
        "POST", "/api/endpoints/import", json={"rows": 300, "batch_size": 30, "delay_ms": 0}
    ) as response:
        run_id = response.headers["x-run-id"]
        progress = []
        async for event in events(response):
            if isinstance(event, Event) and event.event == "message":
                if event.json() == {"step": "publish", "rows": 300}:
                    continue  # the rows are being published: before or after, all or none
                done = event.json()["done"]
                # Rows are being written while this reads: none may be visible yet, except
                # that after the last batch's message the publish may already have run.
                seen = backend.count_people(run_id)
                assert seen == 0 if done < 300 else seen in (0, 300), (done, seen)
                progress.append(done)
            elif isinstance(event, Event):
                assert event.event == "end"
    assert progress == list(range(0, 301, 30))
    assert backend.count_people(run_id) == 300
    assert backend.staging_leftovers() == []


async def test_two_imports_run_side_by_side_without_blocking_each_other(
    client: httpx.AsyncClient, data_dir: Path, backend: Backend
) -> None:
    slow = {"rows": 100, "batch_size": 10, "delay_ms": 10_000}
    async with (
        client.stream("POST", "/api/endpoints/import", json=slow) as a,
        client.stream("POST", "/api/endpoints/import", json=slow) as b,
    ):
        a_events, b_events = events(a), events(b)
        # Each gets past its first batch while the other is mid-run, holding its staging file.
        for stream in (a_events, b_events, a_events, b_events):
            event = await anext(stream)
            assert event.event == "message"
        assert event.json()["done"] == 10
        for response in (a, b):
            assert (
                await client.delete(f"/api/runs/{response.headers['x-run-id']}")
            ).status_code == 202
        assert [e.event async for e in a_events if isinstance(e, Event)] == ["cancelled"]
        assert [e.event async for e in b_events if isinstance(e, Event)] == ["cancelled"]
    assert backend.count_people() == 0


async def test_a_cancelled_import_leaves_no_row_and_no_staging_file(
    client: httpx.AsyncClient, data_dir: Path, backend: Backend
) -> None:
    async with client.stream(
        "POST", "/api/endpoints/import", json={"rows": 1000, "batch_size": 10, "delay_ms": 10_000}
    ) as response:
        stream = events(response)
        await anext(stream)
        second = await anext(stream)
        assert second.json()["done"] == 10
        await client.delete(f"/api/runs/{response.headers['x-run-id']}")
        rest = [e async for e in stream if isinstance(e, Event)]
    assert rest[-1].event == "cancelled"
    assert backend.count_people() == 0
    assert backend.staging_leftovers() == []


async def test_an_abandoned_import_is_cancelled_after_the_grace_period_leaving_nothing(
    start, backend: Backend
) -> None:  # type: ignore[no-untyped-def]
    server = await start(detach_grace=0.05, **backend.settings)
    async with httpx.AsyncClient(base_url=server.url) as client:
        async with client.stream(
            "POST",
            "/api/endpoints/import",
            json={"rows": 1000, "batch_size": 10, "delay_ms": 10_000},
        ) as response:
            stream = events(response)
            await anext(stream)
            await anext(stream)
            run_id = response.headers["x-run-id"]
        await run_record(client, run_id, lambda r: r["status"] == "cancelled", "cancelled")
    assert backend.count_people() == 0
    assert backend.staging_leftovers() == []


async def test_cancellation_reaches_the_workflow_so_finally_blocks_run(
    client: httpx.AsyncClient,
) -> None:
    async with client.stream("POST", "/api/endpoints/tidy", json={"key": "tidy-1"}) as response:
        stream = events(response)
        await anext(stream)
        await client.delete(f"/api/runs/{response.headers['x-run-id']}")
        await collect_rest(stream)
    assert "tidy-1" in flows.cleaned_up


async def collect_rest(stream) -> list[Event]:  # type: ignore[no-untyped-def]
    return [e async for e in stream if isinstance(e, Event)]


async def test_the_shipped_csv_imports_real_rows(
    client: httpx.AsyncClient, data_dir: Path, backend: Backend
) -> None:
    assert (data_dir / "imports" / "presidents.csv").is_file()
    response = await client.post(
        "/api/endpoints/import", json={"source": "presidents.csv", "delay_ms": 0}
    )
    events_ = split_events(response.text)
    assert events_[-1].json()["result"]["imported"] == 45
    assert events_[-1].json()["result"]["source"] == "presidents.csv"
    rows = backend.query("SELECT born, birthplace FROM people WHERE name = 'Abraham Lincoln'")
    assert rows == [(1809, "Kentucky")]


async def test_a_csv_named_without_its_extension_is_found(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/endpoints/import", json={"source": "presidents", "delay_ms": 0}
    )
    assert split_events(response.text)[-1].json()["result"]["imported"] == 45


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("../streambind.db", "without a path"),
        ("sub/file.csv", "without a path"),
        ("/etc/passwd", "without a path"),
        ("..\\x.csv", "without a path"),
        (
            "missing.csv",
            "no file named 'missing.csv' in the imports folder; available: presidents.csv",
        ),
    ],
)
async def test_a_source_outside_the_imports_folder_is_refused_with_400(
    client: httpx.AsyncClient, source: str, message: str
) -> None:
    response = await client.post("/api/endpoints/import", json={"source": source})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_params"
    assert message in error["fields"]["source"]


async def test_a_symlink_out_of_the_imports_folder_is_refused(
    client: httpx.AsyncClient, data_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("name\nsecret\n")
    (data_dir / "imports" / "link.csv").symlink_to(outside)
    response = await client.post("/api/endpoints/import", json={"source": "link.csv"})
    assert response.status_code == 400
    assert "outside the imports folder" in response.json()["error"]["fields"]["source"]
    assert str(tmp_path) not in response.text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"title,year\nx,1\n", "the header must name the columns name, born, birthplace"),
        (b"born,birthplace\n1900,Oslo\n", "name is required"),
        (b"name,name\nx,y\n", "each at most once"),
        (b"name\n\xff\xfe\n", "is not UTF-8 text"),
    ],
)
async def test_a_csv_that_cannot_be_imported_at_all_is_400(
    client: httpx.AsyncClient, data_dir: Path, content: bytes, message: str, backend: Backend
) -> None:
    (data_dir / "imports" / "bad.csv").write_bytes(content)
    response = await client.post("/api/endpoints/import", json={"source": "bad.csv"})
    assert response.status_code == 400
    assert message in response.json()["error"]["fields"]["source"]
    assert backend.count_people() == 0


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("Ada,not-a-year,London", "line 7: born must be a whole number"),
        ("Ada,1815", "line 7: expected 3 fields, found 2"),
        (",1815,London", "line 7: name is empty"),
        ('"Ada,1815,London', "line 7"),
        ("Ada,1815," + "x" * 200_000, "field larger than field limit"),
    ],
)
async def test_a_bad_row_mid_file_ends_in_an_error_event_and_a_rolled_back_import(
    client: httpx.AsyncClient, data_dir: Path, bad_line: str, message: str, backend: Backend
) -> None:
    good = [f"Person {i},19{i:02d},Oslo" for i in range(5)]
    rows = ["name,born,birthplace", *good, bad_line, *good]
    (data_dir / "imports" / "broken.csv").write_text("\n".join(rows) + "\n")
    response = await client.post(
        "/api/endpoints/import", json={"source": "broken.csv", "batch_size": 2, "delay_ms": 0}
    )
    assert response.status_code == 200
    events_ = split_events(response.text)
    assert events_[-1].event == "error"
    assert message in events_[-1].json()["error"]["message"]
    assert events_[-2].json()["done"] == 4, "the batches before the bad row were staged"
    assert backend.count_people() == 0
    assert backend.staging_leftovers() == []


@pytest.mark.parametrize(
    ("header", "lines", "stored"),
    [
        ("name,born", ["Ada,1815", "Alan,"], [("Ada", 1815, None), ("Alan", None, None)]),
        ("name", ["Ada", "Alan"], [("Ada", None, None), ("Alan", None, None)]),
        ("birthplace,name", ["London,Ada"], [("Ada", None, "London")]),
    ],
)
async def test_optional_csv_columns_may_be_left_out_and_are_stored_as_null(
    client: httpx.AsyncClient,
    data_dir: Path,
    backend: Backend,
    header: str,
    lines: list[str],
    stored: list[tuple[object, ...]],
) -> None:
    (data_dir / "imports" / "some.csv").write_text("\n".join([header, *lines]) + "\n")
    response = await client.post(
        "/api/endpoints/import", json={"source": "some.csv", "delay_ms": 0}
    )
    last = split_events(response.text)[-1]
    assert last.event == "end", last.data
    assert last.json()["result"]["imported"] == len(lines)
    rows = backend.query("SELECT name, born, birthplace FROM people ORDER BY id")
    assert [tuple(row) for row in rows] == stored


async def test_values_holding_copy_s_special_characters_are_stored_exactly_and_in_order(
    client: httpx.AsyncClient, data_dir: Path, backend: Backend
) -> None:
    # PostgreSQL stages rows as COPY text, where tab, newline, CR and backslash mean
    # something (and \N is NULL, \. the end). Plain batches sit between special ones.
    stored = [
        ("Ada", 1815, "London"),
        ("tab\there", 1900, "new\nline"),
        ("Alan", None, None),
        ("back\\slash", 1901, "carriage\rreturn"),
        ("not \\N null", 1902, "\\N"),
        ("end \\. mark", None, "\\."),
        ("Grace", 1906, "New York"),
        ("Zoë 名前 \\t", 1907, "Zürich"),
    ]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(["name", "born", "birthplace"])
    writer.writerows([(n, "" if b is None else b, p or "") for n, b, p in stored])
    (data_dir / "imports" / "special.csv").write_text(text.getvalue(), encoding="utf-8")
    response = await client.post(
        "/api/endpoints/import", json={"source": "special.csv", "batch_size": 2, "delay_ms": 0}
    )
    last = split_events(response.text)[-1]
    assert last.event == "end", last.data
    rows = backend.query("SELECT name, born, birthplace FROM people ORDER BY id")
    assert [tuple(row) for row in rows] == stored


async def test_a_row_with_more_fields_than_its_header_is_an_error(
    client: httpx.AsyncClient, data_dir: Path, backend: Backend
) -> None:
    (data_dir / "imports" / "wide.csv").write_text("name,born\nAda,1815\nAlan,1912,London\n")
    response = await client.post(
        "/api/endpoints/import", json={"source": "wide.csv", "delay_ms": 0}
    )
    last = split_events(response.text)[-1]
    assert last.event == "error"
    assert "wide.csv line 3: expected 2 fields, found 3" in last.json()["error"]["message"]
    assert backend.count_people() == 0


async def test_staging_files_left_by_a_crash_are_removed_at_start(start, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "crashed"
    dead = data_dir / "staging" / "999999999"  # no process has this pid
    dead.mkdir(parents=True)
    (dead / "deadbeef.db").write_bytes(b"half an import")
    (data_dir / "staging" / "stray.db").write_bytes(b"from an older layout")
    # A live process's folder (here: pid 1) belongs to another server using this directory.
    alive = data_dir / "staging" / "1"
    alive.mkdir()
    (alive / "inprogress.db").write_bytes(b"another server's import")
    await start(data_dir=data_dir)
    assert _staging_files(data_dir) == [alive / "inprogress.db"]
    assert _sqlite_people(data_dir) == 0


async def test_partial_exports_left_by_a_crash_are_removed_at_start_and_no_others(
    start, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    exports = tmp_path / "crashed" / "exports"
    exports.mkdir(parents=True)
    dead = exports / "people-a.csv.999999999.partial"  # no process has this pid
    older = exports / "people-b.csv.partial"  # from the layout without a pid
    alive = exports / "people-c.csv.1.partial"  # pid 1: another live server's
    finished = exports / "people-d.csv"
    for path in (dead, older, alive, finished):
        path.write_bytes(b"rows")
    await start(data_dir=tmp_path / "crashed")
    assert sorted(exports.iterdir()) == sorted([finished, alive])


async def test_a_second_server_on_the_same_data_directory_leaves_an_export_in_progress_alone(
    start, client: httpx.AsyncClient, data_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    await client.post("/api/endpoints/import", json={"rows": 100, "delay_ms": 0})
    async with client.stream(
        "POST", "/api/endpoints/export", json={"batch_size": 10, "delay_ms": 300}
    ) as response:
        stream = events(response)
        first = await anext(stream)
        assert isinstance(first, Event) and first.json()["done"] == 0
        partials = list((data_dir / "exports").glob("*.partial"))
        assert len(partials) == 1
        await start(data_dir=data_dir)  # what a second `streambind serve` does at start
        assert partials[0].exists(), "the second server deleted the export in progress"
        last = (await collect_rest(stream))[-1]
    assert last.event == "end", last.data
    result = last.json()["result"]
    content = Path(result["path"]).read_bytes()
    assert result["rows"] == 100
    assert result["sha256"] == hashlib.sha256(content).hexdigest()
    assert not list((data_dir / "exports").glob("*.partial"))


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
async def test_export_writes_a_complete_file_with_its_hash(
    client: httpx.AsyncClient, data_dir: Path, fmt: str
) -> None:
    await client.post("/api/endpoints/import", json={"source": "presidents.csv", "delay_ms": 0})
    await client.post(
        "/api/endpoints/import", json={"rows": 1234, "batch_size": 500, "delay_ms": 0}
    )
    response = await client.post("/api/endpoints/export", json={"format": fmt, "batch_size": 100})
    events_ = split_events(response.text)
    progress = [e.json() for e in events_ if e.event == "message"]
    assert [p["done"] for p in progress] == [*range(0, 1279, 100), 1279]
    assert all(p["total"] == 1279 for p in progress)
    result = events_[-1].json()["result"]
    path = Path(result["path"])
    assert path.parent == data_dir / "exports"
    content = path.read_bytes()
    assert result["bytes"] == len(content) == progress[-1]["bytes"]
    assert result["sha256"] == hashlib.sha256(content).hexdigest()
    assert result["rows"] == 1279
    assert not list((data_dir / "exports").glob("*.partial"))
    if fmt == "csv":
        records = list(csv.DictReader(io.StringIO(content.decode())))
        assert records[0]["name"] == "George Washington"
    else:
        records = [json.loads(line) for line in content.decode().splitlines()]
        assert records[0]["born"] == 1732
    assert len(records) == 1279


async def test_export_of_one_import(client: httpx.AsyncClient) -> None:
    await client.post("/api/endpoints/import", json={"rows": 30, "delay_ms": 0})
    second = await client.post("/api/endpoints/import", json={"rows": 7, "delay_ms": 0})
    run_id = second.headers["x-run-id"]
    response = await client.post("/api/endpoints/export", json={"run_id": run_id})
    assert split_events(response.text)[-1].json()["result"]["rows"] == 7
    unknown = await client.post("/api/endpoints/export", json={"run_id": "nope"})
    assert unknown.status_code == 400
    assert "no import run with id 'nope'" in unknown.json()["error"]["fields"]["run_id"]


async def test_finished_exports_are_kept_for_a_while_and_up_to_a_number(
    start, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "data"
    exports = data_dir / "exports"
    exports.mkdir(parents=True)
    now = time.time()
    day = 24 * 3600

    def old_export(name: str, days_ago: float) -> Path:
        path = exports / name
        path.write_text("id\n")
        os.utime(path, (now - days_ago * day, now - days_ago * day))
        return path

    ancient = old_export("people-aaaa.csv", 30)  # older than the 10 days kept
    newer = old_export("people-cccc.ndjson", 2)
    newest = old_export("people-dddd.csv", 1)
    # Not the export workflow's files: never deleted, however old.
    mine = old_export("my-notes.csv", 30)
    server = await start(data_dir=data_dir, keep_exports=3, keep_exports_seconds=10 * day)
    assert not ancient.exists(), "an export older than keep_exports_seconds is deleted at start"
    assert sorted(exports.iterdir()) == sorted([newer, newest, mine])
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        made = []
        for _ in range(2):
            response = await client.post("/api/endpoints/export", json={})
            made.append(Path(split_events(response.text)[-1].json()["result"]["path"]))
            assert made[-1].exists()
    # At most 3, the newest: the second export pushed the oldest of the others out.
    assert sorted(exports.iterdir()) == sorted([newest, *made, mine])


async def test_write_text_streams_a_report_computed_from_the_database(
    client: httpx.AsyncClient,
) -> None:
    empty = split_events(
        (await client.post("/api/endpoints/write-text", json={"delay_ms": 0})).text
    )
    assert "The people table is empty" in empty[-1].json()["result"]["text"]

    await client.post("/api/endpoints/import", json={"source": "presidents.csv", "delay_ms": 0})
    events_ = split_events(
        (await client.post("/api/endpoints/write-text", json={"delay_ms": 0})).text
    )
    pieces = [e.json()["text"] for e in events_ if e.event == "message"]
    result = events_[-1].json()["result"]
    assert len(pieces) > 20
    assert "".join(pieces) == result["text"]
    assert result["pieces"] == len(pieces)
    assert "45 rows from 1 import" in result["text"]
    assert "from 1732 to 1961" in result["text"]
    assert "the earliest born is George Washington" in result["text"]
    assert "Virginia (8)" in result["text"]


async def test_pipeline_reports_each_named_step_in_turn(
    client: httpx.AsyncClient, data_dir: Path, backend: Backend
) -> None:
    response = await client.post(
        "/api/endpoints/pipeline", json={"rows": 100, "batch_size": 25, "delay_ms": 0}
    )
    events_ = split_events(response.text)
    announced, *messages = [e.json() for e in events_ if e.event == "message"]
    assert announced == {"steps": ["validate", "import", "publish", "index"]}  # up front
    steps = [m["step"] for m in messages]
    assert steps == ["validate"] * 5 + ["import"] * 5 + ["publish"] + ["index"] * 4
    last_of_each = {m["step"]: m for m in messages}
    # Publishing is one transaction: the step says so, without a done/total to show.
    assert last_of_each["publish"] == {"step": "publish", "rows": 100}
    assert last_of_each["validate"] == {"step": "validate", "done": 100, "total": 100}
    assert last_of_each["index"] == {"step": "index", "done": 3, "total": 3, "index": "people_born"}
    assert backend.count_people() == 100
    assert {"people_name", "people_run_id", "people_born"} <= backend.index_names()


async def test_silent_counts_what_the_database_holds(client: httpx.AsyncClient) -> None:
    await client.post("/api/endpoints/import", json={"rows": 12, "delay_ms": 0})
    response = await client.post("/api/endpoints/silent")
    assert response.json() == {"people": 12, "imports": 1, "streamed": False}


async def test_firehose_sends_exactly_n_messages(client: httpx.AsyncClient) -> None:
    async with client.stream("POST", "/api/endpoints/firehose", json={"n": 3}) as response:
        got = await collect(response)
    assert [e.data for e in got] == [
        '{"step":"import","done":1,"total":3}',
        '{"step":"import","done":2,"total":3}',
        '{"step":"import","done":3,"total":3}',
        '{"status":"succeeded","result":{"sent":3}}',
    ]


async def test_an_import_of_a_hundred_thousand_rows(
    client: httpx.AsyncClient, data_dir: Path, backend: Backend
) -> None:
    response = await client.post(
        "/api/endpoints/import", json={"rows": 100_000, "batch_size": 5_000, "delay_ms": 0}
    )
    events_ = split_events(response.text)
    assert events_[-1].json()["result"]["imported"] == 100_000
    assert [e.json()["done"] for e in events_[:-2]] == list(range(0, 100_001, 5_000))
    assert events_[-2].json() == {"step": "publish", "rows": 100_000}
    assert backend.count_people() == 100_000


async def test_a_clean_shutdown_leaves_no_empty_staging_folder(start, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = await start(data_dir=tmp_path / "tidy")
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.post("/api/endpoints/import", json={"rows": 20, "delay_ms": 0})
        assert response.status_code == 200
    assert list((tmp_path / "tidy" / "staging").iterdir()) != []  # this process's folder
    await server.close()
    assert list((tmp_path / "tidy" / "staging").iterdir()) == []
    # A second server of this process on the same directory stages imports as before.
    again = await start(data_dir=tmp_path / "tidy")
    async with httpx.AsyncClient(base_url=again.url) as client:
        response = await client.post("/api/endpoints/import", json={"rows": 20, "delay_ms": 0})
    assert split_events(response.text)[-1].event == "end"
