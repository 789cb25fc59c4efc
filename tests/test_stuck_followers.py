"""No follower can hold a run, another follower or the server's memory (issue 10, items 1-4)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import struct
from pathlib import Path

import flows
import httpx
import pytest
from polling import run_record, wait_for
from test_cli_serve import _serve
from test_faults import _rss
from wire import Event, collect, events


async def _non_reader(host: str, port: int, path: str) -> tuple[asyncio.StreamReader, object]:
    """A follower with a 4 KB receive buffer that reads nothing until told to."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


async def _read_to_the_end(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while chunk := await reader.read(1 << 20):
        body += chunk
    return body


async def test_a_non_reading_follower_never_freezes_a_run_of_large_messages(start) -> None:  # type: ignore[no-untyped-def]
    # 200 KB pieces 50 ms apart, and one follower that opens the stream and never reads:
    # the inline write of a sparse stream must never wait on that socket.
    server = await start(follower_stall=0.5)
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=60) as client,
        client.stream(
            "POST", "/api/endpoints/document", json={"pieces": 30, "every_ms": 50}
        ) as caller,
    ):
        run_id = caller.headers["x-run-id"]
        stuck_reader, stuck = await _non_reader(
            server.host, server.port, f"/api/runs/{run_id}/events"
        )
        await run_record(client, run_id, lambda r: r["followers"] == 2, "two followers")
        got = await asyncio.wait_for(collect(caller), 60)
        assert [e.json()["piece"] for e in got[:-1]] == list(range(1, 31))
        assert got[-1].event == "end"
        # The stuck follower was let go: its connection closed, nothing holds the run.
        body = await asyncio.wait_for(_read_to_the_end(stuck_reader), 60)
        stuck.close()  # type: ignore[attr-defined]
        assert b"event: end" not in body
        record = await run_record(client, run_id, lambda r: r["followers"] == 0, "let go")
        assert record["status"] == "succeeded"


