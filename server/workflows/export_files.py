"""The files in ``exports/``: partial ones named for the process writing them, and pruning.

An export is written to ``<name>.<pid>.partial`` and renamed into place once complete.
A server starting on a data directory deletes only the partial files of processes
that no longer run (a crash), never those of another live server using the same
directory, nor those this process is writing (two servers in one process).
"""

from __future__ import annotations

import os
from pathlib import Path

from .processes import process_alive

__all__ = ["claim", "partial_path", "release", "remove_abandoned_partials"]

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
