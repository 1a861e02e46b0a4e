"""Many workspaces through one server: per-request keys, isolation, narrowing headers, refusals.

The server runs as a real process (SSE and Streamable HTTP) with
``CUSTOMERIO_CREDENTIALS_FROM=request``; real SDK clients send their workspace's keys in
``X-Customerio-*`` headers; the fake Customer.io accepts several workspaces and records which
one every request came with.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from pydantic import SecretStr, ValidationError

from customerio_mcp.customerio.http_client import open_http_client
from customerio_mcp.customerio.pacing import Pacing
from customerio_mcp.customerio.workspace import HEADER_NAMES, Workspace
from customerio_mcp.customerio.workspace_clients import WorkspaceClients
from customerio_mcp.settings import Settings
from tests.fake_customerio import Account, FakeCustomerIO
from tests.processes import TOKEN, Running, http_server

TRANSPORTS = ["sse", "streamable-http"]
ALPHA = Account("site-alpha", "track-key-alpha-5f1d9c", "cdp-key-alpha-0b7e2a", region="us")
BETA = Account("site-beta", "track-key-beta-93ac41", "cdp-key-beta-6d20f8", region="eu")
GAMMA = Account("site-gamma", "track-key-gamma-c4e7b2", "cdp-key-gamma-1a9f3d", region="eu")
"""GAMMA sends no region header: the US host's lookup says eu, and that answer is GAMMA's alone."""
ACCOUNTS = (ALPHA, BETA, GAMMA)
SERVER_WITH_REGION_HOSTS = (
    "import json, sys\n"
    "from customerio_mcp.customerio import api\n"
    "for region, (track, pipelines) in json.loads(sys.argv[1]).items():\n"
    "    api.REGION_URLS[region] = api.Endpoints(track, pipelines, track + '/app')\n"
    "from customerio_mcp.cli import main\n"
    "sys.exit(main([]))\n"
)
"""The real command, with the US and EU hosts pointed at two fakes (no explicit URL, so regions matter)."""


def workspace_headers(account: Account, *, region: bool = True) -> dict[str, str]:
    headers = {
        "X-Customerio-Site-Id": account.site_id,
        "X-Customerio-Api-Key": account.api_key,
        "X-Customerio-Pipelines-Api-Key": account.pipelines_key,
    }
    if region:
        headers["X-Customerio-Region"] = account.region
    return headers


@asynccontextmanager
async def client_with(transport: str, url: str, headers: Mapping[str, str]) -> AsyncIterator[Client]:
    every = {"Authorization": f"Bearer {TOKEN}", **headers}
    if transport == "sse":
        async with Client(sse_client(url + "/sse", headers=every)) as client:
            yield client
    else:
        async with (
            httpx2.AsyncClient(headers=every, timeout=30) as session,
            Client(streamable_http_client(url + "/mcp", http_client=session)) as client,
        ):
            yield client


@pytest.fixture
def regions() -> Iterator[tuple[FakeCustomerIO, FakeCustomerIO]]:
    """Fakes for the US and EU hosts; both accept every test workspace, the US one answers lookups."""
    with FakeCustomerIO() as us, FakeCustomerIO() as eu:
        for fake in (us, eu):
            for account in ACCOUNTS:
                fake.add_account(account)
            fake.answer_headers = {"Set-Cookie": "AWSALB=sticky-to-one-workspace; Path=/"}
        yield us, eu


def request_mode_server(transport: str, us: FakeCustomerIO, eu: FakeCustomerIO, **env: str) -> Any:
    hosts = {"us": [us.url, us.pipelines_url], "eu": [eu.url, eu.pipelines_url]}
    return http_server(
        None,
        transport,
        argv=[sys.executable, "-c", SERVER_WITH_REGION_HOSTS, json.dumps(hosts)],
        CUSTOMERIO_CREDENTIALS_FROM="request",
        CUSTOMERIO_RATE_LIMIT="0",
        **env,
    )


def stop_and_check_logs(server: Running) -> str:
    code, stderr = server.stop()
    assert code == 0
    assert "DEBUG" in stderr  # the server logged at its most talkative
    for account in ACCOUNTS:
        for secret in (account.api_key, account.pipelines_key, account.track_auth().split()[1]):
            assert secret not in stderr
    return stderr


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_each_request_reaches_customerio_with_its_own_workspace(
    regions: tuple[FakeCustomerIO, FakeCustomerIO], transport: str
) -> None:
    us, eu = regions
    results: dict[str, list[Any]] = {account.site_id: [] for account in ACCOUNTS}
    with request_mode_server(transport, us, eu) as server:

        async def work(account: Account) -> None:
            headers = workspace_headers(account, region=account is not GAMMA)
            async with client_with(transport, server.url, headers) as client:
                await client.list_tools()
                for number in range(4):
                    person = f"{account.site_id}-{number}"
                    results[account.site_id].append(
                        await client.call_tool(
                            "send_customer_event", {"customer_identifier": person, "request_body": {"name": "e"}}
                        )
                    )
                    results[account.site_id].append(
                        await client.call_tool(
                            "identify_person_and_assign_traits", {"request_body": {"userId": person}}
                        )
                    )
                    await anyio.lowlevel.checkpoint()  # interleave with the other workspaces' calls

        async with anyio.create_task_group() as tg:
            for account in ACCOUNTS:
                tg.start_soon(work, account)
        stop_and_check_logs(server)

    for account in ACCOUNTS:
        answers = results[account.site_id]
        assert [r.is_error for r in answers] == [False] * 8, [r.content[0].text for r in answers if r.is_error]
        assert {r.structured_content["region"] for r in answers} == {account.region}
    for fake, host in ((us, "us"), (eu, "eu")):
        for entry in fake.requests:
            owner = fake.account_of(entry)
            assert owner is not None
            assert "cookie" not in entry.headers  # no cookie of one workspace rides on another's request
            if entry.raw_path == "/api/v1/accounts/region":
                assert (host, owner) == ("us", GAMMA)  # only the workspace without a region header asked
                continue
            assert owner.region == host
            person = entry.raw_path.split("/")[4] if entry.api == "track" else entry.body["userId"]
            assert person.startswith(owner.site_id + "-")
    sent = [(fake.account_of(e), e.raw_path) for fake in (us, eu) for e in fake.requests]
    assert sum(path == "/api/v1/accounts/region" for _, path in sent) == 1  # one answer, cached for GAMMA only
    assert sum(path != "/api/v1/accounts/region" for _, path in sent) == 24


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_missing_key_names_its_header(regions: tuple[FakeCustomerIO, FakeCustomerIO], transport: str) -> None:
    us, eu = regions
    with request_mode_server(transport, us, eu) as server:
        async with client_with(transport, server.url, {"X-Customerio-Site-Id": ALPHA.site_id}) as client:
            listed = await client.list_tools()
            track = await client.call_tool("delete_customer", {"customer_identifier": "p1"})
            pipelines = await client.call_tool("identify_person_and_assign_traits", {"request_body": {"userId": "1"}})
        stop_and_check_logs(server)
    assert len(listed.tools) == 24
    assert track.is_error
    assert "set X-Customerio-Api-Key as headers of this client's HTTP requests" in track.content[0].text
    assert track.structured_content["error"]["missing"] == ["X-Customerio-Api-Key"]
    assert pipelines.is_error
    assert "set X-Customerio-Pipelines-Api-Key" in pipelines.content[0].text
    assert "CUSTOMERIO_" not in track.content[0].text + pipelines.content[0].text
    assert us.requests == eu.requests == []


async def test_the_environment_keys_are_never_used_for_a_request_without_keys(fake: FakeCustomerIO) -> None:
    with http_server(fake, "streamable-http", CUSTOMERIO_CREDENTIALS_FROM="request") as server:
        async with client_with("streamable-http", server.url, {}) as client:
            result = await client.call_tool("delete_customer", {"customer_identifier": "p1"})
        _, stderr = server.stop()
    assert result.is_error
    assert "set X-Customerio-Site-Id and X-Customerio-Api-Key" in result.content[0].text
    assert fake.requests == []
    assert "CUSTOMERIO_SITE_ID, CUSTOMERIO_API_KEY, CUSTOMERIO_PIPELINES_API_KEY set in the environment are" in stderr


async def test_a_refused_key_is_reported_with_the_header_names(fake: FakeCustomerIO) -> None:
    headers = {**workspace_headers(ALPHA), "X-Customerio-Api-Key": "not-the-key"}
    with http_server(fake, "streamable-http", CUSTOMERIO_CREDENTIALS_FROM="request", CUSTOMERIO_MAX_RETRIES="0") as srv:
        async with client_with("streamable-http", srv.url, headers) as client:
            result = await client.call_tool("delete_customer", {"customer_identifier": "p1"})
    assert result.is_error
    text = result.content[0].text
    assert "X-Customerio-Site-Id and X-Customerio-Api-Key" in text
    assert "X-Customerio-Region: us" in text
    assert "not-the-key" not in text


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_client_narrowed_to_pipelines_sees_seven_tools_and_cannot_call_track(
    fake: FakeCustomerIO, transport: str
) -> None:
    with http_server(fake, transport) as server:
        async with client_with(transport, server.url, {"X-MCP-Toolsets": "pipelines"}) as client:
            narrowed = await client.list_tools()
            refused = await client.call_tool("delete_customer", {"customer_identifier": "p1"})
            allowed = await client.call_tool("identify_person_and_assign_traits", {"request_body": {"userId": "1"}})
        async with client_with(transport, server.url, {}) as client:
            everything = await client.list_tools()
    assert len(narrowed.tools) == 7
    assert {tool.name for tool in narrowed.tools} == {
        "identify_person_and_assign_traits",
        "track_user_event",
        "send_page_view_event",
        "send_screen_view_event",
        "add_to_group",
        "alias_user_identity",
        "send_batch_requests",
    }
    assert refused.is_error
    assert "narrowed the toolsets to pipelines" in refused.content[0].text
    assert not allowed.is_error
    assert [r.raw_path for r in fake.requests] == ["/v1/identify"]
    assert len(everything.tools) == 24  # the narrowing was that client's alone


async def test_tools_and_no_destructive_headers_only_take_away(fake: FakeCustomerIO) -> None:
    headers = {"X-MCP-Tools": "delete_customer, manage_entity,send_customer_event", "X-MCP-No-Destructive": "true"}
    with http_server(fake, "streamable-http", CUSTOMERIO_TOOLS="manage_entity,send_customer_event") as server:
        async with client_with("streamable-http", server.url, headers) as client:
            listed = await client.list_tools()
            entity = await client.call_tool(
                "manage_entity",
                {"request_body": {"type": "person", "identifiers": {"id": "1"}, "action": "delete"}},
            )
    # delete_customer: asked for, but the operator's allow-list does not have it; no-destructive hides nothing else.
    assert sorted(tool.name for tool in listed.tools) == ["manage_entity", "send_customer_event"]
    assert entity.is_error
    assert "destructive" in entity.content[0].text
    assert fake.requests == []


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({"X-MCP-Toolsets": "track,bogus"}, ["X-MCP-Toolsets", "'bogus'", "track, pipelines"]),
        ({"X-MCP-Toolsets": ",,"}, ["X-MCP-Toolsets is empty"]),
        ({"X-MCP-Tools": "delete_everything"}, ["X-MCP-Tools", "'delete_everything'"]),
        ({"X-MCP-No-Destructive": "yes\x1b[31m"}, ["X-MCP-No-Destructive", "true or false", "\\x1b"]),
        ({"X-Customerio-Region": "mars"}, ["X-Customerio-Region", "'mars'", "us or eu"]),
    ],
)
async def test_an_unreadable_header_refuses_the_request(
    regions: tuple[FakeCustomerIO, FakeCustomerIO], headers: dict[str, str], words: list[str]
) -> None:
    us, eu = regions
    with request_mode_server("streamable-http", us, eu) as server:
        async with client_with("streamable-http", server.url, {**workspace_headers(ALPHA), **headers}) as client:
            with pytest.raises(MCPError) as listing:
                await client.list_tools()
            with pytest.raises(MCPError) as calling:
                await client.call_tool("identify_person_and_assign_traits", {"request_body": {"userId": "1"}})
    for refusal in (listing.value, calling.value):
        assert refusal.error.code == -32600
        for word in words:
            assert word in refusal.error.message
        assert ALPHA.api_key not in refusal.error.message
    assert us.requests == eu.requests == []


async def test_a_server_using_its_environment_refuses_keys_in_headers(fake: FakeCustomerIO) -> None:
    with http_server(fake, "streamable-http") as server:
        async with client_with("streamable-http", server.url, workspace_headers(ALPHA)) as client:
            with pytest.raises(MCPError) as refusal:
                await client.call_tool("delete_customer", {"customer_identifier": "p1"})
    assert "CUSTOMERIO_CREDENTIALS_FROM=request" in refusal.value.error.message
    assert fake.requests == []


def test_workspace_names_hash_its_keys_and_never_shows_them() -> None:
    alpha = Workspace("site-alpha", SecretStr(ALPHA.api_key), SecretStr(ALPHA.pipelines_key), "us")
    same = Workspace("site-alpha", SecretStr(ALPHA.api_key), SecretStr(ALPHA.pipelines_key), "us")
    other_key = Workspace("site-alpha", SecretStr("another-key"), SecretStr(ALPHA.pipelines_key), "us")
    other_region = Workspace("site-alpha", SecretStr(ALPHA.api_key), SecretStr(ALPHA.pipelines_key), "eu")
    assert alpha.fingerprint == same.fingerprint
    assert len({alpha.fingerprint, other_key.fingerprint, other_region.fingerprint}) == 3
    # A budget belongs to the keys, whatever region a client names.
    assert alpha.budget_key("track") == other_region.budget_key("track")
    assert alpha.budget_key("track") != other_key.budget_key("track")
    assert alpha.budget_key("pipelines") == other_key.budget_key("pipelines")
    for shown in (repr(alpha), alpha.fingerprint, alpha.budget_key("track"), alpha.budget_key("pipelines")):
        assert ALPHA.api_key not in shown
        assert ALPHA.pipelines_key not in shown


async def test_workspace_clients_are_bounded_and_expire() -> None:
    settings = Settings(credentials_from="request", mcp_transport="streamable-http")
    workspaces = [Workspace(f"site-{n}", SecretStr(f"key-{n}"), names=HEADER_NAMES) for n in range(3)]
    async with open_http_client(settings) as http:
        clients = WorkspaceClients(settings, http, Pacing(100), size=2, ttl=0.2)
        first = clients.client_for(workspaces[0])
        assert clients.client_for(workspaces[0]) is first  # one client, one region answer, per workspace
        assert first.workspace is workspaces[0]
        clients.client_for(workspaces[1])
        clients.client_for(workspaces[2])
        assert len(clients) == 2  # bounded: the least recently used went
        assert clients.client_for(workspaces[0]) is not first
        await anyio.sleep(0.3)
        assert len(clients) == 0  # expired


def test_request_credentials_need_an_http_transport() -> None:
    with pytest.raises(ValidationError, match="needs an HTTP transport"):
        Settings(credentials_from="request")
    assert Settings(credentials_from="REQUEST", mcp_transport="sse").credentials_from == "request"


async def test_the_tool_lists_kept_per_narrowing_are_bounded() -> None:
    """X-MCP-Tools lets a client pick any subset of the tools; the runner must not keep one list per subset forever."""
    from itertools import combinations

    from customerio_mcp.customerio.client import CustomerIOClient
    from customerio_mcp.tools.runner import ToolRunner
    from customerio_mcp.tools.selection import Narrowing
    from customerio_mcp.tools.table import TOOLS

    settings = Settings(pipelines_api_key="k", app_api_key="app-key-secret-0a1b2c")  # every tool served
    async with open_http_client(settings) as http:
        runner = ToolRunner(CustomerIOClient(settings, http), settings)
        names = [tool.name for tool in TOOLS]
        subsets = [frozenset(pair) for pair in combinations(names, 2)][:400]
        for subset in subsets:
            assert set(runner.enabled(Narrowing(tools=subset))) == subset
        assert len(runner._enabled) <= 256
        assert set(runner.enabled(Narrowing(tools=subsets[0]))) == subsets[0]  # an evicted one is recomputed
