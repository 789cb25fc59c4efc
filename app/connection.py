"""One request opened: same-origin redirects, its time limit, a busy server's ``Retry-After``,
and what came back, classified once.

Every request the client makes goes through ``open_answer``: a run's ``POST``, a resume, a
watched URL and the plain ``GET``s alike. An answer that is not an event stream is read here,
whole and bounded, so whoever looks at it next never reads a body again.
"""

from __future__ import annotations

import asyncio
import enum
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

from .answers import MAX_REDIRECTS, is_json, media_type, same_origin
from .inflate import body_pieces
from .settings import ClientSettings
from .sse import StreamTooLarge

__all__ = ["BUSY_TYPES", "Answer", "Kind", "busy_wait", "open_answer"]

#: The errors a streambind server answers when it started nothing and asks to be asked
#: again: it is stopping, cannot reach its run store, has too many runs or connections.
BUSY_TYPES = frozenset(
    {"shutting_down", "store_unavailable", "too_many_runs", "too_many_connections"}
)
_BUSY_STATUSES = (429, 503)
#: The wait when a busy answer gives no usable ``Retry-After``.
_DEFAULT_RETRY_AFTER_S = 1.0


class Kind(enum.Enum):
    """What an answer is, decided once from its status and content type."""

    STREAM = "stream"  # 200 text/event-stream: read it as it arrives
    RESULT = "result"  # any other 2xx: a whole result (JSON, or something else)
    NO_CONTENT = "no_content"  # 204: nothing (left) to send
    REDIRECT = "redirect"  # a 3xx that was not followed
    ERROR = "error"  # 4xx or 5xx


@dataclass
class Answer:
    response: httpx.Response
    kind: Kind
    #: Same-origin redirects followed to get here.
    redirects: int

    @property
    def is_json(self) -> bool:
        return is_json(self.response)


def _kind(response: httpx.Response) -> Kind:
    status = response.status_code
    if status == 204:
        return Kind.NO_CONTENT
    if status >= 400:
        return Kind.ERROR
    if not response.is_success:
        return Kind.REDIRECT
    if media_type(response) == "text/event-stream":
        return Kind.STREAM
    return Kind.RESULT


async def open_answer(
    http: httpx.AsyncClient,
    request: httpx.Request,
    settings: ClientSettings,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_busy: Callable[[str | None], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Answer:
    """Send ``request``; the caller closes ``answer.response``.

    Same-origin redirects are followed (another origin could be handed the token, the body
    and the ``Last-Event-ID``); a busy answer (``429``/``503`` that started nothing) is sent
    again after its ``Retry-After`` for at most ``settings.busy_retry_for`` seconds in all,
    ``on_busy`` told why meanwhile (and ``None`` once it is over). Raises httpx's errors,
    ``httpx.ReadTimeout`` when no headers came within ``request_timeout``, and
    ``StreamTooLarge`` for a body that is not a stream and is over ``max_event_size``.
    """
    deadline = clock() + settings.busy_retry_for
    waited = False
    try:
        while True:
            answer = await _send_following(http, request, settings)
            if answer.kind is Kind.STREAM:
                return answer
            try:
                # Bounded in all: a server trickling a byte at a time passes every read timeout.
                async with asyncio.timeout(settings.request_timeout):
                    await read_whole(answer.response, settings.max_event_size)
            except TimeoutError:
                await answer.response.aclose()
                message = (
                    f"the answer did not arrive in full within {settings.request_timeout:g} s, "
                    "the request_timeout"
                )
                raise httpx.ReadTimeout(message, request=request) from None
            except BaseException:
                await answer.response.aclose()
                raise
            wait = busy_wait(answer.response, settings)
            if wait is None:
                return answer
            left = deadline - clock()
            if wait > left:
                return answer  # the caller reports the busy answer as it came
            if on_busy is not None:
                on_busy(f"server busy ({busy_reason(answer.response)}), retrying in {wait:.3g} s")
            waited = True
            await sleep(wait)
    finally:
        if waited and on_busy is not None:
            on_busy(None)


async def _send_following(
    http: httpx.AsyncClient, request: httpx.Request, settings: ClientSettings
) -> Answer:
    first = request
    redirects = 0
    limit = settings.request_timeout
    while True:
        try:
            async with asyncio.timeout(limit):
                response = await http.send(request, stream=True)
        except TimeoutError:
            message = f"no response headers within {limit:g} s, the request_timeout"
            raise httpx.ReadTimeout(message, request=request) from None
        following = response.next_request
        if (
            following is None
            or not same_origin(following.url, first.url)
            or redirects >= MAX_REDIRECTS
        ):
            return Answer(response, _kind(response), redirects)
        redirects += 1
        await response.aclose()
        request = following


async def read_whole(response: httpx.Response, limit: int) -> None:
    """Read a body that is not a stream into ``response.content``, up to ``limit`` bytes."""
    pieces: list[bytes] = []
    size = 0
    async for piece in body_pieces(response):
        size += len(piece)
        if size > limit:
            raise StreamTooLarge(
                f"the answer is larger than the limit of {limit:,} bytes "
                f"({response.status_code} {response.headers.get('content-type', '')})"
            )
        pieces.append(piece)
    response._content = b"".join(pieces)  # what aread() would have set


def _error_type(response: httpx.Response) -> str | None:
    try:
        body = json.loads(response.content)
    except (ValueError, RecursionError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else None


def busy_reason(response: httpx.Response) -> str:
    """What the busy server said, in a few words."""
    try:
        error = json.loads(response.content)["error"]
        message = error["message"]
        if isinstance(message, str) and message:
            return message[:120]
    except (ValueError, RecursionError, KeyError, TypeError):
        pass
    return f"{response.status_code} {response.reason_phrase}".strip()


def busy_wait(response: httpx.Response, settings: ClientSettings) -> float | None:
    """Seconds to wait before asking again, or None when the answer is not a busy one.

    A ``429``/``503`` is busy when it is one of streambind's own (``BUSY_TYPES``) or says
    when to come back (``Retry-After``): either way nothing was started.
    """
    if response.status_code not in _BUSY_STATUSES:
        return None
    header = response.headers.get("retry-after")
    if _error_type(response) not in BUSY_TYPES and header is None:
        return None
    wait = _retry_after(header)
    return max(wait, settings.min_retry_ms / 1000)


def _retry_after(header: str | None) -> float:
    if header is None:
        return _DEFAULT_RETRY_AFTER_S
    header = header.strip()
    if header.isascii() and header.isdigit():
        return float(min(int(header), 24 * 3600))
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return _DEFAULT_RETRY_AFTER_S
    if when.tzinfo is None:
        return _DEFAULT_RETRY_AFTER_S
    return max(0.0, when.timestamp() - time.time())
