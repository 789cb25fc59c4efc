"""This server process's name among the nodes that share a database or a run store."""

from __future__ import annotations

import os
import secrets
import socket

__all__ = ["NODE_ID"]

#: Host, pid, and a random part, so that a later process that gets the same pid is
#: another node. Staging tables and the Redis run store name their owner by it.
NODE_ID = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
