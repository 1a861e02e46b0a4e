"""How people install and start it: the Dockerfile's steps replayed without Docker, and uvx."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import httpx2
import pytest

from tests.fake_customerio import FakeCustomerIO
from tests.processes import TOKEN, Running, free_port, server_env, wait_healthy

ROOT = Path(__file__).resolve().parent.parent


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n\s*", " ", text)
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_has_what_a_container_needs() -> None:
    instructions = dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    base = dict(instructions)["FROM"]
    assert re.fullmatch(r"python:3\.\d+-slim", base)
    assert "EXPOSE" in keywords
    assert dict(instructions)["EXPOSE"] == "8000"
    user = [rest for keyword, rest in instructions if keyword == "USER"]
    assert user
    assert user[-1] not in ("root", "0")
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    assert "/healthz" in dict(instructions)["HEALTHCHECK"]
    assert (ROOT / ".dockerignore").is_file()


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], list[str], list[str]]:
    """The image, replayed: COPY into a folder, RUN pip in a fresh virtual environment, ENV and CMD."""
    root = tmp_path_factory.mktemp("image")
    environment = root / "venv"
    venv.create(environment, with_pip=True)
    bin_dir = environment / "bin"
    workdir = root
    env: dict[str, str] = {}
    cmd: list[str] = []
    healthcheck: list[str] = []
    for keyword, rest in dockerfile_instructions():
        if keyword == "WORKDIR":
            workdir = root / rest.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            *sources, target = shlex.split(rest)
            for source in sources:
                origin = ROOT / source
                destination = workdir / target if target not in ("./", ".") else workdir
                if origin.is_dir():
                    shutil.copytree(origin, destination, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(origin, destination / origin.name if target.endswith("/") else destination)
        elif keyword == "RUN" and rest.startswith("pip "):
            subprocess.run(
                [str(bin_dir / "python"), "-m", *shlex.split(rest)], cwd=workdir, check=True, capture_output=True
            )
        elif keyword == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(rest)))
        elif keyword == "CMD":
            cmd = json.loads(rest)
        elif keyword == "HEALTHCHECK":
            healthcheck = json.loads(rest.split("CMD", 1)[1])
    return bin_dir, env, cmd, healthcheck


def image_env(bin_dir: Path, dockerfile_env: dict[str, str], **extra: str) -> dict[str, str]:
    env = server_env(None) | dockerfile_env | extra
    env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    return env


def test_default_command_serves_sse_and_healthz(
    image: tuple[Path, dict[str, str], list[str], list[str]], fake: FakeCustomerIO
) -> None:
    bin_dir, dockerfile_env, cmd, healthcheck = image
    assert dockerfile_env["CUSTOMERIO_MCP_TRANSPORT"] == "sse"
    assert dockerfile_env["CUSTOMERIO_MCP_HOST"] == "0.0.0.0"
    port = free_port()  # the port stays overridable by environment
    env = image_env(
        bin_dir,
        dockerfile_env,
        CUSTOMERIO_MCP_PORT=str(port),
        CUSTOMERIO_MCP_AUTH_TOKEN=TOKEN,
        CUSTOMERIO_SITE_ID=fake.site_id,
        CUSTOMERIO_API_KEY=fake.api_key,
    )
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    server = Running(proc, f"http://127.0.0.1:{port}")
    try:
        wait_healthy(server.url, proc)
        assert httpx2.get(server.url + "/healthz", timeout=5).json() == {"status": "ok"}
        with httpx2.stream(
            "GET", server.url + "/sse", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        ) as stream:
            assert stream.status_code == 200
            first = next(stream.iter_lines())
        assert first == "event: endpoint"
        assert httpx2.get(server.url + "/sse", timeout=5).status_code == 401
        probe = subprocess.run(healthcheck, env=env, capture_output=True, timeout=30, check=False)
        assert probe.returncode == 0, probe.stderr
    finally:
        code, _ = server.stop()
    assert code == 0


def test_default_command_without_token_says_what_to_set(
    image: tuple[Path, dict[str, str], list[str], list[str]],
) -> None:
    bin_dir, dockerfile_env, cmd, _ = image
    env = image_env(bin_dir, dockerfile_env, CUSTOMERIO_MCP_PORT=str(free_port()))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "CUSTOMERIO_MCP_AUTH_TOKEN" in done.stderr


def test_uvx_from_a_checkout(tmp_path: Path) -> None:
    uvx = shutil.which("uvx", path=str(Path(sys.executable).parent)) or shutil.which("uvx")
    assert uvx, "uv is a test dependency: pip install -e '.[test]'"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMERIO_")}
    env["UV_CACHE_DIR"] = str(tmp_path / "uv-cache")
    done = subprocess.run(
        [uvx, "--from", str(ROOT), "customerio-mcp", "--help"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "CUSTOMERIO_MCP_AUTH_TOKEN" in done.stdout
