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

from .client_log import RateLimitedLog
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
from .resources import OpenResources, ResourceUnavailable
from .run import Run
from .store import MemoryRunStore, RunStore

__all__ = ["RunManager", "ServerClosing", "TooManyRuns"]

logger = logging.getLogger("streambind.server")


def _abandoned(run: Run) -> str:
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
        self.store.bind(self)
        self._runs: dict[str, Run] = {}
        self._running = 0
        #: The finished runs the index keeps, the longest finished first (to forget).
        self._finished: dict[str, Run] = {}
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
        #: Runs that failed: any client can start any number, so their log lines are
        #: bounded like the clients' mistakes (tracebacks beyond the burst, one line each).
        self._failures = RateLimitedLog(logger, kind="failed runs' tracebacks")
        self._unavailable = RateLimitedLog(logger, kind="runs failed for a resource")

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

    def start(self, endpoint: Endpoint, params: dict[str, Any]) -> Run:
        """Start a run; its caller attaches as its first follower before anything runs."""
        if self._closing:
            raise ServerClosing("the server is shutting down")
        self._forget_old_runs()
        if self._running >= self.config.max_runs:
            raise TooManyRuns(self.config.max_runs)
        run_id = secrets.token_hex(8)
        run = Run(
            id=run_id,
            endpoint=endpoint,
            params=params,
            log=self.store.new_log(run_id),
            clock=self.clock,
            stall=self.config.follower_stall,
            node=self.store.node,
        )
        self._runs[run.id] = run
        self._running += 1
        self.store.started(run)
        run.task = asyncio.get_running_loop().create_task(
            self._execute(run), name=f"run {run.id} ({endpoint.name})"
        )
        logger.info("run %s started: %s %s", run.id, endpoint.name, json.dumps(params))
        return run

    def get(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

    async def find(self, run_id: str) -> Run | None:
        """The run, whichever node executes it (this one's answer first)."""
        run = self._runs.get(run_id)
        if run is not None:
            return run
        return await self.store.find(run_id)

    def kept_runs(self) -> list[Run]:
        """This node's runs the index keeps, newest first."""
        self._forget_old_runs()
        return list(reversed(self._runs.values()))

    async def summaries(self) -> list[dict[str, Any]]:
        """Every run's summary, newest first, this node's and (with a shared store) the others'."""
        return await self.store.summaries(self.kept_runs())

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
        if run.elsewhere:
            self.store.followed(run, +1)
            return
        if run.grace is not None:
            run.grace.cancel()
            run.grace = None

    def detach(self, run: Run, follower: Follower) -> None:
        run.delivery.detach(follower)
        self._followers.discard(follower)
        if run.elsewhere:
            self.store.followed(run, -1)
            return
        self.unfollowed(run)

    def unfollowed(self, run: Run) -> None:
        """Start the detach grace period of this node's ``run`` if nobody here follows it."""
        if run.delivery.followers or not run.running or run.grace is not None:
            return
        grace = self.config.detach_grace if run.grace_period is None else run.grace_period
        logger.info(
            "run %s has no follower; cancelling it in %gs unless one returns", run.id, grace
        )
        run.grace = asyncio.get_running_loop().call_later(grace, self._abandon, run)

    def _abandon(self, run: Run) -> None:
        run.grace = None
        if run.delivery.followers or not run.running:
            return
        if self.store.node is not None:
            # Followers on other nodes count too: ask the store before cancelling.
            task = asyncio.get_running_loop().create_task(self._abandon_if_unfollowed(run))
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)
            return
        logger.info("run %s: nobody followed it within the grace period; cancelling", run.id)
        self.cancel(run, _abandoned(run))

    async def _abandon_if_unfollowed(self, run: Run) -> None:
        try:
            elsewhere = await self.store.followers_elsewhere(run)
        except Exception:
            logger.warning("run %s: the store cannot say who follows it; keeping it", run.id)
            return
        if elsewhere or run.delivery.followers or not run.running:
            return  # the last follower elsewhere that leaves starts the grace again
        logger.info("run %s: nobody followed it within the grace period; cancelling", run.id)
        self.cancel(run, _abandoned(run))

    # -- ending ---------------------------------------------------------------

    def cancel(self, run: Run, reason: str = "requested") -> bool:
        """Ask a running run to stop, saying why (``framing.CANCEL_REASONS``); False if it
        had already finished."""
        if run.elsewhere and run.running:
            self.store.cancel_elsewhere(run)
            return True
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

    async def _execute(self, run: Run) -> None:
        ctx = RunContext(run, self.config, self.resources)
        try:
            try:
                result = await run.endpoint.fn(ctx, **run.params)
            except asyncio.CancelledError:
                run.status = "cancelled"
                run.end(CANCELLED, cancelled_data(run.cancel_reason or "requested"))
                return
            except ParamsInvalid as exc:
                # Refusals the workflow expects: the client's to fix, one line each.
                logger.info("run %s refused its parameters: %s", run.id, exc.fields)
                self._fail(run, exc)
                return
            except ResourceUnavailable as exc:
                # A database that is down is not a bug: its message says all there is.
                self._unavailable.warning("run %s (%s) failed: %s", run.id, run.endpoint.name, exc)
                self._fail(run, exc)
                return
            except Exception as exc:
                self._failures.exception("run %s (%s) failed", run.id, run.endpoint.name)
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
            self.store.finished(run)
            self._bound_kept_logs()

    def _fail(self, run: Run, exc: BaseException) -> None:
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
            self.store.forgotten(run)

    def _release(self, run: Run) -> None:
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
