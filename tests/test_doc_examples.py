"""The examples a user may paste, run: the README's workflow, its ``call`` output, and the
HTTP page's stream, each compared with what the server really does."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import sys
from pathlib import Path

import httpx
from deployment import serving_url

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
HTTP_API = (ROOT / "docs" / "http-api.md").read_text()
EXAMPLE = ROOT / "examples" / "checksums" / "__init__.py"


def _block_after(text: str, marker: str, language: str) -> str:
    """The first fenced block of ``language`` after ``marker``."""
    start = text.index(marker)
    match = re.compile(rf"```{language}\n(.*?)```", re.DOTALL).search(text, start)
    assert match is not None, f"no {language} block after {marker!r}"
    return match.group(1)


def test_the_readmes_workflow_is_the_example_file_as_it_stands() -> None:
    assert _block_after(README, "## Writing a workflow", "python") == EXAMPLE.read_text()


async def _cli(*args: str, cwd: Path = ROOT) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streambind.app.cli", *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_readmes_workflow_serves_runs_and_refuses_a_bad_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    # As the README says: `streambind serve --workflows examples.checksums` from the root.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streambind.app.cli", "serve", "--port", "0",
        "--data-dir", str(tmp_path), "--workflows", "examples.checksums",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": ""},
    )  # fmt: skip
    try:
        _, url = await serving_url(process)
        async with httpx.AsyncClient(base_url=url) as client:
            names = [e["name"] for e in (await client.get("/api/endpoints")).json()["endpoints"]]
            health = (await client.get("/healthz")).json()
        assert names == ["checksums"]
        assert health["hashing"] == {"ok": True, "workers": 2}
        code, out, err = await _cli("call", "checksums", "--json", "--url", url)
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


async def test_the_readmes_call_example_prints_what_call_prints(server) -> None:  # type: ignore[no-untyped-def]
    marker = "$ streambind call import -p rows=100 --json | tail -2\n"
    after = README[README.index(marker) + len(marker) :]
    shown = after[: after.index("```")].splitlines()
    code, out, err = await _cli("call", "import", "-p", "rows=100", "--json", "--url", server.url)
    assert code == 0, err
    last_two = out.splitlines()[-2:]
    assert last_two[0] == shown[0]
    final, documented = json.loads(last_two[1]), shown[1]
    assert f'"chunks": {final["chunks"]}' in documented
    assert f'"status": "{final["status"]}"' in documented


async def test_the_http_pages_stream_is_what_the_server_sends(server) -> None:  # type: ignore[no-untyped-def]
    block = _block_after(HTTP_API, "## Starting a run", "console")
    command, documented = block.split("\n", 2)[:2], block.split("\n", 2)[2]
    assert '\'{"rows": 40, "delay_ms": 100}\'' in command[1]
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        answer = await client.post("/api/endpoints/import", json={"rows": 40, "delay_ms": 100})
    run_id = answer.headers["x-run-id"]
    sent = answer.text.replace(run_id, "8918f7cad257419d")
    assert sent.strip() == documented.strip()
