"""The shipped nginx config runs as a normal user with the documented command, and writes
only under its prefix: no /run/nginx.pid, no /var/log/nginx."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from deployment import DEPLOY, nginx_arguments, nginx_binary
from docblocks import commands, example, streambind_arguments

from streambind.app.cli import build_parser

ROOT = Path(__file__).parent.parent
DOCUMENTED = "nginx -p \"$PWD/deploy\" -c nginx.conf -e stderr -g 'daemon off;'"


def _as_normal_user() -> dict[str, object]:
    """subprocess arguments that run a command as ``nobody`` when the tests run as root."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


def test_the_documented_command_is_the_one_in_the_config_and_the_deployment_page() -> None:
    assert DOCUMENTED in DEPLOY.read_text()
    lines = commands(example("deploy-redis-nginx"))
    assert f"{DOCUMENTED} &" in lines
    assert nginx_arguments(Path("/p")) == ("-p", "/p", "-c", "nginx.conf", "-e", "stderr")


def test_the_pages_nodes_are_the_configs_upstreams_on_one_redis() -> None:
    lines = commands(example("deploy-redis-nginx"))
    config = DEPLOY.read_text()
    upstreams = re.findall(r"^\s*server 127\.0\.0\.1:(\d+)", config, re.MULTILINE)
    serves = [streambind_arguments(line) for line in lines]
    ports = []
    for serve in filter(None, serves):
        build_parser().parse_args(serve)
        ports.append(serve[serve.index("--port") + 1])
    assert ports == upstreams
    [redis] = [line for line in lines if line.startswith("redis-server ")]
    port = redis.split()[redis.split().index("--port") + 1]
    assert f"export STREAMBIND_REDIS=redis://127.0.0.1:{port}" in lines
    # The address clients use, said in the page's comment, is where nginx listens.
    [listen] = re.findall(r"^\s*listen 127\.0\.0\.1:(\d+);", config, re.MULTILINE)
    assert f"clients use :{listen}" in example("deploy-redis-nginx")


def test_nginx_runs_the_config_as_a_normal_user_writing_only_under_its_prefix() -> None:
    nginx = nginx_binary()
    # Not pytest's tmp_path: its parents are private to the user running the tests.
    with tempfile.TemporaryDirectory() as place:
        _check_under(nginx, Path(place))


def _check_under(nginx: str, place: Path) -> None:
    place.chmod(0o755)
    prefix = place / "deploy"
    prefix.mkdir()
    shutil.copy(DEPLOY, prefix / "nginx.conf")
    user = _as_normal_user()
    if user:
        os.chown(prefix, user["user"], user["group"])  # type: ignore[arg-type]
        (prefix / "nginx.conf").chmod(0o644)
    checked = subprocess.run(
        [nginx, *nginx_arguments(prefix), "-t"],
        capture_output=True, text=True, timeout=60, check=False, **user,  # type: ignore[call-overload]
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr
    assert "/run/nginx.pid" not in checked.stderr
    assert "/var/log/nginx" not in checked.stderr
    written = {path.name for path in prefix.iterdir()}
    assert written <= {"nginx.conf", "nginx-error.log", "nginx-access.log", "nginx.pid",
                       "temp-client-body", "temp-proxy"}  # fmt: skip
    # Every file the config names is relative, so under the prefix.
    for directive in re.findall(r"^\s*(?:pid|error_log|access_log|\w+_temp_path)\s+(\S+)",
                                DEPLOY.read_text(), re.MULTILINE):  # fmt: skip
        assert not directive.startswith("/"), directive
