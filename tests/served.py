"""What the tests' servers serve: the demo (with its settings) and the tests' own workflows."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import flows

from streambind.server import Registry
from streambind.server import demo as demo_module
from streambind.server.demo import DemoSettings

#: The settings that are the demo's, not the framework's.
DEMO_FIELDS = frozenset(f.name for f in fields(DemoSettings))


def demo_and_flows(**demo: Any) -> Registry:
    """The demo's workflows (with ``DemoSettings(**demo)``), then ``tests/flows.py``'s."""
    registry = Registry()
    registry.add_module(demo_module, DemoSettings(**demo))
    registry.add_module(flows)
    return registry


def split(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``start(**settings)``'s settings as (the framework's, the demo's)."""
    framework = {k: v for k, v in settings.items() if k not in DEMO_FIELDS}
    return framework, {k: v for k, v in settings.items() if k in DEMO_FIELDS}
