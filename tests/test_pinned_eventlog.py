"""The event log's rules a mutation pass found unpinned (issue 28): what is gone, ids, byte caps."""

from __future__ import annotations

import dataclasses

import pytest

from streambind.server.eventlog import _FRAME_OVERHEAD, EventsGone, MemoryEventLog
from streambind.server.framing import encode_event, fell_behind_event


def _log_of(count: int, max_bytes: int = 8 * 1024 * 1024) -> MemoryEventLog:
    log = MemoryEventLog(max_bytes=max_bytes)
    for i in range(1, count + 1):
        log.append_message(b"%d" % i)
    return log


def _frame(seq: int) -> bytes:
    return encode_event(seq, "message", str(seq))


async def test_events_gone_says_which_id_was_wanted_and_which_is_the_oldest_kept() -> None:
    log = _log_of(40, max_bytes=600)
    oldest = log.first_kept
    assert oldest > 2
    with pytest.raises(EventsGone) as gone:
        await log.read(1, 10)
    assert (gone.value.wanted, gone.value.first_kept) == (2, oldest)
    assert str(gone.value) == (
        f"events from id 2 on are no longer kept (the oldest kept is {oldest})"
    )
    # The follower's error event, as the stream writes it, carries both.
    message = f"{gone.value}: this follower fell too far behind"
    frame = fell_behind_event(1, message, gone.value.first_kept)
    assert frame == (
        b'id: 1\nevent: error\ndata: {"status":"fell_behind","error":{"type":"fell_behind",'
        b'"message":"events from id 2 on are no longer kept (the oldest kept is %d): this '
        b'follower fell too far behind","first_kept":%d}}\n\n' % (oldest, oldest)
    )


async def test_reading_from_one_event_before_the_oldest_kept_is_gone_not_shifted() -> None:
    log = _log_of(40, max_bytes=600)
    oldest = log.first_kept
    with pytest.raises(EventsGone) as gone:
        await log.read(oldest - 2, 10)
    assert gone.value.wanted == oldest - 1
    piece = await log.read(oldest - 1, 2)
    assert piece.frames == [_frame(oldest), _frame(oldest + 1)]
    assert piece.last_seq == oldest + 1


async def test_a_read_is_of_the_events_after_the_position_and_no_more_than_asked() -> None:
    log = _log_of(10)
    piece = await log.read(3, 4)
    assert piece.frames == [_frame(seq) for seq in range(4, 8)]
    assert (piece.last_seq, piece.ends) == (7, False)
    caught_up = await log.read(10, 5)
    assert (caught_up.frames, caught_up.last_seq, caught_up.ends) == ([], 10, False)


async def test_only_the_read_that_holds_the_terminal_event_ends() -> None:
    log = _log_of(3)
    assert log.close("end", "{}") == 4 and log.closed
    before = await log.read(1, 2)
    assert (before.last_seq, before.ends) == (3, False)
    last = await log.read(1, 10)
    assert (last.last_seq, last.ends) == (4, True)
    after = await log.read(4, 10)
    assert (after.frames, after.ends) == ([], False)
    assert log.frame(4) == encode_event(4, "end", "{}")
    with pytest.raises(RuntimeError, match=r"^the run has ended; no event can follow"):
        log.append_message(b"5")


async def test_ids_stay_as_they_are_after_release() -> None:
    log = _log_of(5)
    log.release()
    assert (log.last_seq, log.first_kept, log.size_bytes) == (5, 6, 0)
    assert log.backlog(0) == 0
    with pytest.raises(EventsGone) as gone:
        await log.read(4, 10)
    assert (gone.value.wanted, gone.value.first_kept) == (5, 6)
    assert (await log.read(5, 10)).frames == []
    assert log.append("message", "6") == 6 and log.append_message(b"7") == 7
    assert (await log.read(5, 10)).frames == [_frame(6), _frame(7)]


