"""The import workflow's speed on each database: 1,000,000 generated rows, batch 10,000, no delay.

    .venv/bin/python tests/bench/database.py [--reps 3]   (or run.py --only database)

A real ``streambind serve`` per database (SQLite in a fresh data directory, PostgreSQL
at $STREAMBIND_TEST_DATABASE or 127.0.0.1:5432/test in a fresh schema, dropped after);
the client reads the stream and times each message. Figures are medians of ``reps``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from run import PYTHON, free_port, table, wait_until_listening  # noqa: E402

ROWS = 1_000_000
BATCH = 10_000
PG_URL = os.environ.get("STREAMBIND_TEST_DATABASE") or "postgresql://127.0.0.1:5432/test"


def one_import(url: str) -> dict[str, float]:
    """Run one import through ``url``; time it from the request to ``end``."""
    body = {"rows": ROWS, "batch_size": BATCH, "delay_ms": 0}
    messages = 0
    last_batch = end = 0.0
    with httpx.Client(base_url=url, timeout=600) as client:
        start = time.perf_counter()
        with client.stream("POST", "/api/endpoints/import", json=body) as response:
            event = ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    now = time.perf_counter()
                    if event == "message":
                        messages += 1
                        last_batch = now
                    elif event == "end":
                        end = now
                        assert json.loads(line[6:])["result"]["imported"] == ROWS
                    else:
                        raise RuntimeError(f"the import ended with {event}: {line[:300]}")
    assert messages == ROWS // BATCH + 1, f"{messages} messages: the stream was not live"
    return {
        "seconds": end - start,
        "rows_per_s": ROWS / (end - start),
        "staging_rows_per_s": ROWS / (last_batch - start),
        "publish_s": end - last_batch,
        "messages": messages,
    }


def serve(data_dir: str, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, "-m", "streambind.app.cli", "serve", "--port", str(port),
         "--data-dir", data_dir, *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_until_listening(port, process)
    return process, f"http://127.0.0.1:{port}"


def measure(reps: int, postgres: bool) -> list[dict[str, float]]:
    results = []
    for _ in range(reps):
        schema = f"streambind_bench_{secrets.token_hex(4)}"
        extra = ("--database", PG_URL, "--database-schema", schema) if postgres else ()
        with tempfile.TemporaryDirectory() as data_dir:
            process, url = serve(data_dir, *extra)
            try:
                results.append(one_import(url))
            finally:
                process.terminate()
                process.wait(30)
                if postgres:
                    _drop_schema(schema)
    return results


def _drop_schema(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def bench_database(reps: int) -> str:
    rows: list[list[str]] = []
    for name, postgres in (("SQLite", False), ("PostgreSQL (COPY)", True)):
        results = measure(reps, postgres)

        def med(key: str, results: list[dict[str, Any]] = results) -> float:
            return statistics.median(r[key] for r in results)

        rows.append(
            [
                name,
                f"{med('staging_rows_per_s'):,.0f}",
                f"{med('rows_per_s'):,.0f}",
                f"{med('seconds'):.2f} s",
                f"{med('publish_s'):.3f} s",
                f"{med('messages'):.0f}",
            ]
        )
    return table(
        f"Import: {ROWS:,} generated rows, batch {BATCH:,}, no delay ({reps} repetitions)",
        [
            "database",
            "rows/s staged (request to last batch)",
            "rows/s overall (request to end)",
            "total",
            "last batch to end (publish)",
            "messages",
        ],
        rows,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    print(bench_database(parser.parse_args().reps), flush=True)
