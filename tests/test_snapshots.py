"""Snapshots of the screens at fixed sizes, from fixed states and clocks, no cursor blink.

Update them after an intended change with `pytest tests/test_snapshots.py --snapshot-update`,
then look at the new SVGs in tests/__snapshots__/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gallery import STATES, BoardGallery, ControlRoomGallery, running_import, text_stream
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
        if app.query("#handle-stream"):
            break
        await pilot.pause(0.02)
    for field in app.query(Input):
        field.cursor_blink = False
    await pilot.pause()


def _app(url: str) -> StreambindApp:
    # No health poll: the header's mark would depend on when the picture is taken.
    # Embedded: the form's `streambind call` line leaves out the server's (random) URL.
    return StreambindApp(url, subtitle="snapshot", health=False, embedded=True)


def test_the_endpoint_list_and_form(snap_compare, embedded_url: str) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(_app(embedded_url), terminal_size=(120, 36), run_before=_settle)


def test_the_smallest_supported_terminal_stacks(snap_compare, embedded_url: str) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(_app(embedded_url), terminal_size=(80, 24), run_before=_settle)


def test_the_watch_panel(snap_compare, embedded_url: str) -> None:  # type: ignore[no-untyped-def]
    async def open_watch(pilot: Pilot) -> None:
        await _settle(pilot)
        await pilot.press("w")
        await _settle(pilot)

    assert snap_compare(_app(embedded_url), terminal_size=(120, 30), run_before=open_watch)


def test_every_state_a_run_can_be_in(snap_compare) -> None:  # type: ignore[no-untyped-def]
    # Running, a pipeline's steps, reconnecting, failed (mid-stream and before it began),
    # cancelled here and by the server, Handle stream off, succeeded, silent, stopped.
    gallery = BoardGallery(STATES, expanded=(1, 3, 6), focus=0)
    assert snap_compare(gallery, terminal_size=(120, 60))


def test_the_states_in_the_light_theme(snap_compare) -> None:  # type: ignore[no-untyped-def]
    gallery = BoardGallery(STATES, expanded=(3,), focus=1, theme="textual-light")
    assert snap_compare(gallery, terminal_size=(120, 36))


def test_thirty_runs_on_one_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    runs = [running_import(f"{i:016x}", done=(i * 7) % 200) for i in range(30)]
    assert snap_compare(BoardGallery(runs, focus=4), terminal_size=(120, 36))


def test_a_forty_line_text_stream_follows_its_newest_line(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(BoardGallery([text_stream(40)], expanded=(0,)), terminal_size=(100, 30))


def test_the_runs_table_beside_a_pipeline_opened_from_it(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(ControlRoomGallery(), terminal_size=(130, 24))
