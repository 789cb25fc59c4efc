"""The ``delay_ms`` parameter the built-in workflows share, and the pause it asks for."""

from __future__ import annotations

import asyncio
from typing import Annotated

from streambind.server import Param

__all__ = ["DelayMs", "pause"]

DelayMs = Annotated[
    int,
    Param(
        "Pause after each step so a person can watch; 0 for full speed", minimum=0, maximum=10_000
    ),
]


async def pause(delay_ms: int) -> None:
    if delay_ms:
        await asyncio.sleep(delay_ms / 1000)
