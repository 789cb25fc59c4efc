"""The HTTP API: routes, request checks and the aiohttp application that serves them."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from aiohttp import web

from .config import MAX_BODY_BYTES, MAX_BODY_WORDS, ServerConfig
from .cors import enable_cors
from .errors import ApiError, Handler, error_middleware
from .framing import utf8
from .loops import loop_name
from .manager import RunManager, ServerClosing, TooManyRuns
from .openapi import Route, openapi_document
from .page import PAGE, file_response, prefers_html
from .params import ParamsInvalid, validate_params
from .registry import Endpoint, Registry
from .resources import OpenResources
from .run import ExecutedRun, Run
from .run_shapes import run_detail, run_summary
from .store import StoreUnavailable
from .store_choice import run_store_for
from .streaming import following, open_stream

__all__ = ["CONFIG", "MANAGER", "REGISTRY", "build_registry", "create_app"]

CONFIG = web.AppKey("config", ServerConfig)
REGISTRY = web.AppKey("registry", Registry)
MANAGER = web.AppKey("manager", RunManager)


@dataclass
class Mount:
    """Where the application is mounted in another (``/jobs``): known once it has started."""

    prefix: str = ""


MOUNT = web.AppKey("mount", Mount)


def build_registry(modules: Iterable[ModuleType | str] = (), options: Any = None) -> Registry:
    """The workflows (and resources) of each module, in order; ``options`` go to the first
    module's resources (``Registry.add_module`` takes options per module)."""
    registry = Registry()
    for index, module in enumerate(modules):
        registry.add_module(module, options if index == 0 else None)
    return registry


def create_app(config: ServerConfig, registry: Registry) -> web.Application:
    """streambind's application: serve it as it is (``start_server``), or mount it in an
    application of your own, ``host.add_subapp("/jobs", create_app(config, registry))``:
    its routes, start-up and shutdown then follow the host's."""
    app = web.Application(
        middlewares=[error_middleware, _auth_middleware], client_max_size=MAX_BODY_BYTES
    )
    if config.cors_origin:
        enable_cors(app, config.cors_origin)
    app[CONFIG] = config
    app[REGISTRY] = registry
    app[MANAGER] = RunManager(config, run_store_for(config))
    app[MOUNT] = Mount()
    app.on_startup.append(_open)
    app.on_shutdown.append(_finish_runs)
    # The routes of the table, and nothing else: the OpenAPI document describes the same.
    app.add_routes([web.route(route.method, route.path, route.handler) for route in ROUTES])
    return app


async def _open(app: web.Application) -> None:
    app[MOUNT].prefix = _find_mount(app)
    manager = app[MANAGER]
    await manager.store.open()
    # The store answers which nodes still run (the demo's PostgreSQL staging clean-up asks):
    # open first, it is handed to the resources.
    manager.resources = OpenResources.of(app[REGISTRY].resources)
    try:
        await manager.resources.open(app[CONFIG], manager.store.node_alive)
    except BaseException:
        await manager.store.close()
        raise
    manager.start_background()


async def _finish_runs(app: web.Application) -> None:
    # Runs end with a terminal event that every open stream still delivers, before
    # aiohttp waits for those handlers to return; the resources close after the last run.
    manager = app[MANAGER]
    await manager.shutdown()
    await manager.resources.close()


@web.middleware
async def _auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.app[CONFIG].token
    if token and _within(request).startswith("/api"):
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            given = header[7:]
        else:
            given = request.query.get("access_token", "")
        # A header's bytes that are not UTF-8 arrive as surrogates: they never match.
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode()):
            message = (
                "the token sent is not this server's token; check it and send it again"
                if given
                else "this server needs a token; send it as Authorization: Bearer <token>"
            )
            raise ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
    return await handler(request)


# -- routes -------------------------------------------------------------------


async def index(request: web.Request) -> web.Response:
    # One URL, two answers: a browser's navigation gets the page, curl and API clients
    # the JSON they always got. Vary tells caches the two apart.
    if prefers_html(request.headers.get("Accept", "")):
        return file_response(request, PAGE)
    prefix = mounted_prefix(request.app)
    response = web.json_response(
        {
            "name": "streambind",
            "endpoints": f"{prefix}/api/endpoints",
            "runs": f"{prefix}/api/runs",
            "health": f"{prefix}/healthz",
        }
    )
    response.headers["Vary"] = "Accept"
    return response


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name == PAGE:  # the page resolves its links from /, so it is served only there
        raise ApiError(404, "not_found", f"no file named {name!r}")
    return file_response(request, name)


async def healthz(request: web.Request) -> web.Response:
    manager = request.app[MANAGER]
    body: dict[str, Any] = {
        "status": "ok",
        "running": manager.running_count(),
        "loop": loop_name(),
        # Each resource's health under its name (the demo's: "database").
        **await manager.resources.health(),
    }
    problem = manager.store.problem()
    if problem is not None:
        body.update(status="unavailable", reason=problem)
        return web.json_response(body, status=503)
    if manager.closing:
        # A balancer that checks health stops sending new work here; runs go on.
        body.update(status="draining", reason="the server is shutting down")
        return web.json_response(body, status=503, headers=_RETRY)
    return web.json_response(body)


