"""The OpenAPI 3.1 document of the HTTP API, made from the route table the server registers.

``create_app`` registers exactly the routes of ``ROUTES`` (api.py) and this module
describes those same routes; each endpoint's request body is the JSON Schema its
parameters publish (params.py). The response schemas below are checked against the
live server's answers by the schemathesis test (tests/test_openapi.py), so a change on
either side that the other does not follow fails the suite.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .framing import CANCEL_REASONS, CANCELLED, END, ERROR, MESSAGE
from .registry import Registry

__all__ = ["ERRORS", "Route", "openapi_document"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    """One route of the API: what ``create_app`` registers and what the document says of it."""

    method: str
    path: str
    handler: Handler
    summary: str
    #: Status -> the name of a response below (``RESPONSES``) or of an error (``ERRORS``).
    responses: dict[int, str]
    #: For ``POST /api/endpoints/{name}``: one operation per registered endpoint as well.
    per_endpoint: bool = False
    parameters: Sequence[dict[str, Any]] = field(default_factory=tuple)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


ANY: dict[str, Any] = {}
NULLABLE_STRING = {"type": ["string", "null"]}
RUN_STATUS = {"enum": ["running", "succeeded", "failed", "cancelled"]}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["type", "message"],
                "properties": {
                    "type": {"type": "string"},
                    "message": {"type": "string"},
                    "fields": {
                        "description": "Why, for each parameter that is wrong",
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                    },
                    "first_kept": {"type": "integer"},
                    "run": {"type": "string"},
                },
            }
        },
    },
    "Index": {
        "type": "object",
        "required": ["name", "endpoints", "runs", "health"],
        "properties": {
            "name": {"const": "streambind"},
            "endpoints": {"type": "string"},
            "runs": {"type": "string"},
            "health": {"type": "string"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "running"],
        "properties": {
            "status": {"enum": ["ok", "unavailable", "draining"]},
            "reason": {"type": "string"},
            "running": {"type": "integer", "minimum": 0},
            "loop": {"enum": ["asyncio", "uvloop"], "description": "The event loop serving"},
        },
        # Each resource of the served workflows modules reports its health under its name
        # (the demo's database: {"backend": "sqlite", "ok": true}).
        "additionalProperties": {
            "type": "object",
            "required": ["ok"],
            "properties": {"ok": {"type": "boolean"}, "error": {"type": "string"}},
        },
    },
    "Endpoint": {
        "type": "object",
        "required": ["name", "title", "description", "params"],
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "params": {
                "description": "The parameters, as one JSON Schema (draft 2020-12) object",
                "type": "object",
            },
        },
    },
    "EndpointList": {
        "type": "object",
        "required": ["endpoints"],
        "properties": {"endpoints": {"type": "array", "items": _ref("Endpoint")}},
    },
    "Run": {
        "type": "object",
        "required": [
            "id",
            "endpoint",
            "params",
            "status",
            "created",
            "finished",
            "events",
            "messages",
            "last_message",
        ],
        "properties": {
            "id": {"type": "string"},
            "endpoint": {"type": "string"},
            "params": {"type": "object"},
            "status": RUN_STATUS,
            "created": {"type": "string", "format": "date-time"},
            "finished": NULLABLE_STRING,
            "events": {
                "description": "Messages sent so far (the same as messages, kept for clients "
                "that read this name)",
                "type": "integer",
                "minimum": 0,
            },
            "messages": {
                "description": "Messages sent so far; the terminal event is not counted",
                "type": "integer",
                "minimum": 0,
            },
            "last_message": ANY,
        },
    },
    "RunDetail": {
        "allOf": [
            _ref("Run"),
            {
                "type": "object",
                "required": ["followers", "last_event_id"],
                "properties": {
                    "followers": {"type": "integer", "minimum": 0},
                    "last_event_id": {"type": "integer", "minimum": 0},
                    "result": ANY,
                    "error": _ref("RunError"),
                },
            },
        ]
    },
    "RunError": {
        "type": "object",
        "required": ["type", "message"],
        "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
    },
    "RunList": {
        "type": "object",
        "required": ["runs"],
        "properties": {"runs": {"type": "array", "items": _ref("Run")}},
    },
}

# The events of a stream, by SSE event type: what each one's ``data:`` line holds.
EVENTS: dict[str, dict[str, Any]] = {
    MESSAGE: {"description": "One ctx.send(data): the data, as compact JSON"},
    END: {
        "type": "object",
        "required": ["status", "result"],
        "properties": {"status": {"const": "succeeded"}, "result": ANY},
    },
    ERROR: {
        "type": "object",
        "required": ["status", "error"],
        "properties": {"status": {"enum": ["failed", "fell_behind"]}, "error": _ref("RunError")},
    },
    CANCELLED: {
        "type": "object",
        "required": ["status", "reason"],
        "properties": {
            "status": {"const": "cancelled"},
            "reason": {
                "description": (
                    "requested: a DELETE on any node; abandoned: nobody followed it within the "
                    "detach grace; caller_left: its caller left before the response began; "
                    "shutdown: the server shut down"
                ),
                "enum": list(CANCEL_REASONS),
            },
        },
    },
}

# One event of the stream, as an SSE parser hands it over; each event type's data is JSON
# of the schema its ``contentSchema`` gives.
SCHEMAS["Event"] = {
    "type": "object",
    "required": ["event", "data", "id"],
    "properties": {
        "event": {"enum": list(EVENTS)},
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "data": {"type": "string"},
        "retry": {"type": "integer"},
    },
    "anyOf": [
        {
            "properties": {
                "event": {"const": name},
                "data": {"contentMediaType": "application/json", "contentSchema": schema},
            }
        }
        for name, schema in EVENTS.items()
    ],
}
_STREAM = {"text/event-stream": {"schema": _ref("Event")}}
_RUN_ID = {"X-Run-Id": {"schema": {"type": "string"}, "description": "The run's id"}}
_RETRY = {"Retry-After": {"schema": {"type": "string"}}}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


_CACHED = {
    "ETag": {"schema": {"type": "string"}, "description": "Send it as If-None-Match"},
    "Cache-Control": {"schema": {"type": "string"}, "description": "no-cache: ask again"},
}

RESPONSES: dict[str, dict[str, Any]] = {
    "index": {
        "description": (
            "Where things are, as JSON; the browser page (HTML) when Accept ranks text/html "
            "above application/json"
        ),
        "content": {**_json(_ref("Index")), "text/html": {"schema": {"type": "string"}}},
    },
    "static_file": {
        "description": "The file: a JavaScript module, a style sheet",
        "headers": _CACHED,
        "content": {
            "text/javascript": {"schema": {"type": "string"}},
            "text/css": {"schema": {"type": "string"}},
        },
    },
    "not_modified": {
        "description": "The copy whose ETag came in If-None-Match is current",
        "headers": _CACHED,
    },
    "health": {"description": "The server is up", "content": _json(_ref("Health"))},
    "not_serving": {
        "description": (
            "The server cannot take new work: its run store cannot serve (unavailable), or it "
            "drains or shuts down (draining)"
        ),
        "content": _json(_ref("Health")),
    },
    "openapi": {"description": "This document", "content": _json({"type": "object"})},
    "endpoints": {"description": "The workflows offered", "content": _json(_ref("EndpointList"))},
    "runs": {"description": "Recent runs, newest first", "content": _json(_ref("RunList"))},
    "run": {"description": "One run", "content": _json(_ref("RunDetail"))},
    "cancelling": {"description": "Cancelling: the run", "content": _json(_ref("RunDetail"))},
    "started": {
        "description": (
            "The run's live stream (``text/event-stream``: ``retry:``, one ``message`` event per "
            "send, then exactly one of ``end``, ``error`` or ``cancelled``; the data of each is "
            "in ``x-events``), or, for a run that ended without sending anything, its return "
            "value as JSON"
        ),
        "headers": _RUN_ID,
        "content": {**_STREAM, **_json(ANY)},
    },
    "events": {
        "description": "The run's events after Last-Event-ID, then live, then its terminal event",
        "headers": _RUN_ID,
        "content": _STREAM,
    },
    "no_more_events": {
        "description": "A finished run has nothing after Last-Event-ID: EventSource stops",
        "headers": _RUN_ID,
    },
}

#: Each error status: when it is answered, and the ``type`` values it carries.
ERRORS: dict[str, tuple[str, dict[str, Any]]] = {
    "bad_request": ("invalid_body, invalid_params or invalid_last_event_id", {}),
    "unauthorized": ("A token is configured and the request lacks it", {"WWW-Authenticate": {}}),
    "not_found": ("not_found: no such endpoint, run, file or path", {}),
    "request_timeout": ("request_timeout: the body took more than 10 s", {}),
    "conflict": ("cancelled (POST) or not_running (DELETE)", {}),
    "gone": ("events_gone: the events asked for are no longer kept", _RUN_ID),
    "payload_too_large": ("payload_too_large: the body is over 1 MiB", {}),
    "unsupported_media_type": ("unsupported_media_type: a body that is not JSON", {}),
    "too_many_runs": ("too_many_runs: --max-runs runs are running", _RETRY),
    "workflow_failed": ("The workflow raised before its first send: its class name", _RUN_ID),
    "unavailable": ("shutting_down or too_many_connections", {}),
}


def _response(name: str) -> dict[str, Any]:
    if name in RESPONSES:
        return RESPONSES[name]
    description, headers = ERRORS[name]
    response: dict[str, Any] = {"description": description, "content": _json(_ref("Error"))}
    if headers:
        response["headers"] = {
            header: {"schema": {"type": "string"}, **spec} for header, spec in headers.items()
        }
    return response


def _operation(route: Route, summary: str, body: dict[str, Any] | None) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {str(status): _response(name) for status, name in route.responses.items()},
    }
    parameters = list(route.parameters)
    if "{name}" in route.path:
        parameters.append(_path_parameter("name"))
    if "{id}" in route.path:
        parameters.append(_path_parameter("id"))
    if parameters:
        operation["parameters"] = parameters
    if route.per_endpoint:
        schema = body if body is not None else {"type": "object"}
        operation["requestBody"] = {"required": False, "content": _json(schema)}
    if not route.path.startswith("/api"):
        operation["security"] = []
    return operation


def _any_endpoints_body(registry: Registry) -> dict[str, Any]:
    """The body of ``POST /api/endpoints/{name}`` whatever ``name``: one endpoint's
    parameters, each schema refusing the keys it does not name, as the server does."""
    schemas = [endpoint.params.json_schema() for endpoint in registry]
    body: dict[str, Any] = {
        "type": "object",
        "description": "The parameters of the endpoint {name} names (its own path has "
        "its schema alone).",
    }
    if schemas:
        body["anyOf"] = schemas
    return body


def _path_parameter(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def openapi_document(
    routes: Iterable[Route], registry: Registry, prefix: str = ""
) -> dict[str, Any]:
    """The whole API as an OpenAPI 3.1 document; ``prefix``: where it is mounted (``/jobs``)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        method = route.method.lower()
        mounted = prefix + route.path if prefix else route.path
        generic = _any_endpoints_body(registry) if route.per_endpoint else None
        paths.setdefault(mounted, {})[method] = _operation(route, route.summary, generic)
        if route.per_endpoint:
            for endpoint in registry:
                path = mounted.replace("{name}", endpoint.name)
                summary = f"Run {endpoint.title}: {endpoint.description}".strip(": ")
                operation = _operation(route, summary, endpoint.params.json_schema())
                operation["operationId"] = f"run-{endpoint.name}"
                paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "streambind",
            "version": "1",
            "description": "Workflows that report live progress over Server-Sent Events.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "access_token": {"type": "apiKey", "in": "query", "name": "access_token"},
            },
        },
        # Needed only when the server was started with --token.
        "security": [{"bearer": []}, {"access_token": []}, {}],
    }
