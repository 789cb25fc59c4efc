"""The servers streambind is compared with, each streaming the same messages as `firehose`.

    python tests/bench/anchors.py KIND PORT        KIND: aiohttp-sse | sse-starlette | aiohttp-plain

Each serves GET /firehose?n=N ({"step": "import", "done": i, "total": n}, id i) and
GET /sparse?n=N&interval_ms=M (the same, plus "t": the send time on the monotonic clock).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator

_dumps = json.JSONEncoder(separators=(",", ":")).encode


async def messages(n: int, interval_ms: float = 0.0) -> AsyncIterator[tuple[int, str]]:
    for i in range(1, n + 1):
        if interval_ms:
            await asyncio.sleep(interval_ms / 1000)
            yield i, _dumps({"step": "import", "done": i, "total": n, "t": time.monotonic()})
        else:
            yield i, _dumps({"step": "import", "done": i, "total": n})


def _params(query) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    return int(query.get("n", "1000")), float(query.get("interval_ms", "0"))


def _aiohttp_app(stream):  # type: ignore[no-untyped-def]
    from aiohttp import web

    app = web.Application()
    app.router.add_get("/firehose", stream)
    app.router.add_get("/sparse", stream)
    return app


def aiohttp_sse_app():  # type: ignore[no-untyped-def]
    from aiohttp import web
    from aiohttp_sse import sse_response

    async def stream(request: web.Request) -> web.StreamResponse:
        n, interval = _params(request.query)
        async with sse_response(request) as response:
            async for i, data in messages(n, interval):
                await response.send(data, id=str(i))
        return response

    return _aiohttp_app(stream)


def aiohttp_plain_app():  # type: ignore[no-untyped-def]
    from aiohttp import web

    async def stream(request: web.Request) -> web.StreamResponse:
        n, interval = _params(request.query)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        async for i, data in messages(n, interval):
            await response.write(f"id: {i}\nevent: message\ndata: {data}\n\n".encode())
        return response

    return _aiohttp_app(stream)


def sse_starlette_app():  # type: ignore[no-untyped-def]
    from sse_starlette.sse import EventSourceResponse
    from starlette.applications import Starlette
    from starlette.routing import Route

    async def stream(request):  # type: ignore[no-untyped-def]
        n, interval = _params(request.query_params)

        async def events():  # type: ignore[no-untyped-def]
            async for i, data in messages(n, interval):
                yield {"id": str(i), "event": "message", "data": data}

        return EventSourceResponse(events(), ping=15)

    return Starlette(routes=[Route("/firehose", stream), Route("/sparse", stream)])


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "sse-starlette":
        import uvicorn

        uvicorn.run(sse_starlette_app(), host="127.0.0.1", port=port, log_level="warning")
        return
    from aiohttp import web

    app = aiohttp_sse_app() if kind == "aiohttp-sse" else aiohttp_plain_app()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
