"""OAuth 2.1 end to end: a real authorization server (oidc-provider), the real server, the SDK client.

Both HTTP transports, each run once for the module with OAuth, introspection, a required scope
and a static token configured together; tests that rotate keys run their own provider and server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import RSAAlgorithm

from customerio_mcp.serving.log_hygiene import BURST, REFILL_SECONDS
from customerio_mcp.serving.oauth import token_scopes
from customerio_mcp.serving.oauth_issuer import metadata_urls
from customerio_mcp.tools.selection import DESTRUCTIVE_ONLY
from tests.fake_customerio import FakeCustomerIO
from tests.oauth_server import (
    DESTRUCTIVE,
    MCP_CLIENT_ID,
    MCP_CLIENT_SECRET,
    USE,
    AuthorizationServer,
    McpServer,
    authorization_server_fixture,  # noqa: F401  (the authorization_server fixture)
    oauth_mcp_server,
    provider_prefix_fixture,  # noqa: F401  (the provider_prefix fixture)
    run_authorization_server,
)
from tests.processes import INITIALIZE
from tests.test_http_transports import MCP_HEADERS, mcp_client

TRANSPORTS = ["sse", "streamable-http"]
STATIC_TOKEN = "operator-static-token-0123456789abcdefghij"
ALL_TOOLS = 24
DESTRUCTIVE_ONLY_TOOLS = len(DESTRUCTIVE_ONLY)  # the tools whose only purpose destroys
NARROWED = "the access token lacks the customerio:destructive scope"


@dataclass
class Served:
    transport: str
    server: McpServer
    issuer: str
    audit: Path | None = None
    """The server's audit trail, when the test reads it."""

    @property
    def endpoint(self) -> tuple[str, str]:
        return ("GET", "/sse") if self.transport == "sse" else ("POST", "/mcp")

    def metadata_url(self) -> str:
        path = "/sse" if self.transport == "sse" else "/mcp"
        return f"{self.server.url}/.well-known/oauth-protected-resource{path}"

    def raw(self, authorization: str | None, path: str | None = None) -> httpx2.Response:
        """One bare request to the MCP endpoint (or ``path``), read in full unless it opens a stream."""
        method, endpoint = self.endpoint if path is None else ("POST", path)
        headers = dict(MCP_HEADERS)
        if authorization is not None:
            headers["Authorization"] = authorization
        with httpx2.stream(
            method, self.server.url + endpoint, headers=headers, json=INITIALIZE, timeout=10
        ) as response:
            if response.status_code == 200 and method == "GET":
                return response  # an SSE stream: its status says enough
            response.read()
            return response


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[FakeCustomerIO]:
    with FakeCustomerIO() as server:
        yield server


