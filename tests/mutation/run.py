"""Mutation testing of the core modules: one small fault at a time, and whether a test notices.

Run from the repository root, outside the normal suite (pytest never collects this file)::

    .venv/bin/python tests/mutation/run.py                 # the six modules
    .venv/bin/python tests/mutation/run.py server/params.py --jobs 1

For each module it makes every fault of these kinds, one at a time: a comparison, an
arithmetic or a boolean operator flipped (``<`` to ``<=``, ``+`` to ``-``, ``and`` to
``or``, ``in`` to ``not in``, a ``not`` dropped), an integer moved by one, a string
altered, one argument of a call dropped, a returned value replaced by ``None``. Each
fault runs the module's own list of fast tests (``MODULES``), stopping at the first
failure; a fault no test fails on is a survivor, printed with its line and its change.

The faults are never written to the working tree. Each job copies ``server/`` and
``app/`` to a temporary ``streambind/`` folder put first on ``PYTHONPATH`` (ahead of
the editable install), writes the fault there, with no bytecode cache so that a fault
of the same size is never read from a stale one, and removes the copy at the end, on
Ctrl-C too. Before the faults, the tests run once unchanged and must pass there.

A survivor may be equivalent: a change no caller can observe. Those judged so are
listed in equivalent.toml with why; they are counted apart and the score is the share
of the other faults caught. docs/testing.md keeps the scores and the reasons.

It needs nothing beyond pyproject's test extra. mutmut did not fit this layout (it
imports its mutated copy as ``server.framing``, where the tests import
``streambind.server.framing``), nor cosmic-ray (one more dependency, making several
times as many faults for two shared cores).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tokenize
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Each module and the fast, unit-level tests that cover it.
MODULES: dict[str, list[str]] = {
    "app/sse.py": [
        "tests/test_pinned_decoder.py",
        "tests/test_sse_vectors.py",
        "tests/test_fuzz.py::test_any_json_value_arrives_equal_in_any_chunking",
        "tests/test_fuzz.py::test_the_decoder_never_raises_on_arbitrary_bytes",
        "tests/test_fuzz.py::test_the_decoder_reads_every_stream_as_the_standard_does",
        "tests/test_fuzz.py::test_streams_of_common_blocks_are_read_as_the_standard_does",
        "tests/test_client_hardening.py::test_a_32_mib_line_in_64_kib_chunks_is_copied_once",
        "tests/test_client_hardening.py::test_limits_trip_on_a_line_and_on_an_event_of_many_short_lines",
    ],
    "server/params.py": ["tests/test_pinned_params.py", "tests/test_units.py"],
    "server/eventlog.py": [
        "tests/test_pinned_eventlog.py",
        "tests/test_units.py",
        "tests/test_fuzz.py::test_any_json_value_arrives_equal_in_any_chunking",
    ],
    "server/framing.py": [
        "tests/test_pinned_framing.py",
        "tests/test_units.py",
        "tests/test_fuzz.py::test_any_json_value_arrives_equal_in_any_chunking",
    ],
    "app/steps.py": [
        "tests/test_pinned_steps.py",
        "tests/test_steps_and_rates.py",
        "tests/test_progress_rules.py",
    ],
    "app/progress.py": [
        "tests/test_pinned_progress.py",
        "tests/test_progress_rules.py",
        "tests/test_steps_and_rates.py",
    ],
}


def _equivalent() -> dict[str, dict[tuple[str, int, str], str]]:
    """Survivors judged equivalent (equivalent.toml), by module: ``Fault.key`` -> why."""
    judged: dict[str, dict[tuple[str, int, str], str]] = {}
    with open(Path(__file__).with_name("equivalent.toml"), "rb") as file:
        for entry in tomllib.load(file)["equivalent"]:
            key = (entry["line"], entry["column"], entry["change"])
            judged.setdefault(entry["module"], {})[key] = entry["why"]
    return judged


EQUIVALENT = _equivalent()

_PYTEST_ARGS = ["-x", "-q", "-p", "no:cacheprovider", "-p", "asyncio", "-p", "pytest_timeout"]

_OPERATORS = {
    "<": "<=",
    "<=": "<",
    ">": ">=",
    ">=": ">",
    "==": "!=",
    "!=": "==",
    "+": "-",
    "-": "+",
    "*": "/",
    "/": "*",
    "//": "/",
    "%": "/",
    "**": "*",
    "+=": "-=",
    "-=": "+=",
    "<<": ">>",
    ">>": "<<",
    "|": "&",
    "&": "|",
}
_KEYWORDS = {
    "and": "or",
    "or": "and",
    "True": "False",
    "False": "True",
    "break": "continue",
    "continue": "break",
}


@dataclass(frozen=True)
class Fault:
    """Replace ``source[start:end]`` with ``replacement``; ``line`` is where it starts."""

    line: int
    start: int
    end: int
    replacement: str

    def apply(self, source: str) -> str:
        return source[: self.start] + self.replacement + source[self.end :]

    def change(self, source: str) -> str:
        return f"{source[self.start : self.end]!r} -> {self.replacement!r}"

    def key(self, source: str) -> tuple[str, int, str]:
        """The line as written, where on it the fault is, and the change: kept when lines move."""
        line = source.splitlines()[self.line - 1]
        column = self.start - (source.rfind("\n", 0, self.start) + 1)
        return line.strip(), column - (len(line) - len(line.lstrip())), self.change(source)


class _Offsets:
    """Positions in the source as offsets: tokenize counts characters, ast counts UTF-8 bytes."""

    def __init__(self, source: str) -> None:
        self.lines = source.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def of_chars(self, line: int, col: int) -> int:
        return self.starts[line - 1] + col

    def of_bytes(self, line: int, col: int) -> int:
        return self.of_chars(line, len(self.lines[line - 1].encode()[:col].decode()))

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.of_bytes(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self.of_bytes(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return start, end


def _skipped_spans(tree: ast.Module, at: _Offsets) -> list[tuple[int, int]]:
    """Docstrings, annotations and ``__all__``: text no caller runs."""
    spans = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                spans.append(at.span(first))
        if isinstance(node, ast.arg) and node.annotation is not None:
            spans.append(at.span(node.annotation))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns:
            spans.append(at.span(node.returns))
        if isinstance(node, ast.AnnAssign):
            spans.append(at.span(node.annotation))
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            spans.append(at.span(node))
    return spans


def _token_faults(source: str, at: _Offsets) -> Iterator[Fault]:
    tokens = [
        t
        for t in tokenize.generate_tokens(io.StringIO(source).readline)
        if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)
    ]
    for index, token in enumerate(tokens):
        start, end = at.of_chars(*token.start), at.of_chars(*token.end)
        after = tokens[index + 1] if index + 1 < len(tokens) else None
        before = tokens[index - 1] if index else None
        line = token.start[0]
        if token.type == tokenize.OP and token.string in _OPERATORS:
            yield Fault(line, start, end, _OPERATORS[token.string])
        elif token.type == tokenize.NAME and token.string in _KEYWORDS:
            yield Fault(line, start, end, _KEYWORDS[token.string])
        elif token.type == tokenize.NAME and token.string == "is":
            if after is not None and after.string == "not":
                yield Fault(line, start, at.of_chars(*after.end), "is")
            else:
                yield Fault(line, start, end, "is not")
        elif token.type == tokenize.NAME and token.string == "in":
            if before is None or before.string != "not":
                yield Fault(line, start, end, "not in")
        elif token.type == tokenize.NAME and token.string == "not" and after is not None:
            if after.string == "in":
                yield Fault(line, start, at.of_chars(*after.end), "in")
            elif before is None or before.string != "is":
                yield Fault(line, start, at.of_chars(*after.start), "")
        elif token.type == tokenize.NUMBER:
            value = ast.literal_eval(token.string)
            if isinstance(value, int | float) and not isinstance(value, bool):
                yield Fault(line, start, end, repr(value + 1))
        elif token.type == tokenize.STRING:
            quote = min(i for i in (token.string.find('"'), token.string.find("'")) if i >= 0)
            if token.string[quote : quote + 3] in ('"""', "'''"):
                quote += 2
            text = token.string[: quote + 1] + "XX" + token.string[quote + 1 :]
            yield Fault(line, start, end, text)


