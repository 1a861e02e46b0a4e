"""What start-up leaves for later: the HTTP client to Customer.io is made on the first call that needs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fake_customerio import FakeCustomerIO
from tests.processes import INITIALIZE, INITIALIZED, StdioPeer, command, server_env


def _call(request_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    params = {"name": name, "arguments": arguments}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def test_start_imports_no_http_client_or_http_transport(tmp_path: Path) -> None:
    """Up to the initialize answer, stdio needs neither the HTTP transports nor the HTTP client to Customer.io."""
    requests = tmp_path / "in.jsonl"
    requests.write_text(json.dumps(INITIALIZE) + "\n")
    with requests.open("rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "customerio_mcp"],
            stdin=stdin,
            capture_output=True,
            env=server_env(None, CUSTOMERIO_SITE_ID="site", CUSTOMERIO_API_KEY="key"),
            timeout=60,
        )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.decode().splitlines() if "import time:" in line}
    assert "customerio_mcp.serving.stdio_pipes" in imported
    made_on_first_call = {"httpcore2", "h11", "truststore"}
    http_only = {name for name in imported if name.startswith("customerio_mcp.serving.") and "http" in name}
    assert not imported & made_on_first_call
    assert not http_only | (imported & {"customerio_mcp.serving.oauth", "jwt", "redis", "uvicorn.protocols"})


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("SSL_CERT_FILE", "/nonexistent/ca-bundle.pem", "SSL_CERT_FILE"),
        ("HTTPS_PROXY", "http://[::1", "HTTPS_PROXY"),  # httpx2.InvalidURL, no OSError
    ],
)
def test_an_http_client_that_cannot_be_made_fails_the_call_not_the_start(
    fake: FakeCustomerIO, variable: str, value: str, named: str
) -> None:
    env = server_env(fake, CUSTOMERIO_LOG_LEVEL="WARNING", **{variable: value})
    peer = StdioPeer([command()], env)
    try:
        peer.send(INITIALIZE, INITIALIZED)
        assert peer.wait()[0][1]["result"]["serverInfo"]["name"] == "customerio-mcp"
        body = {"name": "signed_up", "anonymous_id": "a1"}
        peer.send(_call(2, "track_anonymous_event", {"request_body": body}))
        result = peer.wait()[0][1]["result"]
        assert result["isError"] is True
        text = result["content"][0]["text"]
        assert named in text, text
        assert "internal error" not in text
        assert "Nothing was sent" in text
        peer.send({"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
        assert len(peer.wait()[0][1]["result"]["tools"]) == 24  # still serving
    finally:
        peer.close()
    assert fake.requests == []
