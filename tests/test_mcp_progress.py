"""The rules that turn a run's messages into MCP progress, and the relay that sends them."""

from __future__ import annotations

import asyncio

from streambind.app.mcp.progress_track import ProgressTrack, Tick
from streambind.app.mcp.relay import ProgressRelay


def _ticks(*chunks: object) -> list[tuple[float, float | None, str | None]]:
    track = ProgressTrack()
    return [(t.progress, t.total, t.message) for t in map(track.tick, chunks)]


def test_an_import_counts_its_rows_and_its_publish_step_keeps_the_count() -> None:
    assert _ticks(
        {"step": "import", "done": 0, "total": 40},
        {"step": "import", "done": 40, "total": 40},
        {"step": "publish", "rows": 40},
    ) == [(0, 40, "import"), (40, 40, "import"), (40, 40, "publish")]


def test_each_step_that_counts_again_is_laid_after_the_last_so_nothing_goes_back() -> None:
    # pipeline: an announcement, validate, import, publish, index.
    assert _ticks(
        {"steps": ["validate", "import", "publish", "index"]},
        {"step": "validate", "done": 0, "total": 4},
        {"step": "validate", "done": 4, "total": 4},
        {"step": "import", "done": 0, "total": 4},
        {"step": "import", "done": 2, "total": 4},
        {"step": "publish", "rows": 4},
        {"step": "index", "done": 1, "total": 2},
    ) == [
        (0, None, None),
        (0, 4, "validate"),
        (4, 4, "validate"),
        (4, 8, "import"),
        (6, 8, "import"),
        (6, 8, "publish"),
        (7, 8, "index"),
    ]


def test_a_count_that_restarts_within_a_step_is_laid_after_it_too() -> None:
    assert _ticks({"done": 3, "total": 3}, {"done": 1, "total": 3}) == [(3, 3, None), (4, 6, None)]


def test_a_fraction_or_a_percent_is_progress_of_one() -> None:
    assert _ticks({"progress": 0.25}, {"progress": 0.5}) == [(0.25, 1, None), (0.5, 1, None)]
    assert _ticks({"percent": 40, "step": "render"}) == [(0.4, 1, "render")]


def test_a_text_stream_counts_its_pieces_which_are_the_messages() -> None:
    track = ProgressTrack()
    assert [track.tick({"text": t}) for t in ("Hel", "lo")] == [
        Tick(1, None, "Hel", piece=True),
        Tick(2, None, "lo", piece=True),
    ]


def test_more_done_than_the_total_raises_the_total_with_it() -> None:
    assert _ticks({"done": 12, "total": 10}) == [(12, 12, None)]


def test_many_messages_at_once_read_each_steps_last_and_join_the_text() -> None:
    track = ProgressTrack()
    validate = [{"step": "validate", "done": d, "total": 4} for d in range(5)]
    imported = [{"step": "import", "done": d, "total": 4} for d in range(3)]
    assert track.tick_many([*validate, *imported]) == Tick(6, 8, "import")
    assert track.tick_many([{"step": "publish", "rows": 4}]) == Tick(6, 8, "publish")
    text = ProgressTrack()
    assert text.tick_many([{"text": "a"}, {"text": "b"}, {"text": "c"}]) == Tick(
        3, None, "abc", piece=True
    )


async def test_a_relay_sends_each_message_while_its_peer_keeps_up() -> None:
    sent: list[Tick] = []

    async def send(tick: Tick) -> None:
        sent.append(tick)

    relay = ProgressRelay(send)
    runner = asyncio.create_task(relay.run())
    for done in range(5):
        relay.push({"step": "import", "done": done, "total": 4})
    await relay.drain()
    runner.cancel()
    assert [t.progress for t in sent] == [0, 1, 2, 3, 4]
    assert (relay.sent, relay.coalesced) == (5, 0)


async def test_a_relay_behind_its_backlog_joins_its_queue_into_the_newest_keeping_all_text() -> (
    None
):
    sent: list[Tick] = []
    taken, release = asyncio.Event(), asyncio.Event()

    async def send(tick: Tick) -> None:
        taken.set()
        await release.wait()  # a peer that does not read yet
        sent.append(tick)

    relay = ProgressRelay(send, max_backlog=3)
    runner = asyncio.create_task(relay.run())
    relay.push({"text": "a"})
    await taken.wait()  # the sender has the first, and waits on the peer
    for piece in "bcdef":
        relay.push({"text": piece})
    release.set()
    await relay.drain()
    runner.cancel()
    assert [(t.progress, t.message) for t in sent] == [(1, "a"), (6, "bcdef")]
    assert (relay.sent, relay.coalesced) == (2, 4)
