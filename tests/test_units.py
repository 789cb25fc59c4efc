"""Pieces tested on their own: the parameter schema, the bounded event log, SSE framing."""

from __future__ import annotations

import asyncio
import collections
import datetime
import decimal
import enum
import json
import uuid
from typing import Annotated, Literal

import jsonschema_rs
import pytest

from streambind.app.jsondecode import decode_each, decode_json
from streambind.server import Param, ServerConfig, endpoint
from streambind.server.eventlog import EventsGone, MemoryEventLog
from streambind.server.framing import (
    MESSAGE_FRAME,
    NotJSONSerialisable,
    encode_event,
    fell_behind_event,
    json_bytes,
    to_json,
    utf8,
)
from streambind.server.params import ParamsInvalid, params_from_signature, validate_params


async def _flow(
    ctx: object,
    count: Annotated[int, Param("How many", minimum=1, maximum=10)] = 3,
    ratio: float = 0.5,
    label: str | None = None,
    mode: Literal["a", "b"] = "a",
    flag: bool = False,
    needed: int = 7,
) -> None: ...


def test_the_schema_comes_from_the_signature_as_standard_json_schema() -> None:
    params = params_from_signature(_flow)
    assert list(params) == ["count", "ratio", "label", "mode", "flag", "needed"]
    schema = params.json_schema()
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == []
    properties = schema["properties"]
    assert properties["count"] == {
        "type": "integer", "default": 3, "description": "How many", "minimum": 1, "maximum": 10,
    }  # fmt: skip
    assert properties["ratio"] == {"type": "number", "default": 0.5}
    assert properties["label"] == {
        "anyOf": [{"type": "string", "maxLength": 1000}, {"type": "null"}],
        "default": None,
    }
    assert properties["mode"] == {"enum": ["a", "b"], "default": "a"}
    assert properties["flag"] == {"type": "boolean", "default": False}
    # A draft 2020-12 validator agrees with the server on what the schema allows.
    assert jsonschema_rs.meta.is_valid(schema)
    validator = jsonschema_rs.Draft202012Validator(schema)
    assert validator.is_valid({"count": 4, "label": None, "mode": "b"})
    assert not validator.is_valid({"count": 11})
    assert not validator.is_valid({"colour": 1})


def test_validation_converts_and_fills_defaults() -> None:
    specs = params_from_signature(_flow)
    assert validate_params(specs, {"ratio": 2, "label": None, "count": 4.0}) == {
        "count": 4, "ratio": 2.0, "label": None, "mode": "a", "flag": False, "needed": 7,
    }  # fmt: skip
    with pytest.raises(ParamsInvalid) as raised:
        validate_params(specs, {"flag": 1, "ratio": float("nan"), "mode": "c"})
    assert raised.value.fields == {
        "ratio": "must be a finite number",
        "mode": "must be one of a, b",
        "flag": "must be a boolean, not an integer",
    }


def test_a_required_parameter_must_be_given() -> None:
    async def flow(ctx: object, name: str) -> None: ...

    specs = params_from_signature(flow)
    assert specs.json_schema()["required"] == ["name"]
    with pytest.raises(ParamsInvalid) as raised:
        validate_params(specs, {})
    assert raised.value.fields == {"name": "is required"}


def test_a_blank_required_string_is_missing_unless_empty_is_allowed() -> None:
    async def flow(
        ctx: object,
        name: str,
        note: Annotated[str, Param(min_length=0)],
        label: str = "",
    ) -> None: ...

    specs = params_from_signature(flow)
    properties = specs.json_schema()["properties"]
    assert properties["name"]["minLength"] == 1
    assert properties["name"]["pattern"] == r"\S", "blank is missing, in JSON Schema's words"
    assert "minLength" not in properties["note"]
    assert "minLength" not in properties["label"], "an optional string may stay blank"
    for blank in ("", "   "):
        with pytest.raises(ParamsInvalid) as raised:
            validate_params(specs, {"name": blank, "note": ""})
        assert raised.value.fields == {"name": "is required"}
    assert validate_params(specs, {"name": "Ada", "note": ""}) == {
        "name": "Ada",
        "note": "",
        "label": "",
    }


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("async def f(ctx, x): ...", "needs a type annotation"),
        ("async def f(ctx, x: list = []): ...", "use int, float, bool or str"),
        ("async def f(ctx, *a: int): ...", "*args and **kwargs"),
        ("async def f(ctx, x: int | str = 1): ...", "Optional[one type]"),
        ("async def f(ctx, x: int = 'a'): ...", "default of 'x' must be an integer"),
        ("def f(ctx): ...", "needs an async function"),
    ],
)
def test_unusable_workflow_signatures_are_refused_at_registration(
    source: str, message: str
) -> None:
    namespace: dict[str, object] = {}
    exec(source, namespace)
    with pytest.raises(TypeError, match=message.replace("*", r"\*").replace("[", r"\[")):
        endpoint("f")(namespace["f"])  # type: ignore[arg-type]


