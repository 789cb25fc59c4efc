"""The built-in workflows, in the order ``GET /api/endpoints`` lists them."""

from __future__ import annotations

from . import demo, export, importing, report
from .store import prepare

__all__ = ["BUILTIN_MODULES", "prepare"]

BUILTIN_MODULES = (importing, export, report, demo)
