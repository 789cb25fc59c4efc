"""The examples a user may paste, run: the workflow example, the quick start, the command
line's and the client's examples, and embedding the server, each against a real server (the
documented address replaced by the test server's). docblocks.py says how blocks are named;
the HTTP page's examples are in test_http_docs.py, deployment's in test_deploy_docs.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import socket
import sys
from pathlib import Path

import httpx
import pytest
from deployment import serving_url
from docblocks import DOCUMENTED_SERVER, ROOT, commands, example, output, streambind_arguments
from polling import wait_for

from streambind.server import RunningServer

EXAMPLE = ROOT / "examples" / "checksums" / "__init__.py"
BIN = Path(sys.executable).parent


async def _cli(*args: str, cwd: Path = ROOT) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streambind.app.cli", *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _here(arguments: list[str] | None, url: str) -> list[str]:
    """A documented command's arguments, naming ``url`` where the page names its server."""
    assert arguments is not None
    return [url if argument == DOCUMENTED_SERVER else argument for argument in arguments]


async def _python(script: str, cwd: Path) -> asyncio.subprocess.Process:
    """``script`` run by this Python in ``cwd``, with the repository importable (examples)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


@pytest.mark.parametrize("name", ["quick-start", "getting-started-quick-start"])
def test_the_quick_start_is_the_two_commands_ci_runs(name: str) -> None:
    assert example(name).splitlines() == [
        'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/streambind',
        ".venv/bin/python -m pytest",
    ]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m venv .venv\n" in ci
    assert 'pip install --quiet -e ".[test]"' in ci
    assert "\n.venv/bin/python -m pytest\n" in ci
    assert (BIN / "streambind").exists()


@pytest.mark.parametrize("name", ["readme-checksums", "workflows-checksums"])
def test_the_workflow_example_is_the_example_file_as_it_stands(name: str) -> None:
    assert example(name) == EXAMPLE.read_text()


@pytest.mark.parametrize("name", ["readme-checksums-serve", "workflows-checksums-serve"])
async def test_the_workflow_example_serves_runs_and_refuses_a_bad_folder(
    name: str, tmp_path: Path
) -> None:
    serve, call = [streambind_arguments(c) for c in commands(example(name))]
    assert serve == ["serve", "--workflows", "examples.checksums"]
    assert call is not None and call[:2] == ["call", "checksums"]
    (tmp_path / "notes.txt").write_text("hello\n")
    # As documented, from the repository's root; on a free port, in a data directory of its own.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streambind.app.cli", *serve, "--port", "0",
        "--data-dir", str(tmp_path), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": ""},
    )  # fmt: skip
    try:
        _, url = await serving_url(process)
        async with httpx.AsyncClient(base_url=url) as client:
            names = [e["name"] for e in (await client.get("/api/endpoints")).json()["endpoints"]]
            health = (await client.get("/healthz")).json()
        assert names == ["checksums"]
        assert health["hashing"] == {"ok": True, "workers": 2}
        code, out, err = await _cli(*_here(call, url), "--json")
        assert code == 0, err
        lines = [json.loads(line) for line in out.splitlines()]
        result = lines[-1]["result"]
        assert result["sha256"] == {"notes.txt": hashlib.sha256(b"hello\n").hexdigest()}
        assert lines[0]["chunk"] == {"step": "hash", "done": 1, "total": 1, "file": "notes.txt"}
        code, _, err = await _cli("call", "checksums", "-p", "folder=../..", "--url", url)
        assert code == 2
        assert "folder: no folder named '../..' in the data directory" in err
    finally:
        process.terminate()
        await process.wait()


async def test_the_call_example_prints_what_call_prints(server: RunningServer) -> None:
    block = example("call-import-json")
    [command] = commands(block, "$ ")
    assert command == "streambind call import -p rows=100 --json | tail -2"
    shown = [line for line in block.splitlines() if not line.startswith("$ ")]
    code, out, err = await _cli("call", "import", "-p", "rows=100", "--json", "--url", server.url)
    assert code == 0, err
    last_two = out.splitlines()[-2:]
    assert last_two[0] == shown[0]
    final, documented = json.loads(last_two[1]), shown[1]
    assert f'"chunks": {final["chunks"]}' in documented
    assert f'"status": "{final["status"]}"' in documented


async def test_the_runs_and_follow_example_lists_and_follows(server: RunningServer) -> None:
    block = example("runs-follow")
    runs, follow = commands(block, "$ ")
    assert runs == f"streambind runs --url {DOCUMENTED_SERVER}"
    documented_id = follow.split()[2]
    assert follow == f"streambind follow {documented_id} --url {DOCUMENTED_SERVER}"
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        answer = await client.post("/api/endpoints/import", json={"rows": 20, "delay_ms": 0})
    run_id = answer.headers["x-run-id"]
    code, out, err = await _cli(*_here(streambind_arguments(runs), server.url))
    assert code == 0, err
    header, *rows = out.splitlines()
    shown_header, *shown_rows = [line for line in block.splitlines() if not line.startswith("$")]
    assert header.split() == shown_header.split()
    assert rows[0].split()[:3] == [run_id, "import", "succeeded"]
    for row in shown_rows:
        assert re.fullmatch(r"[0-9a-f]{16}", row.split()[0])
    code, out, err = await _cli("follow", run_id, "--url", server.url)
    assert code == 0, err


async def test_the_getting_started_serve_example_says_what_serve_says(tmp_path: Path) -> None:
    block = example("getting-started-serve")
    [command] = commands(block, "$ ")
    assert streambind_arguments(command) == ["serve"]
    said_url, said_dir = [line for line in block.splitlines() if not line.startswith("$ ")]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streambind.app.cli", "serve", "--port", "0",
        "--data-dir", str(tmp_path), stdout=asyncio.subprocess.PIPE,
        # The loop a user's install picks, whichever loop this suite runs on.
        env={**os.environ, "STREAMBIND_LOOP": "auto"},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().rstrip("\n")
        second = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().rstrip("\n")
    finally:
        process.terminate()
        await process.wait()
    assert re.sub(r":\d+ ", ":8787 ", first, count=1) == said_url
    assert second == f"data directory: {tmp_path}"
    assert said_dir.startswith("data directory: ")


def test_the_development_commands_name_what_exists() -> None:
    lines = commands(example("development"))
    ci = (ROOT / ".ci" / "run").read_text()
    assert lines[0] == ".venv/bin/ruff check . && .venv/bin/ruff format --check ."
    for part in [*lines[0].split(" && "), lines[1]]:
        assert part in ci, part
    for line in lines:
        program, *rest = line.split(" && ")[0].split()
        assert (BIN / Path(program).name).exists(), program
        for word in rest:
            if word.endswith(".py"):
                assert (ROOT / word).exists(), word
    assert any("--snapshot-update" in line for line in lines)
    assert any(line.startswith(".venv/bin/mkdocs build --strict") for line in lines)


def test_the_bench_commands_name_what_exists() -> None:
    install, run = commands(example("bench-rerun"))
    assert install == '.venv/bin/pip install -e ".[test,bench]"'
    assert "\nbench = [" in (ROOT / "pyproject.toml").read_text()
    assert run == ".venv/bin/python tests/bench/run.py"
    source = (ROOT / "tests" / "bench" / "run.py").read_text()
    for option in ("--reps", "--only", "--baseline"):
        assert f'"{option}"' in source, option


async def test_the_client_example_prints_what_the_page_shows(
    server: RunningServer, tmp_path: Path
) -> None:
    script = example("client-call").replace(DOCUMENTED_SERVER, server.url)
    process = await _python(script, tmp_path)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    assert out.decode() == output("client-call")


async def test_the_start_server_example_serves_and_closes(tmp_path: Path) -> None:
    process = await _python(example("start-server"), tmp_path)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    assert re.fullmatch(r"serving on http://127\.0\.0\.1:\d+\n", out.decode())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_mount_example_serves_under_its_prefix(tmp_path: Path) -> None:
    port = _free_port()
    script = example("mount-in-aiohttp")
    assert "port=8080" in script
    process = await _python(script.replace("port=8080", f"port={port}"), tmp_path)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

            async def healthy() -> bool:
                try:
                    return (await client.get("/jobs/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(healthy, bool, "the host application's /jobs/healthz")
            endpoints = (await client.get("/jobs/api/endpoints")).json()["endpoints"]
            index = (await client.get("/jobs/")).json()
        assert [e["name"] for e in endpoints] == ["checksums"]
        assert index["endpoints"] == "/jobs/api/endpoints"
    finally:
        process.terminate()
        await process.wait()
