"""This node's runs, published: each run's record, and its events written to its stream
by one writer task per run, a batch per round trip."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from redis.exceptions import NoScriptError, RedisError, ResponseError

from ..config import ServerConfig
from ..run import ExecutedRun
from ..store import RunHost
from .connection import Backoff, Connection, reason
from .keys import Keys
from .logs import ShippedEventLog
from .records import pairs, record_of

__all__ = ["APPEND_LUA", "RECORD_LUA", "Shipping"]

logger = logging.getLogger("streambind.server.redis")

#: The most events one write takes, and about the most bytes: a firehose goes out in
#: batches this size, as stream entries of about _ENTRY_BYTES at most.
_WRITE_BATCH = 2000
_WRITE_BYTES = 1 << 20
_ENTRY_BYTES = 64 * 1024
#: How long a caller's response waits for its run's record to reach Redis.
_ANNOUNCE_WAIT_S = 2.0
#: How long closing waits for the writers to ship the runs' terminal events.
_FLUSH_WAIT_S = 3.0

# Appends entries: from ARGV[3] on, three arguments each: the id of its first event, of its
# last (its id, <last>-0) and its frames joined; `first` is set if it holds more than one
# event, and `end` on the last entry if ARGV[1] is "1". Then trims the entries wholly older
# than event ARGV[2]. Returns 1 if events were refused: those not newer than the stream's
# newest (a retry of a write that did arrive, in whole or in part: only the events after
# the newest are added, found by their framing as in framing.frame_start). Returns 2, and
# adds nothing, when the stream already ends and the batch goes past its end: another node
# ended the run (node_lost), having taken this one for dead.
APPEND_LUA = """
local stream = KEYS[1]
local top = 0
local newest = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
if newest then
  top = tonumber(string.match(newest[1], '^%d+'))
  for j = 1, #newest[2], 2 do
    if newest[2][j] == 'end' then
      if tonumber(ARGV[#ARGV - 1]) <= top then return 1 end
      return 2
    end
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

# Updates a running run's record (ARGV: field, value, ...); a record that no longer says
# running (another node ended the run with node_lost) stays as it is. Returns 1 if updated.
RECORD_LUA = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""
#: What APPEND_LUA answers when the run was ended on another node.
_ENDED_ELSEWHERE = 2


class StoreWriter:
    """A run's writer as the run's delivery sees it: a reader of the log whose position is
    the last event Redis has taken. While half the log waits for Redis the workflow is
    held back for it, as for a slow follower, so that waiting for Redis drops nothing;
    let go (Redis refused or missed every write for the store stall), it ends the run
    with ``store_unavailable``."""

    def __init__(self, run: ExecutedRun, host: RunHost | None) -> None:
        self.position = 0
        self.was_let_go = False
        self._run = run
        self._clock = run.delivery.clock
        self._host = host
        self._failing_since: float | None = None

    @property
    def progressed_at(self) -> float:
        # Shipping as fast as Redis takes events is progress, however far behind: only
        # writes that fail count towards the stall, from the first of them.
        if self._failing_since is None:
            return self._clock.now()
        return self._failing_since

    def wrote(self, last: int) -> None:
        """Redis took the events up to ``last``."""
        self.position = last
        self._failing_since = None
        self._run.delivery.progressed()

    def failed(self) -> None:
        """A write did not go in (Redis away, or refusing it)."""
        if self._failing_since is None:
            self._failing_since = self._clock.now()

    def let_go(self) -> None:
        self.was_let_go = True
        if self._host is not None:
            stall = self._run.delivery.store_stall
            self._host.end_with(
                self._run,
                {
                    "type": "store_unavailable",
                    "message": f"Redis took none of this run's events for {stall:g} s",
                },
            )


class Shipping:
    """Publishes the runs this node executes: records, the index, the events."""

    def __init__(self, connection: Connection, keys: Keys, config: ServerConfig, node: str) -> None:
        self._connection = connection
        self._keys = keys
        self._config = config
        self._node = node
        self._append_sha = ""
        self._record_sha = ""
        #: The node's run manager (``bind``), told when another node ended one of its runs.
        self.host: RunHost | None = None
        #: The runs still being written, each with its writer.
        self._writers: dict[str, tuple[ExecutedRun, asyncio.Task[None]]] = {}
        #: Set once a run's record is in Redis, for its caller's response to start.
        self._announced: dict[str, asyncio.Event] = {}

    async def load_script(self) -> None:
        # EVALSHA, not a registered Script: a pipeline with a Script asks SCRIPT EXISTS
        # first, one more round trip for every event of a sparse stream.
        self._append_sha = await self._connection.redis.script_load(APPEND_LUA)
        self._record_sha = await self._connection.redis.script_load(RECORD_LUA)

    def new_log(self) -> ShippedEventLog:
        return ShippedEventLog(self._config.log_max_bytes)

    def started(self, run: ExecutedRun) -> None:
        self._announced[run.id] = asyncio.Event()
        store_writer = StoreWriter(run, self.host)
        run.delivery.attach_store_writer(store_writer, self._config.store_stall)
        writer = asyncio.get_running_loop().create_task(
            self._ship(run, store_writer), name=f"run {run.id} to Redis"
        )
        self._writers[run.id] = (run, writer)
        assert isinstance(run.log, ShippedEventLog)
        run.log.ready.set()  # its record goes out at once, before any event

    async def announced(self, run: ExecutedRun) -> None:
        event = self._announced.get(run.id)
        if event is not None:
            # Bounded: with Redis away the caller still gets its stream from this node.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), _ANNOUNCE_WAIT_S)

    def finished(self, run: ExecutedRun) -> None:
        assert isinstance(run.log, ShippedEventLog)
        run.log.ready.set()

    async def delete(self, run: ExecutedRun) -> None:
        """Delete a forgotten run's keys, once its writer is done."""
        shipping = self._writers.get(run.id)
        if shipping is not None:
            await asyncio.wait([shipping[1]])
        with contextlib.suppress(RedisError, OSError):
            pipe = self._connection.redis.pipeline(transaction=False)
            pipe.unlink(self._keys.run(run.id), self._keys.events(run.id))
            pipe.zrem(self._keys.index, run.id)
            await pipe.execute()

    def released(self, run: ExecutedRun) -> None:
        """``run``'s log was let go of here: its stream loses its events too. A writer
        still at work trims it itself (the log says it was released); otherwise one
        trim now."""
        if run.id not in self._writers:
            self._connection.spawn(self._trim_released(run))

    async def _trim_released(self, run: ExecutedRun) -> None:
        with contextlib.suppress(RedisError, OSError):
            events = self._keys.events(run.id)
            await self._connection.redis.xtrim(events, minid=f"{run.log.last_seq + 1}-0")

    def writers(self) -> list[asyncio.Task[None]]:
        return [writer for _, writer in self._writers.values()]

    async def flush(self) -> None:
        """Wait, a bounded time, for the writers to ship what their runs queued."""
        writers = self.writers()
        if writers:
            await asyncio.wait(writers, timeout=_FLUSH_WAIT_S)

    async def register_again(self) -> None:
        """Publish the records of the runs still running here whose record Redis lost (it
        restarted empty), so that every node lists them, and ends them if this one dies."""
        redis = self._connection.redis
        for run_id, (run, _) in list(self._writers.items()):
            if not run.running or await redis.exists(self._keys.run(run_id)):
                continue
            pipe = redis.pipeline(transaction=False)
            pipe.hset(self._keys.run(run_id), mapping=record_of(run, self._node))
            pipe.zadd(self._keys.index, {run_id: run.created})
            pipe.sadd(self._keys.running, run_id)
            await pipe.execute()
            logger.info("run %s: Redis had lost its record; published it again", run_id)

    async def _ship(self, run: ExecutedRun, store_writer: StoreWriter) -> None:
        """The run's writer: everything its log queued, a batch per round trip, until its
        record is final."""
        log = run.log
        assert isinstance(log, ShippedEventLog)
        key, events = self._keys.run(run.id), self._keys.events(run.id)
        # An entry holds at most a sixteenth of the log, so that trimming by entries keeps
        # about as many events as the log does.
        entry_bytes = max(1, min(_ENTRY_BYTES, log.capacity // 16))
        announced = False
        released = False
        refused = False
        backoff = Backoff()
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
                    commands.append(("HSET", key, *pairs(record_of(run, self._node))))
                    commands.append(("ZADD", self._keys.index, run.created, run.id))
                    commands.append(("SADD", self._keys.running, run.id))
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
                        *("EVALSHA", self._record_sha, 1, key),
                        *("messages", run.messages, "last_message", run.last_message_json or ""),
                        *("last_seq", last_seq),
                    )
                )
                refusal: BaseException | None = None
                try:
                    results = await self._connection.send(commands)
                    refusal = next((r for r in results if isinstance(r, Exception)), None)
                    appended = results[appended_at] if appended_at >= 0 else 0
                    if isinstance(refusal, NoScriptError):
                        # Redis restarted, its script cache empty: load it, write again.
                        await self.load_script()
                    elif appended == _ENDED_ELSEWHERE:
                        await self._ended_elsewhere(run)
                    elif (refusal is None and done) and (
                        appended == 0 or await self._still_running(run)
                    ):
                        await self._finish_record(run)
                except (RedisError, OSError) as exc:
                    self._connection.lost(exc)
                    refusal = exc
                if refusal is not None:
                    store_writer.failed()
                    # The same write goes again: at once once the script is loaded again;
                    # after a wait when Redis is away, or full (OOM under noeviction) or
                    # refused it otherwise, until it is taken.
                    if not isinstance(refusal, NoScriptError):
                        if isinstance(refusal, ResponseError) and not refused:
                            refused = True
                            logger.warning(
                                "run %s: Redis refused a write (%s); writing it again",
                                *(run.id, reason(refusal)),
                            )
                        await backoff.wait()
                    # Meanwhile the run is held back for this writer (StoreWriter), so the
                    # memory log still keeps what waits here; put_back drops only what it
                    # no longer keeps, once the writer has been let go.
                    if batch is not None:
                        log.put_back(batch)
                    log.ready.set()
                    continue
                if refused:
                    logger.info("run %s: Redis took its writes again", run.id)
                    refused = False
                backoff.reset()
                store_writer.wrote(batch.last if batch is not None else store_writer.position)
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

    async def _ended_elsewhere(self, run: ExecutedRun) -> None:
        """Another node took this one for dead and ended ``run`` (``node_lost``): its
        record keeps that story, and the run ends here with the same error."""
        raw = await self._connection.redis.hget(self._keys.run(run.id), "error")
        try:
            error = json.loads(raw) if raw else None
        except ValueError:
            error = None
        if not isinstance(error, dict):
            error = {"type": "node_lost", "message": "another node ended this run"}
        if self.host is not None:
            self.host.end_with(run, error)

    async def _still_running(self, run: ExecutedRun) -> bool:
        # Refused ids: a retry of a write that arrived (the record still says running),
        # or another node ended the run with node_lost (its record must stay).
        status = await self._connection.redis.hget(self._keys.run(run.id), "status")
        return bool(status == b"running")

    async def _finish_record(self, run: ExecutedRun) -> None:
        """The run's final record, and its keys' expiry (after its terminal event is in)."""
        keep = max(1, int(self._config.keep_seconds))
        pipe = self._connection.redis.pipeline(transaction=False)
        pipe.hset(self._keys.run(run.id), mapping=record_of(run, self._node))
        pipe.srem(self._keys.running, run.id)
        pipe.expire(self._keys.run(run.id), keep)
        pipe.expire(self._keys.events(run.id), keep)
        await pipe.execute()

    async def followers_elsewhere(self, run: ExecutedRun) -> int:
        """The followers other nodes have on ``run``: each node counts its own (a field
        ``followers:<node>`` of the run's record), and a node that is gone counts none."""
        redis = self._connection.redis
        fields = await redis.hgetall(self._keys.run(run.id))
        counts = {
            key.decode().removeprefix("followers:"): int(value)
            for key, value in fields.items()
            if key.startswith(b"followers:") and int(value) > 0
        }
        if not counts:
            return 0
        pipe = redis.pipeline(transaction=False)
        for node in counts:
            pipe.exists(self._keys.node(node))
        alive = await pipe.execute()
        return sum(count for count, up in zip(counts.values(), alive, strict=True) if up)