def test_endpoint_names_are_url_safe() -> None:
    with pytest.raises(ValueError, match="lower-case"):
        endpoint("Has Space")


async def test_the_log_drops_oldest_events_and_says_so() -> None:
    log = MemoryEventLog(max_bytes=1000)
    for i in range(200):
        log.append("message", to_json({"i": i}))
    assert log.last_seq == 200
    assert log.size_bytes <= 1000
    with pytest.raises(EventsGone) as gone:
        await log.read(0, 10)
    assert gone.value.first_kept == log.first_kept > 1
    piece = await log.read(log.first_kept - 1, 1000)
    assert piece.last_seq == 200
    assert not piece.ends
    assert piece.frames[-1] == b'id: 200\nevent: message\ndata: {"i":199}\n\n'


async def test_the_terminal_event_is_always_kept() -> None:
    log = MemoryEventLog(max_bytes=10)
    log.append("message", "1")
    log.close("end", to_json({"status": "succeeded", "result": "x" * 100}))
    piece = await log.read(1, 10)
    assert piece.ends
    with pytest.raises(RuntimeError, match="terminal"):
        log.append("message", "2")


class _Waiting:
    """A follower as the delivery sees one, at a position, writing nothing."""

    def __init__(self, position: int = 0) -> None:
        self.position = position
        self.progressed_at = 0.0
        self.was_let_go = False
        self.wrote_at = 0.0

    def idle_for(self, seq: int, size: int) -> bool:
        return False  # never written to directly: always woken


async def test_a_caught_up_follower_is_woken_and_a_cancelled_wait_leaves_nothing() -> None:
    from streambind.server.clock import StallClock
    from streambind.server.delivery import Delivery

    delivery = Delivery(MemoryEventLog(), StallClock(), 2.0)
    first, second = _Waiting(), _Waiting()
    waiter = asyncio.create_task(delivery.wait_for_more(first))  # type: ignore[arg-type]
    gone = asyncio.create_task(delivery.wait_for_more(second))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert not waiter.done() and len(delivery.caught_up) == 2
    gone.cancel()
    await asyncio.sleep(0)
    assert list(delivery.caught_up) == [first]
    seq = delivery.append_message(b"1")
    await delivery.hand_over(seq, together=False)
    await waiter
    assert delivery.caught_up == {}
    await delivery.wait_for_more(first)  # type: ignore[arg-type]  # an event is there: at once
    delivery.end("end", "{}")
    await delivery.wait_for_more(_Waiting(position=2))  # type: ignore[arg-type]  # ended


def test_framing_is_compact_and_one_line() -> None:
    assert to_json({"a": [1, 2], "t": "x\ny"}) == '{"a":[1,2],"t":"x\\ny"}'
    assert encode_event(3, "message", "{}") == b"id: 3\nevent: message\ndata: {}\n\n"
    assert fell_behind_event(7, "gone", 9) == (
        b"id: 7\nevent: error\ndata: "
        b'{"status":"fell_behind","error":{"type":"fell_behind","message":"gone","first_kept":9}}'
        b"\n\n"
    )
    # A lone surrogate (no UTF-8 for it) travels as its JSON escape.
    assert (
        encode_event(1, "message", to_json("a\ud800"))
        == b'id: 1\nevent: message\ndata: "a\\ud800"\n\n'
    )
    assert json.loads(b'"a\\ud800"') == "a\ud800"
    with pytest.raises(NotJSONSerialisable, match="JSON-serialisable"):
        to_json({1, 2})
    with pytest.raises(NotJSONSerialisable):
        to_json(float("inf"))


def _nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


class _Label(str):
    pass


