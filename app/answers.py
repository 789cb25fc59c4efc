"""What a call makes of an answer that is not an event stream: redirects, JSON, the rest."""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["MAX_REDIRECTS", "is_json", "not_a_stream", "redirect_not_followed", "same_origin"]

#: Same-origin redirects followed for one request before giving up.
MAX_REDIRECTS = 5

_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    """Whether two URLs share scheme, host and port: only such redirects are followed."""

    def origin(url: httpx.URL) -> tuple[str, str, int | None]:
        return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)

    return origin(a) == origin(b)


def media_type(response: httpx.Response) -> str:
    content_type: str = response.headers.get("content-type", "")
    return content_type.split(";", 1)[0].strip().lower()


def is_json(response: httpx.Response) -> bool:
    kind = media_type(response)
    return kind == "application/json" or kind.endswith("+json")


def _status(response: httpx.Response) -> str:
    return f"{response.status_code} {response.reason_phrase}".strip()


def redirect_not_followed(response: httpx.Response, target: str, hops: int) -> dict[str, Any]:
    """The error for a redirect left alone: to another origin, or one too many."""
    location = response.headers.get("location", "")
    if hops >= MAX_REDIRECTS:
        message = f"{target} redirected more than {MAX_REDIRECTS} times (last to {location})"
    elif location:
        message = (
            f"{target} answered {_status(response)} redirecting to {location}, which is "
            "another origin: redirects are followed only within the same origin"
        )
    else:
        message = f"{target} answered {_status(response)}, which is not a stream or a result"
    return {"type": "redirect", "message": message, "status": response.status_code}


def not_a_stream(response: httpx.Response, target: str) -> dict[str, Any]:
    """The error for a 2xx answer that is neither an event stream nor JSON."""
    kind = media_type(response) or "no content type"
    message = (
        f"{target} answered {_status(response)} with {kind}, which is neither an event "
        "stream (text/event-stream) nor a JSON result"
    )
    return {"type": "not_a_stream", "message": message, "status": response.status_code}
