"""Workflow parameters: read from a signature, validated by msgspec, published as JSON Schema.

Authors write ``Annotated[int, Param(...)]`` as before; each signature becomes a msgspec
type (``Meta`` constraints on the fields of a ``Struct``), which validates request bodies
and emits the standard JSON Schema (draft 2020-12) that ``GET /api/endpoints`` publishes.
The answers keep streambind's own per-field messages: a body that the library refuses is
checked again field by field, and each field's refusal is said in plain words.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec
from msgspec import Meta

__all__ = [
    "InvalidParam",
    "Param",
    "ParamSpec",
    "Params",
    "ParamsInvalid",
    "params_from_signature",
    "validate_params",
]

# Strings longer than this are refused unless a parameter says otherwise: a
# parameter value is a setting, not a payload.
DEFAULT_MAX_STRING = 1_000
#: A string that must not be blank holds something other than white space.
NOT_BLANK = r"\S"

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
    """One parameter as the signature gives it, and the msgspec type that validates it."""

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

    @property
    def annotation(self) -> Any:
        """The type msgspec validates a value against: the Python type with its constraints."""
        if self.choices is not None:
            inner: Any = Literal[self.choices]
        elif self.type is str:
            meta = Meta(
                min_length=self.min_length or None,
                max_length=self.max_length,
                pattern=NOT_BLANK if self.min_length else None,
            )
            inner = Annotated[str, meta]
        elif self.type in (int, float) and (self.minimum is not None or self.maximum is not None):
            inner = Annotated[self.type, Meta(ge=self.minimum, le=self.maximum)]
        else:
            inner = self.type
        if self.nullable:
            inner = Union[inner, None]  # noqa: UP007 (a value, not an annotation)
        return Annotated[inner, Meta(description=self.description)] if self.description else inner

    def check(self, value: Any) -> Any:
        """Return the value converted to the parameter's type, or raise ValueError with why."""
        if self.type is int and isinstance(value, float) and value.is_integer():
            value = int(value)  # 4.0 is the integer 4, as JSON has one kind of number
        try:
            value = msgspec.convert(value, self.annotation)
        except msgspec.ValidationError as exc:
            raise ValueError(self._why(value, str(exc))) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    def _why(self, value: Any, refusal: str) -> str:
        """The library's refusal of ``value``, in the words the API has always used."""
        if value is None:
            return "must not be null"
        if isinstance(value, str) and self.min_length and not value.strip():
            # Blank is what an empty form field sends: for a value that must be given,
            # that is the value missing.
            return "is required" if self.required else "must not be blank"
        if ", got " in refusal:
            expected = "string" if self.choices is not None else _TYPE_NAMES[self.type]
            return f"must be {_article(expected)}, not {_json_type_name(value)}"
        if refusal.startswith("Invalid enum value") and self.choices is not None:
            return f"must be one of {', '.join(self.choices)}"
        if "of length <=" in refusal:
            return f"must be at most {self.max_length} characters long"
        if "of length >=" in refusal:
            return f"must be at least {self.min_length} characters long"
        if " >= " in refusal and self.minimum is not None:
            return f"must be at least {_num(self.minimum)}"
        if " <= " in refusal and self.maximum is not None:
            return f"must be at most {_num(self.maximum)}"
        return refusal


class Params(Mapping[str, ParamSpec]):
    """A workflow's parameters, in signature order: validation and JSON Schema in one place."""

    def __init__(self, owner: str, specs: Mapping[str, ParamSpec]) -> None:
        self._specs = dict(specs)
        self._floats = [n for n, s in self._specs.items() if s.type is float]
        fields = [
            (name, spec.annotation, msgspec.NODEFAULT if spec.required else spec.default)
            for name, spec in self._specs.items()
        ]
        self._struct = msgspec.defstruct(
            owner or "params", fields, kw_only=True, forbid_unknown_fields=True
        )

    def __getitem__(self, name: str) -> ParamSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def json_schema(self) -> dict[str, Any]:
        """The parameters as one JSON Schema (draft 2020-12) object, as msgspec writes it."""
        generated = msgspec.json.schema(self._struct)
        schema: dict[str, Any] = generated["$defs"][generated["$ref"].rsplit("/", 1)[1]]
        schema.setdefault("required", [])
        return schema

    def validate(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Every parameter's value from a request body; raises ParamsInvalid with why per field."""
        try:
            values = msgspec.structs.asdict(msgspec.convert(body, self._struct))
        except msgspec.ValidationError:
            return self._validate_each(body)
        for name in self._floats:
            value = values[name]
            if value is not None and not math.isfinite(value):
                return self._validate_each(body)
        return values

    def _validate_each(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The slow path, taken only when the body has a problem: every field's own answer."""
        fields: dict[str, str] = {}
        values: dict[str, Any] = {}
        for key in body:
            if key not in self._specs:
                fields[_field_key(key)] = "unknown parameter"
        for name, spec in self._specs.items():
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


def params_from_signature(fn: Any) -> Params:
    """Read the parameters of a workflow ``async def f(ctx, a: int = 1, ...)``."""
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
    return Params(fn.__name__, specs)


def validate_params(params: Mapping[str, ParamSpec], body: Mapping[str, Any]) -> dict[str, Any]:
    """Check a request body against the parameters; return every parameter's value."""
    if not isinstance(params, Params):
        params = Params("params", params)
    return params.validate(body)


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


def _field_key(key: str) -> str:
    # Unknown keys are echoed back to the caller: keep them short.
    return key if len(key) <= 100 else key[:100] + "…"


def _article(type_name: str) -> str:
    return ("an " if type_name[0] in "aeiou" else "a ") + type_name


def _json_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
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
