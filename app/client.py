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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .chunks import Chunks
from .jsondecode import decode_json
from .sse import SSEDecoder

__all__ = ["ClientError", "StreamCall", "StreamClient", "StreamState"]

TERMINAL = ("succeeded", "failed", "cancelled")
#: The sentinel OpenAI-style APIs send as their last message.
DONE_SENTINEL = "[DONE]"
_DEFAULT_RETRY_MS = 3000
_MAX_BACKOFF_S = 30.0


class ClientError(Exception):
    """A request to the server failed; the message is meant for people."""


@dataclass(eq=False)
class StreamState:
    """Everything known about one call; UIs bind ``chunk`` and ``chunks``."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    handle_stream: bool = True
    status: str = "pending"
    #: The latest message (``stream.chunk``), JSON-decoded where it is JSON.
    chunk: Any = None
    #: Every message so far, in order (``stream.chunks``), kept compactly.
    chunks: Chunks = field(default_factory=Chunks)
    result: Any = None
    error: dict[str, Any] | None = None
    run_id: str | None = None
    last_event_id: str = ""
    #: Whether the response was an event stream (False: one plain JSON response).
    streamed: bool = False
    reconnects: int = 0
    bytes_received: int = 0
    started_at: float | None = None
    first_chunk_at: float | None = None
    finished_at: float | None = None
    #: Bumped on every change, so a UI can apply changes in batches on a timer.
    version: int = 0

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def elapsed(self, now: float) -> float:
        if self.started_at is None:
            return 0.0
        return (self.finished_at if self.finished_at is not None else now) - self.started_at

    def error_message(self) -> str:
        if not self.error:
            return ""
        message = str(self.error.get("message", ""))
        fields = self.error.get("fields")
        if isinstance(fields, dict) and fields:
            message += ": " + "; ".join(f"{k} {v}" for k, v in fields.items())
        return message


class StreamClient:
    """A connection to one streambind server (or, for ``watch``, any SSE URL)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        max_reconnects: int = 5,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self.max_reconnects = max_reconnects
        self.clock = clock
        # Streams may be silent for long stretches (a slow step, a ping every 15 s):
        # only connecting and writing are bounded.
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(connect=10.0, read=None, write=30.0, pool=30.0),
            transport=transport,
        )

    async def __aenter__(self) -> StreamClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def endpoints(self) -> list[dict[str, Any]]:
        """The server's workflows with their parameter schemas; raises ClientError."""
        body = await self._get_json("/api/endpoints")
        return list(body.get("endpoints", []))

    async def runs(self) -> list[dict[str, Any]]:
        return list((await self._get_json("/api/runs")).get("runs", []))

    def call(
        self, name: str, params: dict[str, Any] | None = None, *, handle_stream: bool = True
    ) -> StreamCall:
        """A call of ``POST /api/endpoints/NAME``; nothing is sent until ``run()``."""
        state = StreamState(name=name, params=dict(params or {}), handle_stream=handle_stream)
        return StreamCall(self, state, "POST", f"/api/endpoints/{name}", params or {}, {}, True)

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

    async def _get_json(self, path: str) -> dict[str, Any]:
        try:
            response = await self.http.get(path)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ClientError(describe_transport_error(exc, self.base_url)) from None
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
        #: Called with each message as it arrives (``--json`` output uses it).
        self.on_chunk: Callable[[Any], None] | None = None

    # -- the call ---------------------------------------------------------------

    async def run(self) -> StreamState:
        state = self.state
        self._task = asyncio.current_task()
        state.started_at = self.client.clock()
        self._set_status("running")
        try:
            if state.handle_stream:
                await self._run_streaming()
            else:
                await self._run_whole()
        except asyncio.CancelledError:
            self._finish("cancelled")
            if not self._cancel_requested:
                raise
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            self._fail("connection_error", describe_transport_error(exc, self.client.base_url))
        if not state.finished:  # pragma: no cover - every path above ends the call
            self._fail("protocol_error", "the stream ended without saying how the run ended")
        return state

    async def cancel(self) -> None:
        """Close the stream and ask the server to cancel the run."""
        if self.state.finished:
            return
        self._cancel_requested = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._finish("cancelled")
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
                        self._finish("succeeded")
                        return
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
            describe_transport_error(lost, self.client.base_url)
            if isinstance(lost, httpx.HTTPError)
            else "the connection closed before the run ended"
        )
        can_resume = (self._streambind and state.run_id) or (
            not self._streambind and state.last_event_id
        )
        if not can_resume:
            self._fail("connection_lost" if lost is None else "connection_error", reason)
            return None
        if attempt > self.client.max_reconnects:
            self._fail(
                "connection_lost",
                f"{reason}; gave up after {self.client.max_reconnects} reconnection attempts",
            )
            return None
        retry_ms = self._retry_ms if self._retry_ms is not None else _DEFAULT_RETRY_MS
        await asyncio.sleep(min(retry_ms / 1000 * 2 ** (attempt - 1), _MAX_BACKOFF_S))
        state.reconnects += 1
        state.version += 1
        headers = {"Last-Event-ID": state.last_event_id} if state.last_event_id else {}
        if self._streambind:
            return self.client.http.build_request(
                "GET", f"/api/runs/{state.run_id}/events", headers=headers
            )
        return self._request(extra_headers=headers)

    def _request(self, extra_headers: dict[str, str] | None = None) -> httpx.Request:
        headers = {"Accept": "text/event-stream", **self._headers, **(extra_headers or {})}
        kwargs: dict[str, Any] = {"headers": headers}
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
            await response.aread()
            self._fail_http(response)
            return False
        if not _is_event_stream(response):
            await response.aread()
            self._plain_result(response)
            return False
        state.streamed = True
        state.version += 1
        return True

    async def _take_events(self, response: httpx.Response) -> bool:
        """Apply each event as its bytes arrive; True once an event has ended the call."""
        decoder = SSEDecoder()
        state = self.state
        apply = self._apply
        async for chunk in response.aiter_bytes():
            state.bytes_received += len(chunk)
            # Applied here, not handed on one by one through an async generator:
            # that hop would cost more than the decoding.
            for event_type, data, event_id, _ in decoder.feed_fields(chunk):
                apply(event_type, data, event_id)
                if state.status in TERMINAL:  # state.finished, inlined
                    return True
            if decoder.retry is not None:
                self._retry_ms = decoder.retry
        return False

    async def _run_whole(self) -> None:
        """Handle stream off: one request, read to its end, and only then any state."""
        response = await self.client.http.send(self._request())
        state = self.state
        state.run_id = response.headers.get("x-run-id")
        state.bytes_received = len(response.content)
        if response.status_code >= 400:
            self._fail_http(response)
            return
        if not _is_event_stream(response):
            self._plain_result(response)
            return
        state.streamed = True
        decoder = SSEDecoder()
        events = decoder.feed_fields(response.content)
        decoder.close()  # the body is complete: an event it left unfinished is dropped
        for event_type, data, event_id, _ in events:
            self._apply(event_type, data, event_id)
            if state.finished:
                return
        self._fail("connection_lost", "the stream ended without saying how the run ended")

    async def _settle_from_record(self) -> None:
        if not (self._streambind and self.state.run_id):
            self._finish("succeeded")
            return
        try:
            record = await self.client._get_json(f"/api/runs/{self.state.run_id}")
        except ClientError as exc:
            self._fail("connection_lost", str(exc))
            return
        self.state.result = record.get("result")
        if record.get("error"):
            self.state.error = record["error"]
        self._finish(record.get("status", "succeeded"))

    # -- applying what arrived -------------------------------------------------------

    def _apply(self, event_type: str, text: str, event_id: str) -> None:
        state = self.state
        if event_id:
            state.last_event_id = event_id
        if text == DONE_SENTINEL:
            self._finish("succeeded")
            return
        # The message's value: JSON where it is JSON, else the text.
        try:
            data, is_json = decode_json(text), True
        except ValueError:
            data, is_json = text, False
        if event_type != "message" and self._is_terminal(event_type, data):
            return
        state.chunks.add(text, is_json)
        state.chunk = data
        if state.first_chunk_at is None:
            state.first_chunk_at = self.client.clock()
        state.version += 1
        if self.on_chunk is not None:
            self.on_chunk(data)

    def _is_terminal(self, name: str, data: Any) -> bool:
        """streambind's terminal events; other servers' events of these names are messages."""
        if not isinstance(data, dict):
            return False
        status = data.get("status")
        if name == "end" and status == "succeeded":
            self.state.result = data.get("result")
            self._finish("succeeded")
        elif name == "error" and status in ("failed", "fell_behind"):
            error = data.get("error")
            self.state.error = error if isinstance(error, dict) else {"message": str(error)}
            self._finish("failed")
        elif name == "cancelled" and status == "cancelled":
            self._finish("cancelled")
        else:
            return False
        return True

    def _plain_result(self, response: httpx.Response) -> None:
        try:
            self.state.result = response.json()
        except ValueError:
            self.state.result = response.text
        self._finish("succeeded")

    def _fail_http(self, response: httpx.Response) -> None:
        self.state.error = http_error(response)
        self._finish("failed")

    def _fail(self, kind: str, message: str) -> None:
        self.state.error = {"type": kind, "message": message}
        self._finish("failed")

    def _finish(self, status: str) -> None:
        state = self.state
        if state.finished:
            return
        state.status = status
        state.finished_at = self.client.clock()
        state.version += 1

    def _set_status(self, status: str) -> None:
        self.state.status = status
        self.state.version += 1


