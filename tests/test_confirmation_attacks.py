"""A person's confirmation, attacked: replayed, reused after a no, carried to another workspace or
user, answered in shapes no client should send, or left unanswered to hold the server.

Each test is an attack that worked before confirmations became single-use and bound and before a
question stopped holding a call slot. The server is the real one: in process with the SDK's own
client, or as the real command over stdio, SSE and Streamable HTTP, with a real Redis and a real
authorization server where replicas and principals matter.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from customerio_mcp.serving.mcp_server import create_server
from tests.conftest import FAST_RETRY, settings_for
from tests.fake_customerio import Account, FakeCustomerIO
from tests.oauth_server import (
    DESTRUCTIVE,
    USE,
    AuthorizationServer,
    authorization_server_fixture,  # noqa: F401  (the authorization_server fixture)
    oauth_mcp_server,
    provider_prefix_fixture,  # noqa: F401  (the provider_prefix fixture)
)
from tests.processes import INITIALIZED, TOKEN, StdioPeer, command, http_server, server_env
from tests.redis_server import RedisProcess, redis_server

MODERN = "2026-07-28"
DELETE = "delete_customer"
ARGUMENTS = {"customer_identifier": "42"}
YES = {"confirm_destructive": types.ElicitResult(action="accept", content={"confirm": True})}
NO = {"confirm_destructive": types.ElicitResult(action="decline")}
EVENT = {"name": "e", "anonymous_id": "a"}
ALPHA = Account("site-alpha", "track-key-alpha-5f1d9c", "cdp-key-alpha-0b7e2a")
BETA = Account("site-beta", "track-key-beta-93ac41", "cdp-key-beta-6d20f8")


async def accept(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"confirm": True})


async def never_answer(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


@asynccontextmanager
async def modern_client(fake: FakeCustomerIO, **settings: Any) -> AsyncIterator[Client]:
    server = create_server(settings_for(fake, **settings), retry=FAST_RETRY)
    async with Client(server, mode=MODERN, elicitation_callback=accept) as connected:
        yield connected


async def ask(client: Client, arguments: dict[str, Any] = ARGUMENTS) -> types.InputRequiredResult:
    first = await client.session.call_tool(DELETE, arguments, allow_input_required=True)
    assert isinstance(first, types.InputRequiredResult)
    return first


async def answer(
    client: Client, state: str | None, responses: dict[str, Any] = YES, arguments: dict[str, Any] = ARGUMENTS
) -> types.CallToolResult:
    result = await client.session.call_tool(
        DELETE, arguments, input_responses=responses, request_state=state, allow_input_required=True
    )
    assert isinstance(result, types.CallToolResult)
    return result


def refused(result: types.CallToolResult, *words: str) -> None:
    assert result.is_error
    assert result.structured_content["error"]["type"] == "not_confirmed", result.content[0].text
    text = result.content[0].text
    assert "Nothing was sent" in text
    for word in words:
        assert word in text, text


# -- single use ------------------------------------------------------------------------------


async def test_an_accepted_state_sends_once_however_often_it_comes_back(fake: FakeCustomerIO) -> None:
    async with modern_client(fake) as client:
        first = await ask(client)
        results = [await answer(client, first.request_state) for _ in range(3)]
    assert [request.raw_path for request in fake.requests] == ["/api/v1/customers/42"]
    assert not results[0].is_error, results[0].content[0].text
    for replayed in results[1:]:
        refused(replayed, "already answered")


async def test_a_decline_is_final(fake: FakeCustomerIO) -> None:
    async with modern_client(fake) as client:
        first = await ask(client)
        declined = await answer(client, first.request_state, NO)
        accepted_later = await answer(client, first.request_state, YES)
    refused(declined, "declined")
    refused(accepted_later, "already answered")
    assert fake.requests == []


async def test_concurrent_replays_of_one_state_send_once(fake: FakeCustomerIO) -> None:
    async with modern_client(fake) as client:
        first = await ask(client)
        results: list[types.CallToolResult] = []

        async def replay() -> None:
            results.append(await answer(client, first.request_state))

        async with anyio.create_task_group() as tasks:
            for _ in range(8):
                tasks.start_soon(replay)
    assert len(fake.requests) == 1
    assert sum(not result.is_error for result in results) == 1


async def test_the_question_names_the_workspace_and_no_key(fake: FakeCustomerIO) -> None:
    async with modern_client(fake) as client:
        first = await ask(client)
    question = first.input_requests["confirm_destructive"].params.message
    assert f"workspace with site ID {fake.site_id}" in question
    for secret in (fake.api_key, fake.pipelines_key):
        assert secret not in question


async def test_an_answer_after_the_timeout_is_a_no(fake: FakeCustomerIO) -> None:
    async with modern_client(fake, confirm_timeout=0.5) as client:
        first = await ask(client)
        await anyio.sleep(0.8)
        late = await answer(client, first.request_state)
    refused(late, "CUSTOMERIO_CONFIRM_TIMEOUT")
    assert fake.requests == []


# -- bound to the workspace and the principal -------------------------------------------------


def workspace_headers(account: Account) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {TOKEN}",
        "X-Customerio-Site-Id": account.site_id,
        "X-Customerio-Api-Key": account.api_key,
        "X-Customerio-Pipelines-Api-Key": account.pipelines_key,
        "X-Customerio-Region": "us",
    }


@asynccontextmanager
async def http_client(url: str, headers: dict[str, str]) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as session,
        Client(
            streamable_http_client(url + "/mcp", http_client=session), mode=MODERN, elicitation_callback=accept
        ) as client,
    ):
        yield client


async def test_a_state_minted_for_one_workspace_does_nothing_in_another(fake: FakeCustomerIO) -> None:
    for account in (ALPHA, BETA):
        fake.add_account(account)
    with http_server(
        None,
        "streamable-http",
        CUSTOMERIO_CREDENTIALS_FROM="request",
        CUSTOMERIO_TRACK_URL=fake.url,
        CUSTOMERIO_PIPELINES_URL=fake.pipelines_url,
        CUSTOMERIO_RATE_LIMIT="0",
    ) as server:
        async with http_client(server.url, workspace_headers(ALPHA)) as alpha:
            first = await ask(alpha)
        async with http_client(server.url, workspace_headers(BETA)) as beta:
            carried = await answer(beta, first.request_state)
    refused(carried, "another Customer.io workspace")
    assert fake.requests == []


def signed_for(issuer: AuthorizationServer, audience: str, subject: str) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer.issuer,
        "aud": audience,
        "exp": now + 600,
        "iat": now,
        "scope": f"{USE} {DESTRUCTIVE}",
        "client_id": "tester",
        "sub": subject,
    }
    return issuer.sign(claims)


async def test_a_state_minted_for_one_user_does_nothing_for_another(
    fake: FakeCustomerIO, authorization_server: AuthorizationServer, tmp_path: Path
) -> None:
    with oauth_mcp_server(
        fake, "streamable-http", authorization_server.issuer, tmp_path, CUSTOMERIO_MCP_AUTH_TOKEN=TOKEN
    ) as server:
        alice = signed_for(authorization_server, server.public_url, "alice")
        bob = signed_for(authorization_server, server.public_url, "bob")
        async with http_client(server.url, {"Authorization": f"Bearer {alice}"}) as as_alice:
            first = await ask(as_alice)
        for who in (bob, TOKEN):  # another user, and the operator's static token
            async with http_client(server.url, {"Authorization": f"Bearer {who}"}) as other:
                with pytest.raises(Exception, match="Invalid or expired requestState"):
                    await answer(other, first.request_state)
        async with http_client(server.url, {"Authorization": f"Bearer {alice}"}) as as_alice:
            own = await answer(as_alice, first.request_state)
    assert not own.is_error, own.content[0].text
    assert [request.raw_path for request in fake.requests] == ["/api/v1/customers/42"]


# -- single use across replicas -----------------------------------------------------------------


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisProcess]:
    with redis_server(tmp_path) as running:
        yield running


async def test_a_state_answered_on_one_replica_is_refused_on_another(fake: FakeCustomerIO, redis: RedisProcess) -> None:
    shared = {"CUSTOMERIO_MCP_STATE_KEYS": "k" * 64, "CUSTOMERIO_REDIS_URL": redis.url}
    with ExitStack() as stack:
        replica_a, replica_b = (stack.enter_context(http_server(fake, "streamable-http", **shared)) for _ in "ab")
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with http_client(replica_a.url, headers) as on_a:
            first = await ask(on_a)
            sent = await answer(on_a, first.request_state)
        async with http_client(replica_b.url, headers) as on_b:
            replayed = await answer(on_b, first.request_state)
    assert not sent.is_error, sent.content[0].text
    refused(replayed, "already answered")
    assert [request.raw_path for request in fake.requests] == ["/api/v1/customers/42"]


# -- 2025-era answers of any shape ------------------------------------------------------------

ELICITING = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {"elicitation": {"form": {}}},
        "clientInfo": {"name": "odd-client", "version": "1"},
    },
}
ODD_ANSWERS = {
    "upper-case action": {"result": {"action": "ACCEPT", "content": {"confirm": True}}},
    "an error answer": {"error": {"code": -32603, "message": "the dialog crashed"}},
    "no action": {"result": {"result": "accept"}},
    "accept without content": {"result": {"action": "accept"}},
    "a string for a result": {"result": "accept"},
    "a string for the box": {"result": {"action": "accept", "content": {"confirm": "true"}}},
}


@pytest.mark.parametrize("shape", ODD_ANSWERS)
def test_an_odd_answer_to_the_question_is_a_no(fake: FakeCustomerIO, shape: str) -> None:
    peer = StdioPeer([command()], server_env(fake))
    try:
        peer.send(ELICITING, INITIALIZED)
        peer.wait()  # the initialize answer
        call = {"name": DELETE, "arguments": ARGUMENTS}
        peer.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
        [(_, question)] = peer.wait()
        assert question["method"] == "elicitation/create"
        peer.send({"jsonrpc": "2.0", "id": question["id"], **ODD_ANSWERS[shape]})
        [(_, result)] = peer.wait()
    finally:
        peer.close()
    assert result["id"] == 2
    outcome = result["result"]
    assert outcome["isError"] is True
    assert outcome["structuredContent"]["error"]["type"] == "not_confirmed", outcome
    assert "internal error" not in json.dumps(outcome)
    assert "Nothing was sent" in outcome["content"][0]["text"]
    assert fake.requests == []


# -- a question holds no call slot ------------------------------------------------------------


async def test_unanswered_questions_do_not_hold_the_server(fake: FakeCustomerIO) -> None:
    """One client asks 8 destructive questions at once and never answers; the server has 4 call slots."""
    with http_server(
        fake,
        "sse",
        CUSTOMERIO_MCP_MAX_CONCURRENT_CALLS="4",
        CUSTOMERIO_CONFIRM_TIMEOUT="4",
        CUSTOMERIO_RATE_LIMIT="0",
    ) as server:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            Client(
                sse_client(server.url + "/sse", headers=headers), mode="legacy", elicitation_callback=never_answer
            ) as holder,
            Client(sse_client(server.url + "/sse", headers=headers)) as other,
        ):
            held: list[types.CallToolResult] = []

            async def hold(number: int) -> None:
                held.append(await holder.call_tool(DELETE, {"customer_identifier": f"held-{number}"}))

            with anyio.fail_after(30):
                async with anyio.create_task_group() as tasks:
                    for number in range(8):
                        tasks.start_soon(hold, number)
                    await anyio.sleep(1)  # the questions are out; nobody will answer them
                    served = await other.call_tool("track_anonymous_event", {"request_body": EVENT})
    assert not served.is_error, served.content[0].text  # not "server busy"
    texts = sorted(result.content[0].text for result in held)
    assert len(texts) == 8
    for result in held:
        refused(result)
    assert sum("too many confirmations pending" in text for text in texts) == 4
    assert sum("got no answer" in text for text in texts) == 4  # CUSTOMERIO_CONFIRM_TIMEOUT, then a no
    assert [request.raw_path for request in fake.requests] == ["/api/v1/events"]


async def test_an_unanswered_question_is_declined_after_the_timeout(fake: FakeCustomerIO) -> None:
    server = create_server(settings_for(fake, confirm_timeout=0.5), retry=FAST_RETRY)
    async with Client(server, mode="legacy", elicitation_callback=never_answer) as client:
        with anyio.fail_after(10):
            result = await client.call_tool(DELETE, ARGUMENTS)
    refused(result, "no answer", "CUSTOMERIO_CONFIRM_TIMEOUT")
    assert fake.requests == []


def test_shared_state_keys_without_redis_are_a_problem(fake: FakeCustomerIO, redis: RedisProcess) -> None:
    from tests.test_check import credentials, problems, run_check

    keys = {"CUSTOMERIO_MCP_STATE_KEYS": "k" * 64}
    alone = run_check(**credentials(fake, **keys))
    shared = run_check(**credentials(fake, **keys, CUSTOMERIO_REDIS_URL=redis.url))
    assert alone.returncode == 1
    [problem] = problems(alone)
    assert "could be answered again on another" in problem
    assert "CUSTOMERIO_REDIS_URL" in problem
    assert shared.returncode == 0, shared.stdout
    with http_server(fake, "streamable-http", **keys) as server:
        _, log = server.stop()
    assert "WARNING customerio_mcp: CUSTOMERIO_MCP_STATE_KEYS is set" in log