def _ast_faults(tree: ast.Module, at: _Offsets) -> Iterator[Fault]:
    for node in ast.walk(tree):
        returned = getattr(node, "value", None) if isinstance(node, ast.Return) else None
        if returned is not None and not (
            isinstance(returned, ast.Constant) and returned.value is None
        ):
            yield Fault(returned.lineno, *at.span(returned), "None")
        if isinstance(node, ast.Call):
            arguments: list[ast.AST] = [*node.args, *node.keywords]
            arguments.sort(key=lambda a: (a.lineno, a.col_offset))  # type: ignore[attr-defined]
            for index, argument in enumerate(arguments):
                start, end = at.span(argument)
                if index + 1 < len(arguments):
                    end = at.span(arguments[index + 1])[0]
                elif index:
                    start = at.span(arguments[index - 1])[1]
                yield Fault(argument.lineno, start, end, "")  # type: ignore[attr-defined]


def faults_of(source: str) -> list[Fault]:
    """Every fault of the module that still compiles and changes what it compiles to."""
    tree = ast.parse(source)
    at = _Offsets(source)
    skipped = _skipped_spans(tree, at)
    original = ast.dump(tree)
    seen: set[str] = set()
    out = []
    for fault in [*_token_faults(source, at), *_ast_faults(tree, at)]:
        if any(start <= fault.start and fault.end <= end for start, end in skipped):
            continue
        mutated = fault.apply(source)
        if mutated in seen:
            continue
        seen.add(mutated)
        try:
            if ast.dump(ast.parse(mutated)) == original:
                continue
            compile(mutated, "<fault>", "exec")
        except SyntaxError:
            continue
        out.append(fault)
    return sorted(out, key=lambda f: (f.start, f.end, f.replacement))


