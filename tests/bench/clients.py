"""Measuring clients, each run in a process of its own: `python clients.py MODE JSON-ARGS`.

Every mode prints one JSON object with its measurements on stdout.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import statistics
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from streambind.app.sse import SSEDecoder


def rss_bytes(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _open(url: str, method: str, body: Any) -> tuple[asyncio.StreamReader, Any]:
    """A raw HTTP/1.1 request with Connection: close, so the response ends at EOF."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port, limit=2**20)
    payload = b"" if body is None else json.dumps(body).encode()
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
        "Accept: text/event-stream\r\n"
    )
    if payload:
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    writer.write(head.encode() + b"\r\n" + payload)
    await writer.drain()
    return reader, writer


_EVENT = b"\ndata: "  # once per event in every stack's framing


async def count_bytes(url: str, method: str = "GET", body: Any = None) -> dict[str, float]:
    """The cheapest possible client: read to EOF, counting bytes and events."""
    start = time.perf_counter()
    reader, writer = await _open(url, method, body)
    total = events = 0
    tail = b""  # a token split across two reads is counted once, in the second
    while chunk := await reader.read(2**20):
        total += len(chunk)
        events += (tail + chunk).count(_EVENT)
        tail = chunk[-(len(_EVENT) - 1) :]
    seconds = time.perf_counter() - start
    writer.close()
    return {"seconds": seconds, "bytes": total, "events": events}


async def latency(url: str, method: str = "GET", body: Any = None) -> dict[str, Any]:
    """Send-to-parse delay of each message (`t` inside is the send time, same clock)."""
    import aiohttp

    delays: list[float] = []
    decoder = SSEDecoder()
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, json=body) as response,
    ):
        async for chunk in response.content.iter_any():
            now = time.monotonic()
            for event in decoder.feed(chunk):
                data = json.loads(event.data)
                if isinstance(data, dict) and "t" in data:
                    delays.append(now - data["t"])
    return {
        "messages": len(delays),
        "p50_ms": percentile(delays, 50) * 1000,
        "p99_ms": percentile(delays, 99) * 1000,
        "delays_ms": [round(d * 1000, 4) for d in delays],
    }


async def stream_client_rate(url: str, n: int) -> dict[str, float]:
    from streambind.app.client import StreamClient

    async with StreamClient(url) as client:
        start = time.perf_counter()
        state = await client.call("firehose", {"n": n}).run()
        seconds = time.perf_counter() - start
    assert state.status == "succeeded" and len(state.chunks) == n, state.error
    return {"seconds": seconds, "rate": n / seconds}


async def httpx_sse_rate(url: str, n: int) -> dict[str, float]:
    import httpx
    from httpx_sse import aconnect_sse

    chunks = []
    async with httpx.AsyncClient(timeout=None) as client:
        start = time.perf_counter()
        async with aconnect_sse(
            client, "POST", f"{url}/api/endpoints/firehose", json={"n": n}
        ) as source:
            async for event in source.aiter_sse():
                # httpx-sse turns the retry-only block into an empty event: skip it.
                if event.data and event.event == "message":
                    chunks.append(json.loads(event.data))
        seconds = time.perf_counter() - start
    assert len(chunks) == n
    return {"seconds": seconds, "rate": n / seconds}


async def fanout(url: str, followers: int, n: int, key: str) -> dict[str, float]:
    """One gated firehose run followed by `followers` clients (the caller among them)."""
    import httpx

    caller = asyncio.create_task(
        count_bytes(f"{url}/api/endpoints/gated-firehose", "POST", {"n": n, "key": key})
    )
    async with httpx.AsyncClient(base_url=url, timeout=60) as api:
        run_id = None
        while run_id is None:
            runs = (await api.get("/api/runs")).json()["runs"]
            run_id = next((r["id"] for r in runs if r["params"].get("key") == key), None)
            await asyncio.sleep(0.01)
        others = [
            asyncio.create_task(count_bytes(f"{url}/api/runs/{run_id}/events"))
            for _ in range(followers - 1)
        ]
        while (await api.get(f"/api/runs/{run_id}")).json()["followers"] < followers:
            await asyncio.sleep(0.02)
        start = time.perf_counter()
        await api.post("/api/endpoints/release", json={"key": key})
        results = await asyncio.gather(caller, *others)
        seconds = time.perf_counter() - start
    # Every follower must have had every message and the terminal event.
    short = [r for r in results if r["events"] != n + 1]
    return {
        "followers": followers,
        "messages": n,
        "seconds": seconds,
        "aggregate_rate": followers * n / seconds,
        "incomplete": len(short),
    }


