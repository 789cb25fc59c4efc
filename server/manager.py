"""The run manager: starts runs, tracks who follows them, cancels and forgets them."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import secrets
import time
from typing import Any

from .clock import StallClock
from .config import ServerConfig
from .context import RunContext
from .follower import Follower
from .framing import (
    CANCELLED,
    END,
    ERROR,
    NotJSONSerialisable,
    cancelled_data,
    end_data,
    failed_data,
    to_json,
)
from .params import ParamsInvalid
from .registry import Endpoint
from .resources import OpenResources
from .run import ExecutedRun, FollowedRun, Run, RunRecord
from .store import MemoryRunStore, RunStore, SharedRuns

__all__ = ["RunManager", "ServerClosing", "TooManyRuns"]

logger = logging.getLogger("streambind.server")


def _abandoned(run: ExecutedRun) -> str:
    # A run whose caller left before learning its id has no grace period (api.start_run).
    return "caller_left" if run.grace_period == 0 else "abandoned"


class TooManyRuns(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        runs = "1 run is" if limit == 1 else f"{limit} runs are"
        super().__init__(f"{runs} already running; try again shortly")


class ServerClosing(Exception):
    pass


class RunManager:
    """Starts runs, tracks who follows them, cancels abandoned ones, forgets old ones."""

    def __init__(self, config: ServerConfig, store: RunStore | None = None) -> None:
        self.config = config
        #: What other nodes see of this node's runs, and how this one sees theirs.
        self.store: RunStore = store if store is not None else MemoryRunStore(config)
        #: The store's part shared with other nodes (None: this node shares nothing).
        self.shared: SharedRuns | None = self.store.shared
        if self.shared is not None:
            self.shared.bind(self)
        self._runs: dict[str, ExecutedRun] = {}
        self._running = 0
        #: The finished runs the index keeps, the longest finished first (to forget).
        self._finished: dict[str, ExecutedRun] = {}
        #: The finished runs whose logs are held, the longest finished first (to release),
        #: each with its log's size: a finished run's log no longer grows.
        self._held: dict[str, int] = {}
        self._held_bytes = 0
        #: Every follower of every run, kept or already forgotten by the index.
        self._followers: set[Follower] = set()
        #: When each follower is next due a look: a ping (its last write plus the ping
        #: interval) and a stall check (its last progress plus the stall time). Entries go
        #: stale as followers write; a stale one is pushed again when it comes up, so each
        #: sweep looks only at what is due, not at every follower.
        self._ping_due: list[tuple[float, int, Follower]] = []
        self._stall_due: list[tuple[float, int, Follower]] = []
        self._pushed = itertools.count()
        self._closing = False
        self._background: list[asyncio.Task[None]] = []
        #: Grace periods that ended, asking the shared store about followers elsewhere.
        self._checks: set[asyncio.Task[None]] = set()
        #: Measures followers' progress in time this process really ran (see clock.py).
        self.clock = StallClock()
        #: The served modules' resources, open while serving (the app opens and closes
        #: them); each run's context hands them to its workflow (``ctx.resource``).
        self.resources = OpenResources()

    def start_background(self) -> None:
        """Start the tasks that look after every stream: the clock, pings, stalled followers."""
        if not self._background:
            loop = asyncio.get_running_loop()
            self._background = [
                loop.create_task(self.clock.tick()),
                loop.create_task(self._ping_quiet_streams()),
                loop.create_task(self._let_go_of_stalled_followers()),
            ]

    async def _ping_quiet_streams(self) -> None:
        # One sweep a second (or faster for short intervals) instead of a timer per
        # waiting follower, looking only at the followers whose ping is due.
        interval = self.config.ping_interval
        tick = min(1.0, interval / 4)
        while True:
            await asyncio.sleep(tick)
            await self.ping_due(time.monotonic())

    async def ping_due(self, now: float) -> int:
        """Ping the followers silent for the ping interval; how many were looked at."""
        interval = self.config.ping_interval
        due = self._ping_due
        looked = 0
        while due and due[0][0] <= now:
            _, _, follower = heapq.heappop(due)
            if follower not in self._followers:
                continue  # it left
            looked += 1
            if follower.wrote_at + interval <= now:
                await follower.ping_if_quiet(now, interval)
            # Due again an interval after its last write (the ping, or what it wrote since).
            when = max(follower.wrote_at + interval, now + interval / 4)
            heapq.heappush(due, (when, next(self._pushed), follower))
        return looked

    async def _let_go_of_stalled_followers(self) -> None:
        # Backpressure lets go of a follower that holds a running workflow back; this
        # sweep catches the rest: one stalled on a write after the run has ended, or on
        # a run whose workflow has no reason to wait. Either way it would hold its
        # connection, and the run's log through it, for as long as the client likes.
        stall = self.config.follower_stall
        while True:
            await asyncio.sleep(max(0.05, min(0.5, stall / 4)))
            self.check_stalls(self.clock.now())
            self._bound_kept_logs()

    def check_stalls(self, now: float) -> int:
        """Let go of the followers stalled for the stall time; how many were looked at."""
        stall = self.config.follower_stall
        due = self._stall_due
        looked = 0
        while due and due[0][0] <= now:
            _, _, follower = heapq.heappop(due)
            if follower not in self._followers or follower.was_let_go:
                continue
            looked += 1
            if follower.stalled(now, stall):
                follower.let_go()
                continue
            # Not stalled: due again a stall time after its latest progress (or from now,
            # while it waits for the workflow, which is not stalling).
            when = max(follower.progressed_at + stall, now + stall / 4)
            heapq.heappush(due, (when, next(self._pushed), follower))
        return looked

    # -- starting and finding -------------------------------------------------

    def start(self, endpoint: Endpoint, params: dict[str, Any]) -> ExecutedRun:
        """Start a run; its caller attaches as its first follower before anything runs."""
        if self._closing:
            raise ServerClosing("the server is shutting down")
        self._forget_old_runs()
        if self._running >= self.config.max_runs:
            raise TooManyRuns(self.config.max_runs)
        run_id = secrets.token_hex(8)
        run = ExecutedRun(
            id=run_id,
            endpoint_name=endpoint.name,
            endpoint=endpoint,
            params=params,
            log=self.store.new_log(run_id),
            clock=self.clock,
            stall=self.config.follower_stall,
            node=self.shared.node if self.shared is not None else None,
        )
        self._runs[run.id] = run
        self._running += 1
        if self.shared is not None:
            self.shared.started(run)
        run.task = asyncio.get_running_loop().create_task(
            self._execute(run), name=f"run {run.id} ({endpoint.name})"
        )
        logger.info("run %s started: %s %s", run.id, endpoint.name, json.dumps(params))
        return run

    def get(self, run_id: str) -> ExecutedRun | None:
        return self._runs.get(run_id)

    async def find(self, run_id: str) -> Run | None:
        """The run, whichever node executes it (this one's answer first)."""
        run = self._runs.get(run_id)
        if run is not None or self.shared is None:
            return run
        return await self.shared.find(run_id)

    async def reach(self, run: Run, seq: int) -> None:
        """Wait, briefly, until event ``seq`` of ``run`` is here to read: at once for a run
        executed here; for another node's, until the shared store has it."""
        if isinstance(run, FollowedRun) and self.shared is not None:
            await self.shared.reach(run, seq)

    async def announced(self, run: ExecutedRun) -> None:
        """Wait until other nodes can find ``run`` (at once when nothing is shared)."""
        if self.shared is not None:
            await self.shared.announced(run)

    def kept_runs(self) -> list[ExecutedRun]:
        """This node's runs the index keeps, newest first."""
        self._forget_old_runs()
        return list(reversed(self._runs.values()))

    async def records(self) -> list[RunRecord]:
        """Every run's record, newest first, this node's and (with a shared store) the others'."""
        records = [run.record() for run in self.kept_runs()]
        if self.shared is None:
            return records
        records += await self.shared.others(exclude=set(self._runs))
        records.sort(key=lambda record: record.created, reverse=True)
        return records

    @property
    def closing(self) -> bool:
        """Whether new runs are refused: the server is draining or shutting down."""
        return self._closing

    def running_count(self) -> int:
        return self._running

    # -- followers ------------------------------------------------------------

    def attach(self, run: Run, follower: Follower) -> None:
        run.delivery.attach(follower)
        self._followers.add(follower)
        count = next(self._pushed)
        heapq.heappush(
            self._ping_due, (follower.wrote_at + self.config.ping_interval, count, follower)
        )
        heapq.heappush(
            self._stall_due, (follower.progressed_at + self.config.follower_stall, count, follower)
        )
        if isinstance(run, ExecutedRun):
            if run.grace is not None:
                run.grace.cancel()
                run.grace = None
        elif isinstance(run, FollowedRun) and self.shared is not None:
            self.shared.followed(run, +1)

    def detach(self, run: Run, follower: Follower) -> None:
        run.delivery.detach(follower)
        self._followers.discard(follower)
        if isinstance(run, ExecutedRun):
            self.unfollowed(run)
        elif isinstance(run, FollowedRun) and self.shared is not None:
            self.shared.followed(run, -1)

    def unfollowed(self, run: ExecutedRun) -> None:
        """Start the detach grace period of this node's ``run`` if nobody here follows it."""
        if run.delivery.followers or not run.running or run.grace is not None:
            return
        grace = self._grace_of(run)
        logger.info(
            "run %s has no follower; cancelling it in %gs unless one returns", run.id, grace
        )
        run.grace = asyncio.get_running_loop().call_later(grace, self._abandon, run)

    def _grace_of(self, run: ExecutedRun) -> float:
        return self.config.detach_grace if run.grace_period is None else run.grace_period

    def _abandon(self, run: ExecutedRun) -> None:
        run.grace = None
        if run.delivery.followers or not run.running:
            return
        if self.shared is not None:
            # Followers on other nodes count too: ask the store before cancelling.
            task = asyncio.get_running_loop().create_task(self._abandon_if_unfollowed(run))
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)
            return
        logger.info("run %s: nobody followed it within the grace period; cancelling", run.id)
        self.cancel(run, _abandoned(run))

    async def _abandon_if_unfollowed(self, run: ExecutedRun) -> None:
        assert self.shared is not None
        try:
            elsewhere = await self.shared.followers_elsewhere(run)
        except Exception:
            logger.warning("run %s: the store cannot say who follows it; keeping it", run.id)
            return
        if run.delivery.followers or not run.running:
            return
        if elsewhere:
            # Followed on another node: its last follower there that leaves starts the
            # grace again; a node that dies cannot say so, so look again a grace later.
            if run.grace is None:
                loop = asyncio.get_running_loop()
                run.grace = loop.call_later(self._grace_of(run), self._abandon, run)
            return
        logger.info("run %s: nobody followed it within the grace period; cancelling", run.id)
        self.cancel(run, _abandoned(run))

    # -- ending ---------------------------------------------------------------

    def cancel(self, run: Run, reason: str = "requested") -> bool:
        """Ask a running run to stop, saying why (``framing.CANCEL_REASONS``); False if it
        had already finished."""
        if isinstance(run, FollowedRun):
            if run.running and self.shared is not None:
                self.shared.cancel_elsewhere(run)
                return True
            return False
        assert isinstance(run, ExecutedRun)
        if not run.running or run.task is None:
            return False
        run.cancel_reason = run.cancel_reason or reason
        run.task.cancel()
        return True

    async def drain(self, timeout: float) -> None:
        """Refuse new runs and let the running ones finish, for up to ``timeout`` seconds."""
        self._closing = True
        tasks = [r.task for r in self._runs.values() if r.running and r.task is not None]
        if tasks and timeout > 0:
            logger.info("draining: waiting up to %gs for %d running runs", timeout, len(tasks))
            await asyncio.wait(tasks, timeout=timeout)

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel every running run and wait for their terminal events."""
        self._closing = True
        for task in self._background:
            task.cancel()
        running = [r for r in self._runs.values() if r.running and r.task is not None]
        for run in running:
            self.cancel(run, "shutdown")
        tasks = [r.task for r in running if r.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        await self.store.close()

    async def _execute(self, run: ExecutedRun) -> None:
        ctx = RunContext(run, self.config, self.resources)
        try:
            try:
                result = await run.endpoint.fn(ctx, **run.params)
            except asyncio.CancelledError:
                run.status = "cancelled"
                run.end(CANCELLED, cancelled_data(run.cancel_reason or "requested"))
                return
            except ParamsInvalid as exc:
                logger.info("run %s refused its parameters: %s", run.id, exc.fields)
                self._fail(run, exc)
                return
            except Exception as exc:
                logger.exception("run %s (%s) failed", run.id, run.endpoint.name)
                self._fail(run, exc)
                return
            try:
                result_json = to_json(result)
            except NotJSONSerialisable as exc:
                logger.error("run %s (%s): result is not JSON: %s", run.id, run.endpoint.name, exc)
                self._fail(run, TypeError(f"the workflow's return value: {exc}"))
                return
            run.result_json = result_json
            run.status = "succeeded"
            run.end(END, end_data(result_json))
        finally:
            run.finished = time.time()
            if run.grace is not None:
                run.grace.cancel()
                run.grace = None
            logger.info("run %s %s after %d messages", run.id, run.status, run.messages)
            self._running -= 1
            self._finished[run.id] = run
            size = run.log.size_bytes
            self._held[run.id] = size
            self._held_bytes += size
            if self.shared is not None:
                self.shared.finished(run)
            self._bound_kept_logs()

    def _fail(self, run: ExecutedRun, exc: BaseException) -> None:
        error: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc) or "(no message)"}
        if isinstance(exc, ParamsInvalid):
            error = {"type": "invalid_params", "message": str(exc), "fields": exc.fields}
        run.error = error
        run.status = "failed"
        run.end(ERROR, failed_data(error))

    def _forget_old_runs(self) -> None:
        """Forget the finished runs beyond the newest ``keep_runs`` or older than
        ``keep_seconds``: the longest finished first, so each call looks only at those."""
        # Followers do not keep a run in the index: a follower stalled for the stall time
        # is let go anyway, and the limits must hold whatever clients do.
        finished = self._finished
        cutoff = time.time() - self.config.keep_seconds
        while finished:
            run = next(iter(finished.values()))
            expired = run.finished is not None and run.finished < cutoff
            if len(finished) <= self.config.keep_runs and not expired:
                return
            del finished[run.id]
            del self._runs[run.id]
            self._release(run)
            if self.shared is not None:
                self.shared.forgotten(run)

    def _release(self, run: ExecutedRun) -> None:
        self._held_bytes -= self._held.pop(run.id, 0)
        run.log.release()

    def kept_log_bytes(self) -> int:
        """The memory the logs of finished runs hold, as their logs counted it at the end."""
        return self._held_bytes

    def _bound_kept_logs(self) -> None:
        """Keep the logs of finished runs within ``max_log_memory``, releasing the oldest.

        A released run keeps its record and result (``GET /api/runs/{id}``); a request
        for its events is answered ``410 events_gone``.
        """
        limit = self.config.max_log_memory
        if self._held_bytes <= limit:
            return
        releasable = []
        total = self._held_bytes
        for run_id, size in self._held.items():  # the longest finished first
            if total <= limit:
                break
            run = self._runs[run_id]
            # Never under a follower still writing it out: that one is let go first
            # if it makes no progress, and a later look releases the log then.
            if not run.delivery.followers:
                releasable.append(run)
                total -= size
        for run in releasable:
            self._release(run)