class _Colour(enum.Enum):
    RED = "red"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # orjson refuses these; the standard library's answer is kept.
        ({"b": 2**70, "n": -(2**64)}, '{"b":1180591620717411303424,"n":-18446744073709551616}'),
        ({1: "a", 2.5: "b", False: "c", None: "d"}, '{"1":"a","2.5":"b","false":"c","null":"d"}'),
        ("a\ud800", '"a\ud800"'),
        (_Label("x"), '"x"'),
        (collections.OrderedDict(a=(1, [2])), '{"a":[1,[2]]}'),
        (_nested(500), "[" * 500 + "]" * 500),
        # orjson writes NaN as null: null is double-checked, and a real null stays.
        ({"a": None, "t": "null"}, '{"a":null,"t":"null"}'),
        # orjson's own, with the same floats as before.
        ({"r": 0.1, "e": 1e16, "n": -0.0}, '{"r":0.1,"e":1e+16,"n":-0.0}'),
        # orjson encodes enum members and UUIDs, which the standard library refused (documented).
        ([_Colour.RED, uuid.UUID(int=1)], '["red","00000000-0000-0000-0000-000000000001"]'),
    ],
)
def test_messages_encode_as_before_where_orjson_differs(value: object, expected: str) -> None:
    # On the wire: the standard library's text as UTF-8, a lone surrogate as its JSON escape.
    assert json_bytes(value) == utf8(expected)
    assert json.loads(to_json(value)) == json.loads(expected)


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        {"a": [1, float("-inf")]},
        {"a": None, "b": float("inf")},
        {1, 2},
        b"bytes",
        datetime.datetime(2026, 1, 1),
        decimal.Decimal("1.5"),
        object(),
        {(1, 2): "tuple key"},
        _nested(5_000),
    ],
    ids=lambda value: type(value).__name__,
)
def test_what_json_cannot_represent_is_refused_as_before(value: object) -> None:
    with pytest.raises(NotJSONSerialisable, match="JSON-serialisable"):
        to_json(value)


def test_a_cycle_is_refused() -> None:
    cycle: list[object] = []
    cycle.append(cycle)
    with pytest.raises(NotJSONSerialisable, match="nests too deeply, or refers to itself"):
        to_json(cycle)


def test_chunks_hand_back_what_arrived_and_compare_like_a_list() -> None:
    from streambind.app.chunks import Chunks

    chunks = Chunks()
    chunks.add('{"done":1}', True)
    chunks.add("not json", False)
    chunks.add('"a json string"', True)
    chunks.add("[1,2]", True)
    assert len(chunks) == 4
    assert chunks[0] == {"done": 1}
    assert chunks[1] == "not json" and type(chunks[1]) is str
    assert chunks[-2] == "a json string"
    assert chunks[1:3] == ["not json", "a json string"]
    assert list(chunks) == [{"done": 1}, "not json", "a json string", [1, 2]]
    assert chunks == [{"done": 1}, "not json", "a json string", [1, 2]]
    assert chunks != [{"done": 1}]
    assert chunks[:0] == []
    assert chunks[3:] == [[1, 2]]
    assert chunks[::2] == [{"done": 1}, "a json string"]
    assert repr(chunks) == "Chunks([{'done': 1}, 'not json', 'a json string', … 1 more])"
    assert repr(Chunks()) == "Chunks([])"


def test_the_log_frames_events_exactly_as_framing_does() -> None:
    log = MemoryEventLog()
    for event, data in [("message", '{"a":1}'), ("message", '"\ud800"'), ("end", "{}")]:
        seq = log.append(event, data)
        assert log.frame(seq) == encode_event(seq, event, data)


@pytest.mark.parametrize("value", [{"a": 1}, "a\ud800", "é ✓ 𝄞", [None, 2**70, 0.5]])
def test_a_message_appended_as_bytes_is_framed_as_encode_event_frames_it(value: object) -> None:
    log = MemoryEventLog()
    log.append("message", "{}")
    seq = log.append_message(json_bytes(value))
    assert seq == 2
    assert log.frame(seq) == encode_event(seq, "message", to_json(value))
    assert log.frame(seq) == MESSAGE_FRAME % (seq, json_bytes(value))
    log.close("end", "{}")
    with pytest.raises(RuntimeError, match="no event can follow"):
        log.append_message(b"{}")


