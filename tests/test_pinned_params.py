"""Parameter rules a mutation pass found unpinned (issue 28): bounds, refusals, their words."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

import pytest

from streambind.server import Param
from streambind.server.params import (
    InvalidParam,
    Params,
    ParamsInvalid,
    ParamSpec,
    params_from_signature,
    validate_params,
)


async def _flow(
    ctx: object,
    above: Annotated[float, Param(minimum=0)] = 1.0,
    below: Annotated[int, Param(maximum=10)] = 1,
    half: Annotated[float, Param(minimum=0.5, maximum=2.5)] = 1.0,
    ratio: float = 0.5,
    maybe: float | None = None,
    name: str = "x",
    code: Annotated[str, Param(min_length=3, max_length=5)] = "abc",
    tag: Annotated[str, Param(min_length=1)] = "t",
    mode: Literal["a", "b"] = "a",
    count: int = 1,
    flag: bool = False,
) -> None: ...


PARAMS = params_from_signature(_flow)


def _refusals(body: dict[str, Any], params: Params = PARAMS) -> dict[str, str]:
    with pytest.raises(ParamsInvalid) as raised:
        params.validate(body)
    return raised.value.fields


def test_a_number_with_only_a_minimum_or_only_a_maximum_is_bounded() -> None:
    assert _refusals({"above": -0.5}) == {"above": "must be at least 0"}
    assert _refusals({"below": 11}) == {"below": "must be at most 10"}
    assert PARAMS.validate({"above": 0, "below": 10})["above"] == 0.0
    properties = PARAMS.json_schema()["properties"]
    assert properties["above"]["minimum"] == 0 and "maximum" not in properties["above"]
    assert properties["below"]["maximum"] == 10 and "minimum" not in properties["below"]


def test_bounds_that_are_not_integers_are_said_as_they_are() -> None:
    assert _refusals({"half": 0.25}) == {"half": "must be at least 0.5"}
    assert _refusals({"half": 3}) == {"half": "must be at most 2.5"}
    assert PARAMS.validate({"half": 2.5})["half"] == 2.5


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_the_fast_path_refuses_nan_and_infinity_for_a_float(value: float) -> None:
    assert _refusals({"ratio": value}) == {"ratio": "must be a finite number"}
    assert _refusals({"maybe": value}) == {"maybe": "must be a finite number"}


def test_a_nullable_float_may_be_null() -> None:
    assert PARAMS.validate({"maybe": None})["maybe"] is None
    assert PARAMS.validate({"maybe": 2})["maybe"] == 2.0


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"ratio": "fast"}, "must be a number, not a string"),
        ({"ratio": True}, "must be a number, not a boolean"),
        ({"name": 5}, "must be a string, not an integer"),
        ({"name": 1.5}, "must be a string, not a fractional number"),
        ({"mode": 3}, "must be a string, not an integer"),
        ({"mode": "c"}, "must be one of a, b"),
        ({"count": {}}, "must be an integer, not an object"),
        ({"count": []}, "must be an integer, not an array"),
        ({"count": 1.5}, "must be an integer, not a fractional number"),
        ({"flag": "yes"}, "must be a boolean, not a string"),
        ({"count": None}, "must not be null"),
        ({"tag": "  "}, "must not be blank"),
        ({"code": "ab"}, "must be at least 3 characters long"),
        ({"code": "abcdef"}, "must be at most 5 characters long"),
        ({"name": "n" * 1001}, "must be at most 1000 characters long"),
    ],
)
def test_each_refusal_is_said_in_the_apis_words(body: dict[str, Any], why: str) -> None:
    assert _refusals(body) == {next(iter(body)): why}


def test_a_field_of_the_right_length_and_a_name_of_the_longest_length_pass() -> None:
    values = PARAMS.validate({"code": "abcde", "name": "n" * 1000, "tag": " t "})
    assert (values["code"], len(values["name"]), values["tag"]) == ("abcde", 1000, " t ")


def test_how_many_parameters_are_invalid_is_said_in_the_singular_and_the_plural() -> None:
    with pytest.raises(ParamsInvalid, match=r"^1 parameter is invalid$"):
        PARAMS.validate({"count": "x"})
    with pytest.raises(ParamsInvalid, match=r"^2 parameters are invalid$"):
        PARAMS.validate({"count": "x", "flag": 1})
    assert str(InvalidParam("count", "is odd")) == "1 parameter is invalid"
    assert InvalidParam("count", "is odd").fields == {"count": "is odd"}


def test_unknown_keys_are_echoed_cut_to_100_characters() -> None:
    exact, long = "k" * 100, "q" * 101
    fields = _refusals({exact: 1, long: 2})
    assert fields == {exact: "unknown parameter", "q" * 100 + "…": "unknown parameter"}


def test_a_refused_body_still_has_every_fields_own_answer() -> None:
    async def flow(ctx: object, needed: int, spare: int = 4) -> None: ...

    params = params_from_signature(flow)
    assert _refusals({"spare": "x"}, params) == {
        "needed": "is required",
        "spare": "must be an integer, not a string",
    }
    with pytest.raises(ParamsInvalid) as raised:
        validate_params(params, {"needed": "1", "colour": 1})
    assert raised.value.fields == {
        "colour": "unknown parameter",
        "needed": "must be an integer, not a string",
    }
    # A plain mapping of specs is checked as a Params of them is.
    assert validate_params(dict(params), {"needed": 2}) == {"needed": 2, "spare": 4}


def test_an_integer_given_as_a_whole_float_is_that_integer() -> None:
    async def flow(ctx: object, count: Annotated[int, Param(minimum=1)]) -> None: ...

    params = params_from_signature(flow)
    assert _refusals({"count": 0.0}, params) == {"count": "must be at least 1"}
    value = params["count"].check(4.0)
    assert value == 4 and type(value) is int


def test_a_literal_of_other_than_strings_is_refused_at_registration() -> None:
    async def flow(ctx: object, level: Literal[1, 2] = 1) -> None: ...

    with pytest.raises(TypeError, match=r"'level': only Literal strings are supported"):
        params_from_signature(flow)


def test_annotated_metadata_other_than_a_param_is_passed_over() -> None:
    async def flow(
        ctx: object,
        plain: Annotated[int, "a note"] = 1,
        bounded: Annotated[int, "a note", Param("Bounded", minimum=2)] = 2,
    ) -> None: ...

    params = params_from_signature(flow)
    assert params["plain"].minimum is None and params["plain"].description == ""
    assert params["bounded"].minimum == 2 and params["bounded"].description == "Bounded"
    assert _refusals({"bounded": 1}, params) == {"bounded": "must be at least 2"}


def test_a_parameter_list_is_read_in_order_without_the_context() -> None:
    assert list(PARAMS)[:2] == ["above", "below"] and "ctx" not in PARAMS
    assert len(PARAMS) == 11 and PARAMS["mode"].choices == ("a", "b")
    assert PARAMS["name"].max_length == 1000 and PARAMS["code"].max_length == 5
    assert PARAMS["tag"].min_length == 1 and not PARAMS["tag"].required


def test_a_default_that_breaks_its_own_rule_is_refused_at_registration() -> None:
    async def flow(ctx: object, n: Annotated[int, Param(maximum=3)] = 5) -> None: ...

    with pytest.raises(TypeError, match=r"flow: default of 'n' must be at most 3$"):
        params_from_signature(flow)


def test_an_optional_of_two_types_is_refused() -> None:
    async def flow(ctx: object, x: int | str | None = None) -> None: ...

    with pytest.raises(TypeError, match=r"'x' may only be Optional\[one type\]"):
        params_from_signature(flow)


def test_a_lone_float_parameter_refuses_nan_on_the_fast_path() -> None:
    async def flow(ctx: object, ratio: float) -> None: ...

    params = params_from_signature(flow)
    assert _refusals({"ratio": float("nan")}, params) == {"ratio": "must be a finite number"}
    assert params.validate({"ratio": 0.5}) == {"ratio": 0.5}


def test_the_schema_is_titled_after_the_workflow() -> None:
    assert PARAMS.json_schema()["title"] == "_flow"
    assert Params("", dict(PARAMS)).json_schema()["title"] == "params"


def test_a_required_parameter_may_follow_optional_ones() -> None:
    async def flow(ctx: object, size: int = 1, name: str = "a", *, needed: bool) -> None: ...

    params = params_from_signature(flow)
    assert params.validate({"needed": True}) == {"size": 1, "name": "a", "needed": True}
    assert params.json_schema()["required"] == ["needed"]


def test_bounds_given_to_a_boolean_are_passed_over() -> None:
    async def flow(ctx: object, flag: Annotated[bool, Param("On?", minimum=1)] = False) -> None: ...

    assert params_from_signature(flow).validate({"flag": False}) == {"flag": False}


def test_a_spec_made_directly_has_no_description_and_no_least_length() -> None:
    spec = ParamSpec(name="note", type=str, default=None, required=True, nullable=False)
    assert (spec.description, spec.min_length, spec.max_length) == ("", 0, 1000)
    params = Params("notes", {"note": spec})
    assert params.validate({"note": ""}) == {"note": ""}
    assert "description" not in params.json_schema()["properties"]["note"]


def test_a_parameters_facts_cannot_be_changed_once_read() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        PARAMS["above"].minimum = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Param(minimum=1).minimum = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("async def f(ctx, *a: int): ...", "f: *args and **kwargs cannot be endpoint parameters"),
        ("async def f(ctx, x): ...", "f: parameter 'x' needs a type annotation"),
        ("async def f(ctx, x: int | str = 1): ...", "f: 'x' may only be Optional[one type]"),
        (
            "async def f(ctx, x: Literal[1] = 1): ...",
            "f: 'x': only Literal strings are supported",
        ),
        (
            "async def f(ctx, x: list = []): ...",
            "f: 'x' has type <class 'list'>; use int, float, bool or str",
        ),
        (
            "async def f(ctx, x: int = 'a'): ...",
            "f: default of 'x' must be an integer, not a string",
        ),
    ],
)
def test_a_signature_refused_at_registration_says_whose_and_why(source: str, message: str) -> None:
    namespace: dict[str, Any] = {"Literal": Literal}
    exec(source, namespace)
    with pytest.raises(TypeError) as raised:
        params_from_signature(namespace["f"])
    assert str(raised.value) == message


def test_a_value_json_has_no_name_for_is_named_by_its_python_type() -> None:
    # Embedding code may pass Python values that no JSON body holds.
    assert _refusals({"count": (1, 2)}) == {"count": "must be an integer, not tuple"}
