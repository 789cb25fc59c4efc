"""The decoder's behaviours a mutation pass found unpinned (issue 28): line ends, limits, fields."""

from __future__ import annotations

import pytest

from streambind.app.sse import SSEDecoder, StreamTooLarge

# One block as streambind sends it: the spelling the decoder reads in bulk.
BLOCK = b"id: %d\nevent: message\ndata: %d\n\n"


def _fields(decoder: SSEDecoder, *chunks: bytes) -> list[tuple[str, str, str, int | None]]:
    events = []
    for chunk in chunks:
        events += decoder.feed_fields(chunk)
    return events


def test_a_cr_ending_one_chunk_and_an_lf_beginning_the_next_are_one_line_end() -> None:
    events = _fields(SSEDecoder(), b"data: a\r", b"\ndata: b\n\n")
    assert events == [("message", "a\nb", "", None)]


def test_a_cr_ending_a_chunk_is_a_line_end_before_text_that_does_not_begin_with_lf() -> None:
    events = _fields(SSEDecoder(), b"data: a\r", b"data: b\r", b"\r")
    assert events == [("message", "a\nb", "", None)]


def test_a_line_over_the_limit_inside_one_chunk_is_refused_and_one_at_it_is_not() -> None:
    line = b"data: " + b"x" * 14  # 20 characters
    assert _fields(SSEDecoder(max_line_size=20), line + b"\n\n") == [
        ("message", "x" * 14, "", None)
    ]
    with pytest.raises(
        StreamTooLarge, match=r"^a line of the stream is larger than the limit of 19"
    ):
        SSEDecoder(max_line_size=19).feed_fields(line + b"\n\n")


def test_a_line_over_the_limit_after_short_lines_in_one_chunk_is_refused() -> None:
    chunk = b"data: 1\n\n" + b"data: " + b"x" * 30 + b"\n\n"
    with pytest.raises(StreamTooLarge, match="a line"):
        SSEDecoder(max_line_size=20).feed_fields(chunk)


def test_a_line_arriving_in_pieces_is_refused_when_its_pieces_pass_the_limit() -> None:
    decoder = SSEDecoder(max_line_size=1_000)
    decoder.feed_fields(b"data: " + b"x" * 994)  # exactly the limit, not ended yet
    with pytest.raises(
        StreamTooLarge, match=r"^a line of the stream .* limit of 1,000 characters$"
    ):
        decoder.feed_fields(b"x")


def test_an_event_over_the_limit_inside_one_chunk_is_refused_and_one_at_it_is_not() -> None:
    block = b"data: " + b"y" * 10 + b"\n\n"
    assert _fields(SSEDecoder(max_event_size=10), block) == [("message", "y" * 10, "", None)]
    with pytest.raises(StreamTooLarge, match=r"^an event of the stream is larger than the limit"):
        SSEDecoder(max_event_size=9).feed_fields(block)


def test_an_event_of_lines_over_the_limit_is_refused_before_its_blank_line() -> None:
    decoder = SSEDecoder(max_event_size=10)
    decoder.feed_fields(b"data: 1234\n")  # 4 characters and the line feed that joins: 5
    decoder.feed_fields(b"data: 1234\n")  # 10
    with pytest.raises(StreamTooLarge, match="an event"):
        decoder.feed_fields(b"data: 1\n")


def test_an_event_type_without_a_space_and_a_bare_event_line() -> None:
    events = _fields(
        SSEDecoder(),
        b"event:update\ndata: 1\n\nevent:  spaced\ndata: 2\n\nevent: custom\nevent\ndata: 3\n\n",
    )
    assert [(kind, data) for kind, data, _, _ in events] == [
        ("update", "1"),
        (" spaced", "2"),
        ("message", "3"),
    ]


def test_fields_without_a_space_after_the_colon() -> None:
    events = _fields(SSEDecoder(), b"id:7\ndata:x\nretry:250\n\ndata:\n\n")
    assert events == [("message", "x", "7", 250), ("message", "", "7", 250)]