@pytest.mark.parametrize(
    "text",
    [
        '{"step":"import","done":1,"total":2}',
        ' {"a": [1, 2.5, null, true]}\n',
        '"text"',
        "NaN",
        "-Infinity",
        "[1,2",
        "1 2",
        '{"a":1}x',
        "",
        "  ",
        "tru",
        "[DONE]",
        '{"é": "\\u2028"}',
        "1180591620717411303424",
        "-18446744073709551617",
        "1e400",
        '"\\ud800"',
        "1" * 5_000,
        "[" * 5_000 + "]" * 5_000,
    ],
)
def test_messages_decode_as_json_loads_decodes_them(text: str) -> None:
    try:
        expected: object = ("value", json.dumps(json.loads(text)))
    except (ValueError, RecursionError) as exc:
        expected = ("error", str(exc))
    try:
        got: object = ("value", json.dumps(decode_json(text)))
    except (ValueError, RecursionError) as exc:
        got = ("error", str(exc))
    assert got == expected


@pytest.mark.parametrize(
    "texts",
    [
        ['"a', 'b"'],  # joined they make one string: "a,b"
        ['"a', 'b","c"'],  # joined: two strings for two texts, neither text being JSON
        ["1],[2", "[3"],
        ["1 2", "3"],
        [" 1", "2"],  # JSON, but its span is shorter: left to decode one by one
        ["1", ""],
        ["NaN", "1"],
        ['"\\ud800"', "1"],
        ["1e400", "1"],
        ['{"é":1}', '"\ud800"'],  # a lone surrogate cannot even be encoded
    ],
)
def test_messages_that_are_not_each_one_json_value_are_not_decoded_together(
    texts: list[str],
) -> None:
    assert decode_each(texts) is None


@pytest.mark.parametrize(
    "texts",
    [
        [],
        ['{"step":"import","done":1,"total":2}', '{"step":"import","done":2,"total":2}'],
        ['"a,b"', "[1,[2]]", "null", "-0.5e3", '"\\u00e9"', "true", "{}"],
        ['{"é": "ü ☃"}', '"naïve"', "1180591620717411303424"],
    ],
)
def test_messages_decode_together_as_each_alone(texts: list[str]) -> None:
    assert decode_each(texts) == [decode_json(t) for t in texts] == [json.loads(t) for t in texts]


def test_the_stall_clock_counts_a_pause_as_at_most_max_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    from streambind.server import clock as clock_module

    now = [1000.0]
    monkeypatch.setattr(clock_module.time, "monotonic", lambda: now[0])
    clock = clock_module.StallClock(max_gap=0.25)
    start = clock.now()
    for _ in range(10):  # a process that runs: read every 0.1 s, real time kept
        now[0] += 0.1
        clock.now()
    assert clock.now() - start == pytest.approx(1.0)
    now[0] += 3.0  # kill -STOP for 3 s, or a loop blocked that long
    assert clock.now() - start == pytest.approx(1.25)
    now[0] += 0.1
    assert clock.now() - start == pytest.approx(1.35)


async def _no_workflow(ctx: object) -> None:
    raise AssertionError("not run")


def test_a_runs_last_message_is_its_logs_newest_and_is_kept_when_the_log_lets_it_go() -> None:
    from streambind.server.registry import Endpoint
    from streambind.server.run import ExecutedRun
    from streambind.server.run_shapes import run_summary

    endpoint = Endpoint(name="demo", title="demo", description="", fn=_no_workflow)
    # A log that holds one frame: the terminal event pushes the last message out.
    run = ExecutedRun(
        id="r", endpoint_name="demo", endpoint=endpoint, params={}, log=MemoryEventLog(150)
    )
    assert run_summary(run.record())["last_message"] is None
    for done in (1, 2, 3):
        run.messages = run.log.append_message(json_bytes({"done": done, "s": "é"}))
        assert run_summary(run.record())["last_message"] == {"done": done, "s": "é"}
    run.end("end", to_json({"status": "succeeded", "result": "x" * 100}))
    assert run.log.first_kept == run.log.last_seq  # the last message's frame is gone
    run.log.release()
    assert run_summary(run.record())["last_message"] == {"done": 3, "s": "é"}
    assert run.last_message_json == json_bytes({"done": 3, "s": "é"})


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("store_stall", 0.0, "store_stall must be positive"),
        ("store_stall", float("nan"), "store_stall must be positive"),
        ("ping_interval", 0.0, "ping_interval must be positive"),
        ("max_runs", 0, "max_runs must be at least 1"),
        ("drain_timeout", -1.0, "drain_timeout must not be negative"),
    ],
)
def test_server_settings_out_of_range_are_refused_by_name(
    setting: str, value: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ServerConfig(**{setting: value})  # type: ignore[arg-type]
