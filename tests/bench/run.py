"""streambind's benchmarks, side by side with the SSE stacks a user would otherwise pick.

    .venv/bin/pip install -e ".[test,bench]"
    .venv/bin/python tests/bench/run.py [--reps 5] [--only throughput,latency,mcp,...]
        [--baseline OTHER/.venv/bin/python]

Servers and clients run in separate processes on loopback; each figure is the median of
`--reps` repetitions in this one run, and ratios compare figures of this run only. Prints
Markdown tables. Not part of the test suite: timings belong here, never in tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
N_THROUGHPUT = 200_000
#: Another install of streambind (``--baseline``: a checkout with its own venv): the
#: throughput, latency, client, fan-out, scale and start-up benches measure it too, side
#: by side in the same run, taking their repetitions in turns with this one.
BASELINE_PYTHON: str | None = None
#: The event loop the servers run (``serve --loop``); None: their default. A baseline
#: from before ``--loop`` runs its own default.
LOOP: str | None = None


# With two cores or more, servers run on the first and clients on the second, so the
# two sides of a measurement never compete for one core or migrate between cores
# (fewer outliers; the same for every stack measured).
_PINNED = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2


def _on_cpu(cpu: int):  # type: ignore[no-untyped-def]
    if not _PINNED:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


@contextlib.contextmanager
def server(kind: str, python: str = PYTHON, **options: str) -> Iterator[tuple[str, int]]:
    """Start one server process; yields (base URL, pid)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    with tempfile.TemporaryDirectory() as data_dir:
        if kind == "streambind":
            command = [
                python, "-m", "streambind.app.cli", "serve", "--port", str(port),
                "--data-dir", data_dir, "--workflows", *_workflows(python), "--max-runs", "5000",
            ]  # fmt: skip
            if LOOP and _takes_loop(python):
                command += ["--loop", LOOP]
            for key, value in options.items():
                command += [f"--{key}", value]
        else:
            command = [PYTHON, str(HERE / "anchors.py"), kind, str(port)]
        process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_on_cpu(0),
        )
        try:
            wait_until_listening(port, process)
            yield f"http://127.0.0.1:{port}", process.pid
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


_DEMO_IN: dict[str, bool] = {}
_LOOP_IN: dict[str, bool] = {}