async def _attached_follower(url: str, attached: list[int]) -> tuple[asyncio.StreamReader, Any]:
    reader, writer = await _open(url, "GET", None)
    await reader.readuntil(b"\r\n\r\n")  # the headers: the node has attached it
    attached.append(1)
    return reader, writer


async def _count_rest(reader: asyncio.StreamReader, writer: Any) -> dict[str, float]:
    total = events = 0
    tail = b""
    while chunk := await reader.read(2**20):
        total += len(chunk)
        events += (tail + chunk).count(_EVENT)
        tail = chunk[-(len(_EVENT) - 1) :]
    writer.close()
    return {"bytes": total, "events": events}


async def _gated_run(urls: list[str], path: str, body: dict[str, Any]) -> tuple[Any, str]:
    """A gated run started on urls[0], once another node (urls[-1]) lists it."""
    import httpx

    caller = asyncio.create_task(count_bytes(f"{urls[0]}{path}", "POST", body))
    async with httpx.AsyncClient(timeout=60) as api:
        while True:
            runs = (await api.get(f"{urls[-1]}/api/runs")).json()["runs"]
            run_id = next((r["id"] for r in runs if r["params"].get("key") == body["key"]), None)
            if run_id is not None:
                return caller, run_id
            await asyncio.sleep(0.01)


async def redis_fanout(urls: list[str], followers: int, n: int, key: str) -> dict[str, Any]:
    """A gated firehose executing on urls[0]; `followers` spread over the other nodes
    (urls[1:], or all of them when there is only the one besides), reading to the end."""
    import httpx

    caller, run_id = await _gated_run(urls, "/api/endpoints/gated-firehose", {"n": n, "key": key})
    spread = urls[1:] if len(urls) == 2 else urls
    attached: list[int] = []
    opened = await asyncio.gather(
        *(
            _attached_follower(f"{spread[i % len(spread)]}/api/runs/{run_id}/events", attached)
            for i in range(followers)
        )
    )
    async with httpx.AsyncClient(timeout=60) as api:
        start = time.perf_counter()
        await api.post(f"{urls[0]}/api/endpoints/release", json={"key": key})
        results = await asyncio.gather(*(_count_rest(r, w) for r, w in opened))
        seconds = time.perf_counter() - start
        await caller
    short = [r for r in results if r["events"] != n + 1]
    return {
        "followers": followers,
        "messages": n,
        "seconds": seconds,
        "rate": n / seconds,
        "aggregate_rate": followers * n / seconds,
        "incomplete": len(short),
    }


async def redis_latency(urls: list[str], key: str) -> dict[str, Any]:
    """`gated-sparse` executing on urls[0], its send-to-parse delays on urls[1]."""
    import httpx

    body = {"n": 1000, "interval_ms": 2, "key": key}
    caller, run_id = await _gated_run(urls, "/api/endpoints/gated-sparse", body)
    measuring = asyncio.create_task(latency(f"{urls[1]}/api/runs/{run_id}/events"))
    async with httpx.AsyncClient(timeout=60) as api:
        # The follower on urls[1] is attached once that node counts it.
        while (await api.get(f"{urls[1]}/api/runs/{run_id}")).json()["followers"] < 1:
            await asyncio.sleep(0.01)
        await api.post(f"{urls[0]}/api/endpoints/release", json={"key": key})
        result = await measuring
        await caller
    return result


async def scale(url: str, streams: int, seconds: float, per_second: float) -> dict[str, Any]:
    """`streams` runs at once, each sending `per_second` messages for `seconds`."""
    import aiohttp

    n = round(seconds * per_second)
    delays: list[float] = []
    counts: list[int] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            decoder = SSEDecoder()
            got = 0
            async with session.post(
                f"{url}/api/endpoints/sparse", json={"n": n, "interval_ms": 1000 / per_second}
            ) as response:
                async for chunk in response.content.iter_any():
                    now = time.monotonic()
                    for event in decoder.feed(chunk):
                        if event.event == "message":
                            delays.append(now - json.loads(event.data)["t"])
                            got += 1
            counts.append(got)

        await asyncio.gather(*(one() for _ in range(streams)))
    return {
        "streams": streams,
        "expected": streams * n,
        "delivered": sum(counts),
        "p99_ms": percentile(delays, 99) * 1000,
    }


