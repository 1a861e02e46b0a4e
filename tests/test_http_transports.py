"""SSE and Streamable HTTP over real sockets: the token, health, security, shutdown and scale-out."""

from __future__ import annotations

import contextlib
import itertools
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from customerio_mcp.cli.main import build_parser, flag_overrides
from customerio_mcp.settings import Settings
from tests.fake_customerio import FakeCustomerIO
from tests.processes import INITIALIZE, TOKEN, Running, command, free_port, http_server, server_env, wait_healthy

TRANSPORTS = ["sse", "streamable-http"]
EVENT = ("send_customer_event", {"customer_identifier": "a/b", "request_body": {"name": "signed_up"}})
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@asynccontextmanager
async def mcp_client(
    transport: str, url: str, token: str = TOKEN, http_transport: httpx2.AsyncBaseTransport | None = None
) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"}
    if transport == "sse":
        async with Client(sse_client(url + "/sse", headers=headers)) as client:
            yield client
    else:
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30, transport=http_transport) as session,
            Client(streamable_http_client(url + "/mcp", http_client=session)) as client,
        ):
            yield client


def endpoint(transport: str) -> tuple[str, str]:
    return ("GET", "/sse") if transport == "sse" else ("POST", "/mcp")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_token_lets_a_client_list_and_call(fake: FakeCustomerIO, transport: str) -> None:
    with http_server(fake, transport) as server:
        async with mcp_client(transport, server.url) as client:
            tools = await client.list_tools()
            result = await client.call_tool(*EVENT)
        code, stderr = server.stop()
    assert len(tools.tools) == 24
    assert not result.is_error, result.content[0].text
    assert fake.only_request().raw_path == "/api/v1/customers/a%2Fb/events"
    assert code == 0
    for secret in (TOKEN, fake.api_key, fake.pipelines_key):
        assert secret not in stderr


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer"])
def test_missing_or_wrong_token_gets_401_saying_a_bearer_token_is_required(
    fake: FakeCustomerIO, transport: str, authorization: str | None
) -> None:
    with http_server(fake, transport) as server:
        method, path = endpoint(transport)
        headers = dict(MCP_HEADERS)
        if authorization:
            headers["Authorization"] = authorization
        answer = httpx2.request(method, server.url + path, headers=headers, json=INITIALIZE, timeout=5)
        messages = httpx2.post(server.url + "/messages/?session_id=x", headers=headers, json=INITIALIZE, timeout=5)
    for response in (answer, messages):
        assert response.status_code == 401
        # No resource_metadata: nothing that sends a client looking for OAuth, which is not offered.
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"] == "invalid_token"
        description = response.json()["error_description"]
        assert "Authorization: Bearer <token>" in description
        assert "does not offer OAuth" in description
        assert TOKEN not in response.text
    assert fake.requests == []


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_healthz_needs_no_token_and_says_nothing_else(transport: str) -> None:
    with http_server(None, transport) as server:
        answer = httpx2.get(server.url + "/healthz", timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_public_bind_without_token_is_refused(transport: str) -> None:
    env = server_env(None, CUSTOMERIO_MCP_TRANSPORT=transport, CUSTOMERIO_MCP_HOST="0.0.0.0")
    done = subprocess.run([command()], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "CUSTOMERIO_MCP_AUTH_TOKEN" in done.stderr
    assert done.stdout == ""


def test_allow_unauthenticated_overrides_the_refusal_loudly() -> None:
    with http_server(
        None, "sse", args=["--allow-unauthenticated", "--host", "0.0.0.0"], CUSTOMERIO_MCP_AUTH_TOKEN=""
    ) as server:
        with httpx2.stream("GET", server.url + "/sse", timeout=5, headers={"Accept": "text/event-stream"}) as answer:
            status = answer.status_code
        code, stderr = server.stop()
    assert "WITHOUT authentication" in stderr
    assert status == 200
    assert code == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dns_rebinding_is_refused_on_loopback(transport: str) -> None:
    with http_server(None, transport) as server:
        method, path = endpoint(transport)
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}", "Host": "evil.example:8000"}
        answer = httpx2.request(method, server.url + path, headers=headers, json=INITIALIZE, timeout=5)
    assert answer.status_code in (403, 421)


def test_allowed_hosts_are_configurable() -> None:
    with http_server(None, "streamable-http", CUSTOMERIO_MCP_ALLOWED_HOSTS="mcp.internal:*") as server:
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}
        allowed = httpx2.post(
            server.url + "/mcp", headers={**headers, "Host": "mcp.internal:8000"}, json=INITIALIZE, timeout=5
        )
        refused = httpx2.post(server.url + "/mcp", headers=headers, json=INITIALIZE, timeout=5)
    assert allowed.status_code == 200
    assert refused.status_code in (403, 421)