@pytest.fixture(scope="module", params=TRANSPORTS)
def served(
    request: pytest.FixtureRequest,
    authorization_server: AuthorizationServer,
    shared_fake: FakeCustomerIO,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("mcp")
    with oauth_mcp_server(
        shared_fake,
        request.param,
        authorization_server.issuer,
        workdir,
        CUSTOMERIO_MCP_OAUTH_SCOPES=USE,
        CUSTOMERIO_MCP_AUTH_TOKEN=STATIC_TOKEN,
        CUSTOMERIO_MCP_OAUTH_INTROSPECTION_URL=authorization_server.issuer + "/token/introspection",
        CUSTOMERIO_MCP_OAUTH_CLIENT_ID=MCP_CLIENT_ID,
        CUSTOMERIO_MCP_OAUTH_CLIENT_SECRET=MCP_CLIENT_SECRET,
        CUSTOMERIO_AUDIT=f"file:{workdir / 'audit.jsonl'}",
    ) as server:
        yield Served(request.param, server, authorization_server.issuer, workdir / "audit.jsonl")


def unique_id() -> str:
    return f"person-{uuid.uuid4().hex[:12]}"


def sent_for(fake: FakeCustomerIO, identifier: str) -> list[Any]:
    return [request for request in fake.requests if identifier in request.raw_path]


def test_metadata_names_this_resource_its_issuer_and_scopes(served: Served) -> None:
    expected = {
        "resource": served.server.public_url,
        "authorization_servers": [served.issuer],
        "scopes_supported": [USE, DESTRUCTIVE],
        "bearer_methods_supported": ["header"],
        "resource_name": "Customer.io (customerio-mcp)",
    }
    for url in (served.server.url + "/.well-known/oauth-protected-resource", served.metadata_url()):
        answer = httpx2.get(url, timeout=10)
        assert answer.status_code == 200, url
        assert answer.json() == expected, url


@pytest.mark.parametrize(
    "authorization", [None, "Bearer not-a-token", f"Bearer {STATIC_TOKEN}x", f"Basic {STATIC_TOKEN}", "Bearer"]
)
def test_missing_or_invalid_token_gets_the_rfc9728_challenge(
    served: Served, shared_fake: FakeCustomerIO, authorization: str | None
) -> None:
    before = len(shared_fake.requests)
    for answer in (served.raw(authorization), served.raw(authorization, "/messages/?session_id=x")):
        assert answer.status_code == 401
        challenge = answer.headers["www-authenticate"]
        assert challenge.startswith("Bearer ")
        assert f'resource_metadata="{served.metadata_url()}"' in challenge
        assert answer.json()["error"] == "invalid_token"
    assert len(shared_fake.requests) == before


async def test_token_with_the_destructive_scope_lists_and_calls_everything(
    served: Served,
    authorization_server: AuthorizationServer,
    shared_fake: FakeCustomerIO,
) -> None:
    token = authorization_server.token(served.server.public_url, f"{USE} {DESTRUCTIVE}")
    person = unique_id()
    async with mcp_client(served.transport, served.server.url, token=token) as client:
        tools = await client.list_tools()
        result = await client.call_tool("delete_customer", {"customer_identifier": person})
    assert len(tools.tools) == ALL_TOOLS
    assert not result.is_error, result.content[0].text
    [sent] = sent_for(shared_fake, person)
    # The access token is never passed on: Customer.io sees the workspace's own Basic credentials.
    assert sent.headers["authorization"] == shared_fake.expected_track_auth()
    assert token not in json.dumps(sent.headers)
    assert token not in served.server.log.read_text()


async def test_token_without_the_destructive_scope_is_served_as_no_destructive(
    served: Served,
    authorization_server: AuthorizationServer,
    shared_fake: FakeCustomerIO,
) -> None:
    token = authorization_server.token(served.server.public_url, USE)
    person = unique_id()
    entity = {"type": "person", "identifiers": {"id": person}, "action": "delete"}
    async with mcp_client(served.transport, served.server.url, token=token) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        deleted = await client.call_tool("delete_customer", {"customer_identifier": person})
        managed = await client.call_tool("manage_entity", {"request_body": entity})
        event = await client.call_tool(
            "send_customer_event", {"customer_identifier": person, "request_body": {"name": "signed_up"}}
        )
    assert len(names) == ALL_TOOLS - DESTRUCTIVE_ONLY_TOOLS
    assert "delete_customer" not in names
    assert "manage_entity" in names
    assert deleted.is_error
    assert NARROWED in deleted.content[0].text
    assert managed.is_error
    assert "destructive" in managed.content[0].text
    assert not event.is_error, event.content[0].text
    routes = [(request.method, request.route) for request in sent_for(shared_fake, person)]
    assert routes == [("POST", "/api/v1/customers/{identifier}/events")]


@pytest.mark.parametrize("space", ["\u00a0", "\t", "\n", "\u2003", "\u3000", "\u1680", "\x1f"])
async def test_only_u0020_separates_scopes(
    served: Served, authorization_server: AuthorizationServer, space: str
) -> None:
    """``a<NBSP>customerio:destructive`` is one scope name (RFC 6749 §3.3), not the destructive scope."""
    now = int(time.time())
    claims = {"iss": authorization_server.issuer, "aud": served.server.public_url, "iat": now, "exp": now + 600}
    token = authorization_server.sign({**claims, "client_id": "tester", "scope": f"{USE} a{space}{DESTRUCTIVE}"})
    async with mcp_client(served.transport, served.server.url, token=token) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        deleted = await client.call_tool("delete_customer", {"customer_identifier": unique_id()})
    assert len(names) == ALL_TOOLS - DESTRUCTIVE_ONLY_TOOLS
    assert deleted.is_error
    assert NARROWED in deleted.content[0].text


def test_token_without_a_required_scope_gets_403_insufficient_scope(
    served: Served,
    authorization_server: AuthorizationServer,
) -> None:
    token = authorization_server.token(served.server.public_url, DESTRUCTIVE)  # lacks customerio:use
    answer = served.raw(f"Bearer {token}")
    assert answer.status_code == 403
    assert answer.json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]
    assert served.raw(f"Bearer {authorization_server.token(served.server.public_url, USE)}").status_code == 200


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = part(json.dumps(header).encode()) + "." + part(json.dumps(claims).encode())
    return head + "." + part(signature)