async def chunks_memory(url: str, n: int) -> dict[str, float]:
    """What `stream.chunks` of `n` small messages costs the client process."""
    from streambind.app.client import StreamClient

    gc.collect()
    before = rss_bytes()
    async with StreamClient(url) as client:
        state = await client.call("firehose", {"n": n}).run()
    gc.collect()
    after = rss_bytes()
    assert len(state.chunks) == n
    return {"messages": n, "rss_mb": (after - before) / 2**20}


async def tui_firehose(url: str, n: int) -> dict[str, Any]:
    """The real app, headless: event-loop stalls while streaming, how soon the run is done
    on screen, and how long a key takes to change the screen, idle and while streaming."""
    from textual.widgets import Input, OptionList

    from streambind.app.tui.app import StreambindApp
    from streambind.app.tui.run_line import RunLine

    app = StreambindApp(url, health=False)
    lateness: list[float] = []
    paints: list[tuple[float, bool]] = []
    async with app.run_test(size=(120, 40)) as pilot:
        show = app._display
        watched: list[Any] = []  # the run a key is pressed on

        def counted_display(screen: Any, renderable: Any) -> None:
            # Each frame painted, with what it showed of the watched run.
            expanded = bool(watched) and watched[0].has_class("-expanded")
            show(screen, renderable)
            paints.append((time.perf_counter(), expanded))

        app._display = counted_display  # type: ignore[method-assign]
        while not app.endpoints or not app.query("#handle-stream"):
            await pilot.pause(0.02)

        async def key_to_screen() -> float:
            """Enter on the focused run (expand or collapse it): seconds until the frame
            that shows it is painted."""
            card = app.focused
            watched[:] = [card]
            before = card.has_class("-expanded")  # type: ignore[union-attr]
            seen = len(paints)
            pressed = time.perf_counter()
            # Posted as a terminal's key would be: Pilot's press waits for the app to be
            # idle, which a firehose does not let it be.
            app.simulate_key("enter")
            while True:
                shown = [t for t, expanded in paints[seen:] if expanded != before]
                if shown:
                    return shown[0] - pressed
                await asyncio.sleep(0.001)

        # A finished run on the board to press keys on.
        await pilot.press("r")
        while not app.cards or not app.cards[0].state.finished:
            await pilot.pause(0.02)
        await pilot.press("right_square_bracket")
        idle_keys = [await key_to_screen() for _ in range(20)]

        index = [e["name"] for e in app.endpoints].index("firehose")
        app.query_one("#endpoint-list", OptionList).highlighted = index
        while app.form is None or app.form.endpoint["name"] != "firehose":
            await pilot.pause(0.02)
        await pilot.pause()
        app.query_one("#param-n", Input).value = str(n)

        streaming = True

        async def probe() -> None:
            # How late a 5 ms sleep wakes up is how long the loop was busy elsewhere.
            while streaming:
                asked = time.perf_counter()
                await asyncio.sleep(0.005)
                lateness.append(time.perf_counter() - asked - 0.005)

        prober = asyncio.create_task(probe())
        app.query_one("#endpoint-list").focus()
        app.simulate_key("r")
        while len(app.cards) < 2:
            await pilot.pause(0.01)
        card = app.cards[0]
        app.cards[1].focus()
        busy_keys = []
        while not card.state.finished:
            if len(card.state.chunks) > n // 20 and len(busy_keys) < 20:
                busy_keys.append(await key_to_screen())
            await asyncio.sleep(0.005)
        ended = time.perf_counter()
        streaming = False
        await prober
        line = card.query_one(RunLine)
        while not (line.parts is not None and line.parts.fraction == 1.0):
            await asyncio.sleep(0.005)
        shown = time.perf_counter() - ended
        status = card.state.status
    return {
        "messages": n,
        "status": status,
        "stall_p99_ms": percentile(lateness, 99) * 1000,
        "stall_max_ms": max(lateness) * 1000,
        "card_done_after_end_s": shown,
        "key_idle_ms": statistics.median(idle_keys) * 1000,
        "key_streaming_ms": statistics.median(busy_keys) * 1000 if busy_keys else None,
        "keys_while_streaming": len(busy_keys),
    }


