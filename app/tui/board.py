"""The run board: every run of this window, newest first, one line each, any of them expanded."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll

from .run_card import RunCard

__all__ = ["RunBoard"]


class RunBoard(VerticalScroll, can_focus=False):
    """The board's keys act on the focused run (``RunCard``'s own) or move between runs."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j,right_square_bracket", "move(1)", "Next run", show=False),
        Binding("up,k,left_square_bracket", "move(-1)", "Previous run", show=False),
        Binding("X", "clear_finished", "Clear finished", key_display="X"),
    ]

    @property
    def cards(self) -> list[RunCard]:
        """Newest first, as shown."""
        return list(self.query_children(RunCard))

    def add(self, card: RunCard) -> None:
        """Put ``card`` on top."""
        self.mount(card, before=0 if self.children else None)
        self.scroll_home(animate=False)

    def focused_card(self) -> RunCard | None:
        node = self.app.focused
        while node is not None and not isinstance(node, RunCard):
            node = node.parent  # type: ignore[assignment]
        return node if isinstance(node, RunCard) else None

    def action_move(self, delta: int) -> None:
        self.move_focus(delta)

    def move_focus(self, delta: int) -> RunCard | None:
        """Focus the run ``delta`` places below (above, if negative) the focused one; the
        newest (or, going up, the oldest) when none has the focus."""
        cards = self.cards
        if not cards:
            return None
        current = self.focused_card()
        if current is None:
            index = 0 if delta >= 0 else len(cards) - 1
        else:
            index = max(0, min(len(cards) - 1, cards.index(current) + delta))
        card = cards[index]
        card.focus()
        self.scroll_to_widget(card, animate=False)
        return card

    def action_clear_finished(self) -> None:
        finished = [card for card in self.cards if card.state.finished]
        for card in finished:
            card.remove()
        if finished:
            self.notify(f"Cleared {len(finished)} finished run{'s' * (len(finished) != 1)}.")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_finished":
            return any(card.state.finished for card in self.cards)
        return True
