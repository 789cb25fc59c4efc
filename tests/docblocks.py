"""The fenced blocks of the README and the documentation site, found by the names they carry.

A block a user may paste (Python, shell, curl, JavaScript, HTML, SQL) carries a name on the
line before it, ``<!-- example: NAME -->``, and a test claims it with ``example("NAME")``.
Output that a test compares with what the program prints may carry ``<!-- output: NAME -->``,
claimed with ``output("NAME")``. Every other block is output, marked by its language
(``text``, ``json``). ``test_docs_blocks.py`` holds these rules; the tests that run each
example are beside the feature they show.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "CHANGELOG.md"]
#: The server the examples name, which tests replace by the one they started.
DOCUMENTED_SERVER = "http://127.0.0.1:8787"

#: Languages a user pastes and runs: each block must carry an example's name.
RUNNABLE = {"python", "sh", "bash", "console", "js", "html", "sql"}
#: Languages that show what a program prints or a file holds: a name is optional.
OUTPUT = {"text", "json"}

_FENCE = re.compile(r"^(?P<indent> *)```(?P<language>[\w-]*)\s*$")
_MARK = re.compile(r"^ *<!-- (?P<kind>example|output): (?P<name>[a-z0-9-]+) -->\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  #: the opening fence's line, from 1
    language: str
    text: str
    kind: str | None  #: "example", "output", or None when no name precedes it
    name: str | None

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks_of(page: Path) -> list[Block]:
    lines = page.read_text().splitlines(keepends=True)
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        indent = len(fence["indent"])
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), len(lines))
        body = "".join(
            "\n" if not line.strip() else line[indent:] if line[:indent].isspace() else line
            for line in lines[i + 1 : end]
        )
        mark = _MARK.match(lines[i - 1]) if i else None
        found.append(
            Block(
                page=page,
                line=i + 1,
                language=fence["language"],
                text=body,
                kind=mark["kind"] if mark else None,
                name=mark["name"] if mark else None,
            )
        )
        i = end + 1
    return found


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in blocks_of(page)]


def _named(kind: str, name: str) -> str:
    found = [b for b in all_blocks() if b.kind == kind and b.name == name]
    assert len(found) == 1, f"{len(found)} blocks named <!-- {kind}: {name} -->"
    return found[0].text


def example(name: str) -> str:
    """The text of the block named ``<!-- example: NAME -->``."""
    return _named("example", name)


def output(name: str) -> str:
    """The text of the block named ``<!-- output: NAME -->``."""
    return _named("output", name)


def commands(block: str, prompt: str = "") -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and output left
    out. ``prompt`` is ``"$ "`` for a console block, whose other lines are output."""
    found: list[str] = []
    pending = ""
    for line in block.splitlines():
        if pending:
            line = pending + " " + line.strip()
            pending = ""
        elif prompt:
            if not line.startswith(prompt):
                continue
            line = line[len(prompt) :]
        if line.endswith("\\"):
            pending = line[:-1].rstrip()
            continue
        command = _without_comment(line).strip()
        if command:
            found.append(command)
    return found


def _without_comment(line: str) -> str:
    """``line`` without a trailing ``  # comment`` (a ``#`` inside quotes is kept)."""
    at = line.find(" #")
    while at != -1:
        before = line[:at]
        if before.count("'") % 2 == 0 and before.count('"') % 2 == 0:
            return before
        at = line.find(" #", at + 1)
    return line


def streambind_arguments(command: str) -> list[str] | None:
    """The arguments of a ``streambind ...`` command (None for another program)."""
    words = shlex.split(command)
    if words and words[-1] == "&":
        words = words[:-1]
    if not words or Path(words[0]).name != "streambind":
        return None
    return words[1:]
