"""Serving a ``Bridge``: over stdio (what agent hosts launch) or Streamable HTTP at ``/mcp``."""

from __future__ import annotations

import socket
from collections.abc import Callable

import uvicorn
from mcp.server.stdio import stdio_server

from .bridge import Bridge

__all__ = ["HTTP_PATH", "serve_http", "serve_stdio"]

HTTP_PATH = "/mcp"
#: Seconds calls in flight may take to end once the bridge is asked to stop.
GRACEFUL_SHUTDOWN_S = 2


async def serve_stdio(bridge: Bridge) -> None:
    """Serve one client on this process's stdin and stdout until it closes them."""
    server = bridge.server
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


async def serve_http(
    bridge: Bridge, host: str, port: int, on_ready: Callable[[str], None] | None = None
) -> None:
    """Serve at ``http://HOST:PORT/mcp`` until interrupted; ``on_ready`` gets that URL once
    connections are accepted (port 0: a free one)."""
    # Bound and listening before the URL is told, so a client that reads it can connect.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    bound = sock.getsockname()[1]
    app = bridge.server.streamable_http_app(streamable_http_path=HTTP_PATH, host=host)
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on",
        access_log=False,
        # On SIGTERM or Ctrl-C, calls still streaming get this long to end; then they are
        # cancelled, and with them their runs (their callers cannot be answered any more).
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    shown = f"[{host}]" if ":" in host else host
    if on_ready is not None:
        on_ready(f"http://{shown}:{bound}{HTTP_PATH}")
    try:
        await uvicorn.Server(config).serve(sockets=[sock])
    finally:
        sock.close()
