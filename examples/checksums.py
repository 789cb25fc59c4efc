"""A workflows module of your own: the SHA-256 of every file in a folder, with live progress.

Serve it with ``streambind serve --workflows examples.checksums`` from the repository's root.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Annotated, Any

from streambind.server import InvalidParam, Param, RunContext, endpoint


@endpoint(
    "checksums",
    title="Checksum a folder",
    description="The SHA-256 of every file in a folder of the server's data directory.",
)
async def checksums(
    ctx: RunContext,
    folder: Annotated[str, Param("A folder in the data directory", max_length=255)] = "imports",
) -> dict[str, Any]:
    root = (ctx.data_dir / folder).resolve()
    if not root.is_relative_to(ctx.data_dir.resolve()) or not root.is_dir():
        # Before the first send, the caller gets a 400 naming the field.
        raise InvalidParam("folder", f"no folder named {folder!r} in the data directory")
    files = sorted(path for path in root.rglob("*") if path.is_file())
    digests: dict[str, str] = {}
    for done, path in enumerate(files, start=1):
        name = path.relative_to(root).as_posix()
        # Reading a file blocks: in a thread, so other runs' streams keep flowing.
        digests[name] = await asyncio.to_thread(sha256_of, path)
        await ctx.send({"step": "hash", "done": done, "total": len(files), "file": name})
    return {"folder": folder, "files": len(files), "sha256": digests}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
