"""The ``streambind`` command line; commands import lazily so ``serve`` never loads Textual."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

from . import DEMO
from .loopback import is_loopback

__all__ = ["EXIT_OUTPUT_CLOSED", "main"]

#: The demo's options: refused unless the demo is served.
_DEMO_OPTIONS = {
    "database": "--database",
    "database_schema": "--database-schema",
    "import_time_limit": "--import-time-limit",
    "keep_exports": "--keep-exports",
    "keep_exports_for": "--keep-exports-for",
}

#: A closed output pipe (``| head``) ends a command quietly with the status a shell gives a
#: program that SIGPIPE ended, as ``grep`` and ``git`` do.
EXIT_OUTPUT_CLOSED = 141
T = TypeVar("T")
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """Every bad option value is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0 to 65535)")
    return value


def _http_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL")
    try:
        parts.port  # noqa: B018  (raises for a port out of range)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} has no valid port") from None
    return text


def _path_prefix(text: str) -> str:
    if not text or text == "/":
        return ""
    if not text.startswith("/") or text.endswith("/") or "//" in text or "?" in text:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a path prefix (write it as /jobs: a leading slash, none at the end)"
        )
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a number of seconds, 0 or more")
    return value


def _host_port(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (such as 127.0.0.1:8000)")
    return host, _port(port)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="streambind",
        description=(
            "Workflows that report live progress over Server-Sent Events. "
            "Without a command, opens the terminal UI on an embedded server "
            "(or on --url)."
        ),
    )
    _add_connection_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the workflow server",
        description=(
            "Serve the demo's workflows, or your own with --workflows, over HTTP. "
            "POST /api/endpoints/NAME starts a run and streams its progress as SSE."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument(
        "--port", type=_port, default=8787, help="port to bind (default: %(default)s)"
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        help="where the SQLite database, imports/ and exports/ live "
        "(default: the user data directory)",
    )
    serve.add_argument(
        "--workflows",
        nargs="+",
        default=[],
        metavar="MODULE",
        help="serve these Python modules' @endpoint functions (and resources) instead of the "
        f"demo's; name {DEMO} among them to serve the demo too (default: the demo)",
    )
    serve.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default=os.environ.get("STREAMBIND_LOOP") or "auto",
        help="the event loop: uvloop (pip install 'streambind[fast]') or asyncio's own; auto "
        "picks uvloop when it is installed (default: $STREAMBIND_LOOP, else auto)",
    )
    serve.add_argument(
        "--prefix",
        default="",
        type=_path_prefix,
        metavar="PATH",
        help="serve everything under this path (/jobs: /jobs/api/..., /jobs/healthz), as when "
        "mounted in another application or behind a proxy's location (default: /)",
    )
    serve.add_argument(
        "--token",
        default=os.environ.get("STREAMBIND_TOKEN"),
        help="require 'Authorization: Bearer TOKEN' (or ?access_token=) on /api "
        "(default: $STREAMBIND_TOKEN)",
    )
    serve.add_argument(
        "--cors-origin",
        metavar="ORIGIN",
        help="let browser pages from this origin (https://app.example) call the API; "
        "without it no CORS headers are sent",
    )
    serve.add_argument(
        "--max-runs", type=_positive_int, default=64, help="runs at once (default: %(default)s)"
    )
    serve.add_argument(
        "--ping",
        type=_seconds,
        default=15.0,
        metavar="S",
        help="seconds of silence before a ': ping' comment (default: %(default)s)",
    )
    serve.add_argument(
        "--detach-grace",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="seconds a run keeps going after its last follower left (default: %(default)s)",
    )
    serve.add_argument(
        "--max-log-memory",
        type=_positive_int,
        default=256,
        metavar="MIB",
        help="MiB the event logs of finished runs may hold together; beyond it the oldest "
        "are released, keeping their records and results (default: %(default)s)",
    )
    serve.add_argument(
        "--header-timeout",
        type=_seconds,
        default=10.0,
        metavar="S",
        help="seconds a request's headers may take to arrive; a slower connection is "
        "closed (default: %(default)s)",
    )
    serve.add_argument(
        "--keepalive",
        type=_seconds,
        default=75.0,
        metavar="S",
        help="seconds an idle kept-alive connection stays open (default: %(default)s)",
    )
    serve.add_argument(
        "--max-connections",
        type=_positive_int,
        metavar="N",
        help="connections open at once; one more is answered 503 and closed "
        "(default: three quarters of the file descriptor limit)",
    )
    serve.add_argument(
        "--redis",
        metavar="URL",
        default=os.environ.get("STREAMBIND_REDIS") or None,
        help="share runs with every server given the same Redis (redis://, rediss:// or "
        "unix:// URL): any of them lists, follows, resumes and cancels any run "
        "(default: $STREAMBIND_REDIS, else runs stay in this process)",
    )
    serve.add_argument(
        "--redis-prefix",
        default="streambind:",
        metavar="PREFIX",
        help="the prefix of every Redis key, so deployments can share one Redis "
        "(default: %(default)s)",
    )
    serve.add_argument(
        "--drain-timeout",
        type=_seconds,
        default=0.0,
        metavar="S",
        help="on SIGTERM, let running runs finish for up to S seconds while new calls get "
        "503 with Retry-After; then cancel the rest (default: 0, cancel at once)",
    )

    demo = serve.add_argument_group(
        "the demo's options",
        "Options of the demo workflows (import, pipeline, export, ...): refused when the demo "
        "is not served. Their environment variables are read only when it is.",
    )
    demo.add_argument(
        "--database",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="a postgresql:// URL for the demo's tables, shared by every server given the "
        "same URL (default: $STREAMBIND_DATABASE, else the SQLite file in the data directory)",
    )
    demo.add_argument(
        "--database-schema",
        default=argparse.SUPPRESS,
        metavar="NAME",
        help="the PostgreSQL schema for those tables, created on first use (default: public)",
    )
    demo.add_argument(
        "--import-time-limit",
        type=_seconds,
        default=argparse.SUPPRESS,
        metavar="S",
        help="seconds an import may run at most; older staging tables of a crashed "
        "server are dropped at start-up (default: 21600.0)",
    )
    demo.add_argument(
        "--keep-exports",
        type=_positive_int,
        default=argparse.SUPPRESS,
        metavar="N",
        help="finished export files kept in exports/, the newest first (default: 100)",
    )
    demo.add_argument(
        "--keep-exports-for",
        type=_seconds,
        default=argparse.SUPPRESS,
        metavar="S",
        help="seconds a finished export file is kept (default: 604800.0, a week)",
    )

    call = commands.add_parser(
        "call",
        help="run one endpoint and show its progress, without the UI",
        description=(
            "Run one endpoint with a progress bar, then print its result. Exit status: "
            "0 succeeded, 1 failed, 2 usage error (a parameter the server refused "
            "included), 3 cancelled."
        ),
    )
    call.add_argument("name", help="the endpoint to run, such as import")
    call.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter, typed by the endpoint's schema (repeatable)",
    )
    call.add_argument(
        "--no-stream",
        action="store_true",
        help="Handle stream off: wait for the whole response before showing anything",
    )
    _add_json_lines_option(call)
    call.add_argument(
        "--timeout",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="seconds to wait for an answer: a plain request in all, a stream's response "
        "headers (default: %(default)s)",
    )
    call.add_argument(
        "--read-timeout",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="seconds an open stream may send nothing, not even a ping, before it is "
        "resumed (default: %(default)s)",
    )
    _add_connection_options(call)

    runs = commands.add_parser(
        "runs",
        help="list the runs the server keeps, newest first",
        description="Print the server's runs once (GET /api/runs): a table, or JSON lines.",
    )
    runs.add_argument("--json", action="store_true", help="one JSON object per run, per line")
    _add_connection_options(runs)

    follow = commands.add_parser(
        "follow",
        help="replay one run from its start and follow it live",
        description=(
            "Show any run of the server, started by anyone, as call shows its own: replayed "
            "from its first event, then followed live. Exit status: 0 succeeded, 1 failed, "
            "2 usage error (no such run included), 3 cancelled."
        ),
    )
    follow.add_argument("run_id", metavar="RUN_ID", help="the run's id, as `streambind runs` lists")
    _add_json_lines_option(follow)
    _add_connection_options(follow)

    watch = commands.add_parser(
        "watch",
        help="follow any Server-Sent Events URL",
        description=(
            "Follow an SSE URL of any server, as the UI's Watch URL panel does, with call's "
            "display and exit statuses (0 succeeded, 1 failed, 2 usage error, 3 cancelled "
            "or stopped)."
        ),
    )
    watch.add_argument(
        "watch_url", metavar="URL", type=_http_url, help="an http:// or https:// URL"
    )
    watch.add_argument(
        "-X",
        "--request",
        dest="method",
        type=str.upper,
        choices=("GET", "POST", "PUT", "PATCH", "DELETE"),
        help="the method (default: GET, or POST with -d)",
    )
    watch.add_argument("-d", "--data", metavar="JSON", help="a JSON body to send")
    watch.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'Name: value'",
        help="a request header (repeatable)",
    )
    _add_json_lines_option(watch)

    mcp = commands.add_parser(
        "mcp",
        help="offer every endpoint as a tool of the Model Context Protocol (for AI agents)",
        description=(
            "An MCP server whose tools are the server's endpoints: a call runs the endpoint "
            "and reports its progress as MCP progress notifications. Over stdio (what agent "
            "hosts launch), or over Streamable HTTP at http://HOST:PORT/mcp with --http. "
            "Needs the mcp extra: pip install 'streambind[mcp]'."
        ),
    )
    mcp.add_argument(
        "--http",
        type=_host_port,
        metavar="HOST:PORT",
        help="serve Streamable HTTP at http://HOST:PORT/mcp instead of stdio (port 0: a free one)",
    )
    _add_connection_options(mcp)
    return parser


