"""The browser page: ``GET /`` for a browser, and its files under ``/static/``.

The files ship in the package (``server/static/``) and are read once. Only names found
there are served, so no request can reach any other file; each goes out with its type,
``Cache-Control: no-cache`` and an ``ETag`` (a browser asks again, and gets ``304`` while
the file is unchanged). Neither needs the token: the page asks for it when ``/api`` does.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from .errors import ApiError

__all__ = ["PAGE", "StaticFile", "prefers_html", "static_files"]

STATIC_DIR = Path(__file__).with_name("static")
#: The page itself: served at ``/`` (its relative links resolve from there), never as a file.
PAGE = "index.html"

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}

# The page loads only its own files and talks only to its own origin.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


@functools.cache
def static_files() -> dict[str, StaticFile]:
    """Every file the page may load, by name; read once, on first use."""
    files = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file() and path.suffix in _TYPES:
            body = path.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            files[path.name] = StaticFile(body, _TYPES[path.suffix], etag)
    return files


def file_response(request: web.Request, name: str) -> web.Response:
    """One of the page's files, or ``304`` when the browser's copy is current."""
    found = static_files().get(name)
    if found is None:
        raise ApiError(404, "not_found", f"no file named {name[:100]!r}")
    headers = {
        "Cache-Control": "no-cache",
        "ETag": found.etag,
        "X-Content-Type-Options": "nosniff",
    }
    if name == PAGE:
        headers.update(_PAGE_HEADERS)
        headers["Vary"] = "Accept"
    if found.etag in _etags(request.headers.get("If-None-Match", "")):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = found.content_type
    return web.Response(body=found.body, headers=headers)


def _etags(header: str) -> set[str]:
    # A weak validator matches too: If-None-Match compares weakly (RFC 9110 13.1.2).
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}


def prefers_html(accept: str) -> bool:
    """Whether ``Accept`` ranks HTML above JSON: a browser's navigation does, while curl's
    ``*/*``, an API client's ``application/json`` and no header at all do not."""
    return _quality(accept, "text", "html") > _quality(accept, "application", "json")


def _quality(accept: str, kind: str, subtype: str) -> float:
    """The q of the most specific range of ``Accept`` that matches (RFC 9110 12.5.1)."""
    best, best_q = -1, 0.0
    for item in accept.split(","):
        media, *params = item.strip().split(";")
        media_kind, _, media_subtype = media.strip().lower().partition("/")
        if media_kind == kind and media_subtype == subtype:
            specificity = 2
        elif media_kind == kind and media_subtype == "*":
            specificity = 1
        elif media_kind == "*" and media_subtype == "*":
            specificity = 0
        else:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(1.0, max(0.0, float(value)))
                except ValueError:
                    q = 0.0
        if specificity > best:
            best, best_q = specificity, q
    return best_q if best >= 0 else (1.0 if not accept.strip() else 0.0)
