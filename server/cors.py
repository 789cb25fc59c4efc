"""Cross-origin access for browser pages on another origin: off unless an origin is named."""

from __future__ import annotations

from aiohttp import web

from .errors import Handler

__all__ = ["enable_cors"]

_ALLOW_HEADERS = "Authorization, Content-Type, Last-Event-ID, Cache-Control"
_EXPOSE_HEADERS = "X-Run-Id"


def enable_cors(app: web.Application, origin: str) -> None:
    """Let browser pages from ``origin``, and no other, call the API.

    Preflights are answered by a middleware that runs before routing and
    authentication (browsers send them without credentials); every other response,
    streams included, gets its headers in the ``on_response_prepare`` hook, so no
    handler needs to know about CORS.
    """

    @web.middleware
    async def answer_preflights(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "OPTIONS" and request.headers.get("Origin") == origin:
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Methods": "GET, POST, DELETE",
                    "Access-Control-Allow-Headers": _ALLOW_HEADERS,
                    "Access-Control-Max-Age": "600",
                },
            )
        return await handler(request)

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        # Every answer depends on Origin now, those without the CORS headers too: a cache
        # must not hand one origin's answer to another. What it varies by already stays.
        vary = [v.strip() for v in response.headers.get("Vary", "").split(",") if v.strip()]
        if not any(v.lower() in ("origin", "*") for v in vary):
            response.headers["Vary"] = ", ".join([*vary, "Origin"])
        if request.headers.get("Origin") == origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            if request.method != "OPTIONS":
                response.headers["Access-Control-Expose-Headers"] = _EXPOSE_HEADERS

    app.middlewares.insert(0, answer_preflights)
    app.on_response_prepare.append(add_headers)
