"""Redis for tests: the shared one (or $STREAMBIND_TEST_REDIS), or a private redis-server.

The URL is ``$STREAMBIND_TEST_REDIS`` if set, else ``redis://127.0.0.1:6379`` if it
answers, else a private ``redis-server`` on a free port when the binary exists;
otherwise the Redis tests skip, saying why. Every test gets a random key prefix
and deletes only the keys under it (SCAN + UNLINK): never FLUSHALL or FLUSHDB.
Tests that kill or pause Redis start a ``PrivateRedis`` of their own.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_URL = "redis://127.0.0.1:6379"


def _answers(url: str) -> str | None:
    """None if Redis at ``url`` answers PING, else why not."""
    try:
        import redis
    except ImportError:
        return "redis-py is not installed (pip install -e '.[redis]')"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test run's own, on a free port, without persistence."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while _answers(self.url) is not None:
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None


_private: PrivateRedis | None = None


@functools.cache
def redis_url() -> str:
    """The Redis URL for tests (see the module's docstring), or skip with the reason."""
    explicit = os.environ.get("STREAMBIND_TEST_REDIS")
    if explicit:
        if (why := _answers(explicit)) is not None:
            raise RuntimeError(f"$STREAMBIND_TEST_REDIS ({explicit}) does not answer: {why}")
        return explicit
    why_shared = _answers(SHARED_URL)
    if why_shared is None:
        return SHARED_URL
    global _private
    if shutil.which("redis-server") is None:
        pytest.skip(f"no Redis for tests: {SHARED_URL}: {why_shared}; and no redis-server binary")
    _private = PrivateRedis(Path(os.environ.get("TMPDIR", "/tmp")) / f"sb-redis-{os.getpid()}")
    return _private.start().url


def require_redis() -> str:
    try:
        return redis_url()
    except pytest.skip.Exception as exc:
        print(f"SKIP: {exc}")
        raise


def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix``, and nothing else."""
    import redis

    with contextlib.closing(redis.Redis.from_url(url)) as client:
        batch = list(client.scan_iter(match=f"{prefix}*", count=1000))
        while batch:
            client.unlink(*batch[:1000])
            batch = batch[1000:]


@contextlib.contextmanager
def fresh_prefix(url: str) -> Iterator[str]:
    prefix = f"sbtest:{secrets.token_hex(6)}:"
    try:
        yield prefix
    finally:
        delete_prefix(url, prefix)


def stop_private() -> None:
    if _private is not None:
        _private.stop()
