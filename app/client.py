"""The "call endpoint" action: run a workflow over HTTP, keeping ``chunk`` and ``chunks``.

Usable without any UI (tests, scripts):

    async with StreamClient("http://127.0.0.1:8787") as client:
        state = await client.call("import", {"rows": 100}).run()
        print(state.status, len(state.chunks), state.result)

Every call reads its answer as a stream as it arrives, on one connection layer
(``connection.py``: redirects, time limits, a busy server's ``Retry-After``). With
``handle_stream=True`` the state fills in as messages arrive; with it off, what arrives is
held back and applied only when the call ends (the no-code platforms' "nothing shows up"
behaviour), while the run's id is known from the first response, so that Cancel still
cancels the run. A dropped connection is resumed through ``/api/runs/{id}/events`` with
``Last-Event-ID``. Problems never raise: they end the call as ``failed`` with a readable
``error``.

Two protocols share that layer: a streambind run (``call``, ``follow``, and a watched URL
whose answer names its run with ``X-Run-Id``), resumed through its events and cancelled
with ``DELETE``; and any other SSE URL, resumed by asking again with ``Last-Event-ID``,
which the client can only stop watching.
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

from . import shapes
from .answers import is_json, not_a_stream, redirect_not_followed, same_origin
from .connection import Answer, Kind, busy_reason, busy_wait, open_answer
from .headers import headers_problem, last_event_id_header
from .inflate import body_pieces
from .settings import ClientSettings
from .sse import SSEDecoder, StreamTooLarge
from .state import CANCELLED_HERE, StreamState

__all__ = [
    "ClientError",
    "ClientSettings",
    "RunTimeline",
    "StreamCall",
    "StreamClient",
    "StreamState",
]

_DEFAULT_RETRY_MS = 3000
_MAX_BACKOFF_S = 30.0


class ClientError(Exception):
    """A request to the server failed; the message is meant for people."""


@dataclasses.dataclass(frozen=True)
class RunTimeline:
    """When a run started and (if it had) ended, in seconds since the epoch, as its record
    says: a call that follows it counts elapsed time from the run's start, not its own."""

    created: float
    finished: float | None = None


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
        self.clock = clock
        self.sleep = sleep  # every wait: reconnecting, a busy server (tests count them)
        # Plain requests are bounded by request_timeout; streams get read_timeout for
        # their silences instead, a bit above the server's ping.
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
        endpoints = body.get("endpoints", [])
        if not isinstance(endpoints, list):
            raise ClientError(f"{self.base_url}/api/endpoints did not list endpoints")
        described = (shapes.endpoint_description(e) for e in endpoints)
        return [e for e in described if e is not None]

    async def runs(self) -> list[dict[str, Any]]:
        """The runs the server keeps, newest first; raises ClientError."""
        runs = (await self.get_json("/api/runs")).get("runs", [])
        if not isinstance(runs, list):
            raise ClientError(f"{self.base_url}/api/runs did not list runs")
        records = (shapes.run_record(run) for run in runs)
        return [run for run in records if run is not None]

    async def run_record(self, run_id: str, base: str | None = None) -> dict[str, Any]:
        """One run's record (``GET /api/runs/{id}``) with its status and result."""
        path = f"{base or ''}/api/runs/{quote(run_id, safe='')}"
        record = shapes.run_record(await self.get_json(path))
        if record is None:
            raise ClientError(f"{self.base_url}{path} did not describe a run")
        return record

    def call(
        self, name: str, params: dict[str, Any] | None = None, *, handle_stream: bool = True
    ) -> StreamCall:
        """A call of ``POST /api/endpoints/NAME``; nothing is sent until ``run()``."""
        state = StreamState(name=name, params=dict(params or {}), handle_stream=handle_stream)
        request = self.request("POST", f"/api/endpoints/{quote(name, safe='')}", params or {})
        return StreamCall(self, state, request, RunProtocol(self.base_url))

    def follow(
        self,
        run_id: str,
        name: str | None = None,
        *,
        timeline: RunTimeline | None = None,
        after: str = "",
    ) -> StreamCall:
        """Follow a run started elsewhere: replay its events from the start (or from the
        one after event ``after``), then live.

        It resumes after a dropped connection and cancels as a call does; a run the server
        does not know (404) or no longer keeps the events of (410) ends it as ``failed``.
        """
        state = StreamState(name=name or run_id)
        state.run_id = run_id
        state.last_event_id = after
        headers = {"Last-Event-ID": after} if after else {}
        protocol = RunProtocol(self.base_url)
        call = StreamCall(self, state, protocol.events_request(self, run_id, headers), protocol)
        call.timeline = timeline
        return call

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
        headers = headers or {}
        problem = headers_problem(headers)
        request = None if problem else self.request(method.upper(), url, body, headers)
        call = StreamCall(self, state, request, WatchProtocol(url))
        call.problem = problem
        return call

    def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        stream: bool = True,
    ) -> httpx.Request:
        """A request to ``url`` (a path of this server, or any URL); the token goes only to
        this server's origin, never to a watched URL elsewhere."""
        all_headers = {"Accept": "text/event-stream", **(headers or {})} if stream else headers
        kwargs: dict[str, Any] = {"headers": all_headers}
        if stream:
            kwargs["timeout"] = self.stream_timeout
        if body is not None and method not in ("GET", "HEAD"):
            kwargs["json"] = body
        request = self.http.build_request(method, url, **kwargs)
        if not same_origin(request.url, httpx.URL(self.base_url)) and not (
            headers and any(name.lower() == "authorization" for name in headers)
        ):
            request.headers.pop("Authorization", None)
        return request

    async def get_json(self, path: str) -> dict[str, Any]:
        """A JSON object from the server; raises ClientError with a readable message."""
        where = path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"
        request = self.request("GET", path, stream=False)
        try:
            answer = await open_answer(self.http, request, self.settings, sleep=self.sleep)
        except httpx.ReadTimeout:
            limit = self.settings.request_timeout
            raise ClientError(
                f"{where} did not answer within {limit:g} s (request_timeout)"
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ClientError(describe_transport_error(exc, self.base_url, own=True)) from None
        except StreamTooLarge as exc:
            raise ClientError(f"{where}: {exc}") from None
        response = answer.response
        try:
            if answer.kind is Kind.STREAM:
                raise ClientError(f"{where} answered with a stream, not JSON")
            if response.status_code != 200:
                raise ClientError(http_error(response)["message"])
            try:
                body = response.json()
            except (ValueError, RecursionError):
                raise ClientError(f"{where} did not answer with JSON") from None
            if not isinstance(body, dict):
                raise ClientError(f"{where} did not answer with a JSON object")
            return body
        finally:
            await response.aclose()


class RunProtocol:
    """A streambind run: resumed through ``/api/runs/{id}/events``, cancelled with ``DELETE``.

    ``base`` is the API's root: the server's URL, with its path prefix when mounted.
    """

    cancels_run = True

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    @property
    def target(self) -> str:
        """What a problem is blamed on."""
        return self.base

    def can_resume(self, state: StreamState, held: StreamState) -> bool:
        return bool(state.run_id)

    def events_request(
        self, client: StreamClient, run_id: str, headers: dict[str, Any]
    ) -> httpx.Request:
        path = f"{self.base}/api/runs/{quote(run_id, safe='')}/events"
        return client.request("GET", path, headers=headers)

    def resume_request(self, call: StreamCall, headers: dict[str, Any]) -> httpx.Request:
        assert call.state.run_id is not None
        return self.events_request(call.client, call.state.run_id, headers)


class WatchProtocol:
    """Any SSE URL: resumed by asking the same again with ``Last-Event-ID``; only stopped."""

    cancels_run = False

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def target(self) -> str:
        return self.url

    def can_resume(self, state: StreamState, held: StreamState) -> bool:
        return bool(held.last_event_id)

    def resume_request(self, call: StreamCall, headers: dict[str, Any]) -> httpx.Request:
        first = call.first_request
        assert first is not None
        # Raw, so a Last-Event-ID that is UTF-8 bytes goes as it is; replaces any spelling.
        replaced = {name.lower().encode("ascii") for name in headers}
        resumed = [(k, v) for k, v in first.headers.raw if k.lower() not in replaced]
        resumed += [
            (name.encode("ascii"), value if isinstance(value, bytes) else value.encode("ascii"))
            for name, value in headers.items()
        ]
        return httpx.Request(
            first.method,
            first.url,
            headers=resumed,
            content=first.content,
            extensions={"timeout": call.client.stream_timeout.as_dict()},
        )

    def run_base(self) -> str:
        """Where the API of the streambind server behind this URL is rooted."""
        url = httpx.URL(self.url)
        path = url.path
        prefix = path[: path.index("/api/")] if "/api/" in path else ""
        return str(url.copy_with(path=prefix or "/", query=None, fragment=None)).rstrip("/")


Protocol = RunProtocol | WatchProtocol


class StreamCall:
    """One call in progress. ``run()`` drives it to the end; ``cancel()`` stops it."""

    def __init__(
        self,
        client: StreamClient,
        state: StreamState,
        request: httpx.Request | None,
        protocol: Protocol,
    ) -> None:
        self.client = client
        self.state = state
        self.first_request = request
        self.protocol: Protocol = protocol
        #: Why the request cannot be sent as given (a watch's headers), or None.
        self.problem: str | None = None
        #: Where arriving events are applied: the state itself, or (Handle stream off) a
        #: state of its own whose content the state takes in at the end.
        self.held = state if state.handle_stream else StreamState(name=state.name)
        state.chunks.limit = self.held.chunks.limit = client.settings.max_chunks
        self._task: asyncio.Task[Any] | None = None
        self._stop_requested = False
        self._retry_ms: int | None = None  # the server's ``retry:``, for reconnecting
        #: Called with each message as it is applied (``--json`` output uses it).
        self.on_chunk: Callable[[Any], None] | None = None
        #: The followed run's own start and end, when known (``follow``).
        self.timeline: RunTimeline | None = None

    @property
    def cancels_run(self) -> bool:
        """Whether ``cancel()`` cancels a run on the server (else it stops watching)."""
        return self.protocol.cancels_run

    @property
    def target(self) -> str:
        return self.protocol.target

    # -- the call ---------------------------------------------------------------

    async def run(self) -> StreamState:
        state = self.state
        clock = self.client.clock
        self._task = asyncio.current_task()
        state.start(clock())
        if self.timeline is not None and state.started_at is not None:
            state.started_at -= max(0.0, time.time() - self.timeline.created)
        if self.problem is not None or self.first_request is None:
            state.fail("invalid_request", f"cannot send this request: {self.problem}", clock())
            return state
        own = isinstance(self.protocol, RunProtocol)
        try:
            await self._stream(self.first_request)
        except asyncio.CancelledError:
            state.finish("cancelled" if self.cancels_run else "stopped", clock())
            if not self._stop_requested:
                self._take_held()
                raise
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            message = describe_transport_error(exc, self.target, own=own)
            self.held.fail("connection_error", message, clock())
        except StreamTooLarge as exc:
            self.held.fail("too_large", f"{self.target}: {exc}", clock())
        except Exception as exc:
            # Documented never to raise: a UI with many cards depends on it.
            message = f"the client failed on what {self.target} sent: {type(exc).__name__}: {exc}"
            self.held.fail("client_error", message, clock())
        self._take_held()
        state.reconnecting = False
        if not state.finished:  # pragma: no cover - every path above ends the call
            state.fail("protocol_error", "the stream ended without saying how it ended", clock())
        timeline = self.timeline
        if timeline is not None and timeline.finished is not None and state.started_at is not None:
            # A replay of a run that had already ended: its own duration, not the replay's.
            state.finished_at = state.started_at + max(0.0, timeline.finished - timeline.created)
        return state

    def _take_held(self) -> None:
        """Handle stream off: everything held back reaches the state now, at the end."""
        held = self.held
        if held is self.state:
            return
        self.state.take_held(held, self.client.clock())
        if self.on_chunk is not None:
            for message in held.chunks:
                self.on_chunk(message)

    async def cancel(self) -> None:
        """Stop the call: cancel its run on the server, or for a watched stream that is not
        a streambind run, stop watching it (``stopped``)."""
        if self.state.finished:
            return
        self._stop_requested = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
        run_id = self.state.run_id
        if not isinstance(self.protocol, RunProtocol):
            self.state.finish("stopped", self.client.clock())
            return
        self.state.cancel_reason = CANCELLED_HERE
        self.state.finish("cancelled", self.client.clock())
        if run_id:
            # If this fails the stream is closed anyway: the server cancels the run
            # once its grace period passes with nobody following.
            url = f"{self.protocol.base}/api/runs/{quote(run_id, safe='')}"
            with contextlib.suppress(httpx.HTTPError):
                request = self.client.request("DELETE", url, stream=False)
                await (await self.client.http.send(request)).aclose()

    def leave(self) -> None:
        """Stop following, cancelling nothing: the call ends ``stopped``, and a run goes on
        (the server cancels it only if nobody follows it within its grace period)."""
        if self.state.finished:
            return
        self._stop_requested = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self.state.finish("stopped", self.client.clock())

    async def _stream(self, request: httpx.Request) -> None:
        attempts = 0
        held = self.held
        while True:
            before = held.chunks.received
            lost: Exception | None = None
            try:
                answer = await open_answer(
                    self.client.http,
                    request,
                    self.client.settings,
                    sleep=self.client.sleep,
                    on_busy=self._show_busy,
                    clock=self.client.clock,
                )
                try:
                    if not await self._take_answer(answer):
                        return
                    if await self._take_events(answer.response):
                        return
                finally:
                    await answer.response.aclose()
                if isinstance(self.protocol, WatchProtocol):
                    # Other servers end a stream by closing it cleanly; streambind
                    # always sends a terminal event first, so for it this is a loss.
                    held.finish("succeeded", self.client.clock())
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
            attempts = 1 if held.chunks.received > before else attempts + 1
            resumed = await self._resume_request(attempts, lost)
            if resumed is None:
                return
            request = resumed

    def _show_busy(self, notice: str | None) -> None:
        self.state.busy = notice
        self.state.version += 1

    async def _resume_request(self, attempt: int, lost: Exception | None) -> httpx.Request | None:
        state, held = self.state, self.held
        own = isinstance(self.protocol, RunProtocol)
        reason = (
            describe_transport_error(lost, self.target, own=own)
            if isinstance(lost, httpx.HTTPError)
            else "the connection closed before the run ended"
        )
        clock = self.client.clock
        if not self.protocol.can_resume(state, held):
            held.fail("connection_lost" if lost is None else "connection_error", reason, clock())
            return None
        settings = self.client.settings
        if attempt > settings.max_reconnects:
            message = f"gave up after {settings.max_reconnects} reconnection attempts: {reason}"
            held.fail("connection_lost", message, clock())
            return None
        if state.reconnects >= settings.max_total_reconnects:
            # Each connection may deliver something and still the stream never ends.
            message = (
                f"gave up after {state.reconnects} reconnections in all "
                f"(max_total_reconnects): {reason}"
            )
            held.fail("connection_lost", message, clock())
            return None
        headers: dict[str, Any] = {}
        if held.last_event_id:
            last_event_id = last_event_id_header(held.last_event_id)
            if last_event_id is None:
                message = (
                    f"cannot resume {self.target}: its last event id {held.last_event_id!r} "
                    f"has characters no HTTP header can carry ({reason})"
                )
                held.fail("cannot_resume", message, clock())
                return None
            headers["Last-Event-ID"] = last_event_id
        retry_ms = self._retry_ms if self._retry_ms is not None else _DEFAULT_RETRY_MS
        # ``retry: 0`` would reconnect hundreds of times a second: there is a floor, and the
        # wait doubles with each attempt in a row that brought no new message.
        retry_ms = max(retry_ms, settings.min_retry_ms)
        state.reconnecting = True
        state.version += 1
        await self.client.sleep(min(retry_ms / 1000 * 2 ** (attempt - 1), _MAX_BACKOFF_S))
        state.reconnects += 1
        state.version += 1
        return self.protocol.resume_request(self, headers)

    async def _take_answer(self, answer: Answer) -> bool:
        """Take in an answer's status and headers; False when the call ends here."""
        state, held, response = self.state, self.held, answer.response
        clock = self.client.clock
        if state.reconnecting:
            state.reconnecting = False  # an answer came: the stream is up, or ends here
            state.version += 1
        run_id = response.headers.get("x-run-id")
        if run_id and isinstance(self.protocol, WatchProtocol):
            # A streambind run: cancelled with DELETE, resumed through its events.
            self.protocol = RunProtocol(self.protocol.run_base())
        if run_id and run_id != state.run_id:
            state.run_id = run_id
            state.version += 1
        if answer.kind is Kind.STREAM:
            state.streamed = True
            state.version += 1
            return True
        state.bytes_received += len(response.content)
        if answer.kind is Kind.NO_CONTENT:
            # Nothing left to replay: the run is over. Its record says how it ended.
            await self._settle_from_record()
        elif answer.kind is Kind.ERROR:
            await self._fail_http(response)
        elif answer.kind is Kind.REDIRECT:
            held.fail_with(redirect_not_followed(response, self.target, answer.redirects), clock())
        elif not is_json(response):
            held.fail_with(not_a_stream(response, self.target), clock())
        else:
            try:
                result = response.json()
            except (ValueError, RecursionError):
                message = f"{self.target} answered with JSON that does not parse"
                held.fail("not_a_stream", message, clock())
            else:
                held.take_result(result, clock())
        return False

    def _decoder(self) -> SSEDecoder:
        settings = self.client.settings
        return SSEDecoder(
            max_line_size=settings.max_line_size, max_event_size=settings.max_event_size
        )

    async def _take_events(self, response: httpx.Response) -> bool:
        """Apply each event as its bytes arrive; True once an event has ended the call."""
        decoder = self._decoder()
        state, held = self.state, self.held
        clock = self.client.clock
        # Held back with Handle stream off: on_chunk sees the messages when they are applied.
        on_chunk = self.on_chunk if held is state else None
        async for chunk in body_pieces(response):
            state.bytes_received += len(chunk)
            # Applied here, a chunk's events at once, not handed on one by one through an
            # async generator: that hop would cost more than the decoding.
            if held.apply_events(decoder.feed_fields(chunk), clock, on_chunk):
                return True
            if decoder.retry is not None:
                self._retry_ms = decoder.retry
        return False

    async def _settle_from_record(self) -> None:
        state, held, clock = self.state, self.held, self.client.clock
        if not (isinstance(self.protocol, RunProtocol) and state.run_id):
            held.finish("succeeded", clock())
            return
        try:
            record = await self.client.run_record(state.run_id, self.protocol.base)
        except ClientError as exc:
            held.fail("connection_lost", str(exc), clock())
            return
        held.result = record.get("result")
        error = record.get("error")
        if isinstance(error, dict):
            held.error = error
        status = record.get("status")
        held.finish(status if status in ("succeeded", "failed", "cancelled") else "failed", clock())

    async def _fail_http(self, response: httpx.Response) -> None:
        error = http_error(response, self.target)
        own = isinstance(self.protocol, RunProtocol)
        if own and error.get("type") == "events_gone":
            error = await self._describe_events_gone(error)
        elif (
            own
            and self.first_request is not None
            and self.first_request.method == "GET"
            and (response.status_code == 404)
        ):
            # Following a run by id (``follow``): say what a 404 means for it.
            error = {**error, "message": f"{error.get('message')}: the server does not know "
                     "this run, or no longer keeps it"}  # fmt: skip
        elif (wait := busy_wait(response, self.client.settings)) is not None:
            retried = self.client.settings.busy_retry_for
            message = (
                f"{busy_reason(response)} (the server asked to retry in {wait:g} s; "
                f"retried for at most {retried:g} s, busy_retry_for)"
            )
            error = {**error, "message": message}
        self.held.fail_with(error, self.client.clock())

    async def _describe_events_gone(self, error: dict[str, Any]) -> dict[str, Any]:
        """A resume the server can no longer serve: say so, and how the run itself ended."""
        state = self.state
        last = self.held.last_event_id
        numeric = not last or (last.isascii() and last.isdigit())
        wanted = f"from id {int(last or 0) + 1} on" if numeric else f"after id {last!r}"
        message = (
            f"the server no longer keeps this run's events {wanted} "
            f"(the oldest it keeps is {error.get('first_kept', '?')}), so they cannot be shown"
        )
        error = {**error, "message": message}
        if state.run_id and isinstance(self.protocol, RunProtocol):
            with contextlib.suppress(ClientError):
                record = await self.client.run_record(state.run_id, self.protocol.base)
                error["run_status"] = record.get("status")
                if record.get("status") == "running":
                    error["message"] += "; the run itself is still running"
                else:
                    error["message"] += f"; the run itself {record.get('status')}"
        return error


def http_error(response: httpx.Response, source: str = "") -> dict[str, Any]:
    """The server's JSON error, or one sentence saying what status came from where."""
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return dict(error)
    except (ValueError, RecursionError):
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
