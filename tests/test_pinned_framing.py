"""Wire-format rules a mutation pass found unpinned (issue 28): UTF-8 on every path, bounds."""

from __future__ import annotations

import pytest

from streambind.app import state
from streambind.server.framing import (
    CANCEL_REASONS,
    CANCELLED,
    END,
    ERROR,
    MESSAGE,
    MESSAGE_FRAME,
    PING,
    NotJSONSerialisable,
    cancelled_data,
    encode_event,
    end_data,
    failed_data,
    fell_behind_event,
    frame_start,
    json_bytes,
    message_data,
    retry_field,
    to_json,
)


def test_non_ascii_text_stays_utf8_through_the_standard_library_fallback() -> None:
    # orjson refuses an integer over 64 bits: the standard library encodes this message.
    assert json_bytes([2**70, "é ✓"]) == '[1180591620717411303424,"é ✓"]'.encode()
    # A null sends a message down the same path (a NaN may hide behind it).
    assert json_bytes({"a": None, "t": "é"}) == '{"a":null,"t":"é"}'.encode()
    assert to_json([2**70, "é"]) == '[1180591620717411303424,"é"]'


def test_orjsons_own_answer_is_compact_utf8() -> None:
    assert json_bytes({"t": "é", "n": [1, 2.5, True]}) == '{"t":"é","n":[1,2.5,true]}'.encode()


def test_a_refusal_says_why_and_a_cycle_is_deep_nesting() -> None:
    with pytest.raises(NotJSONSerialisable, match=r"^ctx.send\(\) needs JSON-serialisable data: "):
        to_json({2**70: float("nan")})
    loop: dict[str, object] = {}
    loop["self"] = loop
    with pytest.raises(NotJSONSerialisable, match=r": it nests too deeply, or refers to itself$"):
        to_json(loop)


def test_an_event_that_does_not_begin_in_the_frames_is_an_error() -> None:
    frames = encode_event(7, "message", "1") + encode_event(8, "message", "2")
    assert frame_start(frames, 7) == 0
    assert frame_start(frames, 8) == len(encode_event(7, "message", "1"))
    with pytest.raises(ValueError, match=r"^event 9 does not begin in these frames$"):
        frame_start(frames, 9)
    # An id that only appears inside another event's data is not where an event begins.
    inside = encode_event(1, "message", '"\\n\\nid: 2\\n"')
    with pytest.raises(ValueError, match="event 2"):
        frame_start(inside, 2)


def test_a_message_frame_holds_its_data_as_framed() -> None:
    frame = MESSAGE_FRAME % (12, b'{"a":"\xc3\xa9"}')
    assert frame == encode_event(12, "message", '{"a":"é"}')
    assert message_data(frame) == b'{"a":"\xc3\xa9"}'


def test_the_terminal_events_data() -> None:
    assert end_data('{"n":1}') == '{"status":"succeeded","result":{"n":1}}'
    assert failed_data({"type": "ValueError", "message": "é"}) == (
        '{"status":"failed","error":{"type":"ValueError","message":"é"}}'
    )
    assert CANCEL_REASONS == ("requested", "abandoned", "caller_left", "shutdown")
    for reason in CANCEL_REASONS:
        assert cancelled_data(reason) == f'{{"status":"cancelled","reason":"{reason}"}}'
    with pytest.raises(AssertionError):
        cancelled_data("bored")


def test_an_event_with_a_lone_surrogate_is_framed_with_its_escape() -> None:
    assert encode_event(2, "end", '"\ud800é"') == 'id: 2\nevent: end\ndata: "\\ud800é"\n\n'.encode()


def test_the_fell_behind_event_the_retry_field_and_the_ping() -> None:
    assert fell_behind_event(3, "é", 5) == (
        'id: 3\nevent: error\ndata: {"status":"fell_behind","error":'
        '{"type":"fell_behind","message":"é","first_kept":5}}\n\n'.encode()
    )
    assert retry_field(2500) == b"retry: 2500\n\n"
    assert PING == b": ping\n\n"


def test_the_event_names_are_the_ones_clients_listen_for() -> None:
    # EventSource listeners and the stream client match on these names (docs/http-api.md).
    assert (MESSAGE, END, ERROR, CANCELLED) == ("message", "end", "error", "cancelled")
    assert tuple(state.CANCEL_REASONS) == CANCEL_REASONS
