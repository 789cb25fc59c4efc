"""A workflows package of your own: the SHA-256 of every file in a folder, with live progress.

streambind serve --workflows examples.checksums
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from streambind.server import InvalidParam, Param, ResourceContext, RunContext, endpoint, resource


@dataclass(frozen=True)
class Hashing:
    """Threads shared by every run: however many runs hash at once, so many files at most."""

    pool: ThreadPoolExecutor
    workers: int
    root: Path


async def hashing_health(hashing: Hashing) -> dict[str, Any]:
    return {"ok": True, "workers": hashing.workers}


@resource("hashing", health=hashing_health)
async def hashing(context: ResourceContext) -> AsyncIterator[Hashing]:
    """Opened before the first run, closed after the last (``GET /healthz`` reports it)."""
    workers = 2
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sha256")
    try:
        yield Hashing(pool, workers, context.config.data_dir.resolve())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@endpoint(
    "checksums",
    title="Checksum a folder",
    description="The SHA-256 of every file in a folder of the server's data directory.",
)
async def checksums(
    ctx: RunContext,
    folder: Annotated[str, Param("A folder in the data directory", max_length=255)] = ".",
) -> dict[str, Any]:
    shared = ctx.resource(hashing)  # typed Hashing
    root = (shared.root / folder).resolve()
    if not root.is_relative_to(shared.root) or not root.is_dir():
        # Before the first send, the caller gets a 400 naming the field.
        raise InvalidParam("folder", f"no folder named {folder!r} in the data directory")
    files = sorted(path for path in root.rglob("*") if path.is_file())
    loop = asyncio.get_running_loop()
    digests: dict[str, str] = {}
    for done, path in enumerate(files, start=1):
        name = path.relative_to(root).as_posix()
        # Reading a file blocks: in the shared threads, so other runs' streams keep flowing.
        digests[name] = await loop.run_in_executor(shared.pool, sha256_of, path)
        await ctx.send({"step": "hash", "done": done, "total": len(files), "file": name})
    return {"folder": folder, "files": len(files), "sha256": digests}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
