"""Redis paused (SIGSTOP) or killed under serving nodes: bounded 503s, streams that go on,
recovery, and nothing left behind. Every test here has a private redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import redisdb
from deployment import start_nodes
from polling import newest_run, run_record, wait_for

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
            start_nodes(2, "--redis", redis.url, data_dir=tmp_path) as [(a, a_url), (b, b_url)],
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


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


#: The tasks a node runs for its whole life (and this test's own).
_BACKGROUND = (
    "ControlChannel.listen",
    "RedisRunStore._sweep",
    "RunManager._let_go_of_stalled_followers",
    "RunManager._ping_quiet_streams",
    "StallClock.tick",
    "test_redis_killed_and_paused_again_and_again_leaves_no_task_or_descriptor",
)


def _tasks() -> list[str]:
    return sorted(repr(task.get_coro()).split(" at ")[0] for task in asyncio.all_tasks())


async def test_redis_killed_and_paused_again_and_again_leaves_no_task_or_descriptor(
    tmp_path: Path,
) -> None:
    import flows
    from served import demo_and_flows

    from streambind.server import ServerConfig, start_server
    from streambind.server.api import MANAGER

    with private_redis(tmp_path) as redis:
        # Two nodes in this process, so both the executing node's writer and the other
        # node's reader of a run are counted: tasks by asyncio, descriptors in /proc.
        servers = [
            await start_server(
                ServerConfig(data_dir=tmp_path / name, redis_url=redis.url),
                registry=demo_and_flows(),
            )
            for name in ("a", "b")
        ]
        a, b = servers
        rounds = 0

        async def healthz(status: int) -> None:
            async with httpx.AsyncClient(timeout=_ANSWER_WITHIN_S) as http:
                for server in servers:
                    await wait_for(
                        lambda url=server.url: http.get(f"{url}/healthz"),
                        lambda r: r.status_code == status,
                        f"/healthz {status}",
                    )

        async def exercise() -> None:
            """A run on A with its caller, followed live from B to its end."""
            nonlocal rounds
            rounds += 1
            key = f"leak-{rounds}"
            async with (
                httpx.AsyncClient(base_url=a.url, timeout=30) as on_a,
                httpx.AsyncClient(base_url=b.url, timeout=30) as on_b,
                StreamClient(b.url) as follower_client,
                on_a.stream("POST", "/api/endpoints/hold", json={"key": key}) as caller,
            ):
                assert caller.status_code == 200, await caller.aread()
                run_id = caller.headers["x-run-id"]
                await run_record(on_b, run_id, lambda r: r.get("events") == 1, "B to see the run")
                follow = follower_client.follow(run_id)
                following = asyncio.create_task(follow.run())
                await until(lambda: bool(follow.state.chunks), "B's follower to start")
                flows.release(key)
                assert (await caller.aread()).endswith(b"\n\n")
                state = await following
                assert state.status == "succeeded", state.error

        async def kill_and_restart() -> None:
            redis.stop()
            await healthz(503)
            redis.start()  # the same port, empty: the nodes reconnect by themselves
            await healthz(200)

        async def pause_and_resume() -> None:
            with paused(redis):
                await healthz(503)
            await healthz(200)

        async def faults(times: int) -> None:
            for _ in range(times):
                await exercise()
                await kill_and_restart()
                await exercise()
                await pause_and_resume()
            await exercise()

        async def leftovers() -> tuple[list[str], int]:
            # The pools keep idle connections for reuse, as many as a round happened to
            # need at once (it varies): those are closed first, on both sides of the
            # comparison, so only descriptors that something still holds are counted.
            for server in servers:
                pool = server.app[MANAGER].store.connection.redis.connection_pool
                await pool.disconnect(inuse_connections=False)
            return _tasks(), _open_fds()

        async def idle() -> tuple[list[str], int]:
            """The tasks and descriptors once every request, run and reader is done."""
            quiet = await wait_for(
                leftovers,
                lambda seen: all(name.endswith(_BACKGROUND) for name in seen[0]),
                "only the nodes' background tasks left",
            )
            return quiet

        try:
            # Warm up with one of each fault: connection pools, threads, lazy imports.
            await faults(1)
            tasks_before, fds_before = await idle()
            await faults(3)
            # A descriptor is closed a moment after its task ends: bounded, a leak fails.
            await wait_for(
                leftovers,
                lambda now: now[0] == tasks_before and now[1] <= fds_before,
                f"the tasks and at most the descriptors of before ({fds_before})",
            )
        finally:
            for server in servers:
                await server.close()
