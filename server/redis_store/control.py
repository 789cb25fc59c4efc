"""The control channel: one node asks another to cancel a run it executes, or tells it
that nobody follows that run here any more."""

from __future__ import annotations

import contextlib
import json
import logging

from redis.exceptions import RedisError

from ..run import ExecutedRun
from ..store import RunHost
from .connection import Backoff, Connection
from .keys import Keys

__all__ = ["ControlChannel"]

logger = logging.getLogger("streambind.server.redis")

#: How long one wait for a message lasts (so a lost connection is noticed).
_LISTEN_WAIT_S = 1.0


class ControlChannel:
    def __init__(self, connection: Connection, keys: Keys) -> None:
        self._connection = connection
        self._keys = keys
        #: The node's run manager (``bind``), which executes what is asked of it.
        self.host: RunHost | None = None

    async def publish(self, op: str, run_id: str) -> None:
        """Ask the node that executes ``run_id``: ``cancel`` it, or it is ``unfollowed``."""
        with contextlib.suppress(RedisError, OSError):
            await self._connection.redis.publish(
                self._keys.control, json.dumps({"op": op, "run": run_id})
            )

    async def listen(self) -> None:
        """Obey what other nodes ask, for as long as the store is open."""
        backoff = Backoff()
        while True:
            pubsub = self._connection.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._keys.control)
                backoff.reset()
                while True:
                    message = await pubsub.get_message(timeout=_LISTEN_WAIT_S)
                    if message is not None:
                        self._obey(message["data"])
            except (RedisError, OSError) as exc:
                self._connection.lost(exc)
                await backoff.wait()
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    def _obey(self, data: bytes) -> None:
        try:
            message = json.loads(data)
            op, run_id = message["op"], message["run"]
        except (ValueError, KeyError, TypeError):
            return
        host = self.host
        run = host.get(run_id) if host is not None and isinstance(run_id, str) else None
        if host is None or not isinstance(run, ExecutedRun):
            return
        if op == "cancel":
            logger.info("run %s: cancelled from another node", run_id)
            host.cancel(run)
        elif op == "unfollowed":
            host.unfollowed(run)
