"""Idle, dripping and surplus connections, as bounded soak tests on both transports.

With ``CUSTOMERIO_MCP_CLIENT_TIMEOUT=2``, connections that send no complete request head in time
get ``408`` and are closed, bodies that stall are cut, the number of open connections stays under
its cap, and all the while an authenticated client is served. Timing targets (an answer within a
second with 1,000 such connections open) are in ``benchmarks/soak_connections.py``.
"""

from __future__ import annotations

import time

import anyio
import pytest

from tests.fake_customerio import FakeCustomerIO
from tests.processes import TOKEN, http_server
from tests.raw_clients import (
    closed_by_server,
    many_connections,
    port_of,
    raw_connection,
    read_until_closed,
    request_bytes,
    wait_for,
)
from tests.test_http_transports import EVENT, mcp_client

TRANSPORTS = ["sse", "streamable-http"]
TIMEOUT = {"CUSTOMERIO_MCP_CLIENT_TIMEOUT": "2", "CUSTOMERIO_LOG_LEVEL": "INFO"}
IDLE = 100
DRIPPING = 100


async def authenticated_call(transport: str, url: str) -> bool:
    async with mcp_client(transport, url) as client:
        result = await client.call_tool(*EVENT)
    return not result.is_error


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_idle_and_dripping_connections_are_cut_while_clients_are_served(fake: FakeCustomerIO, transport: str) -> None:
    with http_server(fake, transport, **TIMEOUT) as server:
        port = port_of(server.url)
        partial_head = request_bytes(port, "POST", "/mcp")[:-4]  # headers never finished
        with many_connections(port, IDLE) as idle, many_connections(port, DRIPPING, partial_head) as dripping:
            served = anyio.run(authenticated_call, transport, server.url)
            for sock in dripping:  # one more header line each: dripping, not idle
                sock.sendall(b"\r\nX-Drip: 1")
            all_cut = wait_for(lambda: all(closed_by_server(sock) for sock in idle + dripping), timeout=20)
            served_after = anyio.run(authenticated_call, transport, server.url)
        _, stderr = server.stop()
    assert served
    assert all_cut
    assert served_after
    assert "no complete request head within 2 s" in stderr
    assert "Traceback" not in stderr


def test_a_slow_client_is_told_408_before_the_connection_closes() -> None:
    with http_server(None, "streamable-http", **TIMEOUT) as server:
        sock = raw_connection(port_of(server.url), b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        answer = read_until_closed(sock, timeout=20)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert answer.endswith(b"request headers not received in time\n")
    assert 1.5 < waited < 15


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_stalled_or_dripping_body_is_cut(transport: str) -> None:
    path = "/messages/?session_id=00000000000000000000000000000000" if transport == "sse" else "/mcp"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json", "Content-Length": "100000"}
    with http_server(None, transport, **TIMEOUT) as server:
        port = port_of(server.url)
        head = request_bytes(port, "POST", path, **{k.replace("-", "_"): v for k, v in headers.items()})
        head = head.replace(b"Content-Length: 0\r\n", b"")
        stalled = raw_connection(port, head + b'{"jsonrpc": "2.0", ')
        dripping = raw_connection(port, head + b"[")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not closed_by_server(dripping):
            dripping.sendall(b" ")
            time.sleep(0.2)
        dripping_cut = closed_by_server(dripping)
        stalled_cut = wait_for(lambda: closed_by_server(stalled), timeout=10)
        _, stderr = server.stop()
    assert dripping_cut
    assert stalled_cut
    assert "request body slower than 10 KiB per 2 s" in stderr


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_connections_are_capped_and_idle_ones_make_room(fake: FakeCustomerIO, transport: str) -> None:
    env = {**TIMEOUT, "CUSTOMERIO_MCP_CLIENT_TIMEOUT": "30", "CUSTOMERIO_MCP_MAX_CONNECTIONS": "20"}
    with http_server(fake, transport, **env) as server, many_connections(port_of(server.url), 60) as idle:
        still_open = wait_for(lambda: sum(not closed_by_server(sock) for sock in idle) <= 20, timeout=10)
        served = anyio.run(authenticated_call, transport, server.url)
        _, stderr = server.stop()
    assert still_open
    assert served
    assert "connections open and this one sent no request" in stderr


def test_when_every_connection_is_busy_a_new_one_gets_503() -> None:
    env = {**TIMEOUT, "CUSTOMERIO_MCP_MAX_CONNECTIONS": "16", "CUSTOMERIO_MCP_MAX_SESSIONS": "100"}
    with http_server(None, "sse", **env) as server:
        port = port_of(server.url)
        stream = request_bytes(port, "GET", "/sse", Authorization=f"Bearer {TOKEN}")
        with many_connections(port, 16, stream) as streams:
            time.sleep(1.0)  # every connection now holds an open event stream
            refused = read_until_closed(raw_connection(port), timeout=10)
            busy = sum(not closed_by_server(sock) for sock in streams)
        _, stderr = server.stop()
    assert busy == 16
    assert refused.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"retry-after: 1" in refused
    assert "16 connections open, all busy" in stderr
