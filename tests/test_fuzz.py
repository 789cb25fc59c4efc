"""Property tests: whatever a workflow sends arrives equal; no bytes make the decoder raise."""

from __future__ import annotations

import json
import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from streambind.app.jsondecode import decode_each, decode_json
from streambind.app.sse import SSEDecoder
from streambind.app.state import StreamState
from streambind.server.eventlog import MemoryEventLog
from streambind.server.framing import to_json

# JSON has no lone surrogates; everything else is fair: CR, LF, NUL, U+2028, emoji.
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)))
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXT, inner, max_size=5),
    max_leaves=20,
)
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


@SETTINGS
@given(values=st.lists(JSON_VALUES, min_size=1, max_size=5), cuts=st.lists(st.integers(0, 10_000)))
def test_any_json_value_arrives_equal_in_any_chunking(values: list, cuts: list[int]) -> None:
    log = MemoryEventLog()
    wire = b"retry: 3000\n\n" + b"".join(
        log.frame(log.append("message", to_json(v))) for v in values
    )
    decoder = SSEDecoder()
    events = []
    for piece in _split(wire, cuts):
        events += decoder.feed(piece)
    events += decoder.close()
    assert [json.loads(e.data) for e in events] == values
    assert [e.id for e in events] == [str(i) for i in range(1, len(values) + 1)]


@SETTINGS
@given(data=st.binary(max_size=2_000), cuts=st.lists(st.integers(0, 2_000)))
def test_the_decoder_never_raises_on_arbitrary_bytes(data: bytes, cuts: list[int]) -> None:
    # The same bytes in one piece give the same events as in many, and what both read is
    # what the standard reads (bytes that are not UTF-8 are read as U+FFFD, as it says).
    whole = SSEDecoder()
    one = [(e.event, e.data, e.id, e.retry) for e in whole.feed(data)]
    again = SSEDecoder()
    many = [(e.event, e.data, e.id, e.retry) for p in _split(data, cuts) for e in again.feed(p)]
    again.close()  # the end of any stream, too, is read without raising
    assert one == many
    assert one == _as_the_standard_reads_it(data.decode("utf-8", "replace"))


