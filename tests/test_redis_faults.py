"""Redis paused (SIGSTOP) or killed under serving nodes: bounded 503s, streams that go on,
recovery, and nothing left behind. Every test here has a private redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import redisdb
from deployment import start_node
from polling import newest_run, wait_for

from streambind.app.client import StreamClient
from streambind.server.redis_store import HEARTBEAT_TTL_S

#: Long enough for a node's answer to Redis being unreachable; an answer that does not
#: come within it is a node that hangs on a paused Redis.
_ANSWER_WITHIN_S = 15


@contextlib.contextmanager
def private_redis(tmp_path: Path) -> Iterator[redisdb.PrivateRedis]:
    redis = redisdb.PrivateRedis(tmp_path / "redis").start()
    try:
        yield redis
    finally:
        if redis.process is not None:
            # A paused process ignores SIGKILL's exit until it runs again.
            with contextlib.suppress(ProcessLookupError):
                redis.process.send_signal(signal.SIGCONT)
        redis.stop()


@contextlib.contextmanager
def paused(redis: redisdb.PrivateRedis) -> Iterator[None]:
    assert redis.process is not None
    redis.process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        redis.process.send_signal(signal.SIGCONT)


@contextlib.asynccontextmanager
async def two_nodes(redis_url: str, tmp_path: Path) -> AsyncIterator[list[tuple]]:
    started = []
    try:
        for name in ("a", "b"):
            started.append(await start_node("--redis", redis_url, data_dir=tmp_path / name))
        yield started
    finally:
        for process, _ in started:
            if process.returncode is None:
                process.terminate()
        for process, _ in started:
            await process.wait()


async def until(condition: Callable[[], bool], what: str) -> None:
    async def check() -> bool:
        return condition()

    await wait_for(check, bool, what)


def _refused(response: httpx.Response) -> None:
    """A 503 in the API's one JSON error shape, saying to come back, with no traceback."""
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    error = response.json()["error"]
    assert error["type"] == "store_unavailable"
    assert error["message"].startswith("Redis is unreachable")
    assert "Traceback" not in response.text


async def test_a_paused_redis_is_503_within_bounds_and_open_streams_carry_on_after_sigcont(
    tmp_path: Path,
) -> None:
    with private_redis(tmp_path) as redis:
        async with (
            two_nodes(redis.url, tmp_path) as [(a, a_url), (b, b_url)],
            httpx.AsyncClient(base_url=a_url, timeout=_ANSWER_WITHIN_S) as http_a,
            httpx.AsyncClient(base_url=b_url, timeout=_ANSWER_WITHIN_S) as http_b,
            StreamClient(a_url) as on_a,
            StreamClient(b_url) as on_b,
        ):
            # A run executing on A, its caller on A and a follower on B.
            call = on_a.call("flaky", {"steps": 150, "fail_at": 151, "delay_ms": 50})
            calling = asyncio.create_task(call.run())
            run = await newest_run(http_b, lambda r: r["events"] >= 2, "B to see the run")
            follow = on_b.follow(run["id"])
            following = asyncio.create_task(follow.run())
            await until(lambda: bool(follow.state.chunks), "B's follower to start")
            with paused(redis):
                stopped_at = time.monotonic()
                for http in (http_a, http_b):
                    down = await wait_for(
                        lambda http=http: http.get("/healthz"),
                        lambda r: r.status_code == 503,
                        "/healthz to say 503",
                    )
                    assert down.json()["reason"].startswith("Redis is unreachable")
                    _refused(await http.post("/api/endpoints/echo", json={"text": "x"}))
                    _refused(await http.get("/api/runs"))
                # Another node's run is looked up in Redis: refused too, not left hanging.
                _refused(await http_b.get(f"/api/runs/{run['id']}"))
                # The pause outlasts every heartbeat's expiry: once Redis runs again, no
                # node may take the others for dead (they all were cut off alike).
                await asyncio.sleep(max(0.0, stopped_at + HEARTBEAT_TTL_S + 1 - time.monotonic()))
            caller_state, follower_state = await asyncio.wait_for(
                asyncio.gather(calling, following), 60
            )
            expected = [{"step": "flaky", "done": n, "total": 150} for n in range(1, 151)]
            for state in (caller_state, follower_state):
                assert state.status == "succeeded", state.error
                assert state.chunks == expected
            # Both nodes recover: healthy, and a new run on B is followed from A to its end.
            for http in (http_a, http_b):
                await wait_for(
                    lambda http=http: http.get("/healthz"),
                    lambda r: r.status_code == 200,
                    "/healthz 200 again",
                )
            again = await on_b.call("echo", {"text": "back", "times": 3}).run()
            assert again.status == "succeeded", again.error
            replay = await on_a.follow(again.run_id or "").run()
            assert replay.status == "succeeded" and replay.chunks == again.chunks
        stderr = b"".join([await p.stderr.read() for p in (a, b) if p.stderr is not None])
        assert b"Traceback" not in stderr, stderr.decode()[-3000:]
