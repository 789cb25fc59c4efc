"""Which run store a server uses: Redis when configured, else memory."""

from __future__ import annotations

from .config import ServerConfig
from .store import MemoryRunStore, RunStore

__all__ = ["run_store_for"]


def run_store_for(config: ServerConfig) -> RunStore:
    """The store for ``config`` (not yet connected: the app's start-up opens it)."""
    if config.redis_url is None:
        return MemoryRunStore(config)
    # Imported only here: redis is an optional extra.
    from .redis_store import RedisRunStore

    return RedisRunStore(config)