class _Runner:
    """Runs a module's tests against copies of the package, one job per copy at a time.

    Each copy has a test server of its own (``--serve-tests``): a process that has imported
    pytest and the libraries the tests use, and forks once per fault, so that a fault costs
    the tests and streambind's own imports, not a new interpreter and every plugin.
    """

    def __init__(self, jobs: int) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="streambind-mutation-"))
        self._free: list[tuple[Path, subprocess.Popen[str]]] = []
        self._servers: list[subprocess.Popen[str]] = []
        self._lock = threading.Lock()
        self._stopped = False
        for number in range(jobs):
            copy = self._root / str(number)
            for half in ("server", "app"):
                shutil.copytree(
                    ROOT / half,
                    copy / "streambind" / half,
                    ignore=shutil.ignore_patterns("__pycache__"),
                )
            server = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--serve-tests"],
                cwd=ROOT,
                env=self._env(copy),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,  # one group with the tests it forks, to end them all
            )
            self._servers.append(server)
            self._free.append((copy, server))

    def stop(self) -> None:
        """End the tests that are running and refuse to start more (Ctrl-C)."""
        with self._lock:
            self._stopped = True
            for server in self._servers:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.pid, signal.SIGKILL)

    def close(self) -> None:
        self.stop()
        for server in self._servers:
            server.wait()
        shutil.rmtree(self._root, ignore_errors=True)

    def where(self, module: str) -> str:
        """The file the tests import the module from, as a check that the copy is read."""
        copy = self._free[0][0]
        name = "streambind." + module.removesuffix(".py").replace("/", ".")
        code = f"import {name} as m; print(m.__file__)"
        found = subprocess.run(
            [sys.executable, "-c", code],
            env=self._env(copy),
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return found.stdout.strip()

    def run(self, module: str, source: str, tests: list[str], timeout: float) -> str:
        """``passed``, ``failed`` or ``timed out``: the tests with ``module`` as ``source``."""
        with self._lock:
            if self._stopped:
                raise KeyboardInterrupt
            copy, server = self._free.pop()
        target = copy / "streambind" / module
        original = target.read_text()
        try:
            target.write_text(source)
            assert server.stdin is not None and server.stdout is not None
            server.stdin.write(json.dumps({"tests": tests, "timeout": timeout}) + "\n")
            server.stdin.flush()
            outcome = server.stdout.readline().strip()
            if not outcome:
                raise KeyboardInterrupt  # the server was ended: the run is being stopped
            return outcome
        finally:
            target.write_text(original)
            with self._lock:
                self._free.append((copy, server))

    @staticmethod
    def _env(copy: Path) -> dict[str, str]:
        # Only the plugins these tests use: loading every installed one costs a second a run.
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(copy), env.get("PYTHONPATH")]))
        return env


