"""What a workflows module brings besides its workflows: resources, opened before the first run
and closed after the last, like aiohttp's ``cleanup_ctx``.

A module declares one with ``@resource``, an async generator that opens it, yields it, and
closes it after the ``yield``::

    @resource("pool", health=pool_health)
    async def pool(context: ResourceContext) -> AsyncIterator[Pool]:
        opened = await Pool.open(context.options)
        try:
            yield opened
        finally:
            await opened.close()

A workflow reaches it as ``ctx.resource(pool)``, typed ``Pool``; ``GET /healthz`` reports
``health(opened)`` under the resource's name.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, overload

from .config import ServerConfig
from .node import NodeAlive

__all__ = [
    "RESERVED_NAMES",
    "OpenResources",
    "Resource",
    "ResourceContext",
    "ResourceUnavailable",
    "resource",
]

T = TypeVar("T")

#: Names the health answer uses for itself: no resource may take them.
RESERVED_NAMES = frozenset({"status", "reason", "running", "loop", "resources"})


class ResourceUnavailable(Exception):
    """A resource cannot be opened (or was lost); the message is for people and holds no
    secret. ``streambind serve`` prints it as one line and exits with status 2."""


@dataclass(frozen=True)
class ResourceContext:
    """What a resource's opener is handed."""

    #: The framework's settings (``data_dir`` among them).
    config: ServerConfig
    #: Whether a server node still runs: the run store's answer (True, False, or None when
    #: it cannot tell, as always without a shared store).
    node_alive: NodeAlive
    #: What the module was registered with (``Registry.add_module(module, options)``).
    options: Any = None


Opener = Callable[[ResourceContext], AsyncIterator[T]]


@dataclass(frozen=True, eq=False)
class Resource(Generic[T]):
    """A resource a workflows module declares; ``ctx.resource(it)`` is its opened value."""

    name: str
    opener: Opener[T]
    #: The resource's health, as ``GET /healthz`` reports it under its name.
    health: Callable[[T], Awaitable[dict[str, Any]]] | None = None
    #: A line for ``serve`` to print at start-up (None: nothing to say).
    describe: Callable[[T], str | None] | None = None


class _Declare(Protocol):
    """``@resource(name)``'s decorator: what it yields types the resource."""

    def __call__(self, opener: Opener[T], /) -> Resource[T]: ...


@overload
def resource(name: str) -> _Declare: ...


@overload
def resource(
    name: str,
    *,
    health: Callable[[T], Awaitable[dict[str, Any]]] | None = None,
    describe: Callable[[T], str | None] | None = None,
) -> Callable[[Opener[T]], Resource[T]]: ...


def resource(
    name: str,
    *,
    health: Callable[[Any], Awaitable[dict[str, Any]]] | None = None,
    describe: Callable[[Any], str | None] | None = None,
) -> Callable[[Opener[Any]], Resource[Any]]:
    """Declare ``async def opener(context) -> AsyncIterator[T]`` as a resource named ``name``."""
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"resource name {name!r}: use letters, digits, '-' or '_'")
    if name in RESERVED_NAMES:
        raise ValueError(f"resource name {name!r} is taken by /healthz itself")

    def declare(opener: Opener[Any]) -> Resource[Any]:
        return Resource(name, opener, health, describe)

    return declare


@dataclass
class OpenResources:
    """The served modules' resources: opened in order, closed in reverse order."""

    declared: list[tuple[Resource[Any], Any]] = field(default_factory=list)
    _values: dict[Resource[Any], Any] = field(default_factory=dict)
    _stack: contextlib.AsyncExitStack | None = None

    @classmethod
    def of(cls, declared: Iterable[tuple[Resource[Any], Any]]) -> OpenResources:
        return cls(list(declared))

    async def open(self, config: ServerConfig, node_alive: NodeAlive) -> None:
        """Open every resource; raises ``ResourceUnavailable`` (the ones already opened
        closed again) when one cannot be."""
        stack = contextlib.AsyncExitStack()
        try:
            for declared, options in self.declared:
                context = ResourceContext(config, node_alive, options)
                opened = contextlib.asynccontextmanager(declared.opener)(context)
                try:
                    self._values[declared] = await stack.enter_async_context(opened)
                except ResourceUnavailable:
                    raise
                except Exception as exc:
                    message = str(exc) or type(exc).__name__
                    raise ResourceUnavailable(f"cannot open {declared.name}: {message}") from exc
        except BaseException:
            self._values.clear()
            await stack.aclose()
            raise
        self._stack = stack

    async def close(self) -> None:
        stack, self._stack = self._stack, None
        self._values.clear()
        if stack is not None:
            await stack.aclose()

    def value(self, declared: Resource[T]) -> T:
        try:
            return self._values[declared]  # type: ignore[no-any-return]
        except KeyError:
            raise LookupError(
                f"the resource {declared.name!r} is not open: is its workflows module served?"
            ) from None

    async def health(self) -> dict[str, Any]:
        """Each resource's health by name (those that report one)."""
        report: dict[str, Any] = {}
        for declared, _ in self.declared:
            if declared.health is None:
                continue
            if declared not in self._values:
                report[declared.name] = {"ok": False, "error": f"{declared.name} is not open"}
                continue
            report[declared.name] = await declared.health(self._values[declared])
        return report

    def descriptions(self) -> list[str]:
        """The start-up lines the resources have to say."""
        lines = []
        for declared, _ in self.declared:
            if declared.describe is not None and declared in self._values:
                line = declared.describe(self._values[declared])
                if line:
                    lines.append(line)
        return lines