def _takes_loop(python: str) -> bool:
    """Whether an install's ``serve`` has ``--loop``: a baseline that has it runs the same
    loop as this install in each half; one from before it, its own default."""
    if python not in _LOOP_IN:
        usage = subprocess.run(
            [python, "-m", "streambind.app.cli", "serve", "--help"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        _LOOP_IN[python] = "--loop" in usage.stdout
    return _LOOP_IN[python]


def _workflows(python: str) -> list[str]:
    """What an install serves for the benches: the demo (the firehose) and the benches' own
    workflows. An install from before the demo was a module of its own served it always."""
    if python not in _DEMO_IN:
        probe = (
            "import importlib.util as u; print(u.find_spec('streambind.server.demo') is not None)"
        )
        found = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
        _DEMO_IN[python] = found.stdout.strip() == "True"
    return ["streambind.server.demo", "flows"] if _DEMO_IN[python] else ["flows"]


def client(mode: str, python: str = PYTHON, **args: Any) -> dict[str, Any]:
    """Run one measuring client in a process of its own."""
    result = subprocess.run(
        [python, str(HERE / "clients.py"), mode, json.dumps(args)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(HERE)},
        timeout=600,
        preexec_fn=_on_cpu(1),
    )
    if result.returncode != 0:
        raise RuntimeError(f"client {mode} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def versus(ours: float, base: float, higher_is_better: bool) -> str:
    """This install's figure against the baseline's: their ratio, and which is better."""
    ratio = ours / base
    better = ratio >= 1 if higher_is_better else ratio <= 1
    change = abs(ratio - 1) * 100
    return f"{ratio:.2f} ({change:.1f}% {'better' if better else 'worse'})"


def ratio_interval(ours: list[float], base: list[float]) -> str:
    """A 95% bootstrap interval for the ratio of two figures' medians over repetitions.

    A p99 of 1,000 messages moves a lot from one repetition to the next on a shared
    machine, so a ratio of medians near 1 says little without the spread it could have.
    """
    draw = random.Random(0)
    ratios = sorted(
        median(draw.choices(ours, k=len(ours))) / median(draw.choices(base, k=len(base)))
        for _ in range(2000)
    )
    return f"95% interval {ratios[50]:.2f}-{ratios[-51]:.2f}"


def _pythons() -> list[tuple[str, str]]:
    """(label, python) of the installs a bench measures: this one, and any baseline."""
    return [("streambind", PYTHON)] + ([("baseline", BASELINE_PYTHON)] if BASELINE_PYTHON else [])


# -- the comparisons --------------------------------------------------------------


def ceiling_rate(n: int) -> float:
    """Events the same process can merely JSON-encode and frame per second, as ``ctx.send``
    does it (an install from before ``json_bytes`` framed text with ``encode_event``)."""
    from streambind.server import framing

    start = time.perf_counter()
    if hasattr(framing, "json_bytes"):
        json_bytes, message_frame = framing.json_bytes, framing.MESSAGE_FRAME
        for i in range(1, n + 1):
            message_frame % (i, json_bytes({"step": "import", "done": i, "total": n}))
    else:
        encode_event, to_json = framing.encode_event, framing.to_json
        for i in range(1, n + 1):
            encode_event(i, "message", to_json({"step": "import", "done": i, "total": n}))
    return n / (time.perf_counter() - start)


def baseline_ceiling_rate(n: int) -> float:
    """``ceiling_rate`` as the baseline install measures it, in a process of its own."""
    assert BASELINE_PYTHON is not None
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import run; "
    code += f"print(run.ceiling_rate({n}))"
    result = subprocess.run(
        [BASELINE_PYTHON, "-c", code], capture_output=True, text=True, check=True, timeout=600
    )
    return float(result.stdout.strip())


STACKS = {
    "streambind": ("/api/endpoints/firehose", "POST"),
    "aiohttp-sse": ("/firehose", "GET"),
    "sse-starlette + uvicorn": ("/firehose", "GET"),
    "aiohttp StreamResponse, one write per event": ("/firehose", "GET"),
}
KINDS = {
    "streambind": "streambind",
    "aiohttp-sse": "aiohttp-sse",
    "sse-starlette + uvicorn": "sse-starlette",
    "aiohttp StreamResponse, one write per event": "aiohttp-plain",
}


def bench_throughput(reps: int) -> str:
    stacks = [(name, KINDS[name], path, method, PYTHON) for name, (path, method) in STACKS.items()]
    if BASELINE_PYTHON:
        path, method = STACKS["streambind"]
        stacks.insert(1, ("streambind baseline", "streambind", path, method, BASELINE_PYTHON))
    runs: dict[str, list[float]] = {name: [] for name, *_ in stacks}
    # The two streambinds (with a baseline) take their repetitions in turns, so that a
    # shared machine's drifting load weighs on both alike; the others one after another.
    groups = (
        [stacks[:2], *([stack] for stack in stacks[2:])]
        if BASELINE_PYTHON
        else [[stack] for stack in stacks]
    )
    for group in groups:
        with contextlib.ExitStack() as servers:
            urls = [servers.enter_context(server(kind, python))[0] for _, kind, *_, python in group]
            for _ in range(reps):
                for (name, _, path, method, _), url in zip(group, urls, strict=True):
                    if method == "POST":
                        body = {"n": N_THROUGHPUT}
                        r = client("bytes", url=url + path, method="POST", body=body)
                    else:
                        r = client("bytes", url=f"{url}{path}?n={N_THROUGHPUT}")
                    assert r["events"] >= N_THROUGHPUT, (name, r)
                    runs[name].append(N_THROUGHPUT / r["seconds"])
    rates = {name: median(values) for name, values in runs.items()}
    ceiling = median([ceiling_rate(N_THROUGHPUT) for _ in range(reps)])
    ours = rates["streambind"]
    rows = [
        [name, f"{rate:,.0f}", f"{ours / rate:.2f}x" if name != "streambind" else "—"]
        for name, rate in rates.items()
    ]
    rows.append(["encode + frame only, no I/O (the ceiling)", f"{ceiling:,.0f}", "—"])
    if BASELINE_PYTHON:
        base = median([baseline_ceiling_rate(N_THROUGHPUT) for _ in range(reps)])
        rows.append(["baseline's encode + frame only (its ceiling)", f"{base:,.0f}", "—"])
    rows.append(["streambind ÷ ceiling", f"{ours / ceiling:.2f}", ""])
    return table(
        f"Throughput: one follower, {N_THROUGHPUT:,} messages, a client that counts bytes",
        ["stack", "messages/s (median)", "streambind is"],
        rows,
    )


LATENCY_STACKS = [
    ("streambind", "streambind", "/api/endpoints/sparse", "POST"),
    ("aiohttp-sse", "aiohttp-sse", "/sparse", "GET"),
    ("sse-starlette + uvicorn", "sse-starlette", "/sparse", "GET"),
]


def bench_latency(reps: int) -> str:
    # A p99 of 1,000 messages is their tenth-slowest, and a shared machine's load
    # drifts: so each stack gets three times the repetitions, taken in turns (the
    # order rotating each round), and the p99 of all their messages together is
    # reported beside the median of the repetitions' p99s.
    rounds = 3 * reps
    stacks = [(*stack, PYTHON) for stack in LATENCY_STACKS]
    if BASELINE_PYTHON:  # its server, read by the same measuring client
        stacks.insert(1, ("streambind baseline", *LATENCY_STACKS[0][1:], BASELINE_PYTHON))
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, *_ in stacks}
    with contextlib.ExitStack() as servers:
        urls = {
            name: servers.enter_context(server(kind, python))[0]
            for name, kind, *_, python in stacks
        }
        for round_ in range(rounds):
            shift = round_ % len(stacks)
            for name, _, path, method, _ in stacks[shift:] + stacks[:shift]:
                if method == "POST":
                    body = {"n": 1000, "interval_ms": 2}
                    r = client("latency", url=urls[name] + path, method="POST", body=body)
                else:
                    r = client("latency", url=f"{urls[name]}{path}?n=1000&interval_ms=2")
                assert r["messages"] == 1000, (name, r["messages"])
                results[name].append(r)
    from clients import percentile

    rows = []
    for name, runs in results.items():
        pooled = [d for r in runs for d in r["delays_ms"]]
        rows.append(
            [
                name,
                f"{median([r['p50_ms'] for r in runs]):.3f}",
                f"{median([r['p99_ms'] for r in runs]):.3f}",
                f"{percentile(pooled, 99):.3f}",
                f"{max(pooled):.3f}",
            ]
        )
    our_p99s = [r["p99_ms"] for r in results["streambind"]]
    ours = median(our_p99s)
    theirs = median([r["p99_ms"] for r in results["aiohttp-sse"]])
    rounds_won = zip(results["streambind"], results["aiohttp-sse"], strict=True)
    faster = sum(a["p99_ms"] <= b["p99_ms"] for a, b in rounds_won)
    against_baseline = ""
    if BASELINE_PYTHON:
        base = results["streambind baseline"]
        p50 = versus(median([r["p50_ms"] for r in results["streambind"]]),
                     median([r["p50_ms"] for r in base]), higher_is_better=False)  # fmt: skip
        base_p99s = [r["p99_ms"] for r in base]
        p99 = versus(ours, median(base_p99s), higher_is_better=False)
        spread = ratio_interval(our_p99s, base_p99s)
        against_baseline = f"streambind ÷ baseline: median {p50}, p99 {p99}, {spread}.\n"
    return (
        table(
            f"Latency: 1,000 messages 2 ms apart, from the send to the client's parse "
            f"({rounds} repetitions per stack, in turns)",
            ["stack", "median (ms)", "p99 (ms)", "p99 of all messages (ms)", "worst (ms)"],
            rows,
        )
        + (
            f"\nstreambind's p99 ÷ aiohttp-sse's: {ours / theirs:.2f}; streambind's p99 was the "
            f"lower or equal in {faster} of {rounds} rounds.\n"
        )
        + against_baseline
    )


def bench_client(reps: int) -> str:
    ours, theirs, base = [], [], []
    with contextlib.ExitStack() as servers:
        url = servers.enter_context(server("streambind"))[0]
        if BASELINE_PYTHON:
            base_url = servers.enter_context(server("streambind", BASELINE_PYTHON))[0]
        for _ in range(reps):  # in turns, as in bench_throughput
            ours.append(client("stream-client", url=url, n=N_THROUGHPUT)["rate"])
            theirs.append(client("httpx-sse", url=url, n=N_THROUGHPUT)["rate"])
            if BASELINE_PYTHON:
                result = client("stream-client", BASELINE_PYTHON, url=base_url, n=N_THROUGHPUT)
                base.append(result["rate"])
    rows = [
        ["streambind StreamClient (chunks kept in stream.chunks)", f"{median(ours):,.0f}"],
        ["httpx-sse alone (aiter_sse + json.loads into a list)", f"{median(theirs):,.0f}"],
    ]
    if base:
        label = "baseline StreamClient, against the baseline server"
        rows.insert(1, [label, f"{median(base):,.0f}"])
    return table(
        f"Client: consuming the {N_THROUGHPUT:,}-message firehose, JSON-parsing every message",
        ["client", "messages/s (median)"],
        rows,
    ) + (f"\nstreambind ÷ baseline: {versus(median(ours), median(base), True)}.\n" if base else "")


def bench_fanout(reps: int) -> str:
    rows = []
    installs = _pythons()
    with contextlib.ExitStack() as servers:
        urls = [servers.enter_context(server("streambind", python))[0] for _, python in installs]
        for followers in (1, 10, 100, 1000):
            n = min(100_000, 2_000_000 // followers)
            results: list[list[dict[str, Any]]] = [[] for _ in installs]
            for rep in range(reps):  # in turns with the baseline, as in bench_throughput
                for runs, url in zip(results, urls, strict=True):
                    key = f"f{followers}-{rep}"
                    runs.append(client("fanout", url=url, followers=followers, n=n, key=key))
            rates = [median([r["aggregate_rate"] for r in runs]) for runs in results]
            for (label, _), runs, rate in zip(installs, results, rates, strict=True):
                incomplete = max(r["incomplete"] for r in runs)
                row = [
                    f"{followers:,}" + ("" if label == "streambind" else f" ({label})"),
                    f"{n:,}",
                    f"{rate:,.0f}",
                    "every follower got every message" if not incomplete else f"{incomplete} short",
                ]
                if BASELINE_PYTHON:
                    row.append(versus(rates[0], rate, True) if label != "streambind" else "—")
                rows.append(row)
    header = ["followers", "messages each", "aggregate messages/s (median)", "delivery"]
    return table(
        "Fan-out: one firehose run, many followers",
        header + (["streambind ÷ baseline"] if BASELINE_PYTHON else []),
        rows,
    )


def _scale_once(python: str, streams: int, seconds: float) -> dict[str, Any]:
    """One scale run against a server of ``python``'s install; its client is this one's."""
    from clients import rss_bytes

    with server("streambind", python) as (url, pid):
        idle = rss_bytes(pid)
        process = subprocess.Popen(
            [
                PYTHON, str(HERE / "clients.py"), "scale",
                json.dumps({"url": url, "streams": streams, "seconds": seconds, "per_second": 5}),
            ],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(HERE)},
            preexec_fn=_on_cpu(1),
        )  # fmt: skip
        peak = idle
        while process.poll() is None:
            peak = max(peak, rss_bytes(pid))
            time.sleep(0.25)
        result = json.loads(process.stdout.read().strip().splitlines()[-1])  # type: ignore[union-attr]
    return {**result, "idle": idle, "peak": peak, "per_stream_kb": (peak - idle) / streams / 1024}


def bench_scale(streams: int = 2000, seconds: float = 20.0, runs: int = 3) -> str:
    # Each run takes `seconds`, and one run's p99 swings several-fold with the machine
    # (3.6 to 36 ms for the same code): the median of `runs`, the installs in turns.
    installs = _pythons()
    series: list[list[dict[str, Any]]] = [[] for _ in installs]
    for _ in range(runs):
        for results, (_, python) in zip(series, installs, strict=True):
            results.append(_scale_once(python, streams, seconds))
    results = [
        {
            "delivered": min(r["delivered"] for r in rs),
            "expected": rs[0]["expected"],
            **{k: median([r[k] for r in rs]) for k in ("p99_ms", "per_stream_kb", "peak", "idle")},
        }
        for rs in series
    ]
    rows = [
        [
            f"{r['delivered']:,} of {r['expected']:,}",
            f"{r['p99_ms']:.1f}",
            f"{r['per_stream_kb']:.1f} KB (peak {r['peak'] / 2**20:.0f} MB, "
            f"idle {r['idle'] / 2**20:.0f} MB)",
        ]
        for r in results
    ]
    header = ["delivered", "p99 latency (ms)", "server RSS per open stream"]
    note = ""
    if BASELINE_PYTHON:
        header.insert(0, "server")
        for (label, _), row in zip(_pythons(), rows, strict=True):
            row.insert(0, label)
        ours, base = results
        note = (
            f"\nstreambind ÷ baseline: p99 {versus(ours['p99_ms'], base['p99_ms'], False)}, "
            f"RSS per stream {versus(ours['per_stream_kb'], base['per_stream_kb'], False)}.\n"
        )
    return (
        table(
            f"Scale: {streams:,} concurrent streams at 5 messages/s for {seconds:.0f} s "
            f"(median of {runs} runs each, in turns)",
            header,
            rows,
        )
        + note
    )


def _raise_descriptor_limit(wanted: int) -> int:
    """Raise this process's open-file limit (its children inherit it) toward ``wanted``."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, wanted))
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def _many_streams_once(
    python: str, streams: int, per_second: float, seconds: float, sigterm: bool
) -> dict[str, Any]:
    """One server, ``streams`` streams: the client's figures, the server's RSS per stream,
    and with ``sigterm`` how long SIGTERM took to end the process, every stream open."""
    from clients import rss_bytes

    options = {"max-runs": str(streams + 100), "max-connections": str(streams + 500)}
    with server("streambind", python, **options) as (url, pid):
        idle = rss_bytes(pid)
        process = subprocess.Popen(
            [
                PYTHON, str(HERE / "clients.py"), "many-streams",
                json.dumps({"url": url, "streams": streams, "per_second": per_second,
                            "seconds": seconds, "sigterm": sigterm}),
            ],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(HERE)},
            preexec_fn=_on_cpu(1),
        )  # fmt: skip
        assert process.stdout is not None
        peak = idle
        stopped_in = None
        if sigterm:
            assert process.stdout.readline().strip() == "READY"
            peak = rss_bytes(pid)
            start = time.perf_counter()
            os.kill(pid, signal.SIGTERM)
            while _alive(pid):
                time.sleep(0.01)
            stopped_in = time.perf_counter() - start
        while process.poll() is None:
            peak = max(peak, rss_bytes(pid)) if _alive(pid) else peak
            time.sleep(0.25)
        result = json.loads(process.stdout.read().strip().splitlines()[-1])
    return {
        **result,
        "idle": idle,
        "peak": peak,
        "per_stream_kb": (peak - idle) / streams / 1024,
        "sigterm_s": stopped_in,
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as ended.
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"
    return True


def bench_scale_10k(streams: int = 10_000, seconds: float = 20.0) -> str:
    """Ten thousand streams on one process: memory, delivery and latency at 1 and 5
    messages a second, runs ending together, and SIGTERM with every stream open."""
    limit = _raise_descriptor_limit(2 * streams + 1000)
    rows = []
    for per_second in (1.0, 5.0):
        r = _many_streams_once(PYTHON, streams, per_second, seconds, sigterm=False)
        rows.append([
            f"{per_second:g}/s for {seconds:g} s",
            f"{r['delivered']:,} of {r['expected']:,}",
            f"{r['p99_ms']:.1f}",
            f"{r['per_stream_kb']:.1f} KB",
            f"{r['terminal']:,} within {r['ends_spread_s']:.2f} s",
        ])  # fmt: skip
    stop = _many_streams_once(PYTHON, streams, 1.0, 600.0, sigterm=True)
    rows.append([
        "SIGTERM mid-run (1/s)",
        f"{stop['delivered']:,} before it",
        f"{stop['p99_ms']:.1f}",
        f"{stop['per_stream_kb']:.1f} KB",
        f"{stop['terminal']:,} of {streams:,}; exit after {stop['sigterm_s']:.2f} s",
    ])  # fmt: skip
    return table(
        f"{streams:,} streams on one process ({LOOP or 'default'} loop; open-file limit "
        f"raised to {limit:,} for the server and the client)",
        ["streams sending", "delivered", "p99 latency (ms)", "server RSS per stream",
         "terminal events"],
        rows,
    )  # fmt: skip


def bench_tui(reps: int) -> str:
    with server("streambind") as (url, _):
        results = [client("tui", url=url, n=N_THROUGHPUT) for _ in range(reps)]
        memory = client("chunks-memory", url=url, n=1_000_000)
    assert all(r["status"] == "succeeded" for r in results), results
    return table(
        f"The TUI under a {N_THROUGHPUT:,}-message firehose (headless run_test)",
        ["measure", "median"],
        [
            [
                "event-loop stall while streaming, p99",
                f"{median([r['stall_p99_ms'] for r in results]):.1f} ms",
            ],
            [
                "event-loop stall while streaming, worst",
                f"{median([r['stall_max_ms'] for r in results]):.1f} ms",
            ],
            [
                "run at 100% on its line, after the terminal event",
                f"{median([r['card_done_after_end_s'] for r in results]):.3f} s",
            ],
            [
                "a key (Enter on a run) to the frame that shows it, idle",
                f"{median([r['key_idle_ms'] for r in results]):.1f} ms",
            ],
            [
                "the same key while the firehose streams",
                f"{median([r['key_streaming_ms'] for r in results]):.1f} ms",
            ],
            [
                "stream.chunks of 1,000,000 small messages (client RSS)",
                f"{memory['rss_mb']:.0f} MB",
            ],
        ],
    )


@contextlib.contextmanager
def mcp_bridge(url: str) -> Iterator[str]:
    """``streambind mcp --url URL --http`` on the clients' core; yields its MCP URL."""
    process = subprocess.Popen(
        [PYTHON, "-m", "streambind.app.cli", "mcp", "--url", url, "--http", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        preexec_fn=_on_cpu(1),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        if not line.startswith("streambind mcp serving on "):
            raise RuntimeError(f"the MCP bridge did not start: {line!r}")
        yield line.split()[-1]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)


def bench_mcp(reps: int) -> str:
    """The firehose as an MCP tool, through ``streambind mcp``, with a progress callback."""
    n = N_THROUGHPUT
    results: dict[str, list[dict[str, Any]]] = {"stdio": [], "http": []}
    with server("streambind") as (url, _), mcp_bridge(url) as mcp_url:
        for _ in range(reps):
            results["stdio"].append(client("mcp", url=url, n=n, transport="stdio"))
            results["http"].append(client("mcp", url=mcp_url, n=n, transport="http"))
        direct = median([client("stream-client", url=url, n=n)["rate"] for _ in range(reps)])
    rows = []
    for transport, runs in results.items():
        assert all(r["never_back"] and r["last"] == [n, n] for r in runs), runs
        rows.append(
            [
                f"over {transport}",
                f"{median([r['rate'] for r in runs]):,.0f}",
                f"{median([r['notifications'] for r in runs]):,.0f}",
                f"{median([r['joined'] for r in runs]):,.0f}",
                f"{median([n / r['seconds'] for r in runs]):,.0f}",
                f"{median([r['max_gap_ms'] for r in runs]):.1f} ms",
                f"{median([r['result_after_last_ms'] for r in runs]):.1f} ms",
            ]
        )
    rows.append(["StreamClient alone, no MCP (the bridge's own consumer)", "—", "—", "—",
                 f"{direct:,.0f}", "—", "—"])  # fmt: skip
    note = (
        "\nEvery run's progress never went back and ended at the total "
        f"({n:,} of {n:,}). The bridge sends one notification per message while its "
        "sender keeps up, and one for all that wait once more than 256 do (the newest "
        "progress, text pieces joined): the longest silence is how stale a host's progress "
        "could be. The bridge runs on the clients' core (for stdio, spawned by the client).\n"
    )
    return (
        table(
            f"MCP: the {n:,}-message firehose called through `streambind mcp`, "
            "with a progress callback",
            [
                "bridge",
                "notifications/s (median)",
                "notifications",
                "messages joined into a later one",
                "messages/s end to end",
                "longest silence",
                "result after the last progress",
            ],
            rows,
        )
        + note
    )


# Start-up as an install has it: Python loads the modules' cached bytecode. With
# PYTHONDONTWRITEBYTECODE set (as on some machines) nothing would be cached, and every start
# would compile streambind's own source again, a cost that grows with the lines, not with
# what runs, and that no installed copy pays.
_INSTALLED_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _help_time(python: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [python, "-m", "streambind.app.cli", "--help"], capture_output=True, env=_INSTALLED_ENV
    )
    return time.perf_counter() - start


def _healthz_time(python: str) -> float:
    import urllib.request

    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        start = time.perf_counter()
        process = subprocess.Popen(
            [python, "-m", "streambind.app.cli", "serve", "--port", str(port),
             "--data-dir", data_dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_INSTALLED_ENV,
        )  # fmt: skip
        healthz_url = f"http://127.0.0.1:{port}/healthz"
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(healthz_url, timeout=1):
                break
            time.sleep(0.005)
        seconds = time.perf_counter() - start
        process.send_signal(signal.SIGTERM)
        process.wait(10)
    return seconds


def bench_startup(reps: int) -> str:
    installs = _pythons()
    helps: list[list[float]] = [[] for _ in installs]
    healthz: list[list[float]] = [[] for _ in installs]
    for _, python in installs:
        _healthz_time(python)  # untimed: writes the bytecode cache an install would have
    # A start takes a quarter of a second, and five of them tell a 5% difference from the
    # machine's noise poorly: at least 21 each.
    count = max(reps, 21)
    for times, measure in ((helps, _help_time), (healthz, _healthz_time)):
        for _ in range(count):  # in turns with the baseline, as in bench_throughput
            for figures, (_, python) in zip(times, installs, strict=True):
                figures.append(measure(python))
    measures = ["`streambind --help`", "`streambind serve` until `/healthz` answers"]
    rows = [
        [measure, f"{median(times[0]):.3f} s"]
        for measure, times in zip(measures, (helps, healthz), strict=True)
    ]
    header = ["measure", "median"]
    if BASELINE_PYTHON:
        header += ["baseline", "streambind ÷ baseline"]
        for row, (ours, base) in zip(rows, (helps, healthz), strict=True):
            row += [f"{median(base):.3f} s", versus(median(ours), median(base), False)]
    return table(f"Start-up ({count} starts each, in turns)", header, rows)


@contextlib.contextmanager
def _redis_for_bench() -> Iterator[tuple[str, str]]:
    """``$STREAMBIND_BENCH_REDIS`` if set; else a private redis-server on a free port (a
    Redis shared with other work would time that work too), like the servers not pinned to
    a core; else the Redis at 127.0.0.1:6379."""
    import shutil

    import redis

    url = os.environ.get("STREAMBIND_BENCH_REDIS")
    private = None
    if url is None and shutil.which("redis-server"):
        port = free_port()
        private = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}"
        wait_until_listening(port, private)
    url = url or "redis://127.0.0.1:6379"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()  # fails loudly if absent
        yield url, "a private redis-server, not pinned" if private else _redact(url)
    finally:
        if private is not None:
            private.terminate()
            private.wait()


def _redact(url: str) -> str:
    return url.split("@", 1)[-1] if "@" in url else url


def _redis_memory(url: str, prefix: str) -> tuple[int, int, int]:
    """Bytes the keys under ``prefix`` take (MEMORY USAGE), their count, and events kept."""
    import redis

    r = redis.Redis.from_url(url)
    total = events = 0
    keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
    for key in keys:
        total += r.memory_usage(key, samples=0) or 0
        if key.endswith(b":events"):
            # An entry holds several events: from the oldest entry's first to the newest.
            oldest, newest = r.xrange(key, count=1), r.xrevrange(key, count=1)
            if oldest:
                (first_id, fields), (last_id, _) = oldest[0], newest[0]
                first = int(fields.get(b"first") or first_id.split(b"-")[0])
                events += int(last_id.split(b"-")[0]) - first + 1
    return total, len(keys), events


def _delete_prefix(url: str, prefix: str) -> None:
    import redis

    r = redis.Redis.from_url(url)
    keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
    for i in range(0, len(keys), 1000):
        r.unlink(*keys[i : i + 1000])


def bench_redis(reps: int) -> str:
    """Three nodes on one Redis: a firehose followed on another node, a sparse stream's
    delays on another node, and 1,000 followers spread over three nodes."""
    import secrets

    import redis

    prefix = f"sbbench:{secrets.token_hex(4)}:"
    with contextlib.ExitStack() as servers:
        url, which = servers.enter_context(_redis_for_bench())
        r = redis.Redis.from_url(url)
        # Keys go once the nodes have stopped (and before a private Redis does).
        servers.callback(_delete_prefix, url, prefix)
        options = {"redis": url, "redis-prefix": prefix}
        urls = [servers.enter_context(server("streambind", **options))[0] for _ in range(3)]
        with server("aiohttp-sse") as (anchor, _):
            theirs = median(
                [
                    N_THROUGHPUT
                    / client("bytes", url=f"{anchor}/firehose?n={N_THROUGHPUT}")["seconds"]
                    for _ in range(reps)
                ]
            )
        calls_before = _commands(r)
        firehose = [
            client("redis_fanout", urls=urls[:2], followers=1, n=N_THROUGHPUT, key=f"h{i}")
            for i in range(reps)
        ]
        calls = (_commands(r) - calls_before) / (reps * (N_THROUGHPUT + 1))
        memory, keys, kept = _redis_memory(url, prefix)
        sparse = [client("redis_latency", urls=urls[:2], key=f"s{i}") for i in range(3 * reps)]
        fan = [
            client("redis_fanout", urls=urls, followers=1000, n=2000, key=f"f{i}")
            for i in range(reps)
        ]
    from clients import percentile

    pooled = [d for run in sparse for d in run["delays_ms"]]
    ours = median([x["rate"] for x in firehose])
    rows = [
        [
            f"firehose on node A, its follower on node B ({N_THROUGHPUT:,} messages)",
            f"{ours:,.0f} messages/s (median); aiohttp-sse single process: {theirs:,.0f} "
            f"(streambind on Redis is {ours / theirs:.2f}x)",
        ],
        [
            "sparse: 1,000 messages 2 ms apart, followed on another node",
            f"p50 {median([x['p50_ms'] for x in sparse]):.3f} ms, p99 "
            f"{median([x['p99_ms'] for x in sparse]):.3f} ms (median of {len(sparse)}), "
            f"p99 of all {percentile(pooled, 99):.3f} ms",
        ],
        [
            "1,000 followers over 3 nodes, one run of 2,000 messages",
            f"{median([x['aggregate_rate'] for x in fan]):,.0f} messages/s aggregate; "
            + (
                "every follower got every message"
                if not max(x["incomplete"] for x in fan)
                else f"{max(x['incomplete'] for x in fan)} short"
            ),
        ],
        [
            "Redis memory after the firehose runs",
            f"{memory / max(1, reps):,.0f} bytes per run of {N_THROUGHPUT:,} messages "
            f"({keys} keys; {kept:,} events kept, {1000 * memory / max(1, kept):,.0f} bytes "
            "per 1,000 kept events)",
        ],
        ["Redis commands per event (firehose)", f"{calls:.3f}"],
    ]
    return table(
        f"Redis store: three nodes on one Redis ({which})", ["measurement", "figure"], rows
    )


def _commands(r: Any) -> int:
    return int(r.info("stats")["total_commands_processed"])


BENCHES = {
    "redis": bench_redis,
    "throughput": bench_throughput,
    "latency": bench_latency,
    "client": bench_client,
    "fanout": bench_fanout,
    # A scale run takes 20 s a server: half as many runs as other figures' repetitions.
    "scale": lambda reps: bench_scale(runs=max(3, reps // 2)),
    "scale10k": lambda reps: bench_scale_10k(),
    "tui": bench_tui,
    "mcp": bench_mcp,
    "startup": bench_startup,
    "database": lambda reps: _bench_database(reps),
    "browser": lambda reps: _bench_browser(reps),
}


def _bench_browser(reps: int) -> str:
    from page_frames import bench_browser  # tests/bench/page_frames.py

    return bench_browser(reps)


def _bench_database(reps: int) -> str:
    from database import bench_database  # tests/bench/database.py

    return bench_database(reps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions per figure")
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated benches")
    parser.add_argument(
        "--baseline", help="the Python of another streambind install, measured side by side"
    )
    parser.add_argument(
        "--loops",
        default="asyncio",
        help="comma-separated event loops the servers run each bench on (asyncio, uvloop), "
        "one after the other, a baseline's too when its serve has --loop (default: asyncio)",
    )
    args = parser.parse_args()
    global BASELINE_PYTHON, LOOP
    BASELINE_PYTHON = args.baseline
    sys.path.insert(0, str(HERE))
    pinning = "servers on core 0, clients on core 1" if _PINNED else "no core pinning"
    print(
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}; "
        f"{args.reps} repetitions per figure; {pinning}.\n",
        flush=True,
    )
    for loop in args.loops.split(","):
        LOOP = loop
        print(f"## Servers on {loop}'s event loop\n", flush=True)
        for name in args.only.split(","):
            print(BENCHES[name](args.reps), flush=True)


if __name__ == "__main__":
    main()