#: What the tests import besides streambind, imported once by each test server.
_PRELOAD = [
    "pytest",
    "pytest_asyncio",
    "pytest_timeout",
    "hypothesis",
    "aiohttp",
    "aiohttp.web",
    "httpx",
    "httpx_sse",
    "msgspec",
    "orjson",
    "jsonschema_rs",
    "textual.app",
    "textual.widgets",
    "rich",
    "redis",
    "selenium.webdriver",
    "psycopg",
]


def _serve_tests() -> None:
    """Run the tests asked on stdin, each in a fork of this process; say how each went."""
    for name in _PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    assert not [m for m in sys.modules if m.startswith("streambind")], "imported too soon"
    import pytest

    for request in sys.stdin:
        asked = json.loads(request)
        timeout = int(asked["timeout"])
        pid = os.fork()
        if pid == 0:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            signal.alarm(timeout + 5)  # in case pytest-timeout cannot interrupt it
            code = pytest.main([*_PYTEST_ARGS, f"--timeout={timeout}", *asked["tests"]])
            os._exit(int(code))
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            outcome = "timed out"
        else:
            outcome = "passed" if os.waitstatus_to_exitcode(status) == 0 else "failed"
        print(outcome, flush=True)


@dataclass
class Score:
    module: str
    tried: int = 0
    caught: int = 0
    equivalent: int = 0
    survivors: list[str] | None = None

    @property
    def percent(self) -> float:
        counted = self.tried - self.equivalent
        return 100.0 * self.caught / counted if counted else 100.0


def mutate(module: str, runner: _Runner, jobs: int) -> Score:
    source = (ROOT / module).read_text()
    tests = MODULES[module]
    where = runner.where(module)
    if not where.startswith(tempfile.gettempdir()):
        raise SystemExit(f"{module}: the tests read {where}, not the copy")
    began = time.monotonic()
    if runner.run(module, source, tests, timeout=600) != "passed":
        raise SystemExit(f"{module}: its tests fail without any fault: {' '.join(tests)}")
    timeout = max(30.0, 5 * (time.monotonic() - began))
    faults = faults_of(source)
    score = Score(module, tried=len(faults), survivors=[])
    equivalent = EQUIVALENT.get(module, {})
    print(f"{module}: {len(faults)} faults, {' '.join(tests)}", flush=True)

    def one(fault: Fault) -> tuple[Fault, str]:
        return fault, runner.run(module, fault.apply(source), tests, timeout)

    pool = ThreadPoolExecutor(jobs)
    try:
        for done, (fault, outcome) in enumerate(pool.map(one, faults), 1):
            if done % 25 == 0:
                print(f"  ... {done} of {len(faults)}", flush=True)
            if outcome != "passed":
                score.caught += 1
                continue
            key = fault.key(source)
            if key in equivalent:
                score.equivalent += 1
                continue
            assert score.survivors is not None
            score.survivors.append(f"  {module}:{fault.line}: {key!r}")
            print(score.survivors[-1], flush=True)
    except BaseException:  # Ctrl-C: the running tests end now, the queued ones never start
        runner.stop()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return score


def main() -> None:
    if sys.argv[1:] == ["--serve-tests"]:
        _serve_tests()
        return
    # Ctrl-C stops a run even when it was started in the background, where SIGINT is ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"some of {', '.join(MODULES)} (all)")
    parser.add_argument("--jobs", type=int, default=2, help="tests run at once (default 2)")
    parser.add_argument("--list", action="store_true", help="print the faults, run nothing")
    args = parser.parse_args()
    args.modules = args.modules or list(MODULES)
    if unknown := set(args.modules) - set(MODULES):
        parser.error(f"not a module this knows: {', '.join(sorted(unknown))}")
    if args.list:
        for module in args.modules:
            source = (ROOT / module).read_text()
            for fault in faults_of(source):
                print(f"{module}:{fault.line}: {fault.change(source)}")
        return
    runner = _Runner(args.jobs)
    scores = []
    try:
        for module in args.modules:
            scores.append(mutate(module, runner, args.jobs))
    except KeyboardInterrupt:
        print("interrupted; no module was changed", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        runner.close()
    print("\nmodule | faults tried | caught | equivalent | survived | score")
    for s in scores:
        survived = s.tried - s.caught - s.equivalent
        print(
            f"{s.module} | {s.tried} | {s.caught} | {s.equivalent} | {survived} | {s.percent:.1f}%"
        )


if __name__ == "__main__":
    main()
