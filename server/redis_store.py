"""The Redis run store: every node sees every run, follows it, and can cancel it.

Keys (``P`` is the prefix, default ``streambind:``):

- ``P run:<id>``          hash: the run's record (endpoint, params, node, status, ...)
- ``P run:<id>:events``   stream: its framed events, several to an entry (``redis_log``)
- ``P runs``              sorted set: every run id, scored by creation time
- ``P running``           set: the ids of runs still running (for the node-lost sweep)
- ``P node:<node>``       string with a short expiry: the node's heartbeat
- ``P process:<id>``      the same for its process (names the owners of staging tables)
- ``P nodes``             set: every node that ever joined (so a lapsed one is known dead)
- ``P control``           pub/sub channel: cancel requests, and "nobody follows it here"

A finished run's hash and stream expire after ``keep_seconds``; a node that forgets
a run (``keep_runs``) deletes them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import threading
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError, ResponseError, WatchError

from .config import ServerConfig
from .eventlog import EventLog, MemoryEventLog
from .framing import ERROR, encode_event, failed_data
from .node import PROCESS_ID
from .redis_log import (
    FRAMES,
    TERMINAL,
    FollowedEventLog,
    ShippedEventLog,
    entry_seq,
    read_entries,
    read_entry,
)
from .registry import Endpoint
from .run import Run
from .store import RunHost, StoreUnavailable

__all__ = ["HEARTBEAT_TTL_S", "RedisRunStore"]

logger = logging.getLogger("streambind.server.redis")

#: A node whose heartbeat is older than this is dead; it refreshes it every second.
HEARTBEAT_TTL_S = 3
_HEARTBEAT_EVERY_S = 1.0
#: The most events one write takes, and about the most bytes: a firehose goes out in
#: batches this size, as stream entries of about _ENTRY_BYTES at most.
_WRITE_BATCH = 2000
_WRITE_BYTES = 1 << 20
_ENTRY_BYTES = 64 * 1024
#: The most entries one XREAD returns to a following node.
_READ_ENTRIES = 64
#: XREAD BLOCK's wait, after which a reader checks that its run still exists.
_READ_BLOCK_MS = 1000
_CONNECT_TIMEOUT_S = 3.0
#: How long any reply may take. Set here, not left to redis-py: before 8.0 its default
#: is no limit at all, and a paused Redis (SIGSTOP, a VM frozen, a network that drops
#: packets without resetting) then holds every request that touches it forever. Above
#: XREAD's block time, so a quiet stream's read is never cut short.
_SOCKET_TIMEOUT_S = 5.0
#: Connections for requests and writers (plus one per run followed: see open).
_POOL_CONNECTIONS = 64
_POOL_WAIT_S = 10.0
#: How long a caller's response waits for its run's record to reach Redis.
_ANNOUNCE_WAIT_S = 2.0
#: How long a resume on another node waits for the events its Last-Event-ID names.
_REACH_WAIT_S = 2.0
_MAX_BACKOFF_S = 2.0
#: How long closing waits for its cancelled tasks to end.
_CLOSE_WAIT_S = 2.0
_RECORD_FIELDS = (
    "endpoint",
    "params",
    "node",
    "status",
    "created",
    "finished",
    "messages",
    "last_message",
)


# Appends entries: from ARGV[3] on, three arguments each: the id of its first event, of its
# last (its id, <last>-0) and its frames joined; `first` is set if it holds more than one
# event, and `end` on the last entry if ARGV[1] is "1". Then trims the entries wholly older
# than event ARGV[2]. Returns 1 if events were refused: those not newer than the stream's
# newest (a retry of a write that did arrive, in whole or in part: only the events after
# the newest are added, found by their framing as in framing.frame_start), or all of them
# after a terminal entry (another node ended the run with node_lost).
_APPEND_LUA = """
local stream = KEYS[1]
local top = 0
local newest = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
if newest then
  top = tonumber(string.match(newest[1], '^%d+'))
  for j = 1, #newest[2], 2 do
    if newest[2][j] == 'end' then return 1 end
  end
