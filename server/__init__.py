"""streambind's server: workflows as async functions, streamed to callers as Server-Sent Events.

Write a workflow:

    from streambind.server import RunContext, endpoint

    @endpoint("count", title="Count")
    async def count(ctx: RunContext, to: int = 10) -> dict:
        for i in range(1, to + 1):
            await ctx.send({"done": i, "total": to})
        return {"counted": to}
"""

from .api import build_registry, create_app
from .config import ServerConfig
from .context import RunContext
from .params import InvalidParam, Param
from .registry import Endpoint, Registry, endpoint
from .resources import Resource, ResourceContext, ResourceUnavailable, resource
from .serve import RunningServer, run_server, start_server

__all__ = [
    "Endpoint",
    "InvalidParam",
    "Param",
    "Registry",
    "Resource",
    "ResourceContext",
    "ResourceUnavailable",
    "RunContext",
    "RunningServer",
    "ServerConfig",
    "build_registry",
    "create_app",
    "endpoint",
    "resource",
    "run_server",
    "start_server",
]
