"""The house rules that keep server and UI apart, checked mechanically."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def _imports(folder: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def test_the_server_never_imports_the_ui() -> None:
    for path, names in _imports(ROOT / "server").items():
        for name in names:
            assert not name.startswith(("textual", "streambind.app", "app")), (path, name)


def test_serving_loads_no_textual() -> None:
    code = (
        "import sys, streambind.server, streambind.app.cli; "
        "bad = [m for m in sys.modules if m.startswith('textual')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_stream_client_has_no_ui_in_it() -> None:
    imports = _imports(ROOT / "app")
    for module in ("client.py", "state.py", "sse.py", "progress.py", "forms.py", "call_command.py"):
        for name in imports[f"app/{module}"]:
            assert not name.startswith("textual"), (module, name)
            assert not name.startswith("streambind.server"), (module, name)


def test_only_the_embedded_mode_joins_the_two_halves() -> None:
    joined = {
        path
        for path, names in _imports(ROOT / "app").items()
        if any(n.startswith("streambind.server") for n in names)
    }
    assert joined == {"app/embedded.py", "app/cli.py"}


def _absolute_imports(folder: Path, package: str) -> dict[str, set[str]]:
    """Each module's imports as absolute module names, relative ones (``from ..x``) resolved,
    and ``from pkg import name`` counted as ``pkg.name`` too (it may be a module)."""
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        parts = path.relative_to(folder).with_suffix("").parts
        here = [package, *parts[:-1]]  # the package a relative import starts from
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = here[: len(here) - (node.level - 1)] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                names.add(module)
                names.update(f"{module}.{alias.name}" for alias in node.names)
        found[str(path.relative_to(ROOT))] = names
    return found


def test_the_framework_never_imports_its_demo() -> None:
    imports = _absolute_imports(ROOT / "server", "streambind.server")
    assert any("streambind.server.demo" in n for n in imports["server/demo/__init__.py"]), (
        "the resolver sees the demo's own relative imports"
    )
    for path, names in imports.items():
        if path.startswith("server/demo/"):
            continue
        for name in names:
            assert not name.startswith("streambind.server.demo"), (path, name)
            assert "demo" not in name.split("."), (path, name)


def test_only_the_mcp_bridge_imports_the_mcp_sdk() -> None:
    for folder in ("server", "app"):
        for path, names in _imports(ROOT / folder).items():
            if path.startswith("app/mcp/"):
                continue
            assert not any(n == "mcp" or n.startswith("mcp.") for n in names), path


def test_serving_and_help_load_no_mcp_sdk() -> None:
    # The SDK is an extra: `serve`, `--help` and every other command work without it.
    code = (
        "import sys, streambind.server, streambind.app.cli as cli; "
        "cli.build_parser().format_help(); cli.build_parser().parse_args(['mcp']); "
        "bad = [m for m in sys.modules if m == 'mcp' or m.startswith(('mcp.', 'mcp_types'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
