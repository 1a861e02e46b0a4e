"""``customerio-mcp token``, and every command a text suggests for making a secret, on a machine without ``python``.

Debian and macOS ship ``python3`` only, so each suggested command runs here with a ``PATH`` of
symlinks that holds ``python3`` and the server's command, and no ``python``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import command, free_port, server_env

ROOT = Path(__file__).resolve().parent.parent
TOKEN_LINE = 'export CUSTOMERIO_MCP_AUTH_TOKEN=$(customerio-mcp token); echo "$CUSTOMERIO_MCP_AUTH_TOKEN"'
"""The README's token one-liner (notes/first-run.md): sets the variable and shows what the client must send."""


@pytest.fixture
def python3_only(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has python3 and customerio-mcp, and no python."""
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "python3").symlink_to(sys.executable)
    (tools / "customerio-mcp").symlink_to(command())
    assert shutil.which("python", path=str(tools)) is None
    return {**server_env(None), "PATH": str(tools)}


def shell(line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", "-c", line], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_token_prints_one_fresh_secret_and_nothing_else(python3_only: dict[str, str]) -> None:
    first, second = (shell("customerio-mcp token", python3_only) for _ in range(2))
    assert first.returncode == 0
    assert first.stderr == ""
    token = first.stdout.removesuffix("\n")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # 32 random bytes, URL-safe base64
    assert token != second.stdout.removesuffix("\n")


def test_token_needs_no_settings(tmp_path: Path, python3_only: dict[str, str]) -> None:
    (tmp_path / ".env").write_text("CUSTOMERIO_TIMEOUT=soon\nCUSTOMERIO_DRYRUN=true\n")  # would stop serve
    done = subprocess.run(
        [command(), "token"], env=python3_only, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_the_documented_line_sets_the_token_and_shows_it(python3_only: dict[str, str]) -> None:
    done = shell(f'{TOKEN_LINE}; echo "set: $CUSTOMERIO_MCP_AUTH_TOKEN"', python3_only)
    assert done.returncode == 0, done.stderr
    shown, confirmed = done.stdout.splitlines()
    assert len(shown) >= 32
    assert confirmed == f"set: {shown}"


@pytest.mark.parametrize("document", ["README.md", "deploy/docker-compose.yml"])
def test_the_token_lines_people_copy_run_with_python3(python3_only: dict[str, str], document: str) -> None:
    lines = [
        line.removeprefix("#").strip()
        for line in (ROOT / document).read_text(encoding="utf-8").splitlines()
        if line.removeprefix("#").strip().startswith("export CUSTOMERIO_MCP_AUTH_TOKEN=")
    ]
    assert lines
    for line in lines:
        done = shell(f'{line}\necho "$CUSTOMERIO_MCP_AUTH_TOKEN"', python3_only)
        assert done.returncode == 0, done.stderr
        assert len(done.stdout.strip()) >= 32


def suggested_command(refusal: str) -> str:
    found = re.search(r"(?:[Gg]enerate (?:one|each) with): ([^;\n]+?)(?:;|$|\n)", refusal)
    assert found, refusal
    return found.group(1).strip()


@pytest.mark.parametrize(
    "variables",
    [
        {"CUSTOMERIO_MCP_AUTH_TOKEN": "hunter2"},
        {},
        {"CUSTOMERIO_MCP_AUTH_TOKEN": "x" * 40, "CUSTOMERIO_MCP_STATE_KEYS": "short"},
    ],
)
def test_what_a_refusal_suggests_runs_and_makes_a_secret_the_server_takes(
    python3_only: dict[str, str], variables: dict[str, str]
) -> None:
    env = server_env(None, CUSTOMERIO_MCP_TRANSPORT="streamable-http", CUSTOMERIO_MCP_HOST="0.0.0.0",
                     CUSTOMERIO_MCP_PORT=str(free_port()), **variables)  # fmt: skip
    refused = subprocess.run([command(), "check"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0
    suggested = suggested_command(refused.stdout + refused.stderr)
    made = shell(suggested, python3_only)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    fixed = {name: secret for name in variables} or {"CUSTOMERIO_MCP_AUTH_TOKEN": secret}
    accepted = subprocess.run(
        [command(), "check", "--dry-run"], env={**env, **fixed}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert "refusing" not in accepted.stdout + accepted.stderr
    assert "shorter than 32 bytes" not in accepted.stdout + accepted.stderr
    assert os.path.basename(suggested.split()[0]) == "customerio-mcp"


def test_help_names_the_command() -> None:
    done = subprocess.run([command(), "--help"], capture_output=True, text=True, timeout=60, check=True)
    assert "customerio-mcp token          print a new random token" in done.stdout
