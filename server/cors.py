"""Cross-origin access for browser pages on another origin: off unless an origin is named."""

from __future__ import annotations

from aiohttp import web

from .errors import Handler

__all__ = ["add_cors_headers", "cors_middleware"]

_ALLOW_HEADERS = "Authorization, Content-Type, Last-Event-ID, Cache-Control"
_EXPOSE_HEADERS = "X-Run-Id"


def cors_middleware(origin: str):  # type: ignore[no-untyped-def]
    """Answer requests from ``origin`` (and its preflights) with CORS headers; no one else."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        from_origin = request.headers.get("Origin") == origin
        if from_origin and request.method == "OPTIONS":
            # A preflight: answered here, before routing and authentication, since
            # browsers send it without credentials.
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": "GET, POST, DELETE",
                    "Access-Control-Allow-Headers": _ALLOW_HEADERS,
                    "Access-Control-Max-Age": "600",
                    "Vary": "Origin",
                },
            )
        response = await handler(request)
        if from_origin and not response.prepared:
            _add_headers(response, origin)
        return response

    return middleware


def _add_headers(response: web.StreamResponse, origin: str) -> None:
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = _EXPOSE_HEADERS
    response.headers["Vary"] = "Origin"


def add_cors_headers(
    request: web.Request, response: web.StreamResponse, origin: str | None
) -> None:
    """For streams, which send their headers before the handler returns."""
    if origin and request.headers.get("Origin") == origin:
        _add_headers(response, origin)