def _hs256_with_the_public_key(server: AuthorizationServer, claims: dict[str, Any]) -> str:
    """The classic confusion attack: HMAC "signed" with the issuer's public key as the secret."""
    jwk = httpx2.get(server.issuer + "/jwks", timeout=10).json()["keys"][0]
    public_key = RSAAlgorithm.from_jwk(jwk)
    pem = public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[union-attr]
    unsigned = _unsigned({"alg": "HS256", "kid": jwk["kid"], "typ": "at+jwt"}, claims).rsplit(".", 1)[0]
    signature = hmac.new(pem, unsigned.encode(), hashlib.sha256).digest()
    return unsigned + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


BAD_TOKENS = [
    "wrong_audience",
    "expired",
    "not_yet_valid",
    "wrong_issuer",
    "no_expiry",
    "signed_by_another_key",
    "another_key_under_a_published_kid",
    "alg_none",
    "hs256_with_the_public_key",
    "opaque_and_unknown",
    "opaque_for_another_resource",
]


def bad_token(kind: str, server: AuthorizationServer, resource: str) -> str:
    now = int(time.time())
    claims = {"iss": server.issuer, "aud": resource, "iat": now, "exp": now + 600, "scope": f"{USE} {DESTRUCTIVE}"}
    claims["client_id"] = claims["sub"] = "tester"
    match kind:
        case "wrong_audience":
            return server.token("https://other.example/mcp")
        case "expired":
            return server.sign({**claims, "iat": now - 7200, "exp": now - 3600})
        case "not_yet_valid":
            return server.sign({**claims, "nbf": now + 3600})
        case "wrong_issuer":
            return server.sign({**claims, "iss": "https://other-issuer.example"})
        case "no_expiry":
            return server.sign({key: value for key, value in claims.items() if key != "exp"})
        case "signed_by_another_key":
            return server.sign(claims, key="foreign")
        case "another_key_under_a_published_kid":
            kid = httpx2.get(server.issuer + "/jwks", timeout=10).json()["keys"][0]["kid"]
            return server.sign(claims, key="foreign", kid=kid)
        case "alg_none":
            return _unsigned({"alg": "none", "typ": "at+jwt"}, claims, b"anything")
        case "hs256_with_the_public_key":
            return _hs256_with_the_public_key(server, claims)
        case "opaque_and_unknown":
            return "opaque" + uuid.uuid4().hex
        case "opaque_for_another_resource":
            return server.token("https://other.example/mcp", client="opaque-tester")
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", BAD_TOKENS)
def test_invalid_tokens_are_refused_with_401(
    served: Served,
    authorization_server: AuthorizationServer,
    kind: str,
) -> None:
    token = bad_token(kind, authorization_server, served.server.public_url)
    answer = served.raw(f"Bearer {token}")
    assert answer.status_code == 401, kind
    assert f'resource_metadata="{served.metadata_url()}"' in answer.headers["www-authenticate"]
    log = served.server.log.read_text()
    assert "access token refused" in log
    assert token not in log


