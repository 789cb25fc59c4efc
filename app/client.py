"""The "call endpoint" action: run a workflow over HTTP, keeping ``chunk`` and ``chunks``.

Usable without any UI (tests, scripts)::

    async with StreamClient("http://127.0.0.1:8787") as client:
        state = await client.call("import", {"rows": 100}).run()
        print(state.status, len(state.chunks), state.result)

With ``handle_stream=True`` the state fills in as messages arrive; with it off the
call waits for the whole response and only then sets ``chunks``, ``chunk`` and
``result`` (the no-code platforms' "nothing shows up" behaviour). A dropped
connection is resumed through ``/api/runs/{id}/events`` with ``Last-Event-ID``.
Problems never raise: they end the call as ``failed`` with a readable ``error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx

from .answers import MAX_REDIRECTS, is_json, not_a_stream, redirect_not_followed, same_origin
from .headers import headers_problem, last_event_id_header
from .inflate import body_pieces
from .settings import ClientSettings
from .sse import EventFields, SSEDecoder, StreamTooLarge
from .state import StreamState

__all__ = ["ClientError", "ClientSettings", "StreamCall", "StreamClient", "StreamState"]

_DEFAULT_RETRY_MS = 3000
_NO_TERMINAL_EVENT = "the stream ended without saying how the run ended"
_MAX_BACKOFF_S = 30.0


class ClientError(Exception):
    """A request to the server failed; the message is meant for people."""


class StreamClient:
    """A connection to one streambind server (or, for ``watch``, any SSE URL)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        settings: ClientSettings | None = None,
        max_reconnects: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        settings = settings or ClientSettings()
        if max_reconnects is not None:
            settings = dataclasses.replace(settings, max_reconnects=max_reconnects)
        self.settings = settings
        self.max_reconnects = settings.max_reconnects
        self.clock = clock
        self.sleep = sleep  # the wait before reconnecting (tests count the waits)
        # Plain requests are bounded by request_timeout; streams get read_timeout for
        # their silences instead (see StreamCall._request), a bit above the server's ping.
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(settings.request_timeout, connect=settings.connect_timeout),
            transport=transport,
        )
        #: A stream's requests: the same, except that a read may wait read_timeout.
        self.stream_timeout = httpx.Timeout(
            settings.request_timeout,
            connect=settings.connect_timeout,
            read=settings.read_timeout,
        )

    async def __aenter__(self) -> StreamClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def endpoints(self) -> list[dict[str, Any]]:
        """The server's workflows with their parameter schemas; raises ClientError."""
        body = await self.get_json("/api/endpoints")
        return list(body.get("endpoints", []))

    async def runs(self) -> list[dict[str, Any]]:
        """The runs the server keeps, newest first; raises ClientError."""
        return list((await self.get_json("/api/runs")).get("runs", []))

    async def run_record(self, run_id: str) -> dict[str, Any]:
        """One run's record (``GET /api/runs/{id}``) with its status and result."""
        return await self.get_json(f"/api/runs/{run_id}")

    def call(
        self, name: str, params: dict[str, Any] | None = None, *, handle_stream: bool = True
    ) -> StreamCall:
        """A call of ``POST /api/endpoints/NAME``; nothing is sent until ``run()``."""
        state = StreamState(name=name, params=dict(params or {}), handle_stream=handle_stream)
        return StreamCall(self, state, "POST", f"/api/endpoints/{name}", params or {}, {}, True)

    def follow(self, run_id: str, name: str | None = None) -> StreamCall:
        """Follow a run started elsewhere: replay its events from the start, then live.

        It resumes after a dropped connection and cancels as a call does; a run the server
        does not know (404) or no longer keeps the events of (410) ends it as ``failed``.
        """
        state = StreamState(name=name or run_id)
        state.run_id = run_id
        path = f"/api/runs/{quote(run_id, safe='')}/events"
        return StreamCall(self, state, "GET", path, None, {}, True)

    def watch(
        self,
        url: str,
        *,
        method: str = "GET",
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> StreamCall:
        """Follow any SSE URL (a JSON body is sent with POST and the like)."""
        state = StreamState(name=url, params={} if body is None else {"body": body})
        return StreamCall(self, state, method.upper(), url, body, headers or {}, False)

    async def get_json(self, path: str) -> dict[str, Any]:
        """A JSON object from the server; raises ClientError with a readable message."""
        limit = self.settings.request_timeout
        try:
            # Bounded in all: a server trickling a byte at a time passes every read timeout.
            async with asyncio.timeout(limit):
                response = await self.http.get(path)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ClientError(describe_transport_error(exc, self.base_url, own=True)) from None
        except TimeoutError:
            raise ClientError(
                f"{self.base_url}{path} did not answer within {limit:g} s (request_timeout)"
            ) from None
        if response.status_code != 200:
            raise ClientError(http_error(response)["message"])
        try:
            return dict(response.json())
        except ValueError:
            raise ClientError(f"{self.base_url}{path} did not answer with JSON") from None


class StreamCall:
    """One call in progress. ``run()`` drives it to the end; ``cancel()`` stops it."""

    def __init__(
        self,
        client: StreamClient,
        state: StreamState,
        method: str,
        url: str,
        body: Any,
        headers: dict[str, str],
        streambind: bool,
    ) -> None:
        self.client = client
        self.state = state
        self._method = method
        self._url = url
        self._body = body
        self._headers = headers
        self._streambind = streambind  # resumes through /api/runs/{id}/events
        self._task: asyncio.Task[Any] | None = None
        self._cancel_requested = False
        self._retry_ms: int | None = None  # the server's ``retry:``, for reconnecting
        self._redirects = 0  # same-origin redirects followed for the latest request
        #: Called with each message as it arrives (``--json`` output uses it).
        self.on_chunk: Callable[[Any], None] | None = None

    # -- the call ---------------------------------------------------------------

    @property
    def _target(self) -> str:
        """What a connection problem is blamed on: the server, or the watched URL."""
        return self.client.base_url if self._streambind else self._url

    async def run(self) -> StreamState:
        state = self.state
        clock = self.client.clock
        self._task = asyncio.current_task()
        state.start(clock())
        if (problem := headers_problem(self._headers)) is not None:
            state.fail("invalid_request", f"cannot send this request: {problem}", clock())
            return state
        try:
            if state.handle_stream:
                await self._run_streaming()
            else:
                await self._run_whole()
        except asyncio.CancelledError:
            state.finish("cancelled", clock())
            if not self._cancel_requested:
                raise
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            message = describe_transport_error(exc, self._target, own=self._streambind)
            state.fail("connection_error", message, clock())
        except StreamTooLarge as exc:
            state.fail("too_large", f"{self._target}: {exc}", clock())
        except Exception as exc:
            # Documented never to raise: a UI with many cards depends on it.
            message = f"the client failed on what {self._target} sent: {type(exc).__name__}: {exc}"
            state.fail("client_error", message, clock())
        if not state.finished:  # pragma: no cover - every path above ends the call
            state.fail(
                "protocol_error", "the stream ended without saying how the run ended", clock()
            )
        return state

    async def cancel(self) -> None:
        """Close the stream and ask the server to cancel the run."""
        if self.state.finished:
            return
        self._cancel_requested = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self.state.finish("cancelled", self.client.clock())
        if self._streambind and self.state.run_id:
            # If this fails the stream is closed anyway: the server cancels the run
            # once its grace period passes with nobody following.
            with contextlib.suppress(httpx.HTTPError):
                await self.client.http.delete(f"/api/runs/{self.state.run_id}")

    async def _run_streaming(self) -> None:
        attempts = 0
        request = self._request()
        while True:
            before = len(self.state.chunks)
            lost: Exception | None = None
            try:
                async with self._open(request) as response:
                    if not await self._accept(response):
                        return
                    if await self._take_events(response):
                        return
                    if not self._streambind:
                        # Other servers end a stream by closing it cleanly; streambind
                        # always sends a terminal event first, so for it this is a loss.
                        self.state.finish("succeeded", self.client.clock())
                        return
            except httpx.ReadTimeout as exc:
                lost = exc  # silent past read_timeout, or no headers: resume below
                if not str(exc):
                    lost = httpx.ReadTimeout(
                        f"nothing received for {self.client.settings.read_timeout:g} s, "
                        "the read_timeout"
                    )
            except httpx.TransportError as exc:
                lost = exc  # refused, reset or cut mid-stream: resume below
            # The stream ended without a terminal event: the connection was lost.
            attempts = 1 if len(self.state.chunks) > before else attempts + 1
            request = await self._resume_request(attempts, lost)
            if request is None:
                return

    async def _resume_request(self, attempt: int, lost: Exception | None) -> httpx.Request | None:
        state = self.state
        reason = (
            describe_transport_error(lost, self._target, own=self._streambind)
            if isinstance(lost, httpx.HTTPError)
            else "the connection closed before the run ended"
        )
        can_resume = (self._streambind and state.run_id) or (
            not self._streambind and state.last_event_id
        )
        if not can_resume:
            kind = "connection_lost" if lost is None else "connection_error"
            state.fail(kind, reason, self.client.clock())
            return None
        settings = self.client.settings
        if attempt > self.client.max_reconnects:
            state.fail(
                "connection_lost",
                f"gave up after {self.client.max_reconnects} reconnection attempts: {reason}",
                self.client.clock(),
            )
            return None
        if state.reconnects >= settings.max_total_reconnects:
            # Each connection may deliver something and still the stream never ends.
            message = (
                f"gave up after {state.reconnects} reconnections in all "
                f"(max_total_reconnects): {reason}"
            )
            state.fail("connection_lost", message, self.client.clock())
            return None
        headers: dict[str, Any] = {}
        if state.last_event_id:
            last_event_id = last_event_id_header(state.last_event_id)
            if last_event_id is None:
                message = (
                    f"cannot resume {self._target}: its last event id {state.last_event_id!r} "
                    f"has characters no HTTP header can carry ({reason})"
                )
                state.fail("cannot_resume", message, self.client.clock())
                return None
            headers["Last-Event-ID"] = last_event_id
        retry_ms = self._retry_ms if self._retry_ms is not None else _DEFAULT_RETRY_MS
        # ``retry: 0`` would reconnect hundreds of times a second: there is a floor, and the
        # wait doubles with each attempt in a row that brought no new message.
        retry_ms = max(retry_ms, settings.min_retry_ms)
        await self.client.sleep(min(retry_ms / 1000 * 2 ** (attempt - 1), _MAX_BACKOFF_S))
        state.reconnects += 1
        state.version += 1
        if self._streambind:
            return self.client.http.build_request(
                "GET",
                f"/api/runs/{state.run_id}/events",
                headers=headers,
                timeout=self.client.stream_timeout,
            )
        return self._request(extra_headers=headers)

    def _request(self, extra_headers: dict[str, Any] | None = None) -> httpx.Request:
        headers = {"Accept": "text/event-stream", **self._headers, **(extra_headers or {})}
        kwargs: dict[str, Any] = {"headers": headers, "timeout": self.client.stream_timeout}
        if self._body is not None and self._method not in ("GET", "HEAD"):
            kwargs["json"] = self._body
        return self.client.http.build_request(self._method, self._url, **kwargs)

    def _open(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        return _Opened(self, request)

    async def _accept(self, response: httpx.Response) -> bool:
        """Take in a response's status and headers; False when the call ends here."""
        state = self.state
        state.run_id = response.headers.get("x-run-id", state.run_id)
        if response.status_code == 204:
            # Nothing left to replay: the run is over. Its record says how it ended.
            await self._settle_from_record()
            return False
        if response.status_code >= 400:
            await self._read_bounded(response)
            await self._fail_http(response)
            return False
        if not response.is_success:
            self.state.fail_with(
                redirect_not_followed(response, self._target, self._redirects), self.client.clock()
            )
            return False
        if not _is_event_stream(response):
            await self._read_bounded(response)
            self._take_plain_result(response)
            return False
        state.streamed = True
        state.version += 1
        return True

    def _decoder(self) -> SSEDecoder:
        settings = self.client.settings
        return SSEDecoder(
            max_line_size=settings.max_line_size, max_event_size=settings.max_event_size
        )

    async def _take_events(self, response: httpx.Response) -> bool:
        """Apply each event as its bytes arrive; True once an event has ended the call."""
        decoder = self._decoder()
        state = self.state
        clock = self.client.clock
        on_chunk = self.on_chunk
        async for chunk in body_pieces(response):
            state.bytes_received += len(chunk)
            # Applied here, a chunk's events at once, not handed on one by one through an
            # async generator: that hop would cost more than the decoding.
            if state.apply_events(decoder.feed_fields(chunk), clock, on_chunk):
                return True
            if decoder.retry is not None:
                self._retry_ms = decoder.retry
        return False

    async def _run_whole(self) -> None:
        """Handle stream off: one request, read to its end, and only then any state."""
        async with self._open(self._request()) as response:
            if not response.is_success or not _is_event_stream(response):
                await self._read_bounded(response)
            else:
                # Decoded as it arrives, so the size limits hold, but applied at the end.
                events: list[EventFields] = []
                decoder = self._decoder()
                received = 0
                async for chunk in body_pieces(response):
                    received += len(chunk)
                    events += decoder.feed_fields(chunk)
                decoder.close()  # the body is complete: an unfinished event is dropped
        state = self.state
        state.run_id = response.headers.get("x-run-id")
        if response.status_code >= 400:
            state.bytes_received = len(response.content)
            await self._fail_http(response)
            return
        if not response.is_success:
            state.fail_with(
                redirect_not_followed(response, self._target, self._redirects), self.client.clock()
            )
            return
        if not _is_event_stream(response):
            state.bytes_received = len(response.content)
            self._take_plain_result(response)
            return
        state.bytes_received = received
        state.streamed = True
        clock = self.client.clock
        if not state.apply_events(events, clock, self.on_chunk):
            state.fail("connection_lost", _NO_TERMINAL_EVENT, clock())

    async def _read_bounded(self, response: httpx.Response) -> None:
        """Read a body that is not a stream into ``response.content``, up to one event's size."""
        limit = self.client.settings.max_event_size
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

    async def _settle_from_record(self) -> None:
        state, clock = self.state, self.client.clock
        if not (self._streambind and state.run_id):
            state.finish("succeeded", clock())
            return
        try:
            record = await self.client.run_record(state.run_id)
        except ClientError as exc:
            state.fail("connection_lost", str(exc), clock())
            return
        state.result = record.get("result")
        if record.get("error"):
            state.error = record["error"]
        state.finish(record.get("status", "succeeded"), clock())

    async def _fail_http(self, response: httpx.Response) -> None:
        error = http_error(response, self._target)
        if self._streambind and error.get("type") == "events_gone":
            error = await self._describe_events_gone(error)
        elif self._streambind and self._method == "GET" and response.status_code == 404:
            # Following a run by id (``follow``): say what a 404 means for it.
            error = {**error, "message": f"{error.get('message')}: the server does not know "
                     "this run, or no longer keeps it"}  # fmt: skip
        self.state.fail_with(error, self.client.clock())

    async def _describe_events_gone(self, error: dict[str, Any]) -> dict[str, Any]:
        """A resume the server can no longer serve: say so, and how the run itself ended."""
        state = self.state
        last = state.last_event_id
        numeric = not last or (last.isascii() and last.isdigit())
        wanted = f"from id {int(last or 0) + 1} on" if numeric else f"after id {last!r}"
        message = (
            f"the server no longer keeps this run's events {wanted} "
            f"(the oldest it keeps is {error.get('first_kept', '?')}), so they cannot be shown"
        )
        error = {**error, "message": message}
        if state.run_id:
            with contextlib.suppress(ClientError):
                record = await self.client.run_record(state.run_id)
                error["run_status"] = record.get("status")
                if record.get("status") == "running":
                    error["message"] += "; the run itself is still running"
                else:
                    error["message"] += f"; the run itself {record.get('status')}"
        return error

    def _take_plain_result(self, response: httpx.Response) -> None:
        """A JSON answer is the result (streambind's, with Handle stream off); nothing else is."""
        clock = self.client.clock
        if not is_json(response):
            self.state.fail_with(not_a_stream(response, self._target), clock())
            return
        try:
            result = response.json()
        except ValueError:
            message = f"{self._target} answered with JSON that does not parse"
            self.state.fail("not_a_stream", message, clock())
            return
        self.state.take_result(result, clock())


class _Opened:
    """``async with`` around a streamed request that turns connection errors into state."""

    def __init__(self, call: StreamCall, request: httpx.Request) -> None:
        self._call = call
        self._request = request
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> httpx.Response:
        http = self._call.client.http
        request = self._request
        self._call._redirects = 0
        limit = self._call.client.settings.request_timeout
        while True:
            try:
                async with asyncio.timeout(limit):
                    self._response = await http.send(request, stream=True)
            except TimeoutError:
                message = f"no response headers within {limit:g} s, the request_timeout"
                raise httpx.ReadTimeout(message, request=request) from None
            following = self._response.next_request
            # A redirect to another origin could hand the token, the body and the
            # Last-Event-ID to someone else, or answer with a login page: it is not followed.
            if following is None or not same_origin(following.url, self._request.url):
                return self._response
            if self._call._redirects >= MAX_REDIRECTS:
                return self._response
            self._call._redirects += 1
            await self._response.aclose()
            request = following

    async def __aexit__(self, *exc_info: object) -> None:
        if self._response is not None:
            await self._response.aclose()


def _is_event_stream(response: httpx.Response) -> bool:
    content_type = response.headers.get("content-type", "")
    return content_type.split(";", 1)[0].strip().lower() == "text/event-stream"


def http_error(response: httpx.Response, source: str = "") -> dict[str, Any]:
    """The server's JSON error, or one sentence saying what status came from where."""
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and "message" in error:
            return dict(error)
    except ValueError:
        pass
    status = f"{response.status_code} {response.reason_phrase or 'error'}".strip()
    text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
    # A body that only repeats the status ("404: Not Found") says nothing more.
    if text and _letters(text) in (_letters(status), _letters(response.reason_phrase or "")):
        text = ""
    message = f"{source or 'the server'} answered {status}" + (f": {text}" if text else "")
    return {"type": f"http_{response.status_code}", "message": message}


def _letters(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalpha())


def describe_transport_error(exc: Exception, target: str, *, own: bool = True) -> str:
    """One sentence on a connection problem with ``target`` (a server of ours, or any URL)."""
    if isinstance(exc, httpx.ConnectError):
        hint = ": is the server running?" if own else ""
        return f"cannot connect to {target}{hint} ({_reason(exc)})"
    if isinstance(exc, httpx.TimeoutException):
        return f"{target} did not answer in time" + (f" ({exc})" if str(exc) else "")
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return f"{target} is not a usable URL ({_reason(exc)})"
    return f"the connection to {target} failed ({_reason(exc)})"


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    text = text.split("] ", 1)[-1] if text.startswith("[Errno") else text
    # Lower-case and without its full stop, it reads as part of our sentence.
    text = text.rstrip(". ")
    return text[:1].lower() + text[1:] if text[1:2].islower() else text
