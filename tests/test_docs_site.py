"""The documentation site builds with ``mkdocs build --strict`` (no broken link, anchor or
missing page), and what it says of the command line is what the command line does: its
reference names every option each command's ``--help`` prints, and the settings table of
docs/deployment.md every option of ``serve``."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from docblocks import ROOT

from streambind.app.cli import build_parser

MKDOCS = Path(sys.executable).parent / "mkdocs"


def _hook() -> ModuleType:
    """docs/cli_reference.py, the site's build hook, as a module."""
    path = ROOT / "docs" / "cli_reference.py"
    spec = importlib.util.spec_from_file_location("cli_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _options_in_help(*command: str) -> set[str]:
    """Every option (and positional argument) ``streambind COMMAND --help`` prints."""
    shown = subprocess.run(
        [sys.executable, "-m", "streambind.app.cli", *command, "--help"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    options: set[str] = set()
    section = ""
    for line in shown.splitlines():
        if line and not line.startswith(" "):
            section = line
        elif section.startswith("positional arguments") and re.match(r"^  \S", line):
            name = line.split()[0]
            if not name.startswith("{"):
                options.add(name)
        elif re.match(r"^  -", line):
            options |= set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", line.split("  ")[1]))
    return options


def _commands() -> list[list[str]]:
    return [[]] + [[name.split()[-1]] for name, _ in _hook().commands(build_parser())[1:]]


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(["streambind", *c]))
def test_the_cli_reference_names_every_option_help_prints(command: list[str]) -> None:
    hook = _hook()
    parsers = dict(hook.commands(build_parser()))
    reference = hook.command_reference(parsers[" ".join(["streambind", *command])])
    options = _options_in_help(*command)
    assert "--help" in options
    if command == ["serve"]:
        assert {"--workflows", "--prefix", "--redis", "--database"} <= options
    missing = [option for option in options if f"`{option}" not in reference]
    assert not missing, f"the reference of {command} lacks {missing}"
    assert "<!-- cli-reference -->" in (ROOT / "docs" / "cli.md").read_text()


def test_the_settings_table_lists_every_serve_option() -> None:
    page = (ROOT / "docs" / "deployment.md").read_text()
    table = page[page.index("## Settings") : page.index("## How much memory")]
    rows = [line for line in table.splitlines() if line.startswith("| `-")]
    listed = {name for row in rows for name in re.findall(r"`(--[\w-]+)`", row.split(" | ")[0])}
    assert listed == _options_in_help("serve") - {"-h", "--help"}


def test_the_site_builds_strict_with_every_page(tmp_path: Path) -> None:
    mkdocs = str(MKDOCS) if MKDOCS.exists() else shutil.which("mkdocs")
    if mkdocs is None:
        pytest.skip("mkdocs is not installed (the test extra brings it): the site is not built")
    site = tmp_path / "site"
    built = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert "WARNING" not in built.stderr, built.stderr
    for page in ("getting-started", "tui", "cli", "workflows", "client", "http-api", "browser",
                 "mcp", "deployment", "performance", "guarantees", "ARCHITECTURE", "reference",
                 "CHANGELOG"):  # fmt: skip
        assert (site / page / "index.html").exists(), page
    cli = (site / "cli" / "index.html").read_text()
    assert "--keep-exports-for" in cli and "--read-timeout" in cli
    reference = (site / "reference" / "index.html").read_text()
    for name in ("endpoint", "Param", "InvalidParam", "RunContext", "resource", "ResourceContext",
                 "Registry", "build_registry", "create_app", "start_server", "ServerConfig",
                 "StreamClient", "StreamCall", "StreamState", "ClientSettings"):  # fmt: skip
        assert 'id="streambind.' in reference
        assert re.search(rf'id="streambind\.[\w.]*\.{name}"', reference), name
    document = json.loads((site / "openapi.json").read_text())
    assert document["openapi"] == "3.1.0"
    assert "/api/endpoints/import" in document["paths"]
    assert (site / "screenshots" / "run-board.svg").exists()