def test_a_retry_field_is_carried_by_the_events_read_in_bulk_after_it() -> None:
    decoder = SSEDecoder()
    chunk = b"retry: 3000\n\n" + b"".join(BLOCK % (i, i) for i in range(1, 4))
    events = _fields(decoder, chunk)
    assert events == [("message", str(i), str(i), 3000) for i in range(1, 4)]
    assert decoder.last_event_id == "3"
    later = _fields(decoder, b"".join(BLOCK % (i, i) for i in range(4, 6)))
    assert later == [("message", "4", "4", 3000), ("message", "5", "5", 3000)]


def test_blocks_read_in_bulk_without_an_id_keep_the_id_last_set() -> None:
    decoder = SSEDecoder()
    events = _fields(decoder, b"id: 9\n\n" + b"data: a\n\ndata: b\n\n")
    assert events == [("message", "a", "9", None), ("message", "b", "9", None)]
    assert decoder.last_event_id == "9"


def test_retry_values_that_are_not_ascii_digits_are_ignored() -> None:
    decoder = SSEDecoder()
    _fields(decoder, b"retry: 100\n\nretry: -5\n\nretry: 1_0\n\nretry: \xd9\xa3\n\n")
    assert decoder.retry == 100


def test_comments_are_counted_and_dispatch_nothing() -> None:
    decoder = SSEDecoder()
    assert _fields(decoder, b": ping\n\n:\n\n") == []
    assert decoder.comments == 2


def test_close_discards_an_unfinished_event_and_its_partial_line() -> None:
    decoder = SSEDecoder(max_event_size=100)
    _fields(decoder, b"data: 12345\ndata: 67")
    assert decoder.close() == []
    assert _fields(decoder, b"data: z\n\n") == [("message", "z", "", None)]


def test_a_byte_order_mark_is_stripped_only_at_the_start() -> None:
    events = _fields(SSEDecoder(), "\ufeffdata: a\n\n\ufeffdata: b\n\n".encode())
    assert [data for _, data, _, _ in events] == ["a"]


def test_the_limits_are_given_by_name() -> None:
    with pytest.raises(TypeError):
        SSEDecoder(10)  # type: ignore[call-arg]
    assert SSEDecoder(max_line_size=10, max_event_size=20).max_event_size == 20


def test_a_decoder_starts_with_no_id_and_is_whole_again_after_close() -> None:
    assert SSEDecoder().last_event_id == ""
    decoder = SSEDecoder(max_line_size=10, max_event_size=10)
    decoder.feed_fields(b"x" * 9)
    assert decoder.close() == []  # the piece at close is dropped, not checked again
    decoder.feed_fields(b"data: \xc3")  # a character cut at the end of the stream
    decoder.close()
    assert _fields(decoder, b"y" * 10) == []  # a piece at the limit: nothing left over
    decoder.close()
    assert _fields(decoder, b"data: z\n\n") == [("message", "z", "", None)]
    events = SSEDecoder(max_event_size=10)
    events.feed_fields(b"data: 1234\n")
    events.close()
    with pytest.raises(StreamTooLarge, match="an event"):
        events.feed_fields(b"data: 123456789012\n")


def test_a_piece_after_a_line_end_is_measured_from_nothing() -> None:
    decoder = SSEDecoder(max_line_size=10)
    assert _fields(decoder, b"data: 1\n\n" + b"x" * 10) == [("message", "1", "", None)]
    assert _fields(decoder, b"\n\n") == []


def test_an_event_after_a_dispatched_one_is_measured_from_nothing() -> None:
    decoder = SSEDecoder(max_event_size=10)
    assert _fields(decoder, b"data: 1\n\n") == [("message", "1", "", None)]
    with pytest.raises(StreamTooLarge, match="an event"):
        decoder.feed_fields(b"data: 123456789012\n")


@pytest.mark.parametrize("before", [b"data: a\n", b"data: 1\ndata: 2\ndata: 3\n"])
def test_an_event_begun_in_the_chunk_that_ends_the_one_before_is_measured_alone(
    before: bytes,
) -> None:
    decoder = SSEDecoder(max_event_size=10)
    decoder.feed_fields(before)
    with pytest.raises(StreamTooLarge, match="an event"):
        decoder.feed_fields(b"\ndata: 123456789012\n")
