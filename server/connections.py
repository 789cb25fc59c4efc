"""Connection guards: request headers must arrive in time, and open connections are capped.

aiohttp on its own keeps a connection whose headers trickle in a byte at a time for
as long as its keep-alive (an hour in ``AppRunner``), and accepts connections until
the process runs out of file descriptors; a few hundred slow clients then make the
server unreachable. Here a connection's request headers must be complete within
``header_timeout`` (counted from connecting, or from the first byte of a later
request on a kept-alive connection), and beyond ``max_connections`` a new connection
is answered 503 and closed at once, before it costs anything but its descriptor.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from .client_log import RateLimitedLog
from .errors import ApiError

__all__ = ["ConnectionLimits", "GuardedAppRunner", "GuardedServer", "default_max_connections"]


#: Descriptors kept back from connections for the database, staging and export files,
#: the listening socket and the interpreter's own.
_RESERVED_FRACTION = 0.25


def default_max_connections() -> int:
    """Three quarters of this process's descriptor limit (768 under the usual 1,024)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    return max(1, int(soft * (1 - _RESERVED_FRACTION)))


@dataclass(frozen=True)
class ConnectionLimits:
    #: Seconds a request's headers may take to arrive in full.
    header_timeout: float
    #: Seconds an idle kept-alive connection stays open.
    keepalive: float
    #: Connections open at once; one more is answered 503 and closed.
    max_connections: int


def _refusal(limit: int) -> bytes:
    body = json.dumps(
        {
            "error": {
                "type": "too_many_connections",
                "message": f"this server holds {limit} connections at once; try again soon",
            }
        }
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class GuardedServer(web.Server):
    """aiohttp's low-level server, handing each connection to a guarded handler."""

    def __init__(
        self,
        handler: Any,
        *,
        request_factory: Any,
        handler_cancellation: bool,
        limits: ConnectionLimits,
        warnings: RateLimitedLog,
        **handler_kwargs: Any,
    ) -> None:
        super().__init__(
            handler, request_factory=request_factory, handler_cancellation=handler_cancellation
        )
        self.limits = limits
        self.warnings = warnings
        self.open_connections = 0
        self.refused_connections = 0
        self._handler_kwargs = {**handler_kwargs, "keepalive_timeout": limits.keepalive}
        self._refusal = _refusal(limits.max_connections)

    def __call__(self) -> RequestHandler:
        return _GuardedRequestHandler(self, loop=self._loop, **self._handler_kwargs)

    def refuse(self, transport: asyncio.BaseTransport) -> None:
        self.refused_connections += 1
        self.warnings.warning(
            "refused a connection: %d are open, as many as max_connections allows",
            self.open_connections,
        )
        # A TCP transport writes; uvloop's are not asyncio.WriteTransport subclasses.
        cast(asyncio.WriteTransport, transport).write(self._refusal)
        transport.close()


class _GuardedRequestHandler(RequestHandler):
    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager
        self._counted = False
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self._guard
        if guard.open_connections >= guard.limits.max_connections:
            # Never handed to aiohttp: no task, no parser, nothing to tear down.
            guard.refuse(transport)
            return
        guard.open_connections += 1
        self._counted = True
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._counted:
            return
        self._counted = False
        self._guard.open_connections -= 1
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._counted:
            return  # refused: its transport is closing, and nothing here was set up
        parsed_before = self._request_count
        # Waiting for a request: these bytes start one (a body's bytes arrive while
        # its handler runs, when nothing waits here).
        between_requests = self._waiter is not None and not self._waiter.done()
        super().data_received(data)
        if self._request_count != parsed_before:
            self._disarm_header_deadline()  # a request's headers are complete
        elif between_requests and data and self._header_deadline is None:
            self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        self._header_deadline = self._loop.call_later(
            self._guard.limits.header_timeout, self._headers_too_slow
        )

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        self._guard.warnings.warning(
            "closed a connection from %s: its request headers took more than %g s",
            self._peer(),
            self._guard.limits.header_timeout,
        )
        self.force_close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A request aiohttp could not parse is the client's mistake: one warning line
        (rate-limited) and a JSON 4xx, not an ERROR with a traceback."""
        if status >= 500 or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        why = _one_line(message or exc.message)
        if isinstance(exc, BadHttpMethod) and self._request_count == 1:
            # Not HTTP at all (TLS, a port scanner): as aiohttp does, not worth a warning.
            self.log_debug("not an HTTP request from %s: %s", self._peer(), why)
        else:
            self._guard.warnings.warning("malformed request from %s: %s", self._peer(), why)
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already sent; this one cannot be")
        error_type = "bad_request" if status == 400 else "http_error"
        response = ApiError(status, error_type, f"malformed request: {why}").response()
        response.force_close()
        return response

    def _peer(self) -> str:
        peer = self.peername
        return peer[0] if isinstance(peer, tuple) else str(peer)


def _one_line(text: str) -> str:
    """aiohttp's parse errors span lines and point at the byte with a caret."""
    return " ".join(word for word in text.split() if word != "^")[:200]


class GuardedAppRunner(web.AppRunner):
    """``web.AppRunner`` serving through a :class:`GuardedServer`."""

    def __init__(self, app: web.Application, *, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._limits = limits
        self._runner_kwargs = kwargs

    async def _make_server(self) -> web.Server:
        # The base class starts the application (its on_startup hooks) and builds a
        # plain Server from the same settings; ours takes that Server's place.
        plain = await super()._make_server()
        handler_kwargs = {
            k: v
            for k, v in self._runner_kwargs.items()
            if k not in ("handle_signals", "handler_cancellation", "shutdown_timeout")
        }
        return GuardedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            limits=self._limits,
            warnings=RateLimitedLog(logging.getLogger("streambind.server")),
            **handler_kwargs,
        )
