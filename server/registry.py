"""The ``@endpoint`` decorator and the registry of workflows a server offers."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

from .params import Params, params_from_signature
from .resources import Resource

__all__ = ["Endpoint", "Registry", "endpoint"]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_ATTRIBUTE = "__streambind_endpoint__"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Endpoint:
    name: str
    title: str
    description: str
    fn: Callable[..., Awaitable[Any]]
    params: Params = field(default_factory=lambda: Params("params", {}))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "params": {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                **self.params.json_schema(),
            },
        }


def endpoint(name: str, *, title: str = "", description: str = "") -> Callable[[F], F]:
    """Register an ``async def workflow(ctx, ...)`` as the endpoint ``POST /api/endpoints/NAME``.

    The function itself is returned unchanged, so it stays callable in tests.
    """
    if not _NAME.match(name):
        raise ValueError(f"endpoint name {name!r}: use 1-64 lower-case letters, digits, '-' or '_'")

    def register(fn: F) -> F:
        checked: Any = fn  # iscoroutinefunction narrows what it checks: keep fn an F
        if not inspect.iscoroutinefunction(checked):
            raise TypeError(f"@endpoint({name!r}) needs an async function")
        doc = inspect.getdoc(fn) or ""
        setattr(
            fn,
            _ATTRIBUTE,
            Endpoint(
                name=name,
                title=title or name.replace("-", " ").capitalize(),
                description=description or doc.split("\n\n")[0].replace("\n", " "),
                fn=fn,
                params=params_from_signature(fn),
            ),
        )
        return fn

    return register


class Registry:
    """The endpoints a server offers, in the order they were added."""

    def __init__(self, endpoints: Iterable[Endpoint] = ()) -> None:
        self._endpoints: dict[str, Endpoint] = {}
        #: The resources the added modules declared, each with its module's options.
        self.resources: list[tuple[Resource[Any], Any]] = []
        for ep in endpoints:
            self.add(ep)

    def add(self, ep: Endpoint) -> None:
        if ep.name in self._endpoints and self._endpoints[ep.name].fn is not ep.fn:
            raise ValueError(f"two workflows are registered as endpoint {ep.name!r}")
        self._endpoints[ep.name] = ep

    def add_module(self, module: ModuleType | str, options: Any = None) -> int:
        """Add every ``@endpoint`` function and ``@resource`` of a module (its attributes, in
        order); return how many endpoints. ``options`` is handed to its resources' openers."""
        if isinstance(module, str):
            module = importlib.import_module(module)
        found = [
            getattr(obj, _ATTRIBUTE)
            for obj in vars(module).values()
            if callable(obj) and isinstance(getattr(obj, _ATTRIBUTE, None), Endpoint)
        ]
        for ep in found:
            self.add(ep)
        opened = {declared for declared, _ in self.resources}
        for obj in vars(module).values():
            if isinstance(obj, Resource) and obj not in opened:
                if any(declared.name == obj.name for declared, _ in self.resources):
                    raise ValueError(f"two resources are named {obj.name!r}")
                self.resources.append((obj, options))
        return len(found)

    def get(self, name: str) -> Endpoint | None:
        return self._endpoints.get(name)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._endpoints.values())

    def __len__(self) -> int:
        return len(self._endpoints)
