"""The streambind terminal UI: run endpoints, supervise their runs on a board, open any run."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import re
import shlex
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

import httpx
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import (
    Button,
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
from ..connection import read_whole
from ..run_line import params_summary
from ..sse import StreamTooLarge
from .board import RunBoard
from .dialogs import MessageScreen, SearchScreen
from .endpoint_form import EndpointForm
from .message_log import MessageLog
from .panes import EndpointList, EndpointsPane, WatchPane
from .preferences import Preferences
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
#: How long quitting waits for cancels still on their way to the server.
CANCEL_ON_EXIT_S = 3.0
#: How often the header's connection mark asks the server how it is.
HEALTH_S = 2.0
#: A health answer is a few dozen bytes; a server sending more is not read further.
_HEALTH_BODY_LIMIT = 64 * 1024
#: Below this width the sidebar goes above the board instead of beside it.
STACK_BELOW = 100
#: What ``c`` says when no run of this window is running.
NOTHING_TO_CANCEL = (
    "No run of this window is running. Runs started elsewhere are in the Runs tab (a), "
    "where Enter opens one here."
)
CONNECTED, RECONNECTING, DRAINING = "● connected", "○ reconnecting", "◐ draining"


class StreambindApp(App[None]):
    CSS_PATH = Path(__file__).with_name("streambind.tcss")
    TITLE = "streambind"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "cancel_newest", "Cancel"),
        Binding("left_square_bracket,right_square_bracket", "focus_runs", "Runs", show=False),
        Binding("e", "show_endpoints", "Endpoints", show=False),
        Binding("w", "show_watch", "Watch"),
        Binding("a", "show_runs", "Runs tab"),
        Binding("ctrl+b", "toggle_sidebar", "Sidebar", show=False),
        Binding("m", "maximize", "Maximize", show=False),
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
        health: bool = True,
        embedded: bool = False,
    ) -> None:
        super().__init__()
        self.url = url
        self.client = StreamClient(url, token, clock=clock)
        self.clock = clock
        self.endpoints: list[dict[str, Any]] = []
        self._where = subtitle or url
        self.sub_title = self._where
        self._runs_started = 0
        self._form_swap = asyncio.Lock()
        self._health = health
        #: An embedded server's URL lasts as long as this window: the call line leaves it out.
        self._embedded = embedded
        self._cancel_label = ""
        self._last_search = ""
        #: Cancels on their way to the server (a DELETE each), awaited before quitting.
        self._cancels: set[asyncio.Task[None]] = set()
        self.preferences = Preferences.load()

    def format_title(self, title: str, sub_title: str) -> Content:
        # A middle dot rather than Textual's em dash, which many terminal fonts (and the
        # screenshots' SVG) draw wider than its one cell, over the space before it.
        if not sub_title:
            return Content(title)
        return Content.assemble(Content(f"{title} · "), (sub_title, "dim"))

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            with Vertical(id="sidebar"), TabbedContent(id="tabs"):
                with TabPane("Endpoints", id="tab-endpoints"), EndpointsPane():
                    yield EndpointList(id="endpoint-list", compact=True)
                    # Not focusable itself: Tab goes straight to the first field.
                    yield VerticalScroll(id="form-area", can_focus=False)
                    # Below the form, not in it: Run is never scrolled away, down to 80×24.
                    with Vertical(id="run-bar"):
                        yield Button("Run", id="run", variant="primary", compact=True)
                        yield Static("", id="call-line")
                with TabPane("Watch URL", id="tab-watch"), WatchPane():
                    yield WatchForm(id="watch")
                with TabPane("Runs", id="tab-runs"):
                    yield RunsTable(self.client.runs, on_board=self._on_board, id="runs-panel")
            with Vertical(id="board-area"):
                yield Static(
                    "No runs yet. Pick an endpoint and press r (or click Run).", id="no-runs"
                )
                yield RunBoard(id="runs")
        yield Footer()

    async def on_mount(self) -> None:
        if self.preferences.theme in self.available_themes:
            self.theme = self.preferences.theme
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self.set_interval(1 / REFRESH_HZ, self._refresh_cards)
        self.query_one("#endpoint-list").focus()
        self.load_endpoints()
        if self._health:
            self.watch_health()
        self.call_after_refresh(self._freeze_startup_objects)

    def _freeze_startup_objects(self) -> None:
        # A full garbage collection walks every object the UI holds: tens of
        # milliseconds in which no stream is read and no key answered. Objects that
        # live as long as the app are set aside once, so those walks stay short.
        gc.collect()
        gc.freeze()

    async def on_unmount(self) -> None:
        # A cancel asked for just before quitting still reaches the server.
        if self._cancels:
            await asyncio.wait(self._cancels, timeout=CANCEL_ON_EXIT_S)
        await self.client.aclose()

    def on_resize(self) -> None:
        self.query_one("#main").set_class(self.size.width < STACK_BELOW, "-stacked")

    def _remember_theme(self, theme: Any) -> None:
        self.preferences.theme = self.theme
        self.preferences.save()

    # -- the command palette ------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The app's own actions in the command palette (ctrl+p), beside Textual's."""
        yield SystemCommand("Run", "Run the selected endpoint (r)", self.action_run_endpoint)
        yield SystemCommand(
            "Cancel", "Cancel the newest running run of this window (c)", self.action_cancel_newest
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
        yield SystemCommand(
            "Sidebar", "Hide or show the sidebar (ctrl+b)", self.action_toggle_sidebar
        )
        for endpoint in self.endpoints:
            name = str(endpoint["name"])
            yield SystemCommand(
                f"Run {name}…",
                str(endpoint.get("title") or "") + " (its form)",
                lambda name=name: self.call_later(self.choose_endpoint, name),
            )
        for card in self.cards:
            yield SystemCommand(
                f"Show {card.label}", f"{card.state.status} · {card.origin}", card.focus
            )
        for url in self.preferences.watched:
            yield SystemCommand(
                f"Watch {url}",
                "Watched before",
                lambda url=url: self.watch_url(url),
            )
        yield from super().get_system_commands(screen)

    # -- endpoints and the form -----------------------------------------------------------

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
        names = self.endpoint_names
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

    @property
    def endpoint_names(self) -> list[str]:
        return [str(ep["name"]) for ep in self.endpoints]

    def _highlighted_endpoint(self) -> str | None:
        options = self.query_one("#endpoint-list", OptionList)
        index = options.highlighted
        if index is None or not 0 <= index < len(self.endpoints):
            return None
        return str(self.endpoints[index]["name"])

    @on(OptionList.OptionHighlighted, "#endpoint-list")
    async def _endpoint_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        await self._show_form(self.endpoints[event.option_index])

    @on(OptionList.OptionSelected, "#endpoint-list")
    async def _endpoint_chosen(self, event: OptionList.OptionSelected) -> None:
        # Enter on the list: on to the form's first field.
        await self._show_form(self.endpoints[event.option_index])
        if (form := self.form) is not None and (field := form.first_field()) is not None:
            field.focus()

    async def choose_endpoint(self, name: str) -> None:
        """Show ``name``'s form in the Endpoints tab, its first field focused."""
        self.action_show_endpoints()
        self.query_one("#endpoint-list", OptionList).highlighted = self.endpoint_names.index(name)
        await self._show_form(self.endpoints[self.endpoint_names.index(name)])
        if (form := self.form) is not None and (field := form.first_field()) is not None:
            field.focus()

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

    @on(EndpointForm.CallLineChanged)
    def _show_call_line(self, event: EndpointForm.CallLineChanged) -> None:
        line = event.line if self._embedded else f"{event.line} --url {shlex.quote(self.url)}"
        with contextlib.suppress(NoMatches):  # the app is closing
            self.query_one("#call-line", Static).update(line)

    def action_toggle_handle_stream(self) -> None:
        if (form := self.form) is not None:
            on_or_off = "on" if form.toggle_handle_stream() else "off"
            self.notify(f"Handle stream is {on_or_off}", timeout=2)

    # -- tabs, layout and focus ------------------------------------------------------------

    def _show_tab(self, tab: str, focus: str) -> None:
        self.query_one("#sidebar").display = True
        self.query_one("#tabs", TabbedContent).active = tab
        self.query_one(focus).focus()

    def action_show_endpoints(self) -> None:
        self._show_tab("tab-endpoints", "#endpoint-list")

    def action_show_watch(self) -> None:
        self._show_tab("tab-watch", "#watch-url")

    def action_show_runs(self) -> None:
        self._show_tab("tab-runs", "#runs-table")

    @on(TabbedContent.TabActivated, "#tabs")
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        runs_tab = event.pane.id == "tab-runs"
        # The table needs room for its columns; the board keeps the rest.
        self.query_one("#main").set_class(runs_tab, "-runs-tab")
        self.query_one(RunsTable).set_polling(runs_tab)

    def action_toggle_sidebar(self) -> None:
        sidebar = self.query_one("#sidebar")
        sidebar.display = not sidebar.display
        if not sidebar.display:
            self.board.move_focus(0)

    def action_maximize(self) -> None:
        if self.screen.maximized is not None:
            self.screen.minimize()
        else:
            self.screen.action_maximize()

    def action_focus_runs(self) -> None:
        self.board.move_focus(0)

    def action_leave_field(self) -> None:
        if self.screen.maximized is not None:
            self.screen.minimize()
        elif self.query_one("#tabs", TabbedContent).active == "tab-watch":
            self.query_one("#tabs Tabs").focus()
        elif self.query_one("#tabs", TabbedContent).active == "tab-runs":
            self.query_one("#runs-table").focus()
        else:
            self.query_one("#endpoint-list").focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # "Leave field" only means something while a field has the focus (or a pane is
        # maximised).
        if action == "leave_field":
            return isinstance(self.focused, Input | Select) or self.screen.maximized is not None
        return True

    # -- runs ----------------------------------------------------------------------------

    @property
    def board(self) -> RunBoard:
        return self.query_one(RunBoard)

    @property
    def cards(self) -> list[RunCard]:
        """Cards newest first, as shown."""
        return self.board.cards

    def _on_board(self, run_id: str) -> bool:
        return any(card.state.run_id == run_id for card in self.cards)

    async def action_run_endpoint(self) -> None:
        await self._run_endpoint()

    @on(Button.Pressed, "#run")
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
        self.start(call, name, detail=params_summary(params))

    def action_watch(self) -> None:
        self.query_one(WatchForm).submit()

    @on(WatchForm.WatchRequested)
    def _watch(self, event: WatchForm.WatchRequested) -> None:
        request = event.request
        call = self.client.watch(
            request.url, method=request.method, body=request.body, headers=request.headers
        )
        self.preferences.remember_watched(request.url)
        self.preferences.save()
        self.start(call, request.method, FROM_WATCHED_URL, detail=request.url)

    def watch_url(self, url: str) -> None:
        self.start(self.client.watch(url), "GET", FROM_WATCHED_URL, detail=url)

    @on(RunsTable.OpenRequested)
    def _open_run(self, event: RunsTable.OpenRequested) -> None:
        self.open_run(event.run_id, event.endpoint, event.timeline, event.params)

    def open_run(
        self,
        run_id: str,
        endpoint: str = "",
        timeline: RunTimeline | None = None,
        params: dict[str, Any] | None = None,
    ) -> RunCard:
        """A card following a run started anywhere; the card already open for it, if any."""
        for card in self.cards:
            if card.state.run_id == run_id and card.origin != FROM_WATCHED_URL:
                card.focus()
                self.board.scroll_to_widget(card, animate=False)
                self.notify(f"Run {run_id} is already on the board.", timeout=2)
                return card
        call = self.client.follow(run_id, endpoint or None, timeline=timeline)
        detail = params_summary(params or {})
        return self.start(call, endpoint or run_id, FROM_RUNS_TAB, detail=detail)

    def start(
        self, call: StreamCall, title: str, origin: str = FROM_THIS_TUI, detail: str = ""
    ) -> RunCard:
        """Put a card for the call on the board and run it in a worker of its own."""
        self._runs_started += 1
        card = RunCard(call, title, self.clock, origin, detail)
        self.query_one("#no-runs").display = False
        # The only run on the board shows its whole card; later ones arrive as lines.
        card.set_expanded(not self.cards)
        self.board.add(card)
        self.query_one(RunsTable).refresh_marks()
        # A group per run: exclusive workers of one group would cancel each other.
        self.run_worker(self._drive(call), group=f"run-{self._runs_started}")
        return card

    async def _drive(self, call: StreamCall) -> None:
        state = await call.run()
        if state.error and state.error.get("type") == "connection_error":
            self.notify(state.error_message(), title="Connection problem", severity="error")
        fields = (state.error or {}).get("fields")
        form = self.form
        if isinstance(fields, dict) and form is not None and form.endpoint["name"] == state.name:
            form.show_errors({str(k): str(v) for k, v in fields.items()})

    def _newest_running(self) -> RunCard | None:
        return next((c for c in self.cards if not c.state.finished), None)

    def action_cancel_newest(self) -> None:
        card = self._newest_running()
        if card is None:
            self.notify(NOTHING_TO_CANCEL, severity="warning", timeout=5)
            return
        self._cancel(card)

    @on(RunCard.CancelRequested)
    def _cancel_card(self, event: RunCard.CancelRequested) -> None:
        if not event.card.state.finished:
            self._cancel(event.card)

    def _cancel(self, card: RunCard) -> None:
        # A task of its own, not a worker: quitting waits for it rather than cancelling it,
        # so that the server hears of the cancel.
        task = asyncio.get_running_loop().create_task(card.call.cancel())
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    @on(RunCard.DismissRequested)
    def _dismiss_card(self, event: RunCard.DismissRequested) -> None:
        card = event.card
        if not card.state.finished and card.origin == FROM_THIS_TUI:
            self.notify(
                f"{card.label} is still running: cancel it (c), or let it end, first.",
                severity="warning",
            )
            return
        card.call.leave()  # a run started elsewhere goes on without this window
        card.remove()
        self.call_after_refresh(self._after_dismiss)

    def _after_dismiss(self) -> None:
        self.query_one("#no-runs").display = not self.cards
        self.query_one(RunsTable).refresh_marks()

    @on(RunCard.SaveRequested)
    def _save_chunks(self, event: RunCard.SaveRequested) -> None:
        card = event.card
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", card.label.replace("·", "-"))
        path = Path.cwd() / f"streambind-{name}.ndjson"
        lines = (json.dumps(chunk, ensure_ascii=False) + "\n" for chunk in card.state.chunks)
        try:
            path.write_text("".join(lines), encoding="utf-8")
        except OSError as exc:
            self.notify(f"Cannot save {path}: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"{len(card.state.chunks):,} chunks saved to {path}", timeout=5)

    @on(MessageLog.OpenRequested)
    def _open_message(self, event: MessageLog.OpenRequested) -> None:
        card = event.log
        while card is not None and not isinstance(card, RunCard):
            card = card.parent  # type: ignore[assignment]
        if not isinstance(card, RunCard):
            return
        chunks = card.state.chunks
        if chunks.first_kept <= event.index < chunks.received:
            title = f"{card.label} · message {event.index + 1:,} of {chunks.received:,}"
            self.push_screen(MessageScreen(title, chunks[event.index - chunks.first_kept]))

    @on(MessageLog.SearchRequested)
    def _search_log(self, event: MessageLog.SearchRequested) -> None:
        log = event.log

        def found(text: str | None) -> None:
            if text:
                self._last_search = text
                if not log.find(text):
                    self.notify(f"No line holds {text!r}.", severity="warning", timeout=3)
            log.focus()

        self.push_screen(SearchScreen(self._last_search), found)

    def _refresh_cards(self) -> None:
        # NoMatches: the app is closing, its widgets already gone.
        with contextlib.suppress(NoMatches):
            for card in self.cards:
                card.refresh_from_state()
            self._relabel_cancel()

    def _relabel_cancel(self) -> None:
        """The footer names the run ``c`` would cancel from here."""
        card = self._newest_running()
        label = "Cancel" if card is None else f"Cancel {card.label}"
        if label != self._cancel_label:
            self._cancel_label = label
            self._bindings.key_to_bindings["c"] = [Binding("c", "cancel_newest", label)]
            self.refresh_bindings()

    # -- the connection, in the header ------------------------------------------------------

    @work(group="health", exclusive=True)
    async def watch_health(self) -> None:
        while True:
            self.sub_title = f"{self._where} · {await self._health_word()}"
            await asyncio.sleep(HEALTH_S)

    async def _health_word(self) -> str:
        try:
            async with asyncio.timeout(HEALTH_S):
                async with self.client.http.stream("GET", "/healthz") as answer:
                    if answer.status_code != 503:
                        return CONNECTED
                    await read_whole(answer, _HEALTH_BODY_LIMIT)
                    body = answer.json()
        except (httpx.HTTPError, TimeoutError, StreamTooLarge):
            return RECONNECTING
        except (ValueError, RecursionError):
            return RECONNECTING  # a 503 that does not say why
        if isinstance(body, dict) and body.get("status") == "draining":
            return DRAINING
        return RECONNECTING