async def mcp_firehose(url: str, n: int, transport: str) -> dict[str, Any]:
    """The firehose called as an MCP tool through ``streambind mcp`` (stdio: spawned by the
    SDK's client, as agent hosts do; http: a bridge process at ``url``), with a progress
    callback: notifications per second, how many messages were joined into a later
    notification, the longest silence between two, and the last progress."""
    from mcp import Client, StdioServerParameters

    arrived: list[float] = []
    values: list[tuple[float, float | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        arrived.append(time.perf_counter())
        values.append((value, total))

    if transport == "stdio":
        cli = ["-m", "streambind.app.cli", "mcp", "--url", url]
        target: Any = StdioServerParameters(command=sys.executable, args=cli)
    else:
        target = url
    async with Client(target) as client:
        await client.list_tools()
        start = time.perf_counter()
        result = await client.call_tool("firehose", {"n": n}, progress_callback=progress)
        seconds = time.perf_counter() - start
    assert not result.is_error, result
    gaps = [b - a for a, b in itertools.pairwise([start, *arrived])]
    return {
        "seconds": seconds,
        "notifications": len(values),
        "rate": len(values) / seconds,
        "joined": n - len(values),
        "max_gap_ms": max(gaps) * 1000,
        "last": values[-1],
        "never_back": all(a[0] <= b[0] for a, b in itertools.pairwise(values)),
        "result_after_last_ms": (start + seconds - arrived[-1]) * 1000,
    }


async def many_streams(
    url: str, streams: int, per_second: float, seconds: float, sigterm: bool
) -> dict[str, Any]:
    """`streams` gated runs that start together once all are running, each sending
    `per_second` messages for `seconds`: deliveries, latency, and how their terminal events
    arrived. With `sigterm`, prints READY once every stream has its first message and waits
    for the server to be stopped (by the bench) instead of for the runs to end."""
    import aiohttp

    n = round(seconds * per_second)
    delays: list[float] = []
    counts: list[int] = []
    ends: list[float] = []
    terminal = 0
    first = asyncio.Event()
    started = 0
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one() -> None:
            nonlocal terminal, started
            decoder = SSEDecoder()
            got = 0
            try:
                async with session.post(
                    f"{url}/api/endpoints/gated-sparse",
                    json={"n": n, "interval_ms": 1000 / per_second, "key": "many"},
                ) as response:
                    async for chunk in response.content.iter_any():
                        now = time.monotonic()
                        for event in decoder.feed(chunk):
                            if event.event == "message":
                                if got == 0:
                                    started += 1
                                    if started == streams:
                                        first.set()
                                delays.append(now - json.loads(event.data)["t"])
                                got += 1
                            elif event.event in ("end", "cancelled", "error"):
                                terminal += 1
                                ends.append(now)
            except aiohttp.ClientError:
                pass  # cut before its terminal event: counted as such
            counts.append(got)

        tasks = [asyncio.create_task(one()) for _ in range(streams)]
        # Every run running (waiting for the gate) before any sends: they start together.
        while True:
            async with session.get(f"{url}/healthz") as answer:
                if (await answer.json())["running"] >= streams:
                    break
            await asyncio.sleep(0.2)
        async with session.post(f"{url}/api/endpoints/release", json={"key": "many"}):
            pass
        if sigterm:
            await first.wait()
            print("READY", flush=True)
        await asyncio.gather(*tasks)
    return {
        "streams": streams,
        "expected": streams * n,
        "delivered": sum(counts),
        "p99_ms": percentile(delays, 99) * 1000 if delays else 0.0,
        "terminal": terminal,
        "ends_spread_s": (max(ends) - min(ends)) if ends else 0.0,
    }


MODES = {
    "many-streams": many_streams,
    "redis_fanout": redis_fanout,
    "redis_latency": redis_latency,
    "bytes": count_bytes,
    "latency": latency,
    "stream-client": stream_client_rate,
    "httpx-sse": httpx_sse_rate,
    "fanout": fanout,
    "scale": scale,
    "chunks-memory": chunks_memory,
    "tui": tui_firehose,
    "mcp": mcp_firehose,
}

if __name__ == "__main__":
    mode, args = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(asyncio.run(MODES[mode](**args))))