class _Opened:
    """``async with`` around a streamed request that turns connection errors into state."""

    def __init__(self, call: StreamCall, request: httpx.Request) -> None:
        self._call = call
        self._request = request
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> httpx.Response:
        self._response = await self._call.client.http.send(self._request, stream=True)
        return self._response

    async def __aexit__(self, *exc_info: object) -> None:
        if self._response is not None:
            await self._response.aclose()


def _is_event_stream(response: httpx.Response) -> bool:
    content_type = response.headers.get("content-type", "")
    return content_type.split(";", 1)[0].strip().lower() == "text/event-stream"


def http_error(response: httpx.Response) -> dict[str, Any]:
    """The server's JSON error, or a plain description of an error that is not one."""
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and "message" in error:
            return dict(error)
    except ValueError:
        pass
    text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
    reason = response.reason_phrase or "error"
    return {
        "type": f"http_{response.status_code}",
        "message": f"HTTP {response.status_code} {reason}" + (f": {text}" if text else ""),
    }


def describe_transport_error(exc: Exception, base_url: str) -> str:
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {base_url}: is the server running? ({_reason(exc)})"
    if isinstance(exc, httpx.TimeoutException):
        return f"{base_url} did not answer in time"
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return f"not a usable URL: {exc}"
    return f"connection to {base_url} failed: {_reason(exc)}"


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.split("] ", 1)[-1] if text.startswith("[Errno") else text
