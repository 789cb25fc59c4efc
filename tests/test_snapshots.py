"""Snapshots of the main screens at fixed sizes, with fixed clocks and no cursor blink.

Update them after an intended change with `pytest tests/test_snapshots.py --snapshot-update`,
then look at the new SVGs in tests/__snapshots__/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gallery import CardGallery, ControlRoomGallery
from textual.pilot import Pilot
from textual.widgets import Input

from streambind.app.embedded import EmbeddedServer
from streambind.app.tui.app import StreambindApp
from streambind.server import ServerConfig


@pytest.fixture
def embedded_url(tmp_path: Path) -> Iterator[str]:
    with EmbeddedServer(ServerConfig(data_dir=tmp_path / "data")) as url:
        yield url


async def _settle(pilot: Pilot) -> None:
    app = pilot.app
    for _ in range(500):
        if getattr(app, "form", None) is not None:
            break
        await pilot.pause(0.02)
    for field in app.query(Input):
        field.cursor_blink = False
    await pilot.pause()


def test_the_endpoint_list_and_form(snap_compare, embedded_url: str) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(embedded_url, subtitle="snapshot")
    assert snap_compare(app, terminal_size=(100, 30), run_before=_settle)


def test_the_smallest_supported_terminal(snap_compare, embedded_url: str) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(embedded_url, subtitle="snapshot")
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settle)


def test_the_watch_panel(snap_compare, embedded_url: str) -> None:  # type: ignore[no-untyped-def]
    app = StreambindApp(embedded_url, subtitle="snapshot")

    async def open_watch(pilot: Pilot) -> None:
        await _settle(pilot)
        await pilot.press("w")
        await _settle(pilot)

    assert snap_compare(app, terminal_size=(100, 30), run_before=open_watch)


def test_every_kind_of_card(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(CardGallery(), terminal_size=(90, 80))


def test_the_runs_table_beside_a_pipeline_card_with_steps(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(ControlRoomGallery(), terminal_size=(130, 24))
