"""What the terminal UI remembers between sessions: the theme, and the URLs last watched.

A small JSON file in the user's config directory (``$STREAMBIND_CONFIG_DIR`` overrides it,
as the tests do). A file that cannot be read or written is ignored, never an error.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import platformdirs

__all__ = ["Preferences", "preferences_path"]

#: Watched URLs remembered for the command palette, newest first.
RECENT_URLS = 10


def preferences_path() -> Path:
    where = os.environ.get("STREAMBIND_CONFIG_DIR")
    folder = Path(where) if where else Path(platformdirs.user_config_dir("streambind", False))
    return folder / "tui.json"


@dataclass
class Preferences:
    theme: str | None = None
    watched: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path | None = None) -> Preferences:
        try:
            data = json.loads((path or preferences_path()).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if not isinstance(data, dict):
            return cls()
        theme = data.get("theme")
        watched = data.get("watched")
        return cls(
            theme=theme if isinstance(theme, str) else None,
            watched=[u for u in watched if isinstance(u, str)][:RECENT_URLS]
            if isinstance(watched, list)
            else [],
        )

    def save(self, path: Path | None = None) -> None:
        path = path or preferences_path()
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    def remember_watched(self, url: str) -> None:
        self.watched = [url, *(u for u in self.watched if u != url)][:RECENT_URLS]