async def test_a_read_keeps_to_its_byte_cap_but_always_returns_one_event() -> None:
    log = _log_of(9)  # each frame: 30 bytes
    size = len(_frame(1))
    assert size == 30
    piece = await log.read(0, 100, max_bytes=3 * size)
    assert piece.frames == [_frame(1), _frame(2), _frame(3)] and piece.last_seq == 3
    piece = await log.read(0, 100, max_bytes=3 * size - 1)
    assert piece.frames == [_frame(1), _frame(2)] and piece.last_seq == 2
    piece = await log.read(0, 100, max_bytes=1)
    assert piece.frames == [_frame(1)] and piece.last_seq == 1
    piece = await log.read(0, 2, max_bytes=size)
    assert piece.frames == [_frame(1)] and piece.last_seq == 1
    whole = await log.read(0, 100, max_bytes=9 * size)
    assert whole.last_seq == 9


async def test_the_bound_counts_each_frame_with_its_overhead_and_keeps_the_newest() -> None:
    size = len(_frame(1)) + _FRAME_OVERHEAD
    log = _log_of(4, max_bytes=4 * size)
    assert (log.first_kept, log.size_bytes, log.capacity) == (1, 4 * size, 4 * size)
    log.append_message(b"5")  # one over: the oldest quarter (one event) goes
    assert (log.first_kept, log.last_seq, log.size_bytes) == (2, 5, 4 * size)
    assert log.backlog(3) == 2 * size and log.backlog(4) == size
    assert log.backlog(5) == 0 and log.backlog(9) == 0
    # append, not only append_message, keeps to the bound the same way: up to it, all stay.
    exact = MemoryEventLog(max_bytes=4 * size)
    for seq in range(1, 5):
        exact.append("message", str(seq))
    assert (exact.first_kept, exact.size_bytes) == (1, 4 * size)
    log.append("message", "6")
    assert (log.first_kept, log.size_bytes) == (3, 4 * size)
    # A single event larger than the bound is kept: the newest always stays.
    big = MemoryEventLog(max_bytes=10)
    big.append_message(b"1")
    big.append_message(b"2")
    assert (big.first_kept, big.last_seq) == (2, 2)
    assert big.frame(2) == _frame(2)


async def test_trimming_drops_a_quarter_of_the_events_at_once() -> None:
    size = len(_frame(1)) + _FRAME_OVERHEAD
    log = _log_of(8, max_bytes=8 * size)
    log.append_message(b"9")  # nine events: two of them go
    assert (log.first_kept, log.last_seq, log.size_bytes) == (3, 9, 7 * size)


async def test_a_log_keeps_8_mib_unless_told_and_a_slice_read_cannot_be_changed() -> None:
    assert MemoryEventLog().capacity == 8 * 1024 * 1024  # docs/ARCHITECTURE.md: the log
    piece = await _log_of(2).read(0, 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        piece.last_seq = 1  # type: ignore[misc]


async def test_a_read_whose_first_event_is_large_is_cut_by_what_it_holds() -> None:
    log = MemoryEventLog()
    log.append("message", '"' + "x" * 60 + '"')
    log.append_message(b"2")
    log.append_message(b"3")
    sizes = [len(log.frame(seq)) for seq in (1, 2, 3)]
    # Three times the first event's size is over the cap, but the three events fit it.
    piece = await log.read(0, 10, max_bytes=sum(sizes))
    assert piece.frames == [log.frame(1), log.frame(2), log.frame(3)] and piece.last_seq == 3
    piece = await log.read(0, 10, max_bytes=sum(sizes) - 1)
    assert piece.last_seq == 2


def test_the_backlog_is_whole_bytes_in_proportion_to_the_events_pending() -> None:
    log = _log_of(10)  # nine frames of 30 bytes and one of 32, each with its overhead
    assert log.size_bytes == 9 * 30 + 32 + 10 * _FRAME_OVERHEAD
    assert log.backlog(7) == 3 * log.size_bytes // 10
