"""A response body in bounded pieces: gzip and deflate are inflated here, 64 KiB at a time.

httpx inflates each network chunk whole, so 64 KiB of a gzip bomb can become 64 MiB before
anyone looks at it. Inflating with a bound on each piece lets the decoder's size limits trip
before memory grows past them.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

import httpx

__all__ = ["PIECE_SIZE", "body_pieces"]

#: The most bytes one inflated piece holds.
PIECE_SIZE = 64 * 1024

_WBITS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}


async def body_pieces(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body's decoded bytes, in pieces of at most PIECE_SIZE for gzip and deflate."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        async for chunk in response.aiter_raw():
            yield chunk
        return
    if encoding not in _WBITS:  # br, zstd or a list of encodings: httpx decodes those
        async for chunk in response.aiter_bytes():
            yield chunk
        return
    inflater = zlib.decompressobj(_WBITS[encoding])
    first = encoding == "deflate"
    async for chunk in response.aiter_raw():
        data = chunk
        while data:
            try:
                piece = inflater.decompress(data, PIECE_SIZE)
            except zlib.error as exc:
                if not first:
                    raise httpx.DecodingError(f"the {encoding} body is corrupt ({exc})") from None
                # Some servers send "deflate" without zlib's header, as httpx also allows.
                inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                first = False
                continue
            first = False
            data = inflater.unconsumed_tail
            if piece:
                yield piece