end
local refused = 0
for i = 3, #ARGV, 3 do
  local first, last, frames = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), ARGV[i + 2]
  if last <= top then
    refused = 1
  else
    if first <= top then
      refused = 1
      local at = string.find(frames, string.format('\\n\\nid: %d\\n', top + 1), 1, true)
      if at == nil then return refused end
      frames = string.sub(frames, at + 2)
      first = top + 1
    end
    local command = {'XADD', stream, string.format('%d-0', last), 'f', frames}
    if first < last then
      command[6] = 'first'
      command[7] = string.format('%d', first)
    end
    if ARGV[1] == '1' and i + 2 == #ARGV then
      command[#command + 1] = 'end'
      command[#command + 1] = '1'
    end
    redis.call(unpack(command))
    top = last
  end
end
if tonumber(ARGV[2]) > 1 then
  redis.call('XTRIM', stream, 'MINID', '~', ARGV[2])
end
return refused
"""


async def _runs_elsewhere(*args: object, **kwargs: object) -> None:
    raise RuntimeError("this run executes on another node")


class RedisRunStore:
    """Runs shared through Redis; this node executes its own and follows the others'."""

    def __init__(self, config: ServerConfig) -> None:
        assert config.redis_url is not None
        self._config = config
        self._prefix = config.redis_prefix
        self.node: str | None = f"{PROCESS_ID}#{secrets.token_hex(2)}"
        self._redis: Any = None
        self._problem: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: dict[str, asyncio.Task[None]] = {}
        #: Set once a run's record is in Redis, for its caller's response to start.
        self._announced: dict[str, asyncio.Event] = {}
        #: Other nodes' runs that this node follows (or was just asked about).
        self._followed: dict[str, Run] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._manager: RunHost | None = None
        self._known_nodes: set[str] = set()
        self._stopping = threading.Event()
        #: Set as close() begins: this node's followers of other nodes' runs are leaving.
        self._leaving = False
        self._beater: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._live_processes: set[str] = set()

    # -- keys -------------------------------------------------------------------

    def _run_key(self, run_id: str) -> str:
        return f"{self._prefix}run:{run_id}"

    def _events_key(self, run_id: str) -> str:
        return f"{self._prefix}run:{run_id}:events"

    @property
    def _index_key(self) -> str:
        return f"{self._prefix}runs"

    @property
    def _running_key(self) -> str:
        return f"{self._prefix}running"

    @property
    def _control(self) -> str:
        return f"{self._prefix}control"

    def _node_key(self, node: str) -> str:
        return f"{self._prefix}node:{node}"

    def _process_key(self, process: str) -> str:
        return f"{self._prefix}process:{process}"

    # -- life -------------------------------------------------------------------

    def bind(self, host: RunHost) -> None:
        """The manager whose runs this store publishes and cancels (``RunManager``)."""
        self._manager = host

    @property
    def _host(self) -> RunHost:
        if self._manager is None:
            raise RuntimeError("the run store is not bound to a run manager")
        return self._manager

    async def open(self) -> None:
        url = self._config.redis_url
        assert url is not None, "a Redis store needs a Redis URL"
        try:
            # A blocking pool: a burst of requests (a thousand followers arriving at
            # once) waits for a connection instead of failing; each run followed here
            # holds one for its XREAD BLOCK, hence room for max_runs of them besides.
            pool = aioredis.BlockingConnectionPool.from_url(
                url,
                max_connections=_POOL_CONNECTIONS + self._config.max_runs,
                timeout=_POOL_WAIT_S,
                socket_connect_timeout=_CONNECT_TIMEOUT_S,
                socket_timeout=_SOCKET_TIMEOUT_S,
                health_check_interval=10,
            )
            self._redis = aioredis.Redis.from_pool(pool)
            await asyncio.wait_for(self._redis.ping(), _CONNECT_TIMEOUT_S)
            # EVALSHA, not a registered Script: a pipeline with a Script asks SCRIPT EXISTS
            # first, one more round trip for every event of a sparse stream.
            self._append_sha = await self._redis.script_load(_APPEND_LUA)
            await self._beat()
            self._known_nodes = {n.decode() for n in await self._redis.smembers(self._nodes_key)}
        except (RedisError, OSError, TimeoutError) as exc:
            await self._disconnect()
            raise StoreUnavailable(
                f"cannot reach Redis at {_redact(url)}: {_reason(exc)}"
            ) from None
        # Known once at start-up, for node_alive: the owners of leftover staging tables.
        self._live_processes = await self._live_process_ids()
        self._loop = asyncio.get_running_loop()
        self._beater = threading.Thread(target=self._heartbeat, name="redis heartbeat", daemon=True)
        self._beater.start()
        self._spawn(self._sweep())
        self._spawn(self._listen())
        logger.info(
            "run store: Redis at %s, prefix %r, node %s", _redact(url), self._prefix, self.node
        )

    async def close(self) -> None:
        # This node stops serving other nodes' runs: their followers here are cut now, so
        # their clients resume on another node at once, rather than wait in silence (their
        # reader goes below) through the server's shutdown timeout for the handlers.
        self._leaving = True
        gone = []
        for run in self._followed.values():
            if run.delivery.followers:
                gone.append(self._count_follower(run.id, -len(run.delivery.followers)))
            for follower in list(run.delivery.followers):
                follower.leave()
        # They are counted gone here, all at once: they detach one by one later, when
        # nothing can reach Redis any more, and a count left too high would keep the
        # executing node from ever cancelling a run its caller abandoned.
        await asyncio.gather(*gone)
        # Writers first: the terminal events of the runs just cancelled reach Redis.
        writers = list(self._writers.values())
        if writers:
            await asyncio.wait(writers, timeout=3.0)
        self._stopping.set()
        if self._beater is not None:
            await asyncio.to_thread(self._beater.join, 2 * _HEARTBEAT_EVERY_S + 1)
        tasks = [*self._writers.values(), *self._readers.values(), *self._tasks]
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: a task cancelled inside redis-py's read of a paused Redis could take
            # as long as the reply timeout to finish, and a shutdown must not wait on it.
            ended, stuck = await asyncio.wait(tasks, timeout=_CLOSE_WAIT_S)
            for task in ended:  # retrieved, so none is reported as never retrieved
                if not task.cancelled():
                    task.exception()
            if stuck:
                logger.warning(
                    "%d Redis task(s) still ending at shutdown; not waited for", len(stuck)
                )
        if self._redis is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._redis.delete(self._node_key(self.node or ""))
        await self._disconnect()

    async def _disconnect(self) -> None:
        if self._redis is not None:
            redis, self._redis = self._redis, None
            with contextlib.suppress(RedisError, OSError):
                await redis.aclose()

    def problem(self) -> str | None:
        return self._problem

    def _spawn(self, coro: Any) -> None:
        if self._stopping.is_set():
            # Closing: the followers that leave while the server shuts down would start
            # tasks that nobody cancels and that find no Redis client ("Task exception
            # was never retrieved" in the log). Nothing they would do can reach Redis.
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _lost(self, exc: BaseException) -> None:
        if self._problem is None:
            logger.warning("Redis is unreachable: %s; retrying", _reason(exc))
        self._problem = f"Redis is unreachable: {_reason(exc)}"

    def _back(self) -> None:
        """The heartbeat (its own thread) reached Redis: the node serves again, once the
        connections it kept idle are dropped (on the event loop)."""
        if self._problem is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._spawn, self._recovered())

    async def _recovered(self) -> None:
        if self._problem is None or self._redis is None:
            return
        # A Redis that restarted closed every connection the pool keeps idle: each would
        # fail once on its first use, and mark the node unreachable again (503s for a
        # second) just after /healthz said it was back. They reconnect when next taken.
        await self._redis.connection_pool.disconnect(inuse_connections=False)
        if self._problem is not None:
            logger.info("Redis is reachable again")
        self._problem = None

    # -- this node's runs ---------------------------------------------------------

    def new_log(self, run_id: str) -> EventLog:
        return ShippedEventLog(self._config.log_max_bytes)

    def started(self, run: Run) -> None:
        self._announced[run.id] = asyncio.Event()
        self._writers[run.id] = asyncio.get_running_loop().create_task(
            self._ship(run), name=f"run {run.id} to Redis"
        )
        assert isinstance(run.log, ShippedEventLog)
        run.log.ready.set()  # its record goes out at once, before any event

    async def announced(self, run: Run) -> None:
        event = self._announced.get(run.id)
        if event is not None:
            # Bounded: with Redis away the caller still gets its stream from this node.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), _ANNOUNCE_WAIT_S)

    def finished(self, run: Run) -> None:
        assert isinstance(run.log, ShippedEventLog)
        run.log.ready.set()

    def forgotten(self, run: Run) -> None:
        self._spawn(self._delete(run))

    async def _delete(self, run: Run) -> None:
        writer = self._writers.get(run.id)
        if writer is not None:
            await asyncio.wait([writer])
        with contextlib.suppress(RedisError, OSError):
            pipe = self._redis.pipeline(transaction=False)
            pipe.unlink(self._run_key(run.id), self._events_key(run.id))
            pipe.zrem(self._index_key, run.id)
            await pipe.execute()

    async def _ship(self, run: Run) -> None:
        """The run's writer: everything its log queued, a batch per round trip, until its
        record is final."""
        log = run.log
        assert isinstance(log, ShippedEventLog)
        key, events = self._run_key(run.id), self._events_key(run.id)
        # An entry holds at most a sixteenth of the log, so that trimming by entries keeps
        # about as many events as the log does.
        entry_bytes = max(1, min(_ENTRY_BYTES, log.capacity // 16))
        announced = False
        released = False
        backoff = 0.05
        try:
            while True:
                await log.ready.wait()
                log.ready.clear()
                batch = log.take(_WRITE_BATCH, _WRITE_BYTES)
                if log.outbox:
                    log.ready.set()  # more than one batch: go round again at once
                done = run.finished is not None and not log.outbox
                commands: list[tuple[Any, ...]] = []
                appended_at = -1
                if not announced:
                    commands.append(("HSET", key, *_pairs(self._record(run))))
                    commands.append(("ZADD", self._index_key, run.created, run.id))
                    commands.append(("SADD", self._running_key, run.id))
                if batch is not None:
                    # A few entries of many events each: Redis's work, the packing here and
                    # the parsing on the reading nodes are per entry, not per event. The
                    # stream keeps as many events as the memory log does (its byte bound,
                    # as a count, counted back from the newest shipped).
                    appended_at = len(commands)
                    commands.append(
                        (
                            "EVALSHA",
                            self._append_sha,
                            1,
                            events,
                            b"1" if batch.terminal else b"0",
                            batch.last - max(1, log.kept) + 1,
                            *(arg for entry in batch.entries(entry_bytes) for arg in entry),
                        )
                    )
                if log.released and not released:
                    commands.append(("XTRIM", events, "MINID", f"{log.last_seq + 1}-0"))
                last_seq = batch.last if batch is not None else log.last_seq
                commands.append(
                    (
                        "HSET",
                        key,
                        *("messages", run.messages, "last_message", run.last_message_json or ""),
                        *("last_seq", last_seq),
                    )
                )
                try:
                    results = await self._send(commands)
                    appended = results[appended_at] if appended_at >= 0 else 0
                    if isinstance(appended, NoScriptError):
                        # Redis restarted, its script cache empty: load it, write again.
                        self._append_sha = await self._redis.script_load(_APPEND_LUA)
                        assert batch is not None
                        log.put_back(batch)
                        log.ready.set()
                        continue
                    if done and (appended == 0 or await self._still_running(run)):
                        await self._finish_record(run)
                except (RedisError, OSError) as exc:
                    self._lost(exc)
                    if batch is not None:
                        log.put_back(batch)
                    await asyncio.sleep(backoff)
                    backoff = min(_MAX_BACKOFF_S, backoff * 2)
                    log.ready.set()
                    continue
                backoff = 0.05
                for result in results:
                    if isinstance(result, Exception):
                        logger.warning("run %s: Redis refused a write: %s", run.id, result)
                if not announced:
                    announced = True
                    self._announced.pop(run.id).set()
                released = released or log.released
                if done:
                    return
        finally:
            self._writers.pop(run.id, None)
            event = self._announced.pop(run.id, None)
            if event is not None:
                event.set()

    async def _send(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """The commands' replies, in one round trip on one pooled connection; a command
        Redis refused has its error as its reply.

        Not a redis-py pipeline: its machinery costs a few hundred microseconds of Python
        per call, which a sparse stream pays on every event, on the way to its followers
        elsewhere. Connection errors raise (and the connection is dropped).
        """
        pool = self._redis.connection_pool
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

    async def _still_running(self, run: Run) -> bool:
        # Refused ids: a retry of a write that arrived (the record still says running),
        # or another node ended the run with node_lost (its record must stay).
        status = await self._redis.hget(self._run_key(run.id), "status")
        return bool(status == b"running")

    async def _finish_record(self, run: Run) -> None:
        """The run's final record, and its keys' expiry (after its terminal event is in)."""
        key, events = self._run_key(run.id), self._events_key(run.id)
        keep = max(1, int(self._config.keep_seconds))
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(key, mapping=self._record(run))
        pipe.srem(self._running_key, run.id)
        pipe.expire(key, keep)
        pipe.expire(events, keep)
        await pipe.execute()

    def _record(self, run: Run) -> dict[str, Any]:
        record: dict[str, Any] = {
            "endpoint": run.endpoint.name,
            "params": json.dumps(run.params),
            "node": self.node,
            "status": run.status,
            "created": repr(run.created),
            "finished": repr(run.finished) if run.finished is not None else "",
            "messages": run.messages,
            "last_message": run.last_message_json or "",
            "last_seq": run.log.last_seq,
            "result": run.result_json or "",
            "error": json.dumps(run.error) if run.error is not None else "",
        }
        return record

    async def followers_elsewhere(self, run: Run) -> int:
        count = await self._redis.hget(self._run_key(run.id), "followers_elsewhere")
        return int(count or 0)

    # -- other nodes' runs ----------------------------------------------------------

    async def find(self, run_id: str) -> Run | None:
        if len(run_id) > 64:
            return None
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(self._run_key(run_id))
        pipe.xrange(self._events_key(run_id), count=1)
        try:
            record, oldest = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._lost(exc)
            raise StoreUnavailable(self._problem) from None
        if not record:
            return None
        fields = {k.decode(): v.decode() for k, v in record.items()}
        if fields.get("node") == self.node:
            return None  # this node's run that it has forgotten: its own index is the truth
        run = self._followed.get(run_id)
        if run is None:
            last_seq = int(fields.get("last_seq") or 0)
            first_kept = read_entry(*oldest[0]).first if oldest else last_seq + 1
            log = FollowedEventLog(
                self._config.log_max_bytes,
                self._redis,
                self._events_key(run_id),
                last_seq,
                first_kept,
                closed=fields.get("status", "running") != "running",
            )
            run = Run(
                id=run_id,
                endpoint=_stand_in(fields.get("endpoint", "")),
                params=json.loads(fields.get("params") or "{}"),
                log=log,
                created=float(fields.get("created") or 0),
                clock=self._host.clock,
                stall=self._config.follower_stall,
                elsewhere=True,
            )
            self._followed[run_id] = run
        _update(run, fields)
        return run

    async def summaries(self, local: list[Run]) -> list[dict[str, Any]]:
        mine = {run.id for run in local}
        try:
            ids = [i.decode() for i in await self._redis.zrevrange(self._index_key, 0, -1)]
            others = [i for i in ids if i not in mine]
            pipe = self._redis.pipeline(transaction=False)
            for run_id in others:
                pipe.hmget(self._run_key(run_id), *_RECORD_FIELDS)
            rows = await pipe.execute() if others else []
        except (RedisError, OSError) as exc:
            self._lost(exc)
            raise StoreUnavailable(self._problem) from None
        listed: list[tuple[float, dict[str, Any]]] = [(r.created, r.summary()) for r in local]
        gone = []
        for run_id, row in zip(others, rows, strict=True):
            if row[0] is None:
                gone.append(run_id)  # expired: its index entry goes too
                continue
            fields = dict(zip(_RECORD_FIELDS, (v.decode() if v else "" for v in row), strict=True))
            if fields["node"] == self.node:
                continue  # this node forgot it: its own list is the truth
            summary = _summary(run_id, fields)
            listed.append((float(fields["created"] or 0), summary))
        if gone:
            with contextlib.suppress(RedisError, OSError):
                await self._redis.zrem(self._index_key, *gone)
        listed.sort(key=lambda pair: pair[0], reverse=True)
        return [summary for _, summary in listed]

    def followed(self, run: Run, change: int) -> None:
        if change > 0 and run.id not in self._readers and not run.log.closed and not self._leaving:
            self._readers[run.id] = asyncio.get_running_loop().create_task(
                self._feed(run), name=f"run {run.id} from Redis"
            )
        if change < 0 and not run.delivery.followers:
            reader = self._readers.pop(run.id, None)
            if reader is not None:
                reader.cancel()
            self._followed.pop(run.id, None)
        if not self._leaving:  # closing: close() counted them all
            self._spawn(self._count_follower(run.id, change))

    async def _count_follower(self, run_id: str, change: int) -> None:
        with contextlib.suppress(RedisError, OSError):
            count = await self._redis.hincrby(self._run_key(run_id), "followers_elsewhere", change)
            if change < 0 and count <= 0:
                await self._publish("unfollowed", run_id)

    def cancel_elsewhere(self, run: Run) -> None:
        self._spawn(self._publish("cancel", run.id))

    async def _publish(self, op: str, run_id: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._redis.publish(self._control, json.dumps({"op": op, "run": run_id}))

    async def reach(self, run: Run, seq: int) -> None:
        log = run.log
        assert isinstance(log, FollowedEventLog)
        events = self._events_key(run.id)
        deadline = time.monotonic() + _REACH_WAIT_S
        while log.last_seq < seq and time.monotonic() < deadline:
            try:
                newest = await self._redis.xrevrange(events, count=1)
            except (RedisError, OSError) as exc:
                self._lost(exc)
                raise StoreUnavailable(self._problem) from None
            if newest:
                log.advance(entry_seq(newest[0][0]), TERMINAL in newest[0][1])
            if log.last_seq < seq:
                await asyncio.sleep(0.01)

    async def _feed(self, run: Run) -> None:
        """The one reader of ``run``'s stream on this node, for all its followers here."""
        log = run.log
        assert isinstance(log, FollowedEventLog)
        events = self._events_key(run.id)
        backoff = 0.05
        pool = self._redis.connection_pool
        connection = None
        try:
            # Each XREAD BLOCK returns the entries that arrived since: a sparse stream's
            # event, a firehose's batches (each one entry, as its node wrote it) whole.
            # On a connection of its own, with no redis-py command machinery per read (a
            # sparse stream pays it on every event; see _send).
            while not log.closed:
                try:
                    if connection is None:
                        connection = await pool.get_connection()
                    await connection.send_packed_command(
                        connection.pack_command(
                            *("XREAD", "COUNT", _READ_ENTRIES, "BLOCK", _READ_BLOCK_MS),
                            *("STREAMS", events, f"{log.last_seq}-0"),
                        ),
                        check_health=False,
                    )
                    reply = await connection.read_response()
                    if not reply:
                        if not await self._redis.exists(self._run_key(run.id)):
                            log.end_unseen()
                            run.delivery.ended()
                            return
                        continue
                except (RedisError, OSError) as exc:
                    self._lost(exc)
                    if connection is not None:
                        await pool.release(connection)  # dropped by the failed read
                        connection = None
                    await asyncio.sleep(backoff)
                    backoff = min(_MAX_BACKOFF_S, backoff * 2)
                    continue
                backoff = 0.05
                newest = log.last_seq
                log.ingest(read_entries(reply))
                if log.closed:
                    run.delivery.ended()  # each follower's task writes the terminal event
                elif run.delivery.caught_up:
                    # One new message (a sparse stream) is written here to the followers
                    # that can take it, as where the run executes; several, by each
                    # follower's task in one write.
                    await run.delivery.hand_over(log.last_seq, together=log.last_seq != newest + 1)
        finally:
            if connection is not None:
                # Cancelled in the middle of a read, redis-py has dropped the connection.
                await pool.release(connection)
            if self._readers.get(run.id) is asyncio.current_task():
                del self._readers[run.id]

    # -- the control channel ---------------------------------------------------------

    async def _listen(self) -> None:
        backoff = 0.05
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._control)
                backoff = 0.05
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._obey(message["data"])
            except (RedisError, OSError) as exc:
                self._lost(exc)
                await asyncio.sleep(backoff)
                backoff = min(_MAX_BACKOFF_S, backoff * 2)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    def _obey(self, data: bytes) -> None:
        try:
            message = json.loads(data)
            op, run_id = message["op"], message["run"]
        except (ValueError, KeyError, TypeError):
            return
        manager = self._manager
        run = manager.get(run_id) if manager is not None else None
        if manager is None or run is None or run.elsewhere:
            return
        if op == "cancel":
            logger.info("run %s: cancelled from another node", run_id)
            manager.cancel(run)
        elif op == "unfollowed":
            manager.unfollowed(run)

    # -- heartbeats and dead nodes -------------------------------------------------------

    @property
    def _nodes_key(self) -> str:
        return f"{self._prefix}nodes"

    def _beat_into(self, pipe: Any) -> None:
        pipe.set(self._node_key(self.node or ""), "1", ex=HEARTBEAT_TTL_S)
        pipe.set(self._process_key(PROCESS_ID), "1", ex=HEARTBEAT_TTL_S)
        pipe.sadd(self._nodes_key, self.node or "")

    async def _beat(self) -> None:
        pipe = self._redis.pipeline(transaction=False)
        self._beat_into(pipe)
        await pipe.execute()

    def _heartbeat(self) -> None:
        """Refresh the heartbeat every second, in a thread of its own: a node whose event
        loop is busy (a thousand streams, a firehose) is alive, and must not be taken for
        dead because a coroutine's turn came late."""
        import redis

        client = redis.Redis.from_url(
            self._config.redis_url or "",
            socket_connect_timeout=_HEARTBEAT_EVERY_S,
            socket_timeout=_HEARTBEAT_EVERY_S,
        )
        try:
            while not self._stopping.wait(_HEARTBEAT_EVERY_S):
                try:
                    pipe = client.pipeline(transaction=False)
                    self._beat_into(pipe)
                    pipe.execute()
                    self._back()
                except (RedisError, OSError) as exc:
                    self._lost(exc)
        finally:
            client.close()

    async def _sweep(self) -> None:
        """Every second: end the runs of nodes whose heartbeat lapsed; forget idle runs."""
        while True:
            await asyncio.sleep(_HEARTBEAT_EVERY_S)
            if self._problem is None:
                try:
                    await self._end_runs_of_dead_nodes()
                except (RedisError, OSError) as exc:
                    self._lost(exc)
            self._drop_idle_followed()

    def _drop_idle_followed(self) -> None:
        for run_id, run in list(self._followed.items()):
            if not run.delivery.followers and run_id not in self._readers:
                del self._followed[run_id]

    async def _end_runs_of_dead_nodes(self) -> None:
        running = [i.decode() for i in await self._redis.smembers(self._running_key)]
        if not running:
            return
        pipe = self._redis.pipeline(transaction=False)
        for run_id in running:
            pipe.hget(self._run_key(run_id), "node")
        nodes = [n.decode() if n else None for n in await pipe.execute()]
        others = {n for n in nodes if n and n != self.node}
        alive: dict[str, bool] = {}
        for node in others:
            alive[node] = bool(await self._redis.exists(self._node_key(node)))
        for run_id, node in zip(running, nodes, strict=True):
            if node is None:
                await self._redis.srem(self._running_key, run_id)  # its record expired
            elif node != self.node and not alive[node]:
                await self.end_lost(run_id, node)

    async def end_lost(self, run_id: str, node: str) -> bool:
        """End a dead node's running run with a terminal ``node_lost`` error, exactly once.

        Several nodes may notice at once: the run's record is WATCHed, so only the
        first transaction that sees it running appends the event. True if this one did.
        """
        key, events = self._run_key(run_id), self._events_key(run_id)
        async with self._redis.pipeline(transaction=True) as pipe:
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
                pipe.srem(self._running_key, run_id)
                pipe.expire(key, keep)
                pipe.expire(events, keep)
                await pipe.execute()
            except WatchError:
                return False
        logger.warning("run %s: its node %s is gone; ended it with node_lost", run_id, node)
        return True

    # -- staging tables of dead nodes ---------------------------------------------------

    async def _live_process_ids(self) -> set[str]:
        alive = set()
        async for key in self._redis.scan_iter(match=f"{self._process_key('')}*", count=500):
            alive.add(key.decode()[len(self._process_key("")) :])
        return alive

    def node_alive(self, process: str) -> bool | None:
        """Whether the process that owns a staging table still runs, as far as Redis says:
        a process heartbeating now is alive; otherwise it is not (its heartbeat lapsed,
        or it never used this store — then only the table's age can tell: None)."""
        if process in self._live_processes:
            return True
        if any(node.startswith(f"{process}#") for node in self._known_nodes):
            return False
        return None


def _stand_in(name: str) -> Endpoint:
    # A run executed elsewhere is only followed here: its endpoint is its name.
    return Endpoint(name=name, title=name, description="", fn=_runs_elsewhere)


def _pairs(mapping: dict[str, Any]) -> list[Any]:
    return [item for pair in mapping.items() for item in pair]


def _update(run: Run, fields: dict[str, str]) -> None:
    run.node = fields.get("node") or None
    run.status = fields.get("status", "running")
    run.messages = int(fields.get("messages") or 0)
    run.last_message_kept = fields.get("last_message", "").encode() or None
    finished = fields.get("finished")
    run.finished = float(finished) if finished else None
    run.result_json = fields.get("result") or None
    error = fields.get("error")
    run.error = json.loads(error) if error else None


def _summary(run_id: str, fields: dict[str, str]) -> dict[str, Any]:
    run = Run(
        id=run_id,
        endpoint=_stand_in(fields["endpoint"]),
        params=json.loads(fields["params"] or "{}"),
        log=MemoryEventLog(0),  # a summary never reads the log
        created=float(fields["created"] or 0),
        elsewhere=True,  # known here by its record only, last message included
    )
    _update(run, fields)
    return run.summary()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _redact(url: str | None) -> str:
    """The URL without its password."""
    if not url or "@" not in url:
        return url or ""
    scheme, _, rest = url.partition("://")
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user + ':***@' if user else '***@'}{host}"