async def openapi(request: web.Request) -> web.Response:
    document = openapi_document(ROUTES, request.app[REGISTRY], mounted_prefix(request.app))
    return web.json_response(document)


async def list_endpoints(request: web.Request) -> web.Response:
    return web.json_response({"endpoints": [ep.describe() for ep in request.app[REGISTRY]]})


async def start_run(request: web.Request) -> web.StreamResponse:
    endpoint = _endpoint(request)
    body = await _read_params_body(request)
    try:
        params = validate_params(endpoint.params, body)
    except ParamsInvalid as exc:
        raise ApiError(400, "invalid_params", str(exc), fields=exc.fields) from None
    manager = request.app[MANAGER]
    _store_available(request)
    try:
        run = manager.start(endpoint, params)
    except TooManyRuns as exc:
        raise ApiError(429, "too_many_runs", str(exc), headers=_RETRY) from None
    except ServerClosing as exc:
        raise ApiError(503, "shutting_down", str(exc), headers=_RETRY) from None
    config = request.app[CONFIG]
    # The caller is the run's first follower, attached before the workflow first runs.
    with following(manager, request, run, 0) as caller:
        try:
            # Wait for the workflow's first send or for its end, whichever comes first.
            await run.delivery.wait_for_more(caller)
            await manager.announced(run)
            if run.messages == 0:
                return _plain_outcome(run)
            response = await open_stream(request, run, config.retry_ms)
        except asyncio.CancelledError:
            # The caller left before its response began, so before it learned the run's
            # id (X-Run-Id): nobody can resume the run for it, or cancel it by id. No
            # grace period is kept for it; another follower still keeps it going.
            run.grace_period = 0.0
            raise
        await caller.follow(response)
        return response


def _plain_outcome(run: ExecutedRun) -> web.Response:
    """The response of a run that ended without sending any message: no stream at all."""
    headers = {"X-Run-Id": run.id}
    if run.status == "succeeded":
        assert run.result_json is not None
        # The same Content-Type as every other JSON answer of the API.
        return web.Response(
            body=utf8(run.result_json),
            content_type="application/json",
            charset="utf-8",
            headers=headers,
        )
    if run.status == "failed":
        error = run.error
        assert error is not None
        status = 400 if error["type"] == "invalid_params" else 500
        return ApiError(
            status, error["type"], error["message"], fields=error.get("fields"), headers=headers
        ).response()
    cancelled = "the run was cancelled before it sent anything"
    return ApiError(409, "cancelled", cancelled, headers=headers).response()


async def list_runs(request: web.Request) -> web.Response:
    try:
        records = await request.app[MANAGER].records()
    except StoreUnavailable as exc:
        raise ApiError(503, "store_unavailable", str(exc), headers=_RETRY) from None
    return web.json_response({"runs": [run_summary(record) for record in records]})


async def get_run(request: web.Request) -> web.Response:
    return web.json_response(run_detail(await _run(request)))


async def cancel_run(request: web.Request) -> web.Response:
    run = await _run(request)
    if not request.app[MANAGER].cancel(run):
        raise ApiError(
            409, "not_running", f"run {run.id} already ended as {run.status}: nothing to cancel"
        )
    return web.json_response(run_detail(run), status=202)


async def run_events(request: web.Request) -> web.StreamResponse:
    run = await _run(request, outcome=False)
    after = _last_event_id(request)
    log = run.log
    if after > log.last_seq:
        await request.app[MANAGER].reach(run, after)
    last = log.last_seq
    if log.closed and after >= last:
        # Nothing is left to send, ever: 204 tells EventSource to stop reconnecting.
        return web.Response(status=204, headers={"X-Run-Id": run.id})
    if after > last:
        raise ApiError(
            400,
            "invalid_last_event_id",
            f"Last-Event-ID {after} is beyond this run's last event ({last})",
        )
    if after + 1 < log.first_kept:
        # Answered before any stream starts: a standard EventSource stops on a
        # status other than 200, where a 200 that ends at once would make it
        # reconnect every few seconds for as long as the run is kept.
        raise ApiError(
            410,
            "events_gone",
            f"events from id {after + 1} on are no longer kept (the oldest kept is "
            f"{log.first_kept}); GET /api/runs/{run.id} has the run's state and result",
            headers={"X-Run-Id": run.id},
            details={"first_kept": log.first_kept, "run": f"/api/runs/{run.id}"},
        )
    config = request.app[CONFIG]
    with following(request.app[MANAGER], request, run, after) as follower:
        response = await open_stream(request, run, config.retry_ms)
        await follower.follow(response)
        return response


# -- the route table ---------------------------------------------------------------

