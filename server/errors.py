"""JSON error responses: every failure the API reports has the same ``{"error": {...}}`` shape."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .config import MAX_BODY_WORDS

__all__ = ["ApiError", "error_middleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# aiohttp raises these for routing and body-size problems; they get our shape too.
_HTTP_ERROR_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_runs",
}


class ApiError(Exception):
    """An error answered as ``{"error": {"type", "message", "fields"?, ...}}`` with a status.

    ``details`` are further facts about the error, as keys beside ``type`` and ``message``.
    """

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.fields = fields
        self.headers = headers or {}
        self.details = details or {}

    def response(self) -> web.Response:
        """This error as the HTTP response the client gets."""
        body: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        body.update(self.details)
        return web.json_response({"error": body}, status=self.status, headers=self.headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        message = exc.reason
        if exc.status == 404:
            message = f"no such path: {request.path}"
        elif exc.status == 405:
            message = f"{request.method} is not allowed here; use {headers.get('Allow', '')}"
        elif exc.status == 413:
            message = f"the request body is larger than {MAX_BODY_WORDS}"
        error_type = _HTTP_ERROR_TYPES.get(exc.status, "http_error")
        return ApiError(exc.status, error_type, message, headers=headers).response()