def test_oversized_request_body_is_refused() -> None:
    with http_server(None, "streamable-http") as server:
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}
        body = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"' + b"x" * (2 * 1024 * 1024) + b'"}}'
        answer = httpx2.post(server.url + "/mcp", headers=headers, content=body, timeout=10)
    assert answer.status_code == 413


@pytest.mark.parametrize(
    ("transport", "stop_signal"),
    [("sse", signal.SIGTERM), ("streamable-http", signal.SIGTERM), ("streamable-http", signal.SIGINT)],
)
async def test_stop_signal_lets_the_call_in_flight_finish(
    fake: FakeCustomerIO, transport: str, stop_signal: signal.Signals
) -> None:
    fake.fail(1, delay=1.5, route="/api/v1/customers/{identifier}/events")
    results: list[Any] = []
    with http_server(fake, transport) as server:

        async def session() -> None:
            # Once the server is gone, closing the session (a DELETE, the SSE stream) fails: that is
            # expected, and the result, if it came, is already in `results`.
            with contextlib.suppress(Exception):
                async with mcp_client(transport, server.url) as client:
                    await client.list_tools()  # the client checks results against the listing it holds
                    results.append(await client.call_tool(*EVENT))

        async with anyio.create_task_group() as tg:
            tg.start_soon(session)
            await anyio.to_thread.run_sync(fake.first_request.wait)  # the call now waits on Customer.io
            server.proc.send_signal(stop_signal)
        # One signal only: a second one could land while Python is exiting, when its handlers are gone.
        code, stderr = server.stop(signal_first=False)
    assert len(results) == 1
    assert not results[0].is_error, results[0].content[0].text
    assert len(fake.requests) == 1
    assert code == 0
    assert "closing the Customer.io HTTP client" in stderr


async def test_sixteen_concurrent_sessions_on_streamable_http(fake: FakeCustomerIO) -> None:
    results: list[Any] = []
    with http_server(fake, "streamable-http") as server:

        async def session(number: int) -> None:
            async with mcp_client("streamable-http", server.url) as client:
                await client.list_tools()
                results.append(await client.call_tool("delete_customer", {"customer_identifier": f"person-{number}"}))

        async with anyio.create_task_group() as tg:
            for number in range(16):
                tg.start_soon(session, number)
    assert len(results) == 16
    assert not any(result.is_error for result in results)
    assert sorted(r.raw_path for r in fake.requests) == sorted(f"/api/v1/customers/person-{n}" for n in range(16))


class RoundRobin(httpx2.AsyncBaseTransport):
    """Send each request to the next port in turn, as a load balancer without sticky sessions would."""

    def __init__(self, ports: list[int]) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self._ports = itertools.cycle(ports)
        self.sent: list[int] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = next(self._ports)
        self.sent.append(port)
        request.url = request.url.copy_with(port=port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_two_stateless_replicas_serve_one_client(fake: FakeCustomerIO) -> None:
    with http_server(fake, "streamable-http") as first, http_server(fake, "streamable-http") as second:
        ports = [int(first.url.rsplit(":", 1)[1]), int(second.url.rsplit(":", 1)[1])]
        balancer = RoundRobin(ports)
        async with mcp_client("streamable-http", first.url, http_transport=balancer) as client:
            for number in range(4):
                result = await client.call_tool("delete_customer", {"customer_identifier": f"p{number}"})
                assert not result.is_error, result.content[0].text
            assert len((await client.list_tools()).tools) == 24
    assert set(balancer.sent) == set(ports)
    assert len(fake.requests) == 4


def test_flags_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOMERIO_MCP_PORT", "9000")
    monkeypatch.setenv("CUSTOMERIO_MCP_TRANSPORT", "sse")
    monkeypatch.setenv("CUSTOMERIO_MCP_HOST", "127.0.0.2")
    args = build_parser().parse_args(["--port", "9100", "--transport", "streamable-http"])
    settings = Settings(**flag_overrides(args))
    assert (settings.mcp_port, settings.mcp_transport, settings.mcp_host) == (9100, "streamable-http", "127.0.0.2")


def test_help_documents_every_option_and_variable() -> None:
    done = subprocess.run([command(), "--help"], capture_output=True, text=True, timeout=60, check=True)
    for word in ("--transport", "--host", "--port", "--allow-unauthenticated", "stdio", "sse", "streamable-http"):
        assert word in done.stdout
    for field in Settings.model_fields:
        assert f"CUSTOMERIO_{field.upper()}" in done.stdout, field


def test_port_flag_serves_on_that_port() -> None:
    port = free_port()
    env = server_env(None, CUSTOMERIO_MCP_TRANSPORT="streamable-http", CUSTOMERIO_MCP_PORT="1")
    proc = subprocess.Popen(
        [command(), "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    server = Running(proc, f"http://127.0.0.1:{port}")
    try:
        wait_healthy(server.url, proc)
    finally:
        code, _ = server.stop()
    assert code == 0
