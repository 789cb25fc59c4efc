"""The Redis run store's connection: the client, whether Redis can be reached, the
background tasks, one round trip of raw commands, and the backoff between retries.

The other modules of the store sit on this one and on ``keys``; none imports another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Coroutine
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..database_url import redact_url
from ..store import StoreUnavailable

__all__ = ["UNREACHABLE", "Backoff", "Connection", "reason"]

logger = logging.getLogger("streambind.server.redis")

#: What ``problem()`` says, and a client sees, while Redis cannot be reached. The cause
#: (host, port, the command) goes to the log only.
UNREACHABLE = "Redis is unreachable"
_CONNECT_TIMEOUT_S = 3.0
#: How long any reply may take. Set here, not left to redis-py: before 8.0 its default
#: is no limit at all, and a paused Redis (SIGSTOP, a VM frozen, a network that drops
#: packets without resetting) then holds every request that touches it forever. Above
#: XREAD's block time, so a quiet stream's read is never cut short.
_SOCKET_TIMEOUT_S = 5.0
#: Connections for requests and writers (plus one per run followed: see open).
_POOL_CONNECTIONS = 64
_POOL_WAIT_S = 10.0
#: How long closing waits for its cancelled tasks to end.
_CLOSE_WAIT_S = 2.0


class Backoff:
    """The wait between retries of a Redis command that failed: doubling, bounded."""

    FIRST_S = 0.05
    MOST_S = 2.0

    def __init__(self) -> None:
        self._next = self.FIRST_S

    async def wait(self) -> None:
        await asyncio.sleep(self._next)
        self._next = min(self.MOST_S, self._next * 2)

    def reset(self) -> None:
        self._next = self.FIRST_S


def reason(exc: BaseException) -> str:
    """An error's first line, for the log."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def says_unreachable(exc: BaseException) -> bool:
    """Whether an error means Redis cannot be reached (rather than that it refused one
    command, which says nothing about the next)."""
    return isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError | TimeoutError)


class Connection:
    """One node's client of Redis, and what it knows of Redis's health."""

    def __init__(self, url: str, max_runs: int) -> None:
        self.url = url
        self._max_runs = max_runs
        self.redis: Any = None
        self._problem: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Set as the store closes: nothing new starts, the heartbeat thread ends.
        self.stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url)

    async def open(self) -> None:
        """Connect and check that Redis answers. Raises StoreUnavailable."""
        try:
            # A blocking pool: a burst of requests (a thousand followers arriving at
            # once) waits for a connection instead of failing; each run followed here
            # holds one for its XREAD BLOCK, hence room for max_runs of them besides.
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url,
                max_connections=_POOL_CONNECTIONS + self._max_runs,
                timeout=_POOL_WAIT_S,
                socket_connect_timeout=_CONNECT_TIMEOUT_S,
                socket_timeout=_SOCKET_TIMEOUT_S,
                health_check_interval=10,
            )
            self.redis = aioredis.Redis.from_pool(pool)
            await asyncio.wait_for(self.redis.ping(), _CONNECT_TIMEOUT_S)
        except (RedisError, OSError, TimeoutError) as exc:
            raise await self.failed_at_start(exc) from None
        self._loop = asyncio.get_running_loop()

    async def failed_at_start(self, exc: BaseException) -> StoreUnavailable:
        """Disconnect; the error that says why the store could not open."""
        await self.disconnect()
        return StoreUnavailable(f"cannot reach Redis at {self.redacted_url}: {reason(exc)}")

    async def eviction_policy(self) -> str | None:
        """Redis's ``maxmemory-policy``; None where ``CONFIG`` is not allowed (some managed
        services rename or forbid it)."""
        try:
            reply = await self.redis.config_get("maxmemory-policy")
        except ResponseError:
            return None
        policy = reply.get("maxmemory-policy")
        return policy.decode() if isinstance(policy, bytes) else policy

    async def disconnect(self) -> None:
        if self.redis is not None:
            redis, self.redis = self.redis, None
            with contextlib.suppress(RedisError, OSError):
                await redis.aclose()

    # -- health -----------------------------------------------------------------

    def problem(self) -> str | None:
        return self._problem

    def lost(self, exc: BaseException) -> None:
        """A command failed: if the failure says Redis cannot be reached, the node stops
        taking new work until the heartbeat reaches it again; any other refusal is
        logged, and is no outage."""
        if not says_unreachable(exc):
            logger.warning("Redis refused a command: %s", reason(exc))
            return
        if self._problem is None:
            logger.warning("%s: %s; retrying", UNREACHABLE, reason(exc))
        self._problem = UNREACHABLE

    def unavailable(self, exc: BaseException) -> StoreUnavailable:
        """The error a request answers with when its command failed (after ``lost``)."""
        self.lost(exc)
        if says_unreachable(exc):
            return StoreUnavailable(UNREACHABLE)
        return StoreUnavailable("the run store could not answer; try again")

    def call_soon(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background, asked from another thread (the heartbeat's)."""
        if self._loop is None:
            coro.close()
            return
        self._loop.call_soon_threadsafe(self.spawn, coro)

    async def recovered(self) -> bool:
        """Redis answered again (the heartbeat reached it): serve again, once the
        connections kept idle are dropped. True if the node had lost Redis."""
        if self._problem is None or self.redis is None:
            return False
        # A Redis that restarted closed every connection the pool keeps idle: each would
        # fail once on its first use, and mark the node unreachable again (503s for a
        # second) just after /healthz said it was back. They reconnect when next taken.
        await self.redis.connection_pool.disconnect(inuse_connections=False)
        if self._problem is None:
            return False
        logger.info("Redis is reachable again")
        self._problem = None
        return True

    # -- tasks ------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background, until it ends or the store closes."""
        if self.stopping.is_set():
            # Closing: the followers that leave while the server shuts down would start
            # tasks that nobody cancels and that find no Redis client ("Task exception
            # was never retrieved" in the log). Nothing they would do can reach Redis.
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def end_tasks(self, *others: asyncio.Task[Any]) -> None:
        """Cancel the background tasks (and ``others``), waiting a bounded time."""
        tasks = [*others, *self._tasks]
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        # Bounded: a task cancelled inside redis-py's read of a paused Redis could take
        # as long as the reply timeout to finish, and a shutdown must not wait on it.
        ended, stuck = await asyncio.wait(tasks, timeout=_CLOSE_WAIT_S)
        for task in ended:  # retrieved, so none is reported as never retrieved
            if not task.cancelled():
                task.exception()
        if stuck:
            logger.warning("%d Redis task(s) still ending at shutdown; not waited for", len(stuck))

    # -- commands ---------------------------------------------------------------

    async def send(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """The commands' replies, in one round trip on one pooled connection; a command
        Redis refused has its error as its reply.

        Not a redis-py pipeline: its machinery costs a few hundred microseconds of Python
        per call, which a sparse stream pays on every event, on the way to its followers
        elsewhere. Connection errors raise (and the connection is dropped).
        """
        pool = self.redis.connection_pool
        connection = await pool.get_connection()
        try:
            await connection.send_packed_command(
                connection.pack_commands(commands), check_health=False
            )
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await connection.read_response())
                except ResponseError as exc:
                    replies.append(exc)
            return replies
        finally:
            await pool.release(connection)
