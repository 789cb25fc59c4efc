"""Starting the server: in-process on a free port (embedding, tests) or as ``streambind serve``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from dataclasses import dataclass

from aiohttp import web

from . import loops
from .api import CONFIG, MANAGER, REGISTRY, create_app
from .config import ServerConfig
from .connections import ConnectionLimits, GuardedAppRunner, default_max_connections
from .registry import Registry
from .resources import ResourceUnavailable
from .store import StoreUnavailable

__all__ = ["RunningServer", "run_server", "start_server"]


# Runs are cancelled first on shutdown, so streams end quickly; this only bounds
# how long a handler that is stuck on a dead connection may hold the exit up.
_SHUTDOWN_TIMEOUT_S = 3.0


@dataclass
class RunningServer:
    runner: web.AppRunner
    host: str
    port: int
    #: streambind's application (mounted at ``prefix`` in the runner's, if any).
    app: web.Application
    prefix: str = ""
    closed: bool = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.prefix}"

    @property
    def config(self) -> ServerConfig:
        return self.runner.app[CONFIG]

    async def close(self) -> None:
        """Stop accepting, cancel running runs, end every stream with its terminal event."""
        if not self.closed:
            self.closed = True
            await self.runner.cleanup()


#: Capped by the system's ``net.core.somaxconn`` (4,096 on current Linux).
_LISTEN_BACKLOG = 4096


async def start_server(
    config: ServerConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    registry: Registry | None = None,
    *,
    prefix: str = "",
) -> RunningServer:
    """Serve ``registry``'s workflows on ``host:port`` (port 0: a free one) in the running
    event loop; under ``prefix`` (``/jobs``), as a sub-application, when given."""
    if registry is None:
        raise TypeError(
            "start_server needs the workflows to serve: registry=build_registry([your.module])"
        )
    limits = ConnectionLimits(
        header_timeout=config.header_timeout,
        keepalive=config.keepalive,
        max_connections=config.max_connections or default_max_connections(),
    )
    app = create_app(config, registry)
    root = app
    if prefix:
        root = web.Application()
        root.add_subapp(prefix, app)
    runner = GuardedAppRunner(
        root,
        limits=limits,
        handle_signals=False,
        # Lets a stream notice at once that its client went away, which starts
        # the run's detach grace period.
        handler_cancellation=True,
        shutdown_timeout=_SHUTDOWN_TIMEOUT_S,
        access_log=None,
    )
    await runner.setup()
    # The kernel's queue of connections not yet accepted. aiohttp's 128 overflows when
    # hundreds of clients connect at once (uvloop's accept loop drains it in smaller
    # steps), and a connection dropped from it fails on the client's side, unseen here.
    site = web.TCPSite(runner, host, port, backlog=_LISTEN_BACKLOG)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    return RunningServer(runner, host if host else bound_host, bound_port, app, prefix)


def run_server(
    config: ServerConfig,
    registry: Registry,
    host: str = "127.0.0.1",
    port: int = 8787,
    *,
    prefix: str = "",
    loop: str | None = None,
) -> int:
    """Serve until SIGINT or SIGTERM, then shut down gracefully; return an exit status.

    ``loop``: ``auto`` (uvloop when installed), ``asyncio`` or ``uvloop``; None: as
    ``$STREAMBIND_LOOP`` says, else ``auto``.
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return loops.run(_serve_until_signalled(config, registry, host, port, prefix), loop)


async def _serve_until_signalled(
    config: ServerConfig, registry: Registry, host: str, port: int, prefix: str
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        server = await start_server(config, host, port, registry, prefix=prefix)
    except OSError as exc:
        print(f"streambind: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except (ResourceUnavailable, StoreUnavailable) as exc:
        print(f"streambind: {exc}", file=sys.stderr)
        return 2
    # A full garbage collection walks every object the process holds (the libraries,
    # the app): milliseconds in which no event is written. Objects that live as long
    # as the server are set aside once, so those walks stay short. (No collection
    # first: it would take ~10 ms of start-up to free a few dozen objects.)
    gc.freeze()
    names = ", ".join(ep.name for ep in server.app[REGISTRY])
    print(
        f"streambind serving on {server.url}  (endpoints: {names}; loop: {loops.loop_name()})",
        flush=True,
    )
    print(f"data directory: {config.data_dir}", flush=True)
    for line in server.app[MANAGER].resources.descriptions():
        print(line, flush=True)
    if config.redis_url:
        print(f"run store: Redis, prefix {config.redis_prefix}", flush=True)
    await stop.wait()
    if config.drain_timeout > 0:
        print(f"streambind: draining (up to {config.drain_timeout:g}s)", flush=True)
        await server.app[MANAGER].drain(config.drain_timeout)
    print("streambind: shutting down", flush=True)
    await server.close()
    return 0
