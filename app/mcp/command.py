"""``streambind mcp``: a bridge to the server at a URL, served over stdio or HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from ..loopback import is_loopback
from .bridge import Bridge
from .transports import serve_http, serve_stdio

__all__ = ["run_mcp"]


def run_mcp(
    url: str,
    token: str | None,
    http: tuple[str, int] | None = None,
    run: Callable[[Coroutine[Any, Any, None]], None] = asyncio.run,
) -> int:
    """Serve until the client closes stdin (stdio) or the process is interrupted (HTTP);
    ``run`` runs the bridge on the loop the command line chose."""
    if http is not None and (warning := _exposure_warning(http[0])):
        print(warning, file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        run(_serve(url, token, http))
    return 0


async def _serve(url: str, token: str | None, http: tuple[str, int] | None) -> None:
    async with Bridge(url, token) as bridge:
        if http is None:
            await serve_stdio(bridge)
        else:
            host, port = http
            await serve_http(bridge, host, port, on_ready=_say_serving)


def _say_serving(url: str) -> None:
    # One line on stdout, as `streambind serve` says where it serves.
    print(f"streambind mcp serving on {url}", flush=True)


def _exposure_warning(host: str) -> str | None:
    if is_loopback(host):
        return None
    return (
        f"streambind mcp: WARNING: serving MCP on {host} without authentication: anyone who "
        "can reach this address can run the server's endpoints."
    )
