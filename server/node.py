"""This process's name among the nodes that share a database or a run store."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path

__all__ = ["PID_SPACE", "PROCESS_ID", "NodeAlive", "ended_here"]

#: Host, pid, and a random part, so that a later process that gets the same pid is
#: another process. Staging tables and the Redis run store name their owner by it.
PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

#: Asked at start-up about the process that owns a leftover staging table:
#: True (it runs: keep the table), False (it is surely gone: drop it) or None (cannot
#: tell: drop the table only if it is older than the longest allowed import). The run
#: store's heartbeats plug in here; without one every answer is None.
NodeAlive = Callable[[str], bool | None]


def _pid_space() -> str | None:
    # This boot of this kernel and this pid namespace: where a pid names one process.
    # A container of the same host name has its own; a reboot starts a new one.
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    return f"{boot}/{namespace}"


#: Where this process's pid means this process (None where that cannot be known). A
#: staging table records it beside its owner, so that a later start in the same place
#: can tell, from the pid alone, that its owner is gone.
PID_SPACE = _pid_space()


def ended_here(process: str, pid_space: str | None) -> bool:
    """Whether ``process`` (a ``PROCESS_ID``) surely no longer runs, as this process can
    tell on its own: it ran in this pid space, on this host, and is not this process,
    and its pid is gone, or is now this process's (an earlier process had it)."""
    if pid_space is None or pid_space != PID_SPACE or process == PROCESS_ID:
        return False
    host_and_pid = process.rpartition(":")[0]  # host:pid:random
    host, _, pid_text = host_and_pid.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False
