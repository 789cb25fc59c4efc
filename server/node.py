"""This process's name among the nodes that share a database or a run store."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable

__all__ = ["PROCESS_ID", "NodeAlive"]

#: Host, pid, and a random part, so that a later process that gets the same pid is
#: another process. Staging tables and the Redis run store name their owner by it.
PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

#: Asked at start-up about the process that owns a leftover staging table:
#: True (it runs: keep the table), False (it is surely gone: drop it) or None (cannot
#: tell: drop the table only if it is older than the longest allowed import). The run
#: store's heartbeats plug in here; without one every answer is None.
NodeAlive = Callable[[str], bool | None]
