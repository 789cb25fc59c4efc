"""Runs: one task per workflow call, its event log, its followers, and how long it is kept."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from .config import ServerConfig
from .eventlog import EventLog, MemoryEventLog
from .framing import NotJSONSerialisable, to_json
from .framing import json_parts as _json_parts
from .params import ParamsInvalid
from .registry import Endpoint

__all__ = ["Run", "RunContext", "RunManager", "ServerClosing", "TooManyRuns"]

logger = logging.getLogger("streambind.server")

# A workflow that sends in a tight loop never suspends on its own; ctx.send
# yields to the event loop this often so streams are written and cancellation
# is delivered while it runs.
_YIELD_EVERY_S = 0.002
# Sends closer together than this make a dense stream: events are then written by
# each follower's task in batches, not one system call per event and follower.
_DENSE_S = 0.001


class TooManyRuns(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"{limit} runs are already running; try again shortly")


class ServerClosing(Exception):
    pass


@dataclass(eq=False)
class Run:
    id: str
    endpoint: Endpoint
    params: dict[str, Any]
    log: EventLog
    created: float = field(default_factory=time.time)
    finished: float | None = None
    status: str = "running"
    result_json: str | None = None
    error: dict[str, Any] | None = None
    messages: int = 0
    last_message_json: str | None = None
    #: Every response following the run, with how far each has got.
    readers: set[Reader] = field(default_factory=set)
    #: Readers that have written everything and wait for the next event (see send).
    live: set[Reader] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    _grace: asyncio.TimerHandle | None = None
    _progress: asyncio.Future[None] | None = None

    def wake_followers(self) -> None:
        """Wake every parked follower: there is something for each to write."""
        for reader in list(self.live):
            reader.wake()  # which also takes it out of the parked set

    def note_progress(self) -> None:
        """A reader finished a write: a producer held back for it may go on."""
        waiter = self._progress
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_for_progress(self, timeout: float) -> None:
        if self._progress is None or self._progress.done():
            self._progress = asyncio.get_running_loop().create_future()
        await asyncio.wait([self._progress], timeout=timeout)

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def followers(self) -> int:
        return len(self.readers)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "endpoint": self.endpoint.name,
            "params": self.params,
            "status": self.status,
            "created": _iso(self.created),
            "finished": _iso(self.finished) if self.finished is not None else None,
            "events": self.messages,
            "last_message": _loads(self.last_message_json),
        }

    def detail(self) -> dict[str, Any]:
        out = self.summary()
        out["followers"] = self.followers
        out["last_event_id"] = self.log.last_seq
        if self.status == "succeeded":
            out["result"] = _loads(self.result_json)
        if self.error is not None:
            out["error"] = self.error
        return out


class Reader(Protocol):
    """A response following a run, as the run sees it."""

    #: The id of the last event written out completely.
    position: int
    #: When it last finished a write (monotonic seconds).
    progressed_at: float
    #: Let go for holding the run back too long: no longer waited for.
    dropped: bool

    def idle_for(self, seq: int) -> bool:
        """Whether event ``seq`` can be written at once (caught up, socket idle)."""

    async def write_now(self, seq: int, frame: bytes) -> None:
        """Write event ``seq``, which ``idle_for`` accepted."""

    def wake(self) -> None:
        """Let the reader's own task write what has arrived."""

    async def ping_if_quiet(self, now: float, interval: float) -> None:
        """Write a keep-alive comment if nothing was written for ``interval`` seconds."""


