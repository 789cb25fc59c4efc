"""Where the Redis run store keeps what: every key and channel, named in one place.

``P`` is the prefix (``--redis-prefix``, default ``streambind:``), so that several
deployments can share one Redis:

- ``P run:<id>``          hash: the run's record (endpoint, params, node, status, ...)
- ``P run:<id>:events``   stream: its framed events, several to an entry (``logs``)
- ``P runs``              sorted set: every run id, scored by creation time
- ``P running``           set: the ids of runs still running (for the node-lost sweep)
- ``P node:<node>``       string with a short expiry: the node's heartbeat
- ``P process:<id>``      the same for its process (names the owners of staging tables)
- ``P nodes``             set: every node that ever joined (so a lapsed one is known dead)
- ``P control``           pub/sub channel: cancel requests, and "nobody follows it here"

A finished run's hash and stream expire after ``keep_seconds``; a node that forgets a
run (``keep_runs``) deletes them at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Keys", "is_run_id"]

# The form of the ids RunManager makes (secrets.token_hex(8)). Any other id names no run,
# and is answered without a Redis command: it could otherwise reach keys that are not a
# run's (``<id>:events`` is a stream, not a record) or, where one deployment's prefix
# extends another's, a key of that other deployment.
_RUN_ID = re.compile(r"[0-9a-f]{16}")
# What SCAN's MATCH reads as a pattern rather than as itself.
_GLOB = re.compile(r"([*?\[\]\\])")


def is_run_id(text: str) -> bool:
    """Whether ``text`` has the form of a run id this project makes."""
    return _RUN_ID.fullmatch(text) is not None


@dataclass(frozen=True)
class Keys:
    prefix: str

    def run(self, run_id: str) -> str:
        return f"{self.prefix}run:{run_id}"

    def events(self, run_id: str) -> str:
        return f"{self.prefix}run:{run_id}:events"

    @property
    def index(self) -> str:
        return f"{self.prefix}runs"

    @property
    def running(self) -> str:
        return f"{self.prefix}running"

    @property
    def control(self) -> str:
        return f"{self.prefix}control"

    def node(self, node: str) -> str:
        return f"{self.prefix}node:{node}"

    @property
    def nodes(self) -> str:
        return f"{self.prefix}nodes"

    def process(self, process: str) -> str:
        return f"{self.prefix}process:{process}"

    @property
    def every_process(self) -> str:
        """SCAN's pattern for every process key, the prefix taken literally."""
        return _GLOB.sub(r"\\\1", self.process("")) + "*"