_LAST_EVENT_ID = (
    {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
    {"name": "last_event_id", "in": "query", "schema": {"type": "string"}},
)
_AUTH = {401: "unauthorized"}

ROUTES = (
    Route(
        "GET",
        "/",
        index,
        "Where things are (JSON); the browser page when Accept prefers text/html",
        {200: "index", 304: "not_modified"},
    ),
    Route(
        "GET",
        "/static/{name}",
        static_file,
        "A file of the browser page (streambind.js among them), without a token",
        {200: "static_file", 304: "not_modified", 404: "not_found"},
    ),
    Route(
        "GET",
        "/healthz",
        healthz,
        "Health, without a token",
        {200: "health", 503: "not_serving"},
    ),
    Route("GET", "/api/openapi.json", openapi, "This document", {200: "openapi", **_AUTH}),
    Route("GET", "/api/endpoints", list_endpoints, "The workflows", {200: "endpoints", **_AUTH}),
    Route(
        "POST",
        "/api/endpoints/{name}",
        start_run,
        "Start a run; the response becomes its live stream at the first message",
        {
            200: "started",
            400: "bad_request",
            **_AUTH,
            404: "not_found",
            408: "request_timeout",
            409: "conflict",
            413: "payload_too_large",
            415: "unsupported_media_type",
            429: "too_many_runs",
            500: "workflow_failed",
            503: "unavailable",
        },
        per_endpoint=True,
    ),
    Route("GET", "/api/runs", list_runs, "Recent runs, newest first", {200: "runs", **_AUTH}),
    Route("GET", "/api/runs/{id}", get_run, "One run", {200: "run", **_AUTH, 404: "not_found"}),
    Route(
        "DELETE",
        "/api/runs/{id}",
        cancel_run,
        "Cancel a running run",
        {202: "cancelling", **_AUTH, 404: "not_found", 409: "conflict"},
    ),
    Route(
        "GET",
        "/api/runs/{id}/events",
        run_events,
        "The run's stream: replay after Last-Event-ID, then live",
        {
            200: "events",
            204: "no_more_events",
            400: "bad_request",
            **_AUTH,
            404: "not_found",
            410: "gone",
        },
        parameters=_LAST_EVENT_ID,
    ),
)


# -- request parts --------------------------------------------------------------


def mounted_prefix(app: web.Application) -> str:
    """Where this application is mounted in another (``/jobs``), or ``""`` at the root."""
    return app[MOUNT].prefix


def _find_mount(app: web.Application) -> str:
    # A sub-application's routes carry the prefix they were mounted under.
    for resource in app.router.resources():
        if resource.canonical.endswith("/healthz"):
            return resource.canonical[: -len("/healthz")]
    return ""


def _within(request: web.Request) -> str:
    """The request's path inside this application (without the prefix it is mounted at)."""
    prefix = mounted_prefix(request.app)
    path = request.path
    return path[len(prefix) :] if prefix and path.startswith(prefix) else path


def _endpoint(request: web.Request) -> Endpoint:
    name = request.match_info["name"]
    endpoint = request.app[REGISTRY].get(name)
    if endpoint is None:
        raise ApiError(404, "not_found", f"no endpoint named {name[:100]!r}")
    return endpoint


_RETRY = {"Retry-After": "1"}


def _store_available(request: web.Request) -> None:
    problem = request.app[MANAGER].store.problem()
    if problem is not None:
        raise ApiError(503, "store_unavailable", problem, headers=_RETRY)


async def _run(request: web.Request, outcome: bool = True) -> Run:
    run_id = request.match_info["id"]
    try:
        run = await request.app[MANAGER].find(run_id, outcome=outcome)
    except StoreUnavailable as exc:
        raise ApiError(503, "store_unavailable", str(exc), headers=_RETRY) from None
    if run is None:
        raise ApiError(404, "not_found", f"no run with id {run_id[:100]!r}")
    return run


def _last_event_id(request: web.Request) -> int:
    raw = request.headers.get("Last-Event-ID")
    if raw is None:
        raw = request.query.get("last_event_id", "")
    raw = raw.strip()
    if not raw:
        return 0
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise ApiError(
            400,
            "invalid_last_event_id",
            f"Last-Event-ID must be a non-negative whole number, not {raw[:40]!r}",
        )
    return int(raw)


_JSON_TYPES = ("application/json",)


async def _read_params_body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(
            413, "payload_too_large", f"the request body is larger than {MAX_BODY_WORDS}"
        )
    content_type = request.headers.get("Content-Type")
    if request.body_exists and content_type is not None:
        mime = content_type.split(";", 1)[0].strip().lower()
        if mime not in _JSON_TYPES and not mime.endswith("+json"):
            raise ApiError(
                415,
                "unsupported_media_type",
                f"parameters must be sent as application/json, not {mime[:60]}",
            )
    try:
        raw = await asyncio.wait_for(request.read(), request.app[CONFIG].body_timeout)
    except TimeoutError:
        raise ApiError(408, "request_timeout", "the request body took too long to arrive") from None
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_body", f"the body is not UTF-8: {exc.reason}") from None
    try:
        body = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ApiError(400, "invalid_body", "the JSON body is nested too deeply") from None
    except ValueError as exc:
        raise ApiError(400, "invalid_body", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(body), "a number"
        )
        raise ApiError(
            400, "invalid_body", f"the body must be a JSON object of parameters, not {kind}"
        )
    return body


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
