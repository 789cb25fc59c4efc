"""The built-in workflows, in the order ``GET /api/endpoints`` lists them."""

from __future__ import annotations

from . import demo, export, importing, report
from .export_files import prune_exports
from .store import exports_dir, prepare, tidy_up

__all__ = ["BUILTIN_MODULES", "exports_dir", "prepare", "prune_exports", "tidy_up"]

BUILTIN_MODULES = (importing, export, report, demo)