def _add_json_lines_option(parser: argparse.ArgumentParser) -> None:
    """``--json`` as ``call``, ``follow`` and ``watch`` share it."""
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"chunk": ...} per message and a final result line, as JSON lines',
    )


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        type=_http_url,
        default=argparse.SUPPRESS,
        help="a running streambind server (default: start one in this process)",
    )
    parser.add_argument(
        "--token",
        default=argparse.SUPPRESS,
        help="the server's token (default: $STREAMBIND_TOKEN)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=argparse.SUPPRESS,
        help="the embedded server's data directory (default: the user data directory)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        return _output_closed()


def _output_closed() -> int:
    """The reader of our output went away: end quietly, as ``grep`` does."""
    # Python flushes stdout once more on exit; pointing it at /dev/null keeps that flush
    # from printing a second BrokenPipeError.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_OUTPUT_CLOSED


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args, parser)
    if args.command == "call":
        return _with_server(args, _call)
    if args.command == "runs":
        return _with_server(args, _runs)
    if args.command == "follow":
        return _with_server(args, _follow)
    if args.command == "watch":
        return _watch(args)
    if args.command == "mcp":
        return _mcp(args)
    return _with_server(args, _tui)


def _with_server(
    args: argparse.Namespace, command: Callable[[argparse.Namespace, str], int]
) -> int:
    """Run a client command against --url, or against an embedded server started here."""
    url = getattr(args, "url", None)
    args.token = getattr(args, "token", None) or os.environ.get("STREAMBIND_TOKEN")
    if url:
        return command(args, url)
    from streambind.server import ServerConfig

    from .embedded import EmbeddedServer

    data_dir = getattr(args, "data_dir", None)
    config = ServerConfig() if data_dir is None else ServerConfig(data_dir=data_dir)
    args.token = None  # the embedded server needs none: it listens on loopback only
    try:
        server = EmbeddedServer(config)
        embedded_url = server.start()
    except OSError as exc:
        print(f"streambind: cannot start the embedded server: {exc}", file=sys.stderr)
        return 1
    try:
        return command(args, embedded_url)
    finally:
        server.stop()


