"""The files in ``exports/``: partial ones named for the process writing them, and pruning.

Finished exports are kept for ``keep_exports_seconds`` and at most ``keep_exports`` of them
(the newest); older ones are deleted when the server starts and after each export.
Only files the ``export`` workflow names (``people-<run id>.csv`` or ``.ndjson``) are ever
deleted, never anything else put in the folder.

An export is written to ``<name>.<pid>.partial`` and renamed into place once complete.
A server starting on a data directory deletes only the partial files of processes
that no longer run (a crash), never those of another live server using the same
directory, nor those this process is writing (two servers in one process).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

from .processes import process_alive

__all__ = ["claim", "partial_path", "prune_exports", "release", "remove_abandoned_partials"]

_FINISHED = re.compile(r"people-[0-9a-f]+\.(csv|ndjson)")

# Partial files this process is writing: one named after our pid that is not in
# here was left by an earlier process that happened to have the same pid.
_writing: set[Path] = set()


def partial_path(final: Path) -> Path:
    return final.with_name(f"{final.name}.{os.getpid()}.partial")


def claim(partial: Path) -> None:
    _writing.add(partial.resolve())


def release(partial: Path) -> None:
    _writing.discard(partial.resolve())


def remove_abandoned_partials(folder: Path) -> None:
    """Delete the partial exports of processes that no longer run."""
    for path in folder.glob("*.partial"):
        owner = _owner(path)
        if owner == os.getpid():
            if path.resolve() in _writing:
                continue
        elif owner is not None and process_alive(owner):
            continue
        path.unlink(missing_ok=True)


def _owner(partial: Path) -> int | None:
    """The pid in ``name.<pid>.partial``; None for a name without one (an older layout)."""
    pid = partial.stem.rpartition(".")[2]
    return int(pid) if pid.isdigit() else None


def prune_exports(folder: Path, keep: int, keep_seconds: float) -> list[Path]:
    """Delete finished exports beyond the newest ``keep`` or older than ``keep_seconds``."""
    cutoff = time.time() - keep_seconds
    finished = []
    for path in folder.iterdir():
        if _FINISHED.fullmatch(path.name) and not path.is_symlink():
            with contextlib.suppress(OSError):  # gone meanwhile: nothing to prune
                finished.append((path.stat().st_mtime, path.name, path))
    finished.sort(reverse=True)
    removed = []
    for index, (mtime, _, path) in enumerate(finished):
        if index >= keep or mtime < cutoff:
            with contextlib.suppress(OSError):  # a file we may not delete stays; no harm
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed
