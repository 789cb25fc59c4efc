"""The Redis run store: every node sees every run, follows it, and can cancel it.

Its modules, each with one job, from the bottom up: ``keys`` (where everything is kept)
and ``connection`` (the client, Redis's health, the backoff), then ``records`` (a run's
record), ``logs`` (the event logs backed by a stream), ``shipping`` (this node's runs,
published), ``control`` (cancel requests between nodes), ``following`` (other nodes'
runs, followed here), ``liveness`` (heartbeats, ``node_lost``) and ``store``, which puts
them together as the ``RunStore`` the server opens.
"""

from .liveness import HEARTBEAT_TTL_S
from .store import RedisRunStore

__all__ = ["HEARTBEAT_TTL_S", "RedisRunStore"]
