"""What the server refuses to serve, and why: weak tokens on public addresses, incomplete OAuth."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from customerio_mcp.serving.startup_rules import RANDOM_STRING_COMMAND, startup_refusals
from customerio_mcp.settings import Settings
from tests.processes import command, server_env

STRONG = "k" * 32
OAUTH = {"mcp_oauth_issuer": "https://login.example.com/", "mcp_public_url": "https://mcp.example.com/mcp"}


def refusals(allow_unauthenticated: bool = False, **values: Any) -> list[str]:
    values.setdefault("mcp_transport", "streamable-http")
    return startup_refusals(Settings(**values), allow_unauthenticated)


@pytest.mark.parametrize(
    "values",
    [
        {"mcp_transport": "stdio", "mcp_host": "0.0.0.0", "mcp_auth_token": "short"},
        {"mcp_host": "127.0.0.1"},
        {"mcp_host": "127.0.0.1", "mcp_auth_token": "short"},
        {"mcp_host": "0.0.0.0", "mcp_auth_token": STRONG},
        {"mcp_host": "0.0.0.0", **OAUTH},
        {"mcp_host": "0.0.0.0", "mcp_auth_token": STRONG, **OAUTH},
        {"mcp_host": "127.0.0.1", "mcp_oauth_issuer": "http://127.0.0.1:9000", "mcp_public_url": "http://x/mcp"},
        {
            **OAUTH,
            "mcp_oauth_introspection_url": "https://login.example.com/introspect",
            "mcp_oauth_client_id": "customerio-mcp",
            "mcp_oauth_client_secret": "secret",
        },
    ],
)
def test_sound_configurations_are_served(values: dict[str, Any]) -> None:
    assert refusals(**values) == []


@pytest.mark.parametrize(("token", "said"), [("short-token", "11 characters long"), ("   \t ", "only whitespace")])
def test_public_bind_refuses_a_weak_static_token_and_says_how_to_make_one(token: str, said: str) -> None:
    for extra in ({}, OAUTH):  # OAuth does not make a guessable token acceptable
        [refusal] = refusals(mcp_host="0.0.0.0", mcp_auth_token=token, **extra)
        assert said in refusal
        assert "at least 32 characters" in refusal
        assert RANDOM_STRING_COMMAND in refusal
        assert token not in refusal  # a secret, even a weak one, is not repeated


def test_public_bind_without_any_authentication_is_refused_unless_allowed() -> None:
    [refusal] = refusals(mcp_host="0.0.0.0")
    for hint in ("CUSTOMERIO_MCP_AUTH_TOKEN", RANDOM_STRING_COMMAND, "CUSTOMERIO_MCP_OAUTH_ISSUER", "127.0.0.1"):
        assert hint in refusal
    assert refusals(True, mcp_host="0.0.0.0") == []


@pytest.mark.parametrize(
    ("values", "said"),
    [
        ({"mcp_oauth_issuer": "https://login.example.com/"}, "CUSTOMERIO_MCP_PUBLIC_URL is missing"),
        (
            {"mcp_oauth_audience": "api://customerio", "mcp_oauth_scopes": "a b"},
            "CUSTOMERIO_MCP_OAUTH_AUDIENCE, CUSTOMERIO_MCP_OAUTH_SCOPES set but CUSTOMERIO_MCP_OAUTH_ISSUER is not",
        ),
        ({**OAUTH, "mcp_oauth_issuer": "http://login.example.com/"}, "CUSTOMERIO_MCP_OAUTH_ISSUER must be an https://"),
        (
            {**OAUTH, "mcp_oauth_introspection_url": "https://login.example.com/introspect"},
            "CUSTOMERIO_MCP_OAUTH_CLIENT_ID and CUSTOMERIO_MCP_OAUTH_CLIENT_SECRET are not both set",
        ),
        ({**OAUTH, "mcp_oauth_client_id": "x"}, "set CUSTOMERIO_MCP_OAUTH_INTROSPECTION_URL too"),
    ],
)
def test_incomplete_oauth_is_refused_saying_what_to_set(values: dict[str, Any], said: str) -> None:
    [refusal] = refusals(**values)
    assert said in refusal


def test_every_refusal_is_reported_at_once() -> None:
    found = refusals(mcp_host="0.0.0.0", mcp_auth_token="short", mcp_oauth_issuer="https://login.example.com/")
    assert len(found) == 2


@pytest.mark.parametrize("transport", ["sse", "streamable-http"])
def test_the_command_refuses_a_short_token_on_a_public_address(transport: str) -> None:
    env = server_env(
        None, CUSTOMERIO_MCP_TRANSPORT=transport, CUSTOMERIO_MCP_HOST="0.0.0.0", CUSTOMERIO_MCP_AUTH_TOKEN="hunter2"
    )
    done = subprocess.run([command()], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert RANDOM_STRING_COMMAND in done.stderr
    assert "hunter2" not in done.stderr
    assert done.stdout == ""


def test_the_command_refuses_oauth_without_a_public_url() -> None:
    env = server_env(
        None, CUSTOMERIO_MCP_TRANSPORT="streamable-http", CUSTOMERIO_MCP_OAUTH_ISSUER="https://login.example.com/"
    )
    done = subprocess.run([command()], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "CUSTOMERIO_MCP_PUBLIC_URL is missing" in done.stderr
