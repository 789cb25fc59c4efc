"""Other nodes' runs, followed here: found by id, listed, and fed from their streams by
one reader task per run, whatever the number of followers here."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from redis.exceptions import RedisError

from ..config import ServerConfig
from ..run import FollowedRun, RunRecord
from ..store import RunHost
from .connection import Backoff, Connection
from .control import ControlChannel
from .keys import Keys, is_run_id
from .logs import STORED_READS, FollowedEventLog, read_entries
from .records import FOLLOWED_FIELDS, LISTED_FIELDS, OUTCOME_FIELDS, listed_record, update

__all__ = ["Following"]

#: The most entries one XREAD returns to a following node.
_READ_ENTRIES = 64
#: XREAD BLOCK's wait, after which a reader checks that its run still exists.
_READ_BLOCK_MS = 1000
#: How long a resume on another node waits for the events its Last-Event-ID names.
_REACH_WAIT_S = 2.0

# Where a run's stream begins and ends, without its entries' frames (a run of
# multi-megabyte messages is asked about by every request for it): the id of its oldest
# kept event (the first entry's `first`, or the entry's id when it holds one event), that
# of its newest, and 1 if the newest is the terminal event; false for no stream.
_ENDS_LUA = """
local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
if not oldest then return false end
local first = tonumber(string.match(oldest[1], '^%d+'))
for i = 1, #oldest[2], 2 do
  if oldest[2][i] == 'first' then first = tonumber(oldest[2][i + 1]) end
end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
local ended = 0
for i = 1, #newest[2], 2 do
  if newest[2][i] == 'end' then ended = 1 end
