"""The mutation command (tests/mutation/run.py): the faults it makes, the page that reports it."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

from docblocks import ROOT, commands, example
from mutation.run import EQUIVALENT, MODULES, faults_of

SOURCE = '''"""A module's docstring."""

__all__ = ["f"]


def f(x: int, name: str = "a") -> bool:
    """f's docstring."""
    if x < 3 and name in ("a", "b"):
        return g(x + 1, key=name)
    return not x
'''


def _changes(source: str) -> set[str]:
    return {fault.change(source) for fault in faults_of(source)}


def test_each_kind_of_fault_is_made_and_what_runs_nothing_is_left_alone() -> None:
    changes = _changes(SOURCE)
    for expected in (
        "'<' -> '<='",
        "'3' -> '4'",
        "'and' -> 'or'",
        "'in' -> 'not in'",
        "'+' -> '-'",
        "'\"a\"' -> '\"XXa\"'",
        "'not ' -> ''",
        "'g(x + 1, key=name)' -> 'None'",
        "'x + 1, ' -> ''",
        "', key=name' -> ''",
    ):
        assert expected in changes, expected
    # Docstrings, annotations and __all__ are not run: no fault is made in them.
    assert not [c for c in changes if "docstring" in c or "'int'" in c or '"f"' in c]
    assert "'\"a\"' -> '\"XXa\"'" in changes  # the default value is run
    for fault in faults_of(SOURCE):
        mutated = fault.apply(SOURCE)
        assert ast.dump(ast.parse(mutated)) != ast.dump(ast.parse(SOURCE)), fault


def test_every_module_and_test_the_command_names_exists() -> None:
    for module, tests in MODULES.items():
        assert (ROOT / module).is_file(), module
        for test in tests:
            path, _, name = test.partition("::")
            assert (ROOT / path).is_file(), test
            assert not name or f"def {name}(" in (ROOT / path).read_text(), test
    for module, judged in EQUIVALENT.items():
        source = (ROOT / module).read_text()
        keys = {fault.key(source) for fault in faults_of(source)}
        # A fault judged equivalent that the module no longer has is a stale judgement.
        assert set(judged) <= keys, sorted(set(judged) - keys)


def test_the_testing_page_runs_the_command_on_what_exists() -> None:
    lines = commands(example("mutation-run"))
    for line in lines:
        words = shlex.split(line)
        assert words[:2] == [".venv/bin/python", "tests/mutation/run.py"], line
        assert all(w in MODULES or w.startswith("--") for w in words[2:]), line
    options = {w for line in lines for w in shlex.split(line) if w.startswith("--")}
    source = (ROOT / "tests" / "mutation" / "run.py").read_text()
    assert all(f'"{option}"' in source for option in options), options
    for line in commands(example("testing-suite")):
        words = shlex.split(line)
        assert words[:3] == [".venv/bin/python", "-m", "pytest"], line
        assert all((ROOT / w).exists() for w in words[3:] if not w.startswith("-")), line


def test_the_testing_page_scores_each_module_and_explains_each_equivalent_fault() -> None:
    page = (ROOT / "docs" / "testing.md").read_text()
    rows = re.findall(r"^\| `([\w/]+\.py)` \| (\d+) \| (\d+) \| (\d+) \|", page, re.M)
    assert [module for module, *_ in rows] == list(MODULES)
    for module, tried, caught, equivalent in rows:
        assert int(caught) + int(equivalent) <= int(tried), module
        assert int(equivalent) >= len(EQUIVALENT.get(module, {})), module  # a key may repeat
    for judged in EQUIVALENT.values():
        for (line, _column, _change), why in judged.items():
            assert why and line in page, line


def test_the_command_is_not_collected_as_tests() -> None:
    assert not list(Path(ROOT / "tests" / "mutation").glob("test_*.py"))