def test_a_flood_of_bad_tokens_writes_a_few_lines_saying_why(
    served: Served, authorization_server: AuthorizationServer
) -> None:
    """1,000 refused tokens: at most the burst of refusal lines (each saying why, never the token), then
    one line saying how many similar lines were suppressed. Before, every refusal was a line."""
    token = bad_token("wrong_audience", authorization_server, served.server.public_url)
    method, endpoint = served.endpoint
    start = len(served.server.log.read_text())
    started = time.monotonic()
    with httpx2.Client(base_url=served.server.url, headers={**MCP_HEADERS, "Authorization": f"Bearer {token}"}) as http:
        for _ in range(1_000):
            assert http.request(method, endpoint, json=INITIALIZE, timeout=10).status_code == 401
        flood = time.monotonic() - started
        time.sleep(REFILL_SECONDS)  # room for one more line, which counts the suppressed ones
        assert http.request(method, endpoint, json=INITIALIZE, timeout=10).status_code == 401
    time.sleep(0.5)
    lines = [line for line in served.server.log.read_text()[start:].splitlines() if "access token refused" in line]
    assert 1 <= len(lines) <= BURST + 2 + flood / REFILL_SECONDS, len(lines)
    assert all("its audience 'https://other.example/mcp' is not" in line for line in lines), lines[:2]
    assert "similar lines suppressed" in lines[-1], lines[-1]
    assert token not in served.server.log.read_text()


async def test_opaque_tokens_are_checked_by_introspection(
    served: Served,
    authorization_server: AuthorizationServer,
) -> None:
    counts = []
    for scopes in (f"{USE} {DESTRUCTIVE}", USE):
        token = authorization_server.token(served.server.public_url, scopes, client="opaque-tester")
        assert token.count(".") == 0  # opaque indeed
        async with mcp_client(served.transport, served.server.url, token=token) as client:
            counts.append(len((await client.list_tools()).tools))
    assert counts == [ALL_TOOLS, ALL_TOOLS - DESTRUCTIVE_ONLY_TOOLS]


def test_introspection_answers_are_reused_briefly(served: Served, authorization_server: AuthorizationServer) -> None:
    token = authorization_server.token(served.server.public_url, USE, client="opaque-tester")
    before = authorization_server.introspections()
    for _ in range(3):
        assert served.raw(f"Bearer {token}").status_code == 200
    assert authorization_server.introspections() == before + 1


async def test_the_static_token_is_the_operators_and_is_not_narrowed(
    served: Served, shared_fake: FakeCustomerIO
) -> None:
    person = unique_id()
    async with mcp_client(served.transport, served.server.url, token=STATIC_TOKEN) as client:
        tools = await client.list_tools()
        result = await client.call_tool("delete_customer", {"customer_identifier": person})
    assert len(tools.tools) == ALL_TOOLS
    assert not result.is_error, result.content[0].text
    assert len(sent_for(shared_fake, person)) == 1


def audit_records_for(served: Served, *people: str, timeout: float = 10) -> list[dict[str, Any]]:
    """The audit records of calls naming ``people``, once there is one for each (the trail is written behind)."""
    assert served.audit is not None
    deadline = time.monotonic() + timeout
    while True:
        lines = served.audit.read_text(encoding="utf-8").splitlines() if served.audit.exists() else []
        found = [r for r in map(json.loads, lines) if any(person in r["path"] for person in people)]
        if len(found) >= len(people) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


