"""``ClientSettings``: the stream client's time limits, size limits and reconnection bounds."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIB", "ClientSettings"]

MIB = 1024 * 1024


@dataclass(frozen=True)
class ClientSettings:
    """Every limit the client keeps; each default suits streambind's own server."""

    #: Seconds to open a connection.
    connect_timeout: float = 10.0
    #: Seconds a plain request (``GET /api/endpoints``) may take in all, and seconds to wait
    #: for a stream's response headers.
    request_timeout: float = 30.0
    #: Seconds an open stream may stay silent: twice the server's default 15 s ping, so a
    #: live stream never trips it and a dead one is resumed.
    read_timeout: float = 30.0
    #: The longest line a stream may send, in characters of decoded text (bytes, for ASCII).
    max_line_size: int = 16 * MIB
    #: The largest event (its ``data`` lines together), in the same unit; also the largest
    #: plain (not streamed) answer.
    max_event_size: int = 16 * MIB
    #: The most messages ``stream.chunks`` keeps: the newest (``received`` counts them all),
    #: so that an endless stream costs bounded memory. None keeps every one.
    max_chunks: int | None = 100_000
    #: Reconnections in a row without a new message before the call fails.
    max_reconnects: int = 5
    #: Reconnections in all, however much each one delivered.
    max_total_reconnects: int = 1000
    #: The shortest wait before reconnecting, whatever ``retry:`` asks (``retry: 0`` included).
    min_retry_ms: int = 100
    #: Seconds in all that one request keeps being sent again while the server answers
    #: that it is busy and started nothing (``503``/``429`` with ``Retry-After``).
    busy_retry_for: float = 30.0

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "request_timeout", "read_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be more than 0 seconds")
        for name in ("max_line_size", "max_event_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_chunks is not None and self.max_chunks < 1:
            raise ValueError("max_chunks must be at least 1, or None to keep every message")
        if self.busy_retry_for < 0:
            raise ValueError("busy_retry_for must not be negative")
        if self.max_reconnects < 0 or self.max_total_reconnects < 0 or self.min_retry_ms < 0:
            raise ValueError("reconnection bounds must not be negative")
