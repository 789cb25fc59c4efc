"""A streambind server inside this process, on its own thread and event loop.

This is the hallway between the two halves: the TUI and ``streambind call`` start it
when no ``--url`` is given, and then talk to it over HTTP like to any other server.
Its own thread keeps a busy workflow (a firehose, say) from stalling the UI's loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from types import TracebackType

from streambind.server import (
    Registry,
    RunningServer,
    ServerConfig,
    build_registry,
    loops,
    start_server,
)

from . import DEMO

__all__ = ["EmbeddedServer"]


class EmbeddedServer:
    """``with EmbeddedServer() as url:`` serves on a free loopback port until the block ends."""

    def __init__(
        self, config: ServerConfig | None = None, registry: Registry | None = None
    ) -> None:
        self.config = config or ServerConfig()
        #: What it serves: the demo unless told otherwise.
        self.registry = registry if registry is not None else build_registry([DEMO])
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: RunningServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._log_handler: logging.Handler | None = None

    def start(self) -> str:
        self._log_to_file(self.config.data_dir / "streambind.log")
        self._thread = threading.Thread(target=self._serve, name="streambind-server", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure
        return self.url

    def stop(self) -> None:
        """Cancel running runs, end their streams, and stop the thread."""
        loop, server = self._loop, self._server
        if loop is None or server is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=30)
        self._loop = self._server = None
        if self._log_handler is not None:
            logger = logging.getLogger("streambind")
            logger.removeHandler(self._log_handler)
            self._log_handler.close()
            logger.propagate = True
            self._log_handler = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self) -> None:
        loop = loops.new_loop()  # the same rule as serve's: uvloop when installed
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                start_server(self.config, "127.0.0.1", 0, self.registry)
            )
            self.url = self._server.url
        except BaseException as exc:  # reported to start()'s caller
            self._failure = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    def _log_to_file(self, path: Path) -> None:
        # The terminal belongs to the UI: the server's log (with workflow tracebacks)
        # goes to a file in the data directory instead.
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger("streambind")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        self._log_handler = handler
