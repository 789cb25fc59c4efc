"""The framework's settings, with the defaults the command line documents.

A workflows module's own settings are its own (the demo's: ``demo.DemoSettings``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ServerConfig", "default_data_dir"]

MAX_BODY_BYTES = 1024 * 1024
#: ``MAX_BODY_BYTES`` in words, for the messages that refuse a larger body.
MAX_BODY_WORDS = "1 MiB"


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("streambind", appauthor=False))


@dataclass
class ServerConfig:
    data_dir: Path = field(default_factory=default_data_dir)
    #: With a token, every /api request needs ``Authorization: Bearer TOKEN``
    #: or ``?access_token=TOKEN``.
    token: str | None = None
    #: Runs allowed at once; one more gets 429 with Retry-After.
    max_runs: int = 64
    #: Seconds of silence after which a stream gets a ``: ping`` comment.
    ping_interval: float = 15.0
    #: Seconds a run keeps going once nobody follows it, so its caller can resume.
    detach_grace: float = 30.0
    #: The reconnection delay sent to clients in each stream's ``retry:`` field.
    retry_ms: int = 3000
    #: Finished runs kept for replay: at most this many, for at most this long.
    keep_runs: int = 200
    keep_seconds: float = 3600.0
    #: Bytes of framed events one run's log keeps before dropping the oldest.
    log_max_bytes: int = 8 * 1024 * 1024
    #: Bytes the logs of all finished runs may hold together; beyond it the oldest
    #: finished runs' logs are released (their records and results stay).
    max_log_memory: int = 256 * 1024 * 1024
    #: A follower lagging more than half the log holds the workflow back (backpressure)
    #: unless it takes nothing for this many seconds; then it is let go and gets the
    #: ``fell_behind`` error event, and the other followers go on at full speed.
    follower_stall: float = 2.0
    #: With Redis: the writer that ships a run's events there holds the workflow back like
    #: a follower while half the run's log waits for Redis (away, or full and refusing
    #: writes); once Redis has taken none of them for this many seconds, the run fails with
    #: ``store_unavailable``, its events and that error written when Redis takes writes again.
    store_stall: float = 30.0
    #: Seconds a request body may take to arrive in full.
    body_timeout: float = 10.0
    #: Seconds a request's headers may take to arrive in full (from connecting, or
    #: from the first byte of a later request on a kept-alive connection).
    header_timeout: float = 10.0
    #: Seconds an idle kept-alive connection stays open.
    keepalive: float = 75.0
    #: Connections open at once; one more is answered 503 and closed at once.
    #: None: three quarters of the process's file descriptor limit.
    max_connections: int | None = None
    #: The one origin whose browser pages may call the API (CORS); None: no CORS headers.
    cors_origin: str | None = None
    #: A Redis URL (``redis://``, ``rediss://``, ``unix://``) whose run store this node
    #: shares with every node given the same URL and prefix; None: runs stay in memory.
    redis_url: str | None = field(default=None, repr=False)  # it may hold a password
    #: The prefix of every Redis key and channel, so deployments can share one Redis.
    redis_prefix: str = "streambind:"
    #: On SIGTERM, seconds running runs may still take to finish (new calls get 503
    #: with Retry-After meanwhile); 0: cancel them at once.
    drain_timeout: float = 0.0

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.max_log_memory < 0:
            raise ValueError("max_log_memory must not be negative")
        if self.max_runs < 1:
            raise ValueError("max_runs must be at least 1")
        if self.ping_interval <= 0:
            raise ValueError("ping_interval must be positive")
        if not self.store_stall > 0:
            raise ValueError("store_stall must be positive")
        if self.detach_grace < 0:
            raise ValueError("detach_grace must not be negative")
        if self.header_timeout <= 0:
            raise ValueError("header_timeout must be positive")
        if self.keepalive <= 0:
            raise ValueError("keepalive must be positive")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if not self.drain_timeout >= 0:
            raise ValueError("drain_timeout must not be negative")
        if self.redis_url is not None and not self.redis_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
