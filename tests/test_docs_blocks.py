"""Every fenced block of the README and the site is an example a test runs, or output.

A block of a language a user pastes (``docblocks.RUNNABLE``) must carry
``<!-- example: NAME -->``, and some test must claim that name with ``example("NAME")``;
every other block must be of an output language (``text``, ``json``). So a new example
without a test, or a test whose example was removed, fails here.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from docblocks import OUTPUT, RUNNABLE, all_blocks

TESTS = Path(__file__).parent


def _claimed() -> set[tuple[str, str]]:
    """``(kind, name)`` of every ``example("NAME")`` and ``output("NAME")`` in the tests."""
    claimed: set[tuple[str, str]] = set()
    for module in TESTS.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("example", "output")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                claimed.add((node.func.id, node.args[0].value))
    return claimed


def _parametrized_names() -> set[str]:
    """Names a test passes to ``example(name)`` through ``pytest.mark.parametrize``."""
    names: set[str] = set()
    for module in TESTS.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "parametrize"
                and len(node.args) == 2
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value == "name"
                and isinstance(node.args[1], ast.List)
            ):
                names |= {e.value for e in node.args[1].elts if isinstance(e, ast.Constant)}
    return names


def test_every_block_is_an_example_or_output() -> None:
    wrong = []
    for block in all_blocks():
        if block.language in RUNNABLE and block.kind != "example":
            wrong.append(f"{block.where()}: a {block.language} block without a name")
        elif block.language not in RUNNABLE | OUTPUT:
            language = block.language or "no language"
            wrong.append(f"{block.where()}: {language}: name it, or mark it as output (text)")
        elif block.kind == "output" and block.language not in OUTPUT:
            wrong.append(f"{block.where()}: output of a {block.language} block")
    assert not wrong, "\n".join(wrong)


def test_every_name_is_unique_and_claimed_by_a_test() -> None:
    named = [(b.kind, b.name, b.where()) for b in all_blocks() if b.kind is not None]
    counts = Counter((kind, name) for kind, name, _ in named)
    assert [key for key, count in counts.items() if count > 1] == []
    claimed = _claimed() | {("example", name) for name in _parametrized_names()}
    unclaimed = [f"{where}: {kind}: {name}" for kind, name, where in named
                 if (kind, name) not in claimed]  # fmt: skip
    assert not unclaimed, "no test claims:\n" + "\n".join(unclaimed)
    missing = claimed - set(counts)
    assert not missing, f"tests claim blocks no page has: {sorted(missing)}"