async def test_the_audit_trail_names_who_called_by_the_tokens_subject_or_as_the_static_token(
    served: Served, authorization_server: AuthorizationServer
) -> None:
    now = int(time.time())
    subject = f"user-{uuid.uuid4().hex[:8]}@example.com"
    claims = {"iss": served.issuer, "aud": served.server.public_url, "iat": now, "exp": now + 600}
    token = authorization_server.sign(
        {**claims, "scope": f"{USE} {DESTRUCTIVE}", "client_id": "tester", "sub": subject}
    )
    by_oauth, by_operator = unique_id(), unique_id()
    for bearer, person in ((token, by_oauth), (STATIC_TOKEN, by_operator)):
        async with mcp_client(served.transport, served.server.url, token=bearer) as client:
            assert not (await client.call_tool("delete_customer", {"customer_identifier": person})).is_error
    records = audit_records_for(served, by_oauth, by_operator)
    assert {(r["path"].rsplit("/", 1)[1], r["principal"]) for r in records} == {
        (by_oauth, subject),
        (by_operator, "static token"),
    }


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_rotated_key_is_fetched_and_unknown_keys_cannot_force_refetches(
    provider_prefix: Path,
    fake: FakeCustomerIO,
    tmp_path: Path,
    transport: str,
) -> None:
    with (
        run_authorization_server(provider_prefix) as issuer,
        oauth_mcp_server(fake, transport, issuer.issuer, tmp_path) as server,
    ):
        served = Served(transport, server, issuer.issuer)
        before = issuer.token(server.public_url)
        assert served.raw(f"Bearer {before}").status_code == 200
        fetched = issuer.jwks_fetches()
        issuer.rotate()
        after = issuer.token(server.public_url)
        assert after.split(".")[0] != before.split(".")[0]  # a new kid in the header
        assert served.raw(f"Bearer {after}").status_code == 200
        assert issuer.jwks_fetches() == fetched + 1
        assert served.raw(f"Bearer {before}").status_code == 200  # the old key is still published
        now = int(time.time())
        claims = {"iss": issuer.issuer, "aud": server.public_url, "exp": now + 600, "scope": USE, "sub": "x"}
        for number in range(5):
            forged = issuer.sign(claims, key="foreign", kid=f"made-up-{number}")
            assert served.raw(f"Bearer {forged}").status_code == 401
        assert issuer.jwks_fetches() == fetched + 1  # one refetch per cooldown, whatever the tokens say
        # OAuth alone (no static token): any token that is not valid gets the OAuth challenge.
        assert "resource_metadata" in served.raw("Bearer nonsense").headers["www-authenticate"]


@pytest.mark.parametrize(
    ("issuer", "urls"),
    [
        (
            "https://tenant.eu.auth0.com/",
            [
                "https://tenant.eu.auth0.com/.well-known/oauth-authorization-server",
                "https://tenant.eu.auth0.com/.well-known/openid-configuration",
            ],
        ),
        (
            "https://sso.example.com/realms/acme",
            [
                "https://sso.example.com/.well-known/oauth-authorization-server/realms/acme",
                "https://sso.example.com/.well-known/openid-configuration/realms/acme",
                "https://sso.example.com/realms/acme/.well-known/openid-configuration",
            ],
        ),
    ],
)
def test_issuer_metadata_is_looked_for_where_the_mcp_spec_says(issuer: str, urls: list[str]) -> None:
    assert metadata_urls(issuer) == urls


@pytest.mark.parametrize(
    ("claims", "scopes"),
    [
        ({"scope": "a customerio:destructive"}, ["a", "customerio:destructive"]),
        ({"scope": " a  b "}, ["a", "b"]),
        ({"scope": "a\u00a0customerio:destructive"}, ["a\u00a0customerio:destructive"]),  # RFC 6749: U+0020 only
        ({"scope": "a\tb\nc"}, ["a\tb\nc"]),
        ({"scp": ["a", "b"]}, ["a", "b"]),  # Okta, Entra ID
        ({"scp": "a b"}, ["a", "b"]),
        ({"scope": 3}, []),
        ({}, []),
    ],
)
def test_scopes_are_read_from_scope_or_scp(claims: dict[str, Any], scopes: list[str]) -> None:
    assert token_scopes(claims) == scopes