end
return {first, tonumber(string.match(newest[1], '^%d+')), ended}
"""


class Following:
    """What this node sees of the runs other nodes execute."""

    def __init__(
        self,
        connection: Connection,
        keys: Keys,
        config: ServerConfig,
        node: str,
        control: ControlChannel,
    ) -> None:
        self._connection = connection
        self._control = control
        self._keys = keys
        self._config = config
        self._node = node
        #: The node's run manager (``bind``), whose clock the followers here run on.
        self.host: RunHost | None = None
        #: The runs followed here (or just asked about), and each one's reader.
        self._followed: dict[str, FollowedRun] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}
        #: Set as the store closes: this node's followers of other nodes' runs are leaving.
        self._leaving = False
        #: Bounds the stream reads of old events under way at once, whatever the runs.
        self._stream_reads = asyncio.Semaphore(STORED_READS)

    async def find(self, run_id: str, *, outcome: bool = True) -> FollowedRun | None:
        if not is_run_id(run_id):
            return None
        names = FOLLOWED_FIELDS + OUTCOME_FIELDS if outcome else FOLLOWED_FIELDS
        pipe = self._connection.redis.pipeline(transaction=False)
        pipe.hmget(self._keys.run(run_id), *names)
        pipe.eval(_ENDS_LUA, 1, self._keys.events(run_id))
        try:
            values, ends = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise self._connection.unavailable(exc) from None
        if values[0] is None:
            return None  # no record (or one without its endpoint: not a run's)
        fields = {name: value.decode() for name, value in zip(names, values, strict=True) if value}
        if fields.get("node") == self._node:
            return None  # this node's run that it has forgotten: its own index is the truth
        # Where the run is, by its stream when it has one (its end may be written a moment
        # before its record says so), else by its record.
        last_seq = max(int(fields.get("last_seq") or 0), int(ends[1]) if ends else 0)
        ended = fields.get("status", "running") != "running" or bool(ends and ends[2])
        run = self._followed.get(run_id)
        if run is None:
            run = self._follow(run_id, fields, last_seq, int(ends[0]) if ends else None, ended)
        elif run_id not in self._readers:
            # Asked about before, and followed by no reader since: brought up to date
            # (another node may have ended it meanwhile).
            assert isinstance(run.log, FollowedEventLog)
            run.log.advance(last_seq, ended)
        update(run, fields)
        return run

    def _follow(
        self,
        run_id: str,
        fields: dict[str, str],
        last_seq: int,
        first_kept: int | None,
        ended: bool,
    ) -> FollowedRun:
        log = FollowedEventLog(
            self._config.log_max_bytes,
            self._connection.redis,
            self._keys.events(run_id),
            last_seq,
            first_kept if first_kept is not None else last_seq + 1,
            closed=ended,
            reads=self._stream_reads,
        )
        run = FollowedRun(
            id=run_id,
            endpoint_name=fields.get("endpoint", ""),
            params=json.loads(fields.get("params") or "{}"),
            log=log,
            created=float(fields.get("created") or 0),
            clock=self.host.clock if self.host is not None else None,
            stall=self._config.follower_stall,
        )
        self._followed[run_id] = run
        return run

    async def others(self, exclude: set[str]) -> list[RunRecord]:
        redis = self._connection.redis
        try:
            ids = [i.decode() for i in await redis.zrevrange(self._keys.index, 0, -1)]
            others = [i for i in ids if i not in exclude]
            pipe = redis.pipeline(transaction=False)
            for run_id in others:
                pipe.hmget(self._keys.run(run_id), *LISTED_FIELDS)
            rows = await pipe.execute() if others else []
        except (RedisError, OSError) as exc:
            raise self._connection.unavailable(exc) from None
        records = []
        gone = []
        for run_id, row in zip(others, rows, strict=True):
            if row[0] is None:
                gone.append(run_id)  # expired: its index entry goes too
                continue
            fields = dict(zip(LISTED_FIELDS, (v.decode() if v else "" for v in row), strict=True))
            if fields["node"] == self._node:
                continue  # this node forgot it: its own list is the truth
            records.append(listed_record(run_id, fields))
        if gone:
            with contextlib.suppress(RedisError, OSError):
                await redis.zrem(self._keys.index, *gone)
        return records

    def followed(self, run: FollowedRun, change: int) -> None:
        """A follower here of ``run`` came (+1) or went (-1)."""
        if change > 0 and run.id not in self._readers and not run.log.closed and not self._leaving:
            self._readers[run.id] = asyncio.get_running_loop().create_task(
                self._feed(run), name=f"run {run.id} from Redis"
            )
        if change < 0 and not run.delivery.followers:
            reader = self._readers.pop(run.id, None)
            if reader is not None:
                reader.cancel()
            self._followed.pop(run.id, None)
        if not self._leaving:  # closing: leave() counted them all
            self._connection.spawn(self._count_followers(run.id, change))

    def cancel(self, run: FollowedRun) -> None:
        """Ask the node that executes ``run`` to cancel it."""
        self._connection.spawn(self._control.publish("cancel", run.id))

    async def _count_followers(self, run_id: str, change: int) -> None:
        """Add ``change`` to this node's count of followers of ``run_id`` (a field of the
        run's record of its own, which stops counting when this node is gone); when none
        is left, its node hears so at once."""
        with contextlib.suppress(RedisError, OSError):
            count = await self._connection.redis.hincrby(
                self._keys.run(run_id), f"followers:{self._node}", change
            )
            if change < 0 and count <= 0:
                await self._control.publish("unfollowed", run_id)

    async def leave(self) -> list[str]:
        """This node stops serving other nodes' runs: their followers here are cut now, so
        their clients resume on another node at once, rather than wait in silence through
        the server's shutdown. The ids of the runs nobody here follows any more."""
        self._leaving = True
        counts = []
        for run in self._followed.values():
            if run.delivery.followers:
                counts.append(self._count_followers(run.id, -len(run.delivery.followers)))
            for follower in list(run.delivery.followers):
                follower.leave()
        # Counted gone here, all at once: they detach one by one later, when nothing can
        # reach Redis any more, and a count left too high would keep the executing node
        # from ever cancelling a run its caller abandoned.
        await asyncio.gather(*counts)
        return list(self._followed)

    def readers(self) -> list[asyncio.Task[None]]:
        return list(self._readers.values())

    def drop_idle(self) -> None:
        """Forget the runs asked about that nobody here follows."""
        for run_id, run in list(self._followed.items()):
            if not run.delivery.followers and run_id not in self._readers:
                del self._followed[run_id]

    async def reach(self, run: FollowedRun, seq: int) -> None:
        log = run.log
        assert isinstance(log, FollowedEventLog)
        events = self._keys.events(run.id)
        redis = self._connection.redis
        deadline = time.monotonic() + _REACH_WAIT_S
        try:
            ends = await redis.eval(_ENDS_LUA, 1, events)
            while True:
                if ends:
                    log.advance(int(ends[1]), bool(ends[2]))
                left = deadline - time.monotonic()
                if log.last_seq >= seq or log.closed or left <= 0:
                    return
                # Wait for the next entry (XREAD BLOCK from the newest known), not poll:
                # a resume far ahead of its run costs a few commands, not hundreds.
                await redis.xread(
                    {events: f"{log.last_seq}-0"}, count=1, block=int(left * 1000) + 1
                )
                ends = await redis.eval(_ENDS_LUA, 1, events)
        except (RedisError, OSError) as exc:
            raise self._connection.unavailable(exc) from None

    async def _feed(self, run: FollowedRun) -> None:
        """The one reader of ``run``'s stream on this node, for all its followers here."""
        log = run.log
        assert isinstance(log, FollowedEventLog)
        events = self._keys.events(run.id)
        backoff = Backoff()
        pool = self._connection.redis.connection_pool
        connection: Any = None
        try:
            # Each XREAD BLOCK returns the entries that arrived since: a sparse stream's
            # event, a firehose's batches (each one entry, as its node wrote it) whole.
            # On a connection of its own, with no redis-py command machinery per read (a
            # sparse stream pays it on every event; see Connection.send).
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
                        if not await self._connection.redis.exists(self._keys.run(run.id)):
                            log.end_unseen()
                            run.delivery.ended()
                            return
                        continue
                except (RedisError, OSError) as exc:
                    self._connection.lost(exc)
                    if connection is not None:
                        await pool.release(connection)  # dropped by the failed read
                        connection = None
                    await backoff.wait()
                    continue
                backoff.reset()
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