def _tui(args: argparse.Namespace, url: str) -> int:
    from .tui.app import StreambindApp

    embedded = getattr(args, "url", None) is None
    subtitle = f"embedded server {url}" if embedded else url
    from streambind.server import loops

    app = StreambindApp(url, args.token, subtitle=subtitle, embedded=embedded)
    app.run(loop=loops.new_loop())  # the same rule as serve's: uvloop when installed
    return 0


def _on_chosen_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a client command on the loop ``serve`` would choose: uvloop when installed,
    unless ``$STREAMBIND_LOOP`` says otherwise."""
    from streambind.server import loops

    return loops.run(main)


def _call(args: argparse.Namespace, url: str) -> int:

    from .call_command import run_call
    from .settings import ClientSettings

    try:
        settings = ClientSettings(request_timeout=args.timeout, read_timeout=args.read_timeout)
    except ValueError as exc:
        print(f"streambind call: {exc}", file=sys.stderr)
        return 2
    return _on_chosen_loop(
        run_call(
            url,
            args.name,
            args.param,
            token=args.token,
            handle_stream=not args.no_stream,
            as_json=args.json,
            settings=settings,
        )
    )


def _runs(args: argparse.Namespace, url: str) -> int:

    from .follow_command import run_runs

    return _on_chosen_loop(run_runs(url, token=args.token, as_json=args.json))


def _follow(args: argparse.Namespace, url: str) -> int:

    from .follow_command import run_follow

    return _on_chosen_loop(run_follow(url, args.run_id, token=args.token, as_json=args.json))


def _watch(args: argparse.Namespace) -> int:

    from .follow_command import run_watch

    return _on_chosen_loop(
        run_watch(
            args.watch_url,
            method=args.method,
            data=args.data,
            headers=args.header,
            as_json=args.json,
        )
    )


def _mcp(args: argparse.Namespace) -> int:
    # The SDK is an extra: checked before an embedded server is started for nothing.
    try:
        from .mcp.command import run_mcp
    except ImportError as exc:
        print(
            f"streambind mcp: the MCP SDK is not installed ({exc}): pip install 'streambind[mcp]'",
            file=sys.stderr,
        )
        return 2
    return _with_server(
        args, lambda args, url: run_mcp(url, args.token, http=args.http, run=_on_chosen_loop)
    )


def exposure_warning(host: str, token: str | None) -> str | None:
    """A warning when the server would be reachable from other machines without a token."""
    if token or is_loopback(host):
        return None
    return (
        f"streambind: WARNING: listening on {host} without --token: anyone who can reach "
        "this address can start and cancel runs."
    )


def _serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from streambind.server import Registry, ServerConfig, run_server

    for flag, value in (
        ("--ping", args.ping),
        ("--header-timeout", args.header_timeout),
        ("--keepalive", args.keepalive),
        ("--keep-exports-for", getattr(args, "keep_exports_for", 1.0)),
    ):
        if value <= 0:
            parser.error(f"{flag} must be more than 0 seconds")
    modules = list(args.workflows) or [DEMO]
    given = [flag for key, flag in _DEMO_OPTIONS.items() if hasattr(args, key)]
    if given and DEMO not in modules:
        parser.error(
            f"{given[0]} is an option of the demo workflows, which are not served here "
            f"(add {DEMO} to --workflows to serve them too)"
        )
    # `--workflows mypkg.flows` should find a package in the current directory,
    # as `python -m` would; appended so it never shadows installed packages.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        demo_settings = _demo_settings(args) if DEMO in modules else None
    except ValueError as exc:
        print(f"streambind: {exc}", file=sys.stderr)
        return 2
    registry = Registry()
    try:
        for module in modules:
            registry.add_module(module, demo_settings if module == DEMO else None)
    except ImportError as exc:
        print(f"streambind: cannot import workflows module: {exc}", file=sys.stderr)
        return 2
    except (TypeError, ValueError) as exc:
        print(f"streambind: invalid workflow: {exc}", file=sys.stderr)
        return 2
    if warning := exposure_warning(args.host, args.token):
        print(warning, file=sys.stderr)
    config_kwargs = {} if args.data_dir is None else {"data_dir": args.data_dir}
    try:
        config = ServerConfig(
            token=args.token or None,
            cors_origin=args.cors_origin,
            max_runs=args.max_runs,
            ping_interval=args.ping,
            detach_grace=args.detach_grace,
            header_timeout=args.header_timeout,
            keepalive=args.keepalive,
            max_connections=args.max_connections,
            max_log_memory=args.max_log_memory * 1024 * 1024,
            redis_url=args.redis,
            redis_prefix=args.redis_prefix,
            drain_timeout=args.drain_timeout,
            **config_kwargs,
        )
    except ValueError as exc:
        print(f"streambind: {exc}", file=sys.stderr)
        return 2
    from streambind.server import loops

    try:
        loops.resolve(args.loop)
    except ValueError as exc:
        parser.error(f"--loop {args.loop}: {exc}")
    return run_server(config, registry, args.host, args.port, prefix=args.prefix, loop=args.loop)


def _demo_settings(args: argparse.Namespace) -> Any:
    """The demo's settings from its options, else their environment variables, else the
    defaults. Raises ValueError for a value it refuses."""
    from streambind.server.demo import DemoSettings

    chosen: dict[str, Any] = {}
    database = getattr(args, "database", None) or os.environ.get("STREAMBIND_DATABASE") or None
    if database is not None:
        chosen["database_url"] = database
    if hasattr(args, "database_schema"):
        chosen["database_schema"] = args.database_schema
    if hasattr(args, "import_time_limit"):
        chosen["import_time_limit"] = args.import_time_limit
    if hasattr(args, "keep_exports"):
        chosen["keep_exports"] = args.keep_exports
    if hasattr(args, "keep_exports_for"):
        chosen["keep_exports_seconds"] = args.keep_exports_for
    return DemoSettings(**chosen)


if __name__ == "__main__":
    raise SystemExit(main())