class RunContext:
    """What a workflow gets as its first argument."""

    def __init__(self, run: Run, config: ServerConfig) -> None:
        self._run = run
        self._config = config
        self._loop = asyncio.get_running_loop()
        # The workflow's running time is counted in slices: a slice starts at the first
        # send after the workflow has awaited something of its own, and send yields once
        # a slice reaches _YIELD_EVERY_S. A callback queued at each slice's start tells
        # whether the loop has turned since, i.e. whether the workflow has awaited.
        self._awaited = True
        self._next_yield = 0.0
        self._unchecked_bytes = 0
        self._sends = 0
        self._clock_mask = 0  # see send
        self._check_every_bytes = run.log.capacity // 16
        self._last_send = 0.0
        self.run_id = run.id
        self.data_dir = config.data_dir
        #: The built-in workflows' database (workflows.database.Database), open while serving.
        self.database = config.database
        self.logger = logging.getLogger(f"streambind.workflow.{run.endpoint.name}")

    async def send(self, data: Any) -> int:
        """Send one streaming message ("Send streaming response"); return its event id.

        The first call turns the caller's response into a live SSE stream.
        Raises ``TypeError`` if ``data`` is not JSON-serialisable.
        """
        try:
            # to_json's fast path, inlined: this runs once per message.
            text = "".join(_json_parts(data, 0)) if _json_parts is not None else to_json(data)
        except (TypeError, ValueError, RecursionError):
            text = to_json(data)  # raises the documented NotJSONSerialisable
        run = self._run
        seq = run.log.append("message", text)
        run.messages = seq  # every event before the terminal one is a message
        run.last_message_json = text
        # Look for followers to wait for often enough that none can be overtaken by
        # the log's trimming in between (half the log is the most one may lag).
        # (What the log will count for it: the text, its framing and its bookkeeping.)
        self._unchecked_bytes += len(text) + 64
        if self._unchecked_bytes > self._check_every_bytes and run.readers:
            self._unchecked_bytes = 0
            await self._hold_for_slow_readers()
        self._sends += 1
        # The clock is read at every send of a sparse stream, at every 32nd of a dense
        # one (where it would cost more than it tells), and whenever a parked follower
        # may be written to.
        if run.live or not self._sends & self._clock_mask:
            now = time.perf_counter()
            # Dense: the workflow sends in quick succession by its own pace.
            dense = now - self._last_send < _DENSE_S
            self._clock_mask = 31 if dense else 0
            if self._awaited:
                self._start_slice(now)
            if run.live:
                if dense:
                    # Each parked follower's task writes this event together with
                    # the next ones, in one write.
                    run.wake_followers()
                else:
                    await _write_to_idle_followers(run, seq)
            self._last_send = now
            if now >= self._next_yield:
                await asyncio.sleep(0)
                # Measured from the resumption: however long the followers took to
                # write, the workflow then gets a full slice of its own. The pause
                # was send's own, not the workflow's: it starts no slice, and it is
                # no gap between sends.
                self._last_send = time.perf_counter()
                self._start_slice(self._last_send)
        return seq

    def _start_slice(self, now: float) -> None:
        self._awaited = False
        self._next_yield = now + _YIELD_EVERY_S
        self._loop.call_soon(self._note_await)

    def _note_await(self) -> None:
        self._awaited = True

    async def _hold_for_slow_readers(self) -> None:
        """Backpressure: wait while a reader lags more than half the log, if it still reads.

        A reader that takes nothing for ``follower_stall`` seconds is let go: it will
        get the ``fell_behind`` error event, and the others go on at full speed.
        """
        run, log = self._run, self._run.log
        high_water = log.capacity // 2
        stall = self._config.follower_stall
        while True:
            now = time.monotonic()
            lagging = [
                r for r in run.readers if not r.dropped and log.backlog(r.position) > high_water
            ]
            if not lagging:
                return
            for reader in lagging:
                if now - reader.progressed_at >= stall:
                    reader.dropped = True
                    logger.warning(
                        "run %s: a follower took nothing for %gs; it is no longer waited for",
                        run.id,
                        stall,
                    )
            waiting = [r for r in lagging if not r.dropped]
            if not waiting:
                return
            oldest = min(r.progressed_at for r in waiting)
            await run.wait_for_progress(max(0.0, stall - (now - oldest)))


async def _write_to_idle_followers(run: Run, seq: int) -> None:
    """Idle followers of a sparse stream get the event written here, not when their tasks run.

    A follower that cannot take it at once is woken, to write it with the ones that follow.
    """
    frame = run.log.frame(seq)
    for follower in list(run.live):
        if follower.idle_for(seq):
            await follower.write_now(seq, frame)
        else:
            follower.wake()


LogFactory = Callable[[ServerConfig], EventLog]


def memory_log(config: ServerConfig) -> EventLog:
    return MemoryEventLog(config.log_max_bytes)


