"""The client's SSE decoding against the WHATWG vectors: directly, and through real sockets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web
from foreign import serve

from streambind.app.client import StreamClient
from streambind.app.sse import SSEDecoder

VECTORS = json.loads((Path(__file__).parent / "data" / "sse-vectors.json").read_text())["vectors"]
IDS = [v["name"] for v in VECTORS]


def _decode(chunks: list[bytes]) -> tuple[list[dict], SSEDecoder]:
    decoder = SSEDecoder()
    events = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.close()
    return [{"event": e.event, "data": e.data, "id": e.id} for e in events], decoder


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_the_decoder_follows_each_vector(vector: dict) -> None:
    chunks = [c.encode("latin-1") for c in vector["chunks_latin1"]]
    events, decoder = _decode(chunks)
    assert events == vector["events"]
    if "retry" in vector:
        assert decoder.retry == vector["retry"]


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_any_chunking_gives_the_same_events(vector: dict) -> None:
    whole = b"".join(c.encode("latin-1") for c in vector["chunks_latin1"])
    one_by_one, _ = _decode([whole[i : i + 1] for i in range(len(whole))])
    assert one_by_one == vector["events"]
    assert _decode([whole])[0] == vector["events"]


@pytest.fixture
async def vector_server():  # type: ignore[no-untyped-def]
    """Serves each vector's chunks as separate writes of a real text/event-stream response."""

    async def serve_vector(request: web.Request) -> web.StreamResponse:
        vector = VECTORS[int(request.match_info["index"])]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in vector["chunks_latin1"]:
            await response.write(chunk.encode("latin-1"))
        return response

    app = web.Application()
    app.router.add_get("/vector/{index}", serve_vector)
    async with serve(app) as url:
        yield url


async def test_watching_a_real_stream_of_each_vector_yields_its_data(vector_server: str) -> None:
    async with StreamClient(vector_server) as client:
        for index, vector in enumerate(VECTORS):
            state = await client.watch(f"{vector_server}/vector/{index}").run()
            assert state.status == "succeeded", (vector["name"], state.error)
            expected = []
            for event in vector["events"]:
                try:
                    expected.append(json.loads(event["data"]))
                except ValueError:
                    expected.append(event["data"])
            assert state.chunks == expected, vector["name"]
