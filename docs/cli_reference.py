"""The documentation site's build hook: what the pages cannot hold as written text.

- The command line's reference (``<!-- cli-reference -->`` in cli.md), rendered from
  ``build_parser()`` at build time, so it names exactly the options ``--help`` prints.
- ``openapi.json``: the demo server's OpenAPI document, made from the route table as
  ``GET /api/openapi.json`` makes it.
- The repository's ``screenshots/`` and ``CHANGELOG.md``, which live outside ``docs/`` so that
  the README and GitHub find them too: added to the site, and the pages' links to them
  (``../screenshots/…``, ``../CHANGELOG.md``) pointed at the copies.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

PLACEHOLDER = "<!-- cli-reference -->"
#: The width usage lines are wrapped to, whatever the terminal building the site.
WIDTH = 88


def commands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """``(name, parser)`` of the program and of each of its commands, in order."""
    found = [(parser.prog, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += [(sub.prog, sub) for sub in action.choices.values()]
    return found


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _option(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    names = ", ".join(f"`{name}`" for name in action.option_strings)
    if action.nargs == 0:
        return names
    formatter = argparse.HelpFormatter("")
    return f"{names} `{formatter._format_args(action, action.dest.upper())}`"


def _usage(parser: argparse.ArgumentParser) -> str:
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)
    try:
        return parser.format_usage().strip()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def command_reference(parser: argparse.ArgumentParser) -> str:
    """One command's usage, description and a table of every argument and option."""
    formatter = parser._get_formatter()
    lines = [f"### {parser.prog}", "", "```text", _usage(parser), "```", ""]
    if parser.description:
        lines += [_cell(parser.description), ""]
    for group in parser._action_groups:
        actions = group._group_actions
        if not actions:
            continue
        if group.title not in ("positional arguments", "options"):
            lines += [f"**{group.title[0].upper()}{group.title[1:]}**", ""]
            if group.description:
                lines += [_cell(group.description), ""]
        lines += ["| Argument | Meaning |", "| --- | --- |"]
        for action in actions:
            if isinstance(action, argparse._SubParsersAction):
                # The commands, each with its one-line help and a link to its section.
                meaning = "; ".join(
                    f"[`{choice.dest}`](#{parser.prog.replace(' ', '-')}-{choice.dest}): "
                    f"{choice.help}"
                    for choice in action._choices_actions
                )
            else:
                meaning = formatter._expand_help(action) if action.help else ""
            lines.append(f"| {_option(action)} | {_cell(meaning)} |")
        lines.append("")
    return "\n".join(lines)


def reference(parser: argparse.ArgumentParser) -> str:
    """The whole command line's reference, as Markdown."""
    return "\n".join(command_reference(sub) for _, sub in commands(parser))


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    root = Path(config.config_file_path).parent
    outside = [f"screenshots/{p.name}" for p in sorted((root / "screenshots").iterdir())]
    for path in [p for p in outside if p.endswith((".svg", ".png"))] + ["CHANGELOG.md"]:
        files.append(File(path, str(root), config.site_dir, config.use_directory_urls))
    files.append(File.generated(config, "openapi.json", content=_openapi()))
    return files


def _openapi() -> str:
    from streambind.server import build_registry
    from streambind.server.api import ROUTES
    from streambind.server.openapi import openapi_document

    registry = build_registry(["streambind.server.demo"])
    return json.dumps(openapi_document(ROUTES, registry), indent=2) + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if PLACEHOLDER in markdown:
        from streambind.app.cli import build_parser

        markdown = markdown.replace(PLACEHOLDER, reference(build_parser()))
    if page.file.src_uri == "CHANGELOG.md":
        # Written for the repository's root: its links into docs/ are the site's pages.
        return markdown.replace("](docs/", "](")
    return markdown.replace("](../screenshots/", "](screenshots/").replace(
        "](../CHANGELOG.md", "](CHANGELOG.md"
    )
