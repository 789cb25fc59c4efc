"""Workflow parameters: a schema read from a function signature, and request-body validation."""

from __future__ import annotations

import inspect
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

__all__ = [
    "InvalidParam",
    "Param",
    "ParamSpec",
    "ParamsInvalid",
    "params_from_signature",
    "validate_params",
]

# Strings longer than this are refused unless a parameter says otherwise: a
# parameter value is a setting, not a payload.
DEFAULT_MAX_STRING = 1_000

_TYPE_NAMES = {int: "integer", float: "number", bool: "boolean", str: "string"}


@dataclass(frozen=True)
class Param:
    """Extra facts about one parameter, given with ``Annotated[int, Param(...)]``."""

    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    #: For strings: the fewest characters allowed. A required string defaults to 1, so a
    #: blank value counts as missing; ``min_length=0`` lets it be empty.
    min_length: int | None = None


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: type
    default: Any
    required: bool
    nullable: bool
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    max_length: int = DEFAULT_MAX_STRING
    min_length: int = 0
    choices: tuple[str, ...] | None = None

    def schema(self) -> dict[str, Any]:
        """The JSON description published by ``GET /api/endpoints``."""
        out: dict[str, Any] = {
            "type": _TYPE_NAMES[self.type],
            "default": None if self.required else self.default,
            "description": self.description,
        }
        if self.required:
            out["required"] = True
        if self.nullable:
            out["nullable"] = True
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.choices is not None:
            out["enum"] = list(self.choices)
        if self.type is str and self.choices is None:
            out["maxLength"] = self.max_length
            if self.min_length:
                out["minLength"] = self.min_length
        return out

    def check(self, value: Any) -> Any:
        """Return the value converted to the parameter's type, or raise ValueError with why."""
        if value is None:
            if self.nullable:
                return None
            raise ValueError("must not be null")
        expected = _TYPE_NAMES[self.type]
        # bool is a subclass of int in Python, but `true` is not a number in JSON.
        if isinstance(value, bool) and self.type is not bool:
            raise ValueError(f"must be {_article(expected)}, not a boolean")
        if self.type is float and isinstance(value, int):
            value = float(value)
        if self.type is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, self.type):
            raise ValueError(f"must be {_article(expected)}, not {_json_type_name(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"must be at least {_num(self.minimum)}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"must be at most {_num(self.maximum)}")
        if isinstance(value, str):
            if self.choices is not None and value not in self.choices:
                raise ValueError(f"must be one of {', '.join(self.choices)}")
            if len(value) > self.max_length:
                raise ValueError(f"must be at most {self.max_length} characters long")
            if self.min_length and not value.strip():
                # Blank is what an empty form field sends: for a value that must be
                # given, that is the value missing.
                raise ValueError("is required" if self.required else "must not be blank")
            if len(value) < self.min_length:
                raise ValueError(f"must be at least {self.min_length} characters long")
        return value


class ParamsInvalid(ValueError):
    """A request's parameters do not fit the endpoint; ``fields`` maps each name to why."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields
        n = len(fields)
        super().__init__(f"{n} parameter{'s are' if n != 1 else ' is'} invalid")


class InvalidParam(ParamsInvalid):
    """Raised by a workflow whose parameter passed the type check but still cannot be used.

    Before the workflow's first ``ctx.send`` the caller gets 400 with the field's
    message, exactly as for a type error; after it, an ``error`` event.
    """

    def __init__(self, name: str, message: str) -> None:
        super().__init__({name: message})


def params_from_signature(fn: Any) -> dict[str, ParamSpec]:
    """Read the parameter schema of a workflow ``async def f(ctx, a: int = 1, ...)``."""
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn, include_extras=True)
    specs: dict[str, ParamSpec] = {}
    for index, (name, p) in enumerate(sig.parameters.items()):
        if index == 0:
            continue  # the RunContext
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(f"{fn.__qualname__}: *args and **kwargs cannot be endpoint parameters")
        if name not in hints:
            raise TypeError(f"{fn.__qualname__}: parameter {name!r} needs a type annotation")
        specs[name] = _spec(fn, name, hints[name], p.default)
    return specs


def _spec(fn: Any, name: str, hint: Any, default: Any) -> ParamSpec:
    extra = Param()
    if get_origin(hint) is typing.Annotated:
        hint, *metadata = get_args(hint)
        extra = next((m for m in metadata if isinstance(m, Param)), extra)
    nullable = False
    if get_origin(hint) in (Union, types.UnionType):
        members = [a for a in get_args(hint) if a is not type(None)]
        if len(members) != 1 or len(get_args(hint)) != 2:
            raise TypeError(f"{fn.__qualname__}: {name!r} may only be Optional[one type]")
        hint, nullable = members[0], True
    choices = None
    if get_origin(hint) is Literal:
        choices = tuple(get_args(hint))
        if not all(isinstance(c, str) for c in choices):
            raise TypeError(f"{fn.__qualname__}: {name!r}: only Literal strings are supported")
        hint = str
    if hint not in _TYPE_NAMES:
        raise TypeError(
            f"{fn.__qualname__}: {name!r} has type {hint!r}; use int, float, bool or str"
        )
    required = default is inspect.Parameter.empty
    min_length = extra.min_length
    if min_length is None:
        min_length = 1 if required and hint is str and choices is None else 0
    spec = ParamSpec(
        name=name,
        type=hint,
        default=None if required else default,
        required=required,
        nullable=nullable,
        description=extra.description,
        minimum=extra.minimum,
        maximum=extra.maximum,
        max_length=extra.max_length or DEFAULT_MAX_STRING,
        min_length=min_length,
        choices=choices,
    )
    if not required:
        try:
            spec.check(default)
        except ValueError as exc:
            raise TypeError(f"{fn.__qualname__}: default of {name!r} {exc}") from None
    return spec


def validate_params(specs: dict[str, ParamSpec], body: dict[str, Any]) -> dict[str, Any]:
    """Check a request body against the specs; return every parameter's value."""
    fields: dict[str, str] = {}
    values: dict[str, Any] = {}
    for key in body:
        if key not in specs:
            fields[_field_key(key)] = "unknown parameter"
    for name, spec in specs.items():
        if name not in body:
            if spec.required:
                fields[name] = "is required"
            else:
                values[name] = spec.default
            continue
        try:
            values[name] = spec.check(body[name])
        except ValueError as exc:
            fields[name] = str(exc)
    if fields:
        raise ParamsInvalid(fields)
    return values


def _field_key(key: str) -> str:
    # Unknown keys are echoed back to the caller: keep them short.
    return key if len(key) <= 100 else key[:100] + "…"


def _article(type_name: str) -> str:
    return ("an " if type_name[0] in "aeiou" else "a ") + type_name


def _json_type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, float):
        return "a fractional number"
    if isinstance(value, int):
        return "an integer"
    return type(value).__name__


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
