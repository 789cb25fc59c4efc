"""Costs that grow with what changed, not with every run or stream: counted, never timed.

A burst of runs ending together, the ping and stall sweeps over thousands of streams, and
the index's pruning each do work in proportion to what they act on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx
import pytest

from streambind.server import ServerConfig
from streambind.server.api import MANAGER
from streambind.server.delivery import Delivery
from streambind.server.eventlog import MemoryEventLog
from streambind.server.manager import RunManager


async def test_runs_ending_together_cost_a_look_each_not_a_sum_over_all(
    start, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    reads = 0
    size_bytes = MemoryEventLog.size_bytes

    def counted(self: MemoryEventLog) -> int:
        nonlocal reads
        reads += 1
        return size_bytes.fget(self)  # type: ignore[attr-defined,no-any-return]

    monkeypatch.setattr(MemoryEventLog, "size_bytes", property(counted))
    server = await start(keep_runs=1000, max_runs=400)
    runs = 300
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        answers = await asyncio.gather(
            *(client.post("/api/endpoints/echo", json={"text": str(i)}) for i in range(runs))
        )
    assert all(a.status_code == 200 for a in answers)
    manager = server.app[MANAGER]
    assert manager.running_count() == 0
    assert len(manager.kept_runs()) == runs
    # Each run's end reads its own log's size once (the old rule summed every finished
    # run's at every end: about runs * runs / 2 = 45,000 reads for 300 runs).
    assert reads <= 3 * runs, reads


@dataclass(eq=False)
class QuietFollower:
    """Just enough of a follower for the sweeps: it waits, silent, and never stalls."""

    wrote_at: float
    progressed_at: float
    position: int = 0
    was_let_go: bool = False
    pings: list[float] = field(default_factory=list)

    async def ping_if_quiet(self, now: float, interval: float) -> None:
        if now - self.wrote_at >= interval:
            self.pings.append(now)
            self.wrote_at = now

    def stalled(self, now: float, stall: float) -> bool:
        return False

    def let_go(self) -> None:
        self.was_let_go = True


async def test_the_sweeps_look_only_at_the_followers_that_are_due() -> None:
    config = ServerConfig(ping_interval=15.0, follower_stall=2.0)
    manager = RunManager(config)
    streams = 5000
    followers = [
        QuietFollower(wrote_at=100.0 + i / 1000, progressed_at=0.0) for i in range(streams)
    ]

    @dataclass(eq=False)
    class AnyRun:
        delivery: Delivery
        elsewhere: bool = False
        grace: object = None

    run = AnyRun(Delivery(MemoryEventLog(), manager.clock, config.follower_stall))
    for follower in followers:
        manager.attach(run, follower)  # type: ignore[arg-type]
    # Before anyone is due, a sweep looks at nobody, however many streams are open.
    assert await manager.sweeps.ping_due(100.0) == 0
    # 14 s later, still nobody; at 115 s the first thousand (written 100.0 to 101.0) are due.
    assert await manager.sweeps.ping_due(114.0) == 0
    looked = await manager.sweeps.ping_due(101.0 + 15.0)
    assert 999 <= looked <= 1001
    assert sum(len(f.pings) for f in followers) == looked
    # A second later, only the next thousand are due; the first are due again at 131 s.
    second = await manager.sweeps.ping_due(117.0)
    assert 999 <= second <= 1001
    assert all(len(f.pings) <= 1 for f in followers)
    # Stall checks: due a stall time after their last progress; again only those.
    assert manager.sweeps.check_stalls(1.0) == 0
    assert manager.sweeps.check_stalls(2.0) == streams  # all made their progress at 0
    assert manager.sweeps.check_stalls(2.1) == 0  # and each is due again later, not every sweep
    assert manager.sweeps.stall_checks_due() == streams
    next_check = manager.sweeps.next_stall_check()
    assert next_check is not None and next_check >= 2.1
