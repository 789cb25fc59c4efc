"""The streambind terminal UI: run an endpoint, watch its card, open any run of the server."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import (
    Footer,
    Header,
    Input,
    OptionList,
    Select,
    Static,
    TabbedContent,
    TabPane,
)
from textual.widgets.option_list import Option

from ..client import ClientError, RunTimeline, StreamCall, StreamClient
from .endpoint_form import EndpointForm
from .run_card import FROM_RUNS_TAB, FROM_THIS_TUI, FROM_WATCHED_URL, RunCard
from .runs_table import RunsTable
from .watch_form import WatchForm

__all__ = ["StreambindApp"]

#: How often cards take in what their streams received: batches, never per message.
REFRESH_HZ = 20
#: Asking again for the endpoints while the server cannot be reached: the first wait,
#: doubled each time up to the last.
ENDPOINTS_RETRY_FIRST_S = 0.5
ENDPOINTS_RETRY_MAX_S = 5.0
#: What ``c`` says when no run of this window is running.
NOTHING_TO_CANCEL = (
    "No run of this window is running. Runs started elsewhere are in the Runs tab (a), "
    "where Enter opens one here."
)


class StreambindApp(App[None]):
    CSS_PATH = Path(__file__).with_name("streambind.tcss")
    TITLE = "streambind"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run", "Run"),
        Binding("c", "cancel", "Cancel"),
        Binding("h", "toggle_handle_stream", "Handle stream"),
        Binding("down,j", "move_endpoint(1)", "Next", key_display="↓"),
        Binding("up,k", "move_endpoint(-1)", "Previous endpoint", key_display="↑", show=False),
        Binding("w", "show_watch", "Watch"),
        Binding("a", "show_runs", "Runs"),
        Binding("e", "show_endpoints", "Endpoints", show=False),
        # While typing in a field, letters go into the field: Enter runs, Escape leaves it.
        Binding("escape", "leave_field", "Leave field", key_display="esc"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        subtitle: str | None = None,
    ) -> None:
        super().__init__()
        self.url = url
        self.client = StreamClient(url, token, clock=clock)
        self.clock = clock
        self.endpoints: list[dict[str, Any]] = []
        self.sub_title = subtitle or url
        self._runs_started = 0
        self._form_swap = asyncio.Lock()

    def format_title(self, title: str, sub_title: str) -> Content:
        # A middle dot rather than Textual's em dash, which many terminal fonts (and the
        # screenshots' SVG) draw wider than its one cell, over the space before it.
        if not sub_title:
            return Content(title)
        return Content.assemble(Content(f"{title} · "), (sub_title, "dim"))

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            with TabbedContent(id="tabs"):
                with TabPane("Endpoints", id="tab-endpoints"):
                    yield OptionList(id="endpoint-list", compact=True)
                    # Not focusable itself: Tab goes straight to the first field.
                    yield VerticalScroll(id="form-area", can_focus=False)
                with TabPane("Watch URL", id="tab-watch"), VerticalScroll(can_focus=False):
                    yield WatchForm(id="watch")
                with TabPane("Runs", id="tab-runs"):
                    yield RunsTable(self.client.runs, id="runs-panel")
            with Vertical(id="runs-area"):
                yield Static(
                    "No runs yet. Pick an endpoint and press r (or click Run).", id="no-runs"
                )
                yield VerticalScroll(id="runs")
        yield Footer()

    async def on_mount(self) -> None:
        self.set_interval(1 / REFRESH_HZ, self._refresh_cards)
        self.query_one("#endpoint-list").focus()
        self.load_endpoints()
        self.call_after_refresh(self._freeze_startup_objects)

    def _freeze_startup_objects(self) -> None:
        # A full garbage collection walks every object the UI holds: tens of
        # milliseconds in which no stream is read and no key answered. Objects that
        # live as long as the app are set aside once, so those walks stay short.
        gc.collect()
        gc.freeze()

    async def on_unmount(self) -> None:
        await self.client.aclose()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The app's own actions in the command palette (ctrl+p), beside Textual's."""
        yield SystemCommand("Run", "Run the selected endpoint (r)", self.action_run)
        yield SystemCommand(
            "Cancel", "Cancel the focused run of this window (c)", self.action_cancel
        )
        yield SystemCommand(
            "Handle stream", "Turn Handle stream on or off (h)", self.action_toggle_handle_stream
        )
        yield SystemCommand(
            "Reload endpoints",
            "Ask the server for its endpoints again (after a restart with other workflows)",
            self.action_reload_endpoints,
        )
        yield SystemCommand("Watch URL", "Follow any SSE URL (w)", self.action_show_watch)
        yield SystemCommand("Endpoints", "Back to the endpoints (e)", self.action_show_endpoints)
        yield SystemCommand(
            "Runs", "Every run the server keeps, to open any of them (a)", self.action_show_runs
        )
        yield from super().get_system_commands(screen)

    # -- endpoints and the form ---------------------------------------------------

    @work(group="endpoints", exclusive=True)
    async def load_endpoints(self) -> None:
        """List the server's endpoints, asking again (at most ``ENDPOINTS_RETRY_MAX_S``
        apart) until it answers: a UI started before its server comes to life with it."""
        wait = ENDPOINTS_RETRY_FIRST_S
        notified = False
        while True:
            try:
                endpoints = await self.client.endpoints()
            except ClientError as exc:
                self._show_load_error(f"Cannot list endpoints: {exc}. Trying again in {wait:g} s.")
                if not notified:
                    self.notify(str(exc), title="Cannot list endpoints", severity="error")
                    notified = True
                await asyncio.sleep(wait)
                wait = min(wait * 2, ENDPOINTS_RETRY_MAX_S)
                continue
            break
        self._show_load_error(None)
        if notified:
            self.notify(f"{len(endpoints)} endpoints", title="Connected", timeout=3)
        await self._show_endpoints(endpoints)

    async def _show_endpoints(self, endpoints: list[dict[str, Any]]) -> None:
        options = self.query_one("#endpoint-list", OptionList)
        selected = self._highlighted_endpoint()
        self.endpoints = endpoints
        options.clear_options()
        options.add_options(
            Option(f"{ep['name']}  [dim]{ep.get('title', '')}[/]", id=ep["name"])
            for ep in endpoints
        )
        names = [ep["name"] for ep in endpoints]
        if not endpoints:
            await self.query_one("#form-area", VerticalScroll).remove_children(EndpointForm)
            return
        # The endpoint selected before a reload stays selected; else import, the first.
        index = names.index(selected) if selected in names else 0
        options.highlighted = index
        await self._show_form(endpoints[index])

    def _show_load_error(self, message: str | None) -> None:
        area = self.query_one("#form-area", VerticalScroll)
        for old in area.query(".load-error"):
            if message is None:
                old.remove()
            else:
                old.update(message)  # type: ignore[attr-defined]
                return
        if message is not None:
            area.mount(Static(message, classes="load-error"), before=0)

    def action_reload_endpoints(self) -> None:
        self.load_endpoints()

    def _highlighted_endpoint(self) -> str | None:
        options = self.query_one("#endpoint-list", OptionList)
        index = options.highlighted
        if index is None or not 0 <= index < len(self.endpoints):
            return None
        return str(self.endpoints[index]["name"])

    @on(OptionList.OptionHighlighted, "#endpoint-list")
    async def _endpoint_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        await self._show_form(self.endpoints[event.option_index])

    async def _show_form(self, endpoint: dict[str, Any]) -> None:
        # One swap at a time: a selection moved twice quickly must not leave two forms.
        async with self._form_swap:
            form = self.form
            if form is not None and form.endpoint == endpoint:
                return
            area = self.query_one("#form-area", VerticalScroll)
            handle_stream = True
            for old in area.query(EndpointForm):
                handle_stream = old.handle_stream  # the switch carries over between endpoints
            await area.remove_children(EndpointForm)
            await area.mount(EndpointForm(endpoint, handle_stream))

    @property
    def form(self) -> EndpointForm | None:
        forms = self.query(EndpointForm)
        return forms.first() if forms else None

    def action_move_endpoint(self, delta: int) -> None:
        if self.query_one("#tabs", TabbedContent).active == "tab-runs":
            table = self.query_one(RunsTable).table
            table.move_cursor(row=table.cursor_row + delta)
            return
        options = self.query_one("#endpoint-list", OptionList)
        if not self.endpoints:
            return
        self.query_one("#tabs", TabbedContent).active = "tab-endpoints"
        current = options.highlighted or 0
        options.highlighted = max(0, min(len(self.endpoints) - 1, current + delta))

    def action_show_watch(self) -> None:
        self.query_one("#tabs", TabbedContent).active = "tab-watch"
        self.query_one("#watch-url").focus()

    def action_show_runs(self) -> None:
        self.query_one("#tabs", TabbedContent).active = "tab-runs"
        self.query_one("#runs-table").focus()

    @on(TabbedContent.TabActivated, "#tabs")
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        runs_tab = event.pane.id == "tab-runs"
        # The table needs room for its columns; the cards keep the rest.
        self.query_one("#main").set_class(runs_tab, "-runs-tab")
        self.query_one(RunsTable).set_polling(runs_tab)

    def action_show_endpoints(self) -> None:
        self.query_one("#tabs", TabbedContent).active = "tab-endpoints"
        self.query_one("#endpoint-list").focus()

    def action_leave_field(self) -> None:
        if self.query_one("#tabs", TabbedContent).active == "tab-watch":
            self.query_one("#tabs Tabs").focus()
        else:
            self.query_one("#endpoint-list").focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # "Leave field" only means something while a field has the focus.
        if action == "leave_field":
            return isinstance(self.focused, Input | Select)
        return True

    def action_toggle_handle_stream(self) -> None:
        if (form := self.form) is not None:
            on_or_off = "on" if form.toggle_handle_stream() else "off"
            self.notify(f"Handle stream is {on_or_off}", timeout=2)

    # -- runs -------------------------------------------------------------------------

    async def action_run(self) -> None:
        active = self.query_one("#tabs", TabbedContent).active
        if active == "tab-watch":
            self.query_one(WatchForm).submit()
        elif active == "tab-runs":
            self.query_one(RunsTable).open_highlighted()
        else:
            await self._run_endpoint()

    @on(EndpointForm.RunRequested)
    async def _run_endpoint(self) -> None:
        selected = self._highlighted_endpoint()
        if selected is None:
            self.notify("No endpoint is selected yet.", severity="warning")
            return
        form = self.form
        if form is None or form.endpoint["name"] != selected:
            # A key pressed right after moving the selection: the form of the endpoint now
            # selected is shown first, and that one runs, as the screen says.
            await self._show_form(self.endpoints[self.endpoint_names.index(selected)])
            form = self.form
            assert form is not None
        params = form.values()
        if params is None:
            self.notify("Some parameters are not valid.", severity="error")
            return
        name = form.endpoint["name"]
        call = self.client.call(name, params, handle_stream=form.handle_stream)
        self.start(call, name)

    @property
    def endpoint_names(self) -> list[str]:
        return [str(ep["name"]) for ep in self.endpoints]

    @on(WatchForm.WatchRequested)
    def _watch(self, event: WatchForm.WatchRequested) -> None:
        request = event.request
        call = self.client.watch(
            request.url, method=request.method, body=request.body, headers=request.headers
        )
        self.start(call, f"{request.method} {request.url}", FROM_WATCHED_URL)

    @on(RunsTable.OpenRequested)
    def _open_run(self, event: RunsTable.OpenRequested) -> None:
        self.open_run(event.run_id, event.endpoint, event.timeline)

    def open_run(
        self, run_id: str, endpoint: str = "", timeline: RunTimeline | None = None
    ) -> RunCard:
        """A card following a run started anywhere; the card already open for it, if any."""
        for card in self.cards:
            if card.state.run_id == run_id and card.origin != FROM_WATCHED_URL:
                self.query_one("#runs", VerticalScroll).scroll_to_widget(card, animate=False)
                self.notify(f"Run {run_id} is already open.", timeout=2)
                return card
        call = self.client.follow(run_id, endpoint or None, timeline=timeline)
        return self.start(call, endpoint or run_id, FROM_RUNS_TAB)

    def start(self, call: StreamCall, title: str, origin: str = FROM_THIS_TUI) -> RunCard:
        """Show a card for the call and run it in a worker of its own."""
        self._runs_started += 1
        card = RunCard(call, title, self.clock, origin)
        self.query_one("#no-runs").display = False
        runs = self.query_one("#runs", VerticalScroll)
        runs.mount(card, before=0 if runs.children else None)
        runs.scroll_home(animate=False)
        # A group per run: exclusive workers of one group would cancel each other.
        self.run_worker(self._drive(call), group=f"run-{self._runs_started}")
        return card

    async def _drive(self, call: StreamCall) -> None:
        state = await call.run()
        if state.error and state.error.get("type") == "connection_error":
            self.notify(state.error_message(), title="Connection problem", severity="error")

    def action_cancel(self) -> None:
        card = self._card_to_cancel()
        if card is None:
            self.notify(NOTHING_TO_CANCEL, severity="warning", timeout=5)
            return
        self.run_worker(card.call.cancel(), group="cancel")

    @on(RunCard.CancelRequested)
    def _cancel_card(self, event: RunCard.CancelRequested) -> None:
        self.run_worker(event.card.call.cancel(), group="cancel")

    def _card_to_cancel(self) -> RunCard | None:
        focused = self.focused
        while focused is not None and not isinstance(focused, RunCard):
            focused = focused.parent  # type: ignore[assignment]
        if isinstance(focused, RunCard) and not focused.state.finished:
            return focused
        return next((c for c in self.query(RunCard) if not c.state.finished), None)

    def _refresh_cards(self) -> None:
        for card in self.query(RunCard):
            card.refresh_from_state()

    @property
    def cards(self) -> list[RunCard]:
        """Cards newest first, as shown."""
        return list(self.query(RunCard))
