"""How people install and start it: the Dockerfile's steps replayed without Docker.

The README's own command, ``uvx`` from a checkout, is run by ``test_first_run.py``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest

from tests.fake_customerio import FakeCustomerIO
from tests.processes import INITIALIZE, INITIALIZED, TOKEN, Running, free_port, server_env, wait_healthy
from tests.test_http_transports import mcp_client

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


def dockerfile_labels() -> dict[str, str]:
    labels: dict[str, str] = {}
    for keyword, rest in dockerfile_instructions():
        if keyword == "LABEL":
            labels.update(dict(pair.split("=", 1) for pair in shlex.split(rest)))
    return labels


def test_dockerfile_has_what_a_container_needs() -> None:
    instructions = dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    base = dict(instructions)["FROM"]
    # An exact Python version, and the digest that pins it even if the tag is pushed again.
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-[a-z]+@sha256:[0-9a-f]{64}", base)
    installs = [rest for keyword, rest in instructions if keyword == "RUN" and rest.startswith("pip ")]
    # Every dependency comes pinned from the lock file; the project itself adds none of its own.
    assert installs == ["pip install --no-deps -r requirements.lock", "pip install --no-deps ."]
    assert "EXPOSE" in keywords
    assert dict(instructions)["EXPOSE"] == "8000 8001"  # MCP, and the health port
    # The audit trail goes to a volume, writable under --read-only, in a directory the image's user owns.
    env = dict(pair.split("=", 1) for keyword, rest in instructions if keyword == "ENV" for pair in shlex.split(rest))
    audit_directory = str(Path(env["CUSTOMERIO_AUDIT"].removeprefix("file:")).parent)
    assert json.loads(dict(instructions)["VOLUME"]) == [audit_directory]
    assert any(f"-o mcp -g mcp -m 0700 {audit_directory}" in rest for keyword, rest in instructions if keyword == "RUN")
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
    assert dockerfile_env["CUSTOMERIO_MCP_HEALTH_PORT"] == "8001"
    port, health_port = free_port(), free_port()  # the ports stay overridable by environment
    env = image_env(
        bin_dir,
        dockerfile_env,
        CUSTOMERIO_MCP_PORT=str(port),
        CUSTOMERIO_MCP_HEALTH_PORT=str(health_port),
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
        assert httpx2.get(f"http://127.0.0.1:{health_port}/healthz", timeout=5).json() == {"status": "ok"}
        probe = subprocess.run(healthcheck, env=env, capture_output=True, timeout=30, check=False)
        assert probe.returncode == 0, probe.stderr
        elsewhere = env | {"CUSTOMERIO_MCP_HEALTH_PORT": str(free_port())}  # the probe asks the health port
        assert subprocess.run(healthcheck, env=elsewhere, capture_output=True, timeout=30, check=False).returncode
    finally:
        code, _ = server.stop()
    assert code == 0


def tree_state(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``root`` with its mode, size and modification time."""
    state = {}
    for path in root.rglob("*"):
        info = path.lstat()
        state[str(path.relative_to(root))] = (info.st_mode, info.st_size, info.st_mtime_ns)
    return state


@contextmanager
def read_only(root: Path) -> Iterator[None]:
    """Take the write bits off every file and directory under ``root`` (docker run --read-only), then restore.

    A non-root user (as in the image, and on CI runners) then cannot write there at all; as root,
    the comparison of the tree before and after still catches any write.
    """
    modes = {path: path.lstat().st_mode for path in [root, *root.rglob("*")] if not path.is_symlink()}
    for path, mode in modes.items():
        path.chmod(mode & ~0o222)
    try:
        yield
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


def run_in(workdir: Path, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=workdir, capture_output=True, text=True, timeout=60, check=False)


@contextmanager
def serving_in(workdir: Path, argv: list[str], env: dict[str, str], port: int) -> Iterator[Running]:
    proc = subprocess.Popen(argv, env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    server = Running(proc, f"http://127.0.0.1:{port}")
    try:
        wait_healthy(server.url, proc)
        yield server
    finally:
        if proc.poll() is None:
            server.stop()


async def test_the_image_runs_with_a_read_only_root_filesystem(
    image: tuple[Path, dict[str, str], list[str], list[str]], fake: FakeCustomerIO, tmp_path: Path
) -> None:
    bin_dir, dockerfile_env, cmd, _ = image
    root = bin_dir.parent.parent
    workdir = root / next(rest for keyword, rest in dockerfile_instructions() if keyword == "WORKDIR").lstrip("/")
    scratch = tmp_path / "tmpfs"  # what --tmpfs would give; HOME and TMPDIR point there
    scratch.mkdir()
    volume = tmp_path / "volume"  # what Docker mounts on the image's VOLUME, the audit trail's directory
    volume.mkdir()
    port = free_port()
    env = image_env(
        bin_dir,
        dockerfile_env,
        CUSTOMERIO_MCP_PORT=str(port),
        CUSTOMERIO_MCP_AUTH_TOKEN=TOKEN,
        CUSTOMERIO_SITE_ID=fake.site_id,
        CUSTOMERIO_API_KEY=fake.api_key,
        CUSTOMERIO_TRACK_URL=fake.url,
        HOME=str(scratch),
        TMPDIR=str(scratch),
        CUSTOMERIO_AUDIT=f"file:{volume / Path(dockerfile_env['CUSTOMERIO_AUDIT']).name}",
    )
    before = tree_state(root)
    with read_only(root):
        check = run_in(workdir, [*cmd, "check", "--toolsets", "track"], env)
        with serving_in(workdir, cmd, env, port) as server:
            async with mcp_client("sse", server.url) as client:
                tools = await client.list_tools()
                result = await client.call_tool("delete_customer", {"customer_identifier": "7"})
            code, stderr = server.stop()
    assert check.returncode == 0, check.stdout + check.stderr
    assert len(tools.tools) == 24
    assert not result.is_error, result.content[0].text
    assert code == 0, stderr
    assert tree_state(root) == before, "something wrote into the image's tree"
    [record] = [json.loads(line) for line in (volume / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert (record["tool"], record["outcome"]) == ("delete_customer", "applied")


def test_the_image_over_stdio_as_its_registry_entry_starts_it(
    image: tuple[Path, dict[str, str], list[str], list[str]],
) -> None:
    bin_dir, dockerfile_env, cmd, _ = image
    server = json.loads((ROOT / "server.json").read_text(encoding="utf-8"))
    oci = next(package for package in server["packages"] if package["registryType"] == "oci")
    fixed = {variable["name"]: variable["value"] for variable in oci["environmentVariables"] if "value" in variable}
    assert oci["transport"] == {"type": "stdio"}
    messages = [INITIALIZE, INITIALIZED, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}]
    proc = subprocess.Popen(
        cmd,
        env=image_env(bin_dir, dockerfile_env, **fixed),  # no token: stdio needs none
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
    proc.stdin.flush()
    answers = [json.loads(proc.stdout.readline()) for _ in range(2)]
    proc.stdin.close()
    proc.wait(timeout=30)
    assert answers[0]["result"]["serverInfo"]["name"] == "customerio-mcp"
    assert len(answers[1]["result"]["tools"]) == 24
    assert proc.returncode == 0


def test_default_command_without_token_says_what_to_set(
    image: tuple[Path, dict[str, str], list[str], list[str]],
) -> None:
    bin_dir, dockerfile_env, cmd, _ = image
    env = image_env(bin_dir, dockerfile_env, CUSTOMERIO_MCP_PORT=str(free_port()))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "CUSTOMERIO_MCP_AUTH_TOKEN" in done.stderr
