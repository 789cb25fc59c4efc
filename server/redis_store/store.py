"""``RedisRunStore``: the pieces of the Redis run store, opened and closed together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets

from redis.exceptions import RedisError

from ..config import ServerConfig
from ..eventlog import EventLog
from ..node import PROCESS_ID
from ..run import ExecutedRun, FollowedRun, RunRecord
from ..store import RunHost, SharedRuns, StoreUnavailable
from .connection import Connection
from .control import ControlChannel
from .following import Following
from .keys import Keys
from .liveness import HEARTBEAT_EVERY_S, Liveness
from .shipping import Shipping

__all__ = ["RedisRunStore"]

logger = logging.getLogger("streambind.server.redis")


class RedisRunStore:
    """Runs shared through Redis; this node executes its own and follows the others'."""

    def __init__(self, config: ServerConfig) -> None:
        assert config.redis_url is not None, "a Redis store needs a Redis URL"
        self.node = f"{PROCESS_ID}#{secrets.token_hex(2)}"
        self.keys = Keys(config.redis_prefix)
        self.connection = Connection(config.redis_url, config.max_runs)
        self.shipping = Shipping(self.connection, self.keys, config, self.node)
        self.control = ControlChannel(self.connection, self.keys)
        self.following = Following(self.connection, self.keys, config, self.node, self.control)
        self.liveness = Liveness(self.connection, self.keys, config, self.node)

    @property
    def shared(self) -> SharedRuns:
        return self

    def bind(self, host: RunHost) -> None:
        """The manager whose runs this store publishes and cancels (``RunManager``)."""
        self.control.host = host
        self.following.host = host
        self.shipping.host = host

    # -- life -------------------------------------------------------------------

    async def open(self) -> None:
        connection = self.connection
        await connection.open()
        try:
            policy = await connection.eviction_policy()
            if policy not in (None, "noeviction"):
                await connection.disconnect()
                # An evicting Redis drops what has no other copy: the runs index (every
                # run vanishes from the other nodes' lists), or, with volatile-*, the
                # heartbeats (live nodes taken for dead) and finished runs before their time.
                raise StoreUnavailable(
                    f"Redis at {connection.redacted_url} evicts keys when it is full "
                    f"(maxmemory-policy {policy}); streambind needs maxmemory-policy "
                    "noeviction, with maxmemory sized as the deployment docs say"
                )
            await self.shipping.load_script()
            await self.liveness.join()
        except (RedisError, OSError) as exc:
            raise await connection.failed_at_start(exc) from None
        self.liveness.start_heartbeat(self._beaten)
        connection.spawn(self._sweep())
        connection.spawn(self.control.listen())
        logger.info(
            "run store: Redis at %s, prefix %r, node %s",
            connection.redacted_url,
            self.keys.prefix,
            self.node,
        )

    async def close(self) -> None:
        await self.following.leave()
        # Writers first: the terminal events of the runs just cancelled reach Redis.
        await self.shipping.flush()
        await asyncio.to_thread(self.liveness.stop_heartbeat)
        await self.connection.end_tasks(*self.shipping.writers(), *self.following.readers())
        if self.connection.redis is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.connection.redis.delete(self.keys.node(self.node))
        await self.connection.disconnect()

    def problem(self) -> str | None:
        return self.connection.problem()

    def node_alive(self, process: str) -> bool | None:
        return self.liveness.node_alive(process)

    def _beaten(self, emptied: bool) -> None:
        """A heartbeat (in its thread) reached Redis: if the node had lost Redis, it
        serves again; if Redis came back empty, the runs it executes are published again."""
        if self.connection.problem() is not None or emptied:
            self.connection.call_soon(self._recovered(emptied))

    async def _recovered(self, emptied: bool) -> None:
        if await self.connection.recovered() or emptied:
            with contextlib.suppress(RedisError, OSError):
                await self.shipping.register_again()

    async def _sweep(self) -> None:
        """Every second: end the runs of nodes whose heartbeat lapsed; forget idle runs."""
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY_S)
            if self.connection.problem() is None:
                try:
                    await self.liveness.end_runs_of_dead_nodes()
                except (RedisError, OSError) as exc:
                    self.connection.lost(exc)
            self.following.drop_idle()

    # -- this node's runs (shipping) -----------------------------------------------

    def new_log(self, run_id: str) -> EventLog:
        return self.shipping.new_log()

    def started(self, run: ExecutedRun) -> None:
        self.shipping.started(run)

    async def announced(self, run: ExecutedRun) -> None:
        await self.shipping.announced(run)

    def finished(self, run: ExecutedRun) -> None:
        self.shipping.finished(run)

    def forgotten(self, run: ExecutedRun) -> None:
        self.connection.spawn(self.shipping.delete(run))

    def released(self, run: ExecutedRun) -> None:
        self.shipping.released(run)

    async def followers_elsewhere(self, run: ExecutedRun) -> int:
        return await self.shipping.followers_elsewhere(run)

    # -- other nodes' runs (following) ----------------------------------------------

    async def find(self, run_id: str, *, outcome: bool = True) -> FollowedRun | None:
        return await self.following.find(run_id, outcome=outcome)

    async def others(self, exclude: set[str]) -> list[RunRecord]:
        return await self.following.others(exclude)

    def followed(self, run: FollowedRun, change: int) -> None:
        self.following.followed(run, change)

    def cancel_elsewhere(self, run: FollowedRun) -> None:
        self.following.cancel(run)

    async def reach(self, run: FollowedRun, seq: int) -> None:
        await self.following.reach(run, seq)
