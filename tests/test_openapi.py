"""GET /api/openapi.json: the document matches the routes served, and schemathesis fuzzes them.

The fuzzing runs against a real ``streambind serve`` on loopback (a process of its own, so
schemathesis's blocking client never waits on the event loop that serves it), from the
document the server itself publishes. Examples are derandomised and bounded: the whole
test takes well under a minute on two small cores.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from streambind.server import RunningServer

EXAMPLES_PER_OPERATION = 15
# A valid body may ask a workflow for hours of work (firehose's n goes to 10 million,
# flaky's delay_ms to 10 s a step): the fuzzed document caps every integer parameter at
# this, and delay_ms at 0, so each run is over in moments. Nothing else is excluded.
CAP = 40
CONFORMANCE = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# flaky fails on purpose when asked (fail_at): its 500 is the documented answer of a
# workflow that raised before its first send, so only there is a 500 no defect.
FAILS_ON_PURPOSE = "/api/endpoints/flaky"


async def test_the_document_describes_every_route_the_server_serves(
    server: RunningServer, client: httpx.AsyncClient
) -> None:
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    served = {
        (route.method, route.resource.canonical)
        for route in server.app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if not path.startswith("/api/endpoints/") or path == "/api/endpoints/{name}"
    }
    assert documented == served
    # Each endpoint's body is the very schema GET /api/endpoints publishes.
    endpoints = (await client.get("/api/endpoints")).json()["endpoints"]
    for endpoint in endpoints:
        operation = document["paths"][f"/api/endpoints/{endpoint['name']}"]["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        published = {k: v for k, v in endpoint["params"].items() if k != "$schema"}
        assert body == published
        assert set(operation["responses"]) >= {"200", "400", "401", "404", "429", "500"}
    # Whatever {name}, the body is one endpoint's parameters: unknown keys are refused
    # there as the server refuses them, not allowed by a bare {"type": "object"}.
    generic = document["paths"]["/api/endpoints/{name}"]["post"]["requestBody"]
    any_body = generic["content"]["application/json"]["schema"]
    published = [
        {k: v for k, v in endpoint["params"].items() if k != "$schema"} for endpoint in endpoints
    ]
    assert any_body["anyOf"] == published
    assert all(schema["additionalProperties"] is False for schema in any_body["anyOf"])


async def test_the_document_needs_the_token_when_one_is_set(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(token="t0ken")
    async with httpx.AsyncClient(base_url=server.url) as client:
        refused = await client.get("/api/openapi.json")
        assert refused.status_code == 401
        assert refused.json()["error"]["type"] == "unauthorized"
        given_token = await client.get(
            "/api/openapi.json", headers={"Authorization": "Bearer t0ken"}
        )
        assert given_token.status_code == 200


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streambind serve`` with the built-in workflows, on a free loopback port."""
    data_dir: Path = tmp_path_factory.mktemp("openapi-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMBIND_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "streambind.app.cli", "serve", "--port", "0",
         "--data-dir", str(data_dir), "--max-runs", "1000"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("streambind serving on "), line
        yield line.split()[3]
    finally:
        process.terminate()
        process.wait(30)


def _capped(document: dict[str, Any]) -> dict[str, Any]:
    capped = copy.deepcopy(document)
    for path, operations in capped["paths"].items():
        if not path.startswith("/api/endpoints/"):
            continue
        body = operations["post"]["requestBody"]["content"]["application/json"]["schema"]
        for schema in body.get("anyOf", [body]):  # the generic path: any endpoint's
            for name, prop in schema["properties"].items():
                if prop.get("type") == "integer":
                    cap = 0 if name == "delay_ms" else min(prop.get("maximum", CAP), CAP)
                    prop["maximum"] = cap
    return capped


def _operations(document: dict[str, Any]) -> list[Any]:
    schema = schemathesis.openapi.from_dict(document)
    return [result.ok() for result in schema.get_all_operations()]


def test_schemathesis_finds_no_server_error_and_every_answer_as_documented(
    live_url: str,
) -> None:
    document = httpx.get(f"{live_url}/api/openapi.json", timeout=30).json()
    # Valid requests from the capped document; invalid ones from the document itself, so
    # that each is invalid for the server too (and must get a documented 4xx, never a 5xx).
    operations = _operations(_capped(document))
    assert len(operations) >= 15, "every route, and each endpoint's own POST"
    calls = 0
    for mode, each in [
        (GenerationMode.POSITIVE, operations),
        (GenerationMode.NEGATIVE, _operations(document)),
    ]:
        for operation in each:
            checks = [*CONFORMANCE]
            if operation.path != FAILS_ON_PURPOSE:
                checks.append(not_a_server_error)
            calls += _fuzz(operation, mode, checks, live_url)
    assert calls >= len(operations), "every operation was called"


def _fuzz(operation: Any, mode: GenerationMode, checks: list[Any], url: str) -> int:
    """Call one operation with its bounded, derandomised examples; return how many calls."""
    calls = 0

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        nonlocal calls
        calls += 1
        case.call_and_validate(base_url=url, checks=checks, timeout=30)

    try:
        check()
    except Unsatisfiable:
        # An operation with nothing to get wrong (no parameters, no body) has no invalid request.
        assert mode is GenerationMode.NEGATIVE, operation.path
    return calls
