"""Which nodes are alive: each node's heartbeat, and the end (``node_lost``) of the runs
of a node whose heartbeat lapsed."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError, WatchError

from ..config import ServerConfig
from ..framing import ERROR, encode_event, failed_data
from ..node import PROCESS_ID
from .connection import Connection
from .keys import Keys
from .logs import FRAMES, TERMINAL, entry_seq

__all__ = ["HEARTBEAT_TTL_S", "Liveness"]

logger = logging.getLogger("streambind.server.redis")

#: A node whose heartbeat is older than this is dead; it refreshes it every second.
HEARTBEAT_TTL_S = 3
HEARTBEAT_EVERY_S = 1.0


class Liveness:
    def __init__(self, connection: Connection, keys: Keys, config: ServerConfig, node: str) -> None:
        self._connection = connection
        self._keys = keys
        self._config = config
        self._node = node
        self._beater: threading.Thread | None = None
        #: Known once at start-up, for node_alive: every node that ever joined, and the
        #: processes heartbeating then.
        self._known_nodes: set[str] = set()
        self._live_processes: set[str] = set()

    async def join(self) -> None:
        """Beat once, and learn which nodes and processes there are."""
        pipe = self._connection.redis.pipeline(transaction=False)
        self._beat_into(pipe)
        await pipe.execute()
        members = await self._connection.redis.smembers(self._keys.nodes)
        self._known_nodes = {node.decode() for node in members}
        alive = set()
        every = self._keys.process("")
        async for key in self._connection.redis.scan_iter(
            match=self._keys.every_process, count=500
        ):
            alive.add(key.decode()[len(every) :])
        self._live_processes = alive

    def start_heartbeat(self, beaten: Callable[[bool], None]) -> None:
        """Refresh the heartbeat every second, in a thread of its own. ``beaten`` is called
        after each beat that reached Redis, with True if Redis had lost the node's own
        entry in ``P nodes``: it restarted empty since the last beat."""
        self._beater = threading.Thread(
            target=self._heartbeat, args=(beaten,), name="redis heartbeat", daemon=True
        )
        self._beater.start()

    def stop_heartbeat(self) -> None:
        """Stop beating (the store is closing), waiting for the thread a bounded time."""
        self._connection.stopping.set()
        if self._beater is not None:
            self._beater.join(2 * HEARTBEAT_EVERY_S + 1)

    def _beat_into(self, pipe: Any) -> None:
        pipe.set(self._keys.node(self._node), "1", ex=HEARTBEAT_TTL_S)
        pipe.set(self._keys.process(PROCESS_ID), "1", ex=HEARTBEAT_TTL_S)
        pipe.sadd(self._keys.nodes, self._node)

    def _heartbeat(self, beaten: Callable[[bool], None]) -> None:
        # A thread, not a task: a node whose event loop is busy (a thousand streams, a
        # firehose) is alive, and must not be taken for dead because a coroutine's turn
        # came late.
        import redis

        client = redis.Redis.from_url(
            self._connection.url,
            socket_connect_timeout=HEARTBEAT_EVERY_S,
            socket_timeout=HEARTBEAT_EVERY_S,
        )
        try:
            while not self._connection.stopping.wait(HEARTBEAT_EVERY_S):
                try:
                    pipe = client.pipeline(transaction=False)
                    self._beat_into(pipe)
                    *_, added = pipe.execute()
                    beaten(bool(added))
                except (RedisError, OSError) as exc:
                    self._connection.lost(exc)
        finally:
            client.close()

    async def end_runs_of_dead_nodes(self) -> None:
        redis = self._connection.redis
        running = [i.decode() for i in await redis.smembers(self._keys.running)]
        if not running:
            return
        pipe = redis.pipeline(transaction=False)
        for run_id in running:
            pipe.hget(self._keys.run(run_id), "node")
        nodes = [n.decode() if n else None for n in await pipe.execute()]
        others = {n for n in nodes if n and n != self._node}
        alive: dict[str, bool] = {}
        for node in others:
            alive[node] = bool(await redis.exists(self._keys.node(node)))
        for run_id, node in zip(running, nodes, strict=True):
            if node is None:
                await redis.srem(self._keys.running, run_id)  # its record expired
            elif node != self._node and not alive[node]:
                await self.end_lost(run_id, node)

    async def end_lost(self, run_id: str, node: str) -> bool:
        """End a dead node's running run with a terminal ``node_lost`` error, exactly once.

        Several nodes may notice at once: the run's record is WATCHed, so only the
        first transaction that sees it running appends the event. True if this one did.
        """
        key, events = self._keys.run(run_id), self._keys.events(run_id)
        async with self._connection.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key, events)
                status, last_seq = await pipe.hmget(key, "status", "last_seq")
                if status != b"running":
                    return False
                newest = await pipe.xrevrange(events, count=1)
                seq = max(int(last_seq or 0), entry_seq(newest[0][0]) if newest else 0) + 1
                error = {
                    "type": "node_lost",
                    "message": f"the node executing this run ({node}) stopped answering",
                }
                frame = encode_event(seq, ERROR, failed_data(error))
                keep = max(1, int(self._config.keep_seconds))
                pipe.multi()
                pipe.xadd(events, {FRAMES: frame, TERMINAL: b"1"}, id=f"{seq}-0")
                pipe.hset(
                    key,
                    mapping={
                        "status": "failed",
                        "error": json.dumps(error),
                        "finished": repr(time.time()),
                        "last_seq": seq,
                    },
                )
                pipe.srem(self._keys.running, run_id)
                pipe.expire(key, keep)
                pipe.expire(events, keep)
                await pipe.execute()
            except WatchError:
                return False
        logger.warning("run %s: its node %s is gone; ended it with node_lost", run_id, node)
        return True

    def node_alive(self, process: str) -> bool | None:
        """Whether the process that owns a staging table still runs, as far as Redis says:
        a process heartbeating now is alive; otherwise it is not (its heartbeat lapsed,
        or it never used this store — then only the table's age can tell: None)."""
        if process in self._live_processes:
            return True
        if any(node.startswith(f"{process}#") for node in self._known_nodes):
            return False
        return None
