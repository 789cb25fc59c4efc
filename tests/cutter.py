"""A loopback TCP proxy that cuts chosen connections after a chosen number of bytes.

It forwards real bytes both ways, so a cut is a real dropped connection for both the
client (a truncated response) and the server (a closed peer).
"""

from __future__ import annotations

import asyncio
import contextlib


class CuttingProxy:
    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        cuts: list[int],
        admit_later: asyncio.Event | None = None,
        streams_only: bool = False,
    ) -> None:
        self._upstream = (upstream_host, upstream_port)
        #: Bytes to let through to the client on each successive connection before
        #: cutting it; connections beyond the list are never cut.
        self._cuts = list(cuts)
        #: Cut only event streams instead (counting from a stream's response), each
        #: in turn: for a client such as the TUI that makes other requests besides.
        self._streams_only = streams_only
        #: When given, every connection after the first waits for it before going on.
        self._admit_later = admit_later
        self.connections = 0
        #: Connections cut so far.
        self.cuts_made = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        limit = self._cuts[self.connections] if self.connections < len(self._cuts) else None
        if self._streams_only:
            limit = None
        self.connections += 1
        if self._admit_later is not None and self.connections > 1:
            await self._admit_later.wait()
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        upstream = asyncio.create_task(self._pipe(reader, up_writer, None))
        downstream = asyncio.create_task(
            self._pipe(up_reader, writer, limit, cut_streams=self._streams_only)
        )
        self._tasks |= {upstream, downstream}
        await asyncio.wait([upstream, downstream], return_when=asyncio.FIRST_COMPLETED)
        for task in (upstream, downstream):
            task.cancel()
        for w in (writer, up_writer):
            w.close()
        self._tasks -= {upstream, downstream}

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        limit: int | None,
        cut_streams: bool = False,
    ) -> None:
        """Forward until EOF, or cut after ``limit`` bytes; with ``cut_streams``, the limit
        is the next of the cuts, counted from the first event-stream response that passes."""
        sent = 0
        while data := await reader.read(65536):
            # On loopback a response's headers arrive in one piece.
            if cut_streams and limit is None and self._cuts and _starts_a_stream(data):
                limit, sent = self._cuts.pop(0), 0
            if limit is not None and sent + len(data) >= limit:
                writer.write(data[: limit - sent])
                await writer.drain()
                self.cuts_made += 1
                return
            writer.write(data)
            await writer.drain()
            sent += len(data)


def _starts_a_stream(data: bytes) -> bool:
    """Whether ``data`` begins a response whose headers say it is an event stream (a body
    that merely mentions the type, such as streambind.js, is no stream)."""
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    return head.startswith(b"http/") and b"\r\ncontent-type: text/event-stream" in head