class RunManager:
    """Starts runs, tracks who follows them, cancels abandoned ones, forgets old ones."""

    def __init__(self, config: ServerConfig, log_factory: LogFactory = memory_log) -> None:
        self.config = config
        self._log_factory = log_factory
        self._runs: dict[str, Run] = {}
        self._closing = False
        self._pinger: asyncio.Task[None] | None = None

    def start_pinger(self) -> None:
        """Keep idle streams alive with ``: ping`` comments (one task for all of them)."""
        if self._pinger is None:
            self._pinger = asyncio.get_running_loop().create_task(self._ping_quiet_streams())

    async def _ping_quiet_streams(self) -> None:
        # One sweep a second (or faster for short intervals) instead of a timer per
        # waiting follower: cheap with thousands of streams, precise to the tick.
        interval = self.config.ping_interval
        tick = min(1.0, interval / 4)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for run in list(self._runs.values()):
                for reader in list(run.readers):
                    await reader.ping_if_quiet(now, interval)

    # -- starting and finding -------------------------------------------------

    def start(self, endpoint: Endpoint, params: dict[str, Any]) -> Run:
        """Start a run; its caller attaches as its first follower before anything runs."""
        if self._closing:
            raise ServerClosing("the server is shutting down")
        self._prune()
        if self.running_count() >= self.config.max_runs:
            raise TooManyRuns(self.config.max_runs)
        run = Run(
            id=secrets.token_hex(8),
            endpoint=endpoint,
            params=params,
            log=self._log_factory(self.config),
        )
        self._runs[run.id] = run
        run.task = asyncio.get_running_loop().create_task(
            self._execute(run), name=f"run {run.id} ({endpoint.name})"
        )
        logger.info("run %s started: %s %s", run.id, endpoint.name, json.dumps(params))
        return run

    def get(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

    def list(self) -> list[Run]:
        self._prune()
        return list(reversed(self._runs.values()))

    def running_count(self) -> int:
        return sum(1 for r in self._runs.values() if r.running)

    # -- followers ------------------------------------------------------------

    def attach(self, run: Run, reader: Reader) -> None:
        run.readers.add(reader)
        if run._grace is not None:
            run._grace.cancel()
            run._grace = None

    def detach(self, run: Run, reader: Reader) -> None:
        run.readers.discard(reader)
        run.live.discard(reader)
        run.note_progress()  # a workflow waiting for this follower need not any more
        if run.readers or not run.running:
            return
        grace = self.config.detach_grace
        logger.info(
            "run %s has no follower; cancelling it in %gs unless one returns", run.id, grace
        )
        run._grace = asyncio.get_running_loop().call_later(grace, self._abandon, run)

    def _abandon(self, run: Run) -> None:
        run._grace = None
        if run.followers == 0 and run.running:
            logger.info("run %s: nobody followed it within the grace period; cancelling", run.id)
            self.cancel(run)

    # -- ending ---------------------------------------------------------------

    def cancel(self, run: Run) -> bool:
        """Ask a running run to stop; False if it had already finished."""
        if not run.running or run.task is None:
            return False
        run.task.cancel()
        return True

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel every running run and wait for their terminal events."""
        self._closing = True
        if self._pinger is not None:
            self._pinger.cancel()
        tasks = [r.task for r in self._runs.values() if r.running and r.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def _execute(self, run: Run) -> None:
        ctx = RunContext(run, self.config)
        try:
            try:
                result = await run.endpoint.fn(ctx, **run.params)
            except asyncio.CancelledError:
                run.status = "cancelled"
                run.log.close("cancelled", '{"status":"cancelled"}')
                return
            except ParamsInvalid as exc:
                logger.info("run %s refused its parameters: %s", run.id, exc.fields)
                await self._fail(run, exc)
                return
            except Exception as exc:
                logger.exception("run %s (%s) failed", run.id, run.endpoint.name)
                await self._fail(run, exc)
                return
            try:
                result_json = to_json(result)
            except NotJSONSerialisable as exc:
                logger.error("run %s (%s): result is not JSON: %s", run.id, run.endpoint.name, exc)
                await self._fail(run, TypeError(f"the workflow's return value: {exc}"))
                return
            run.result_json = result_json
            run.status = "succeeded"
            run.log.close("end", '{"status":"succeeded","result":' + result_json + "}")
        finally:
            run.wake_followers()  # each writes the terminal event and ends
            run.finished = time.time()
            if run._grace is not None:
                run._grace.cancel()
                run._grace = None
            logger.info("run %s %s after %d messages", run.id, run.status, run.messages)

    async def _fail(self, run: Run, exc: BaseException) -> None:
        error: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc) or "(no message)"}
        if isinstance(exc, ParamsInvalid):
            error = {"type": "invalid_params", "message": str(exc), "fields": exc.fields}
        run.error = error
        run.status = "failed"
        run.log.close("error", to_json({"status": "failed", "error": run.error}))

    def _prune(self) -> None:
        finished = [r for r in self._runs.values() if not r.running]
        cutoff = time.time() - self.config.keep_seconds
        excess = len(finished) - self.config.keep_runs
        for run in finished:  # oldest first: dicts keep insertion order
            expired = run.finished is not None and run.finished < cutoff
            if (excess > 0 or expired) and run.followers == 0:
                del self._runs[run.id]
                excess -= 1


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
