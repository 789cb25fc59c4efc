"""CORS: no cross-origin access unless --cors-origin names the one origin allowed."""

from __future__ import annotations

import httpx

ORIGIN = "https://app.example"


async def test_no_cors_headers_unless_an_origin_is_named(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/endpoints", headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert not any(h.lower().startswith("access-control-") for h in response.headers)
    preflight = await client.options(
        "/api/endpoints/import",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 405
    assert "access-control-allow-origin" not in preflight.headers


async def test_the_named_origin_gets_preflights_and_headers_on_streams(start) -> None:  # type: ignore[no-untyped-def]
    server = await start(cors_origin=ORIGIN, token="t0ken")
    async with httpx.AsyncClient(base_url=server.url) as client:
        preflight = await client.options(
            "/api/endpoints/import",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "Authorization" in preflight.headers["access-control-allow-headers"]
        assert "Last-Event-ID" in preflight.headers["access-control-allow-headers"]

        auth = {"Origin": ORIGIN, "Authorization": "Bearer t0ken"}
        listed = await client.get("/api/endpoints", headers=auth)
        assert listed.headers["access-control-allow-origin"] == ORIGIN
        assert listed.headers["vary"] == "Origin"

        stream = await client.post(
            "/api/endpoints/import", json={"rows": 20, "delay_ms": 0}, headers=auth
        )
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["access-control-allow-origin"] == ORIGIN
        assert stream.headers["access-control-expose-headers"] == "X-Run-Id"

        refused = await client.get("/api/endpoints", headers={"Origin": ORIGIN})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == ORIGIN

        other = await client.get(
            "/api/endpoints",
            headers={"Origin": "https://evil.example", "Authorization": "Bearer t0ken"},
        )
        assert "access-control-allow-origin" not in other.headers


def _varies_by(response: httpx.Response) -> set[str]:
    return {v.strip().lower() for v in ",".join(response.headers.get_list("vary")).split(",")}


async def test_every_answer_says_it_varies_by_origin_and_keeps_what_else_it_varies_by(
    start,
) -> None:  # type: ignore[no-untyped-def]
    # A cache between the page and the server must not hand one origin's answer (with or
    # without Access-Control-Allow-Origin) to another: each answer names Origin in Vary.
    server = await start(cors_origin=ORIGIN)
    async with httpx.AsyncClient(base_url=server.url) as client:
        answers = {
            "preflight": await client.options(
                "/api/endpoints/import",
                headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
            ),
            "json": await client.get("/api/endpoints", headers={"Origin": ORIGIN}),
            "stream": await client.post(
                "/api/endpoints/import",
                json={"rows": 20, "delay_ms": 0},
                headers={"Origin": ORIGIN},
            ),
            "error": await client.get("/api/runs/nope", headers={"Origin": ORIGIN}),
            "another origin": await client.get(
                "/api/endpoints", headers={"Origin": "https://evil.example"}
            ),
            "no origin": await client.get("/api/endpoints"),
        }
        page = await client.get("/", headers={"Origin": ORIGIN, "Accept": "application/json"})
    for name, response in answers.items():
        assert response.status_code < 500, name
        assert "origin" in _varies_by(response), (name, response.headers)
    assert answers["stream"].headers["content-type"].startswith("text/event-stream")
    # The index answers by Accept too: both stay named.
    assert {"accept", "origin"} <= _varies_by(page), page.headers
