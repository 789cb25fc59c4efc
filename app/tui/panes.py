"""The sidebar's panes, each with the keys that act on it: the footer shows them only while
the pane has the focus, so no key acts on a tab that is not shown."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import OptionList

__all__ = ["EndpointList", "EndpointsPane", "WatchPane"]


class EndpointList(OptionList):
    """The endpoints; Enter moves to the first field of the selected one's form."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Next endpoint", show=False),
        Binding("k", "cursor_up", "Previous endpoint", show=False),
    ]


class EndpointsPane(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "app.run_endpoint", "Run"),
        Binding("h", "app.toggle_handle_stream", "Handle stream"),
    ]


class WatchPane(VerticalScroll, can_focus=False):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "app.watch", "Watch"),
    ]