def _as_the_standard_reads_it(text: str) -> list[tuple[str, str, str, int | None]]:
    """WHATWG HTML's "interpret an event stream", transcribed step by step with no shortcut."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = re.split(r"\r\n|\r|\n", text)
    lines.pop()  # what follows the last line ending is not a line yet
    data, event_type, last_id, retry = "", "", "", None
    events = []
    for line in lines:
        if line == "":
            if data == "":
                event_type = ""
                continue
            events.append((event_type or "message", data.removesuffix("\n"), last_id, retry))
            data, event_type = "", ""
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            event_type = value
        elif name == "data":
            data += value + "\n"
        elif name == "id" and "\0" not in value:
            last_id = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            retry = int(value)
    return events


# Pieces that make streams with every field spelled the usual way and otherwise.
SSE_TEXT = st.lists(
    st.sampled_from(
        [
            *["data", "id", "event", "retry", "message", ":", ": ", " ", "\n", "\r", "\r\n"],
            *["\n\n", "\0", "x", "7", "-", "\ufeff", "é", "data: ", "id: ", "event: ", "data:"],
            "retry: ",
        ]
    ),
    max_size=60,
).map("".join)


@SETTINGS
@given(text=SSE_TEXT, cuts=st.lists(st.integers(0, 400)))
def test_the_decoder_reads_every_stream_as_the_standard_does(text: str, cuts: list[int]) -> None:
    decoder = SSEDecoder()
    events = [e for piece in _split(text.encode(), cuts) for e in decoder.feed(piece)]
    assert [(e.event, e.data, e.id, e.retry) for e in events] == _as_the_standard_reads_it(text)


# Streams of whole blocks in one of the spellings the decoder reads in bulk, with a few
# blocks spelled otherwise (most of them near misses), so that reading in bulk meets
# every kind of neighbour and of chunk cut.
COMMON_BLOCKS = [
    "id: {i}\nevent: message\ndata: {v}\n\n",
    "id: {i}\ndata: {v}\n\n",
    "data: {v}\n\n",
    "data: {v}\nid: {i}\n\n",
    "event: message\ndata: {v}\nid: {i}\n\n",
]
ODD_BLOCKS = [
    "id: {i}\nevent: end\ndata: {v}\n\n",
    "id: {i}\nevent: messages\ndata: {v}\n\n",
    "id: {i}\nevent: message\nevent: message\ndata: {v}\n\n",
    "event: message\nevent: message\ndata: {v}\n\n",
    "data: {v}\ndata: {v}\n\n",
    "id: {i}\ndata: {v}\ndata: {v}\n\n",
    "data:{v}\n\n",
    "id:{i}\ndata: {v}\n\n",
    "id: {i}\nid: {i}\ndata: {v}\n\n",
    "id: {i}\n: ping\ndata: {v}\n\n",
    ": ping\n\n",
    "retry: {i}\ndata: {v}\n\n",
    "id: \0{i}\ndata: {v}\n\n",
    "id: \0{i}\nevent: message\ndata: {v}\n\n",
    "id: \ndata: {v}\n\n",
    "id: {i}\n\n",
    "id: {i}\ndata: {v}\n",
    "data: {v}\n",
    "\n",
    "data: {v}\r\n\r\n",
]
BLOCK_VALUES = st.lists(
    st.sampled_from(["x", "", "é", "\0", "data: ", "id: ", "\n", "\r", ":", " ", '{"a":1}']),
    max_size=3,
).map("".join)


@SETTINGS
@example(  # the second and third blocks have the first one's size, not its spelling
    common="data: {v}\n\n", values=["a", "b"], odd=[(2, "data: c\ndata: d\ndata: e\n\n")], cuts=[]
)
@example(
    common="data: {v}\n\n", values=["a", "b"], odd=[(2, "id: 1\nid: 2\ndata: x\n\n")] * 2, cuts=[]
)
@example(
    common="id: {i}\ndata: {v}\n\n",
    values=["a", "b", "c"],
    odd=[(2, "id: \0{i}\ndata: x\n\n")],
    cuts=[],
)
@given(
    common=st.sampled_from(COMMON_BLOCKS),
    values=st.lists(BLOCK_VALUES, max_size=40),
    odd=st.lists(st.tuples(st.integers(0, 40), st.sampled_from(ODD_BLOCKS)), max_size=3),
    cuts=st.lists(st.integers(0, 1_000), max_size=4),
)
def test_streams_of_common_blocks_are_read_as_the_standard_does(
    common: str, values: list[str], odd: list[tuple[int, str]], cuts: list[int]
) -> None:
    spellings = [common] * len(values)
    for at, spelling in odd:
        spellings.insert(at % (len(spellings) + 1), spelling)
        values.insert(at % len(spellings), "x")
    text = "".join(
        s.format(i=i, v=v) for i, (s, v) in enumerate(zip(spellings, values, strict=True))
    )
    expected = _as_the_standard_reads_it(text)
    for pieces in (_split(text.encode(), cuts), [text.encode()]):
        decoder = SSEDecoder()
        events = [e for piece in pieces for e in decoder.feed(piece)]
        assert [(e.event, e.data, e.id, e.retry) for e in events] == expected
        if text.endswith("\n\n"):  # the stream's id after its last block: what a next one gets
            assert decoder.last_event_id == _as_the_standard_reads_it(text + "data: .\n\n")[-1][2]


# Pieces of JSON texts that, joined, may or may not be JSON on their own or together.
JSON_PIECES = st.lists(
    st.sampled_from(['"', "a", ",", "1", "-", ".", "e", "[", "]", "{", "}", ":", " ", "é", "\\"]),
    max_size=8,
).map("".join)
TEXTS = st.lists(JSON_PIECES | JSON_VALUES.map(to_json), max_size=8)


def _decoded_one_by_one(texts: list[str]) -> list[object] | None:
    try:
        return [decode_json(t) for t in texts]
    except (ValueError, RecursionError):
        return None


@SETTINGS
@given(texts=TEXTS)
def test_messages_decoded_together_are_what_each_decodes_to(texts: list[str]) -> None:
    together = decode_each(texts)
    if together is not None:
        assert json.dumps(together) == json.dumps(_decoded_one_by_one(texts))


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["message"] * 6 + ["end", "error", "cancelled", "other"]),
        st.sampled_from(["[DONE]", "not json", '{"step":"a"}', '{"step":"b"}', '{"steps":["a"]}'])
        | JSON_VALUES.map(to_json),
        st.sampled_from(["", "1", "2", "x"]),
        st.none(),
    )
    | st.sampled_from(
        [
            ("end", '{"status":"succeeded","result":1}', "", None),
            ("error", '{"status":"failed","error":{"message":"no"}}', "9", None),
            ("cancelled", '{"status":"cancelled","reason":"shutdown"}', "", None),
        ]
    ),
    max_size=12,
)


def _observed(state: StreamState) -> object:
    return (
        list(state.chunks), json.dumps(state.chunk), state.status, state.result, state.error,
        state.last_event_id, state.version, state.first_chunk_at,
        state.steps.steps(0.5, state.status == "succeeded"),
    )  # fmt: skip


@SETTINGS
@given(batches=st.lists(EVENTS, max_size=4))
def test_events_applied_a_chunk_at_a_time_change_the_state_as_one_by_one(
    batches: list[list[tuple[str, str, str, None]]],
) -> None:
    together, one_by_one = StreamState(name="a"), StreamState(name="b")
    ended_together = ended_one_by_one = False
    for events in batches:
        if not ended_together:
            ended_together = together.apply_events(events, lambda: 1.0)
        for event_type, text, event_id, _ in events:
            if not ended_one_by_one:
                one_by_one.apply_event(event_type, text, event_id, lambda: 1.0)
                ended_one_by_one = one_by_one.finished
    assert ended_together == ended_one_by_one
    assert _observed(together) == _observed(one_by_one)
