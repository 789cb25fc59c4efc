"""The Redis stream's layout: several events to an entry, read back from any event on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redisdb

from streambind.server.framing import MESSAGE, encode_event
from streambind.server.redis_store.logs import Batch, Entry, FollowedEventLog
from streambind.server.redis_store.shipping import APPEND_LUA


def _frames(first: int, last: int) -> list[bytes]:
    return [
        encode_event(seq, MESSAGE, f'{{"n":{seq},"s":"a\\n\\nid: {seq}"}}')
        for seq in range(first, last + 1)
    ]


@pytest.fixture
async def stream() -> AsyncIterator[tuple[Any, str]]:
    import redis.asyncio as aioredis

    url = redisdb.require_redis()
    with redisdb.fresh_prefix(url) as prefix:
        client = aioredis.Redis.from_url(url)
        try:
            yield client, f"{prefix}events"
        finally:
            await client.aclose()


async def _append(
    client: Any, key: str, batch: Batch, most_bytes: int, terminal: bool = False
) -> int:
    args = [b"1" if terminal else b"0", 0]
    args += [arg for entry in batch.entries(most_bytes) for arg in entry]
    return await client.eval(APPEND_LUA, 1, key, *args)


async def _read_all(client: Any, key: str, after: int, last: int) -> bytes:
    """Events ``after`` to ``last``, as a follower on another node reads them from Redis."""
    log = FollowedEventLog(1 << 20, client, key, last_seq=last, first_kept=1, closed=False)
    out = b""
    while after < last:
        piece = await log.read(after, max_events=3, max_bytes=1 << 20)
        out += b"".join(piece.frames)
        after = piece.last_seq
    return out


async def test_a_resume_from_inside_an_entry_gets_exactly_the_events_after_it(
    stream: tuple[Any, str],
) -> None:
    client, key = stream
    frames = _frames(1, 10)
    # Entries of about two events each (their data holds an escaped line break and an id).
    assert await _append(client, key, Batch(1, frames, False), 2 * len(frames[0])) == 0
    assert 1 < await client.xlen(key) < 10  # several events to an entry
    for after in range(10):
        assert await _read_all(client, key, after, 10) == b"".join(frames[after:])


async def test_a_retried_write_adds_only_the_events_redis_lacks(stream: tuple[Any, str]) -> None:
    client, key = stream
    assert await _append(client, key, Batch(1, _frames(1, 4), False), 1 << 20) == 0
    # The write of 3..8 failed as far as its node knows, but 3 and 4 had arrived.
    assert await _append(client, key, Batch(3, _frames(3, 8), False), 1 << 20) == 1
    assert await _read_all(client, key, 0, 8) == b"".join(_frames(1, 8))
    entries = await client.xrange(key)
    assert [(e[0], e[1].get(b"first")) for e in entries] == [(b"4-0", b"1"), (b"8-0", b"5")]
    # A batch wholly there already is refused, and adds nothing.
    assert await _append(client, key, Batch(5, _frames(5, 8), False), 1 << 20) == 1
    assert await client.xlen(key) == 2


async def test_nothing_is_added_after_a_terminal_entry(stream: tuple[Any, str]) -> None:
    client, key = stream
    await client.xadd(key, {b"f": _frames(1, 1)[0], b"end": b"1"}, id="1-0")
    # Events past the end: another node ended the run; its node is told so (2).
    assert await _append(client, key, Batch(1, _frames(1, 3), False), 1 << 20) == 2
    # A retry of what is there already, its end included, is only a retry (1).
    assert await _append(client, key, Batch(1, _frames(1, 1), True), 1 << 20) == 1
    assert await client.xlen(key) == 1


async def test_a_following_node_keeps_entries_whole_and_reads_from_inside_one() -> None:
    frames = _frames(1, 12)
    log = FollowedEventLog(1 << 20, None, "unused", last_seq=0, first_kept=1, closed=False)
    batch = Batch(1, frames, True)
    log.ingest(Entry(first, last, joined, last == 12) for first, last, joined in batch.entries(300))
    assert log.closed and log.last_seq == 12
    for after in range(12):
        piece = await log.read(after, max_events=1000)
        assert b"".join(piece.frames) == b"".join(frames[after:])
        assert (piece.last_seq, piece.ends) == (12, True)
        assert log.frame(after + 1) == frames[after]
    # At most about max_events: whole entries after the first one, never cut.
    piece = await log.read(0, max_events=5)
    assert 0 < piece.last_seq <= 5 and b"".join(piece.frames) == b"".join(frames[: piece.last_seq])