async def test_stuck_followers_of_finished_runs_are_dropped_and_limits_hold(start) -> None:  # type: ignore[no-untyped-def]
    # Callers that start a firehose and never read a byte of it.
    server = await start(keep_runs=3, follower_stall=0.5)
    callers = []
    for _ in range(8):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (server.host, server.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        body = b'{"n": 100000}'
        writer.write(
            b"POST /api/endpoints/firehose HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        callers.append((reader, writer))
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:

        async def listed() -> list[dict[str, object]]:
            return (await client.get("/api/runs")).json()["runs"]

        # Every run ends (none waits forever for its caller) and the index keeps 3.
        await wait_for(
            listed,
            lambda runs: len(runs) == 3 and all(r["status"] != "running" for r in runs),
            "the runs to end and be pruned",
        )
        # Every stuck caller's connection was closed by the server.
        for reader, writer in callers:
            body = await asyncio.wait_for(_read_to_the_end(reader), 60)
            writer.close()
            assert b"event: end" not in body
        assert len(await listed()) == 3


async def test_the_logs_of_finished_runs_stay_within_max_log_memory(start) -> None:  # type: ignore[no-untyped-def]
    # The worst case at small settings: every run fills its 4 MiB log. Without the bound
    # 30 finished runs would keep 120 MiB; with it they keep at most 16 MiB.
    log_bytes, kept = 4 * 2**20, 16 * 2**20
    server = await start(log_max_bytes=log_bytes, max_log_memory=kept, max_runs=2)
    from streambind.server.api import MANAGER

    manager = server.app[MANAGER]
    baseline = _rss()
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        for _ in range(30):
            async with client.stream(
                "POST", "/api/endpoints/firehose", json={"n": 40_000}
            ) as response:
                async for _ in response.aiter_raw():
                    pass
            assert manager.kept_logs.size_bytes <= kept
        grown = _rss() - baseline
        runs = (await client.get("/api/runs")).json()["runs"]
        assert len(runs) == 30, "records and results are kept, only the logs go"
        oldest = runs[-1]["id"]
        gone = await client.get(f"/api/runs/{oldest}/events")
        assert gone.status_code == 410
        assert (await client.get(f"/api/runs/{oldest}")).json()["result"] == {"sent": 40_000}
    # The README's formula at these settings: 2 running logs + the kept logs, plus the
    # process's own slack (allocator, buffers): far below the 120 MiB of 30 full logs.
    assert grown < 2 * log_bytes + kept + 32 * 2**20, f"grew by {grown / 2**20:.0f} MiB"


async def test_a_workflow_that_blocks_the_loop_costs_its_followers_nothing(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(log_max_bytes=16 * 1024, follower_stall=1.0)
    key = "blocks"
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=60) as client,
        client.stream("POST", "/api/endpoints/blocker", json={"key": key, "after": 3000}) as caller,
        client.stream("GET", f"/api/runs/{caller.headers['x-run-id']}/events") as other,
    ):
        run_id = caller.headers["x-run-id"]
        await run_record(client, run_id, lambda r: r["followers"] == 2, "two followers")
        flows.release(key)
        got = await asyncio.gather(collect(caller), collect(other))
    # A burst the followers could not write, then 2.5 s in which the loop did not run:
    # that time gave no follower a chance, so it counts for nothing against either, and
    # both are still waited for while 3 MB more go through a 16 KB log.
    for events_ in got:
        assert [e.json()["n"] for e in events_[:-1]] == list(range(3061))
        assert events_[-1].event == "end"


async def test_a_paused_server_drops_no_healthy_follower(tmp_path: Path) -> None:
    process, url = await _serve(data_dir=tmp_path)
    try:
        async with (
            httpx.AsyncClient(base_url=url, timeout=60) as client,
            client.stream("POST", "/api/endpoints/firehose", json={"n": 1_000_000}) as response,
        ):
            count, paused = 0, False
            async for item in events(response):
                if not isinstance(item, Event):
                    continue
                count += 1
                last = item
                if count == 50_000 and not paused:
                    paused = True
                    os.kill(process.pid, signal.SIGSTOP)
                    await asyncio.sleep(3)  # the pause under test
                    os.kill(process.pid, signal.SIGCONT)
        assert last.event == "end", last
        assert count == 1_000_001
    finally:
        process.terminate()
        await process.wait()


def _open_sockets(pid: int) -> int:
    """How many sockets the process ``pid`` holds open (its descriptors that are sockets)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to count descriptors")
async def test_followers_that_are_let_go_give_their_descriptors_back_at_once(
    tmp_path: Path,
) -> None:
    # Ten followers of a finished run of 200 KB messages take the response's first bytes,
    # then half-close their side and read nothing more. The server's graceful close of
    # such a connection would wait for a buffer nobody drains; letting go must abort it.
    process, url = await _serve("--workflows", "flows", data_dir=tmp_path)
    host, port = httpx.URL(url).host, httpx.URL(url).port
    assert port is not None
    held = []
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            done = await client.post("/api/endpoints/document", json={"every_ms": 0})
            run_id = done.headers["x-run-id"]
            before = _open_sockets(process.pid)
            for _ in range(10):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.connect((host, port))
                sock.sendall(f"GET /api/runs/{run_id}/events HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                assert sock.recv(16).startswith(b"HTTP/1.1 200")
                sock.shutdown(socket.SHUT_WR)
                held.append(sock)
            await run_record(client, run_id, lambda r: r["followers"] == 10, "ten followers")

            async def sockets() -> int:
                return _open_sockets(process.pid)

            # Let go after the stall time (2 s), and their descriptors are back with it.
            await wait_for(sockets, lambda n: n <= before, "the let-go followers' descriptors")
            record = await run_record(client, run_id, lambda r: r["followers"] == 0, "let go")
            assert record["status"] == "succeeded"
    finally:
        for sock in held:
            sock.close()
        process.terminate()
        _, stderr = await process.communicate()
    assert stderr.decode().count("made no progress") == 10


async def test_clients_that_vanish_mid_stream_are_never_an_error_in_the_log(tmp_path: Path) -> None:
    # Followers of a running run that go away every way a client can: half-closing before
    # the response begins or after its first bytes, or resetting the connection mid-stream.
    process, url = await _serve("--workflows", "flows", data_dir=tmp_path)
    host, port = httpx.URL(url).host, httpx.URL(url).port
    assert port is not None
    try:
        async with (
            httpx.AsyncClient(base_url=url, timeout=60) as client,
            client.stream(
                "POST", "/api/endpoints/document", json={"pieces": 30, "every_ms": 50}
            ) as caller,
        ):
            path = f"/api/runs/{caller.headers['x-run-id']}/events"
            for how in ("half-close at once", "half-close after the headers", "reset") * 10:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.connect((host, port))
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                if how != "half-close at once":
                    assert sock.recv(16).startswith(b"HTTP/1.1 200")
                if how == "reset":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.close()
                else:
                    sock.shutdown(socket.SHUT_WR)
                    sock.close()
            got = await asyncio.wait_for(collect(caller), 60)
        assert [e.event for e in got][-1] == "end"
        assert len(got) == 31
    finally:
        process.terminate()
        _, stderr = await process.communicate()
    log = stderr.decode()
    assert "ERROR" not in log and "Traceback" not in log, log
