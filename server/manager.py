"""The run manager: starts runs, tracks who follows them, cancels and forgets them."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import Any

from .clock import StallClock
from .config import ServerConfig
from .context import RunContext
from .execution import FailureLog, execute
from .follower import Follower
from .kept_logs import KeptLogs
from .registry import Endpoint
from .resources import OpenResources
from .run import ExecutedRun, FollowedRun, Run, RunRecord
from .store import MemoryRunStore, RunStore, SharedRuns
from .sweeps import FollowerSweeps

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
        #: The logs of finished runs, held within ``max_log_memory``.
        self.kept_logs = KeptLogs(config.max_log_memory, self.shared)
        self._failure_log = FailureLog()
        #: The pings and stall checks over every open stream.
        self.sweeps = FollowerSweeps(config.ping_interval, config.follower_stall)
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
            await self.sweeps.ping_due(time.monotonic())

    async def _let_go_of_stalled_followers(self) -> None:
        # Backpressure lets go of a follower that holds a running workflow back; this
        # sweep catches the rest: one stalled on a write after the run has ended, or on
        # a run whose workflow has no reason to wait. Either way it would hold its
        # connection, and the run's log through it, for as long as the client likes.
        stall = self.config.follower_stall
        while True:
            await asyncio.sleep(max(0.05, min(0.5, stall / 4)))
            self.sweeps.check_stalls(self.clock.now())
            self.kept_logs.bound()

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

    async def find(self, run_id: str, *, outcome: bool = True) -> Run | None:
        """The run, whichever node executes it (this one's answer first); without
        ``outcome``, another node's run comes without its last message and result."""
        run = self._runs.get(run_id)
        if run is not None or self.shared is None:
            return run
        return await self.shared.find(run_id, outcome=outcome)

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
        self.sweeps.add(follower)
        if isinstance(run, ExecutedRun):
            if run.grace is not None:
                run.grace.cancel()
                run.grace = None
        elif isinstance(run, FollowedRun) and self.shared is not None:
            self.shared.followed(run, +1)

    def detach(self, run: Run, follower: Follower) -> None:
        run.delivery.detach(follower)
        self.sweeps.discard(follower)
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

    def end_with(self, run: ExecutedRun, error: dict[str, Any]) -> None:
        if run.running and run.task is not None and run.imposed_error is None:
            logger.warning(
                "run %s ends with %s: %s", run.id, error.get("type"), error.get("message")
            )
            run.imposed_error = error
            run.task.cancel()

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
        try:
            await execute(run, RunContext(run, self.config, self.resources), self._failure_log)
        finally:
            run.finished = time.time()
            if run.grace is not None:
                run.grace.cancel()
                run.grace = None
            logger.info("run %s %s after %d messages", run.id, run.status, run.messages)
            self._running -= 1
            self._finished[run.id] = run
            if self.shared is not None:
                self.shared.finished(run)
            self.kept_logs.hold(run)

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
            self.kept_logs.forget(run)
            if self.shared is not None:
                self.shared.forgotten(run)
