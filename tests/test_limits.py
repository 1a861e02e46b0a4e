"""Bounded work, as soak tests with small counts: concurrent calls and open sessions, on both transports.

Only behaviours are asserted (who is refused, how, and that nothing refused reached Customer.io);
the timing targets are in ``benchmarks/soak_calls.py``.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.sse import sse_client

from customerio_mcp.serving.limits import tool_call_id
from tests.conftest import connect, settings_for
from tests.fake_customerio import FakeCustomerIO
from tests.processes import INITIALIZE, TOKEN, http_server
from tests.raw_clients import EVENT_CALL, MCP_HEADERS, initialize_sse, sse_session

CALLS = 300
MAX_CALLS = 10
UPSTREAM_SECONDS = 3.0
QUIET = {"CUSTOMERIO_LOG_LEVEL": "WARNING"}
"""The test harness reads a server's stderr only when it stops: a flood logged at DEBUG would fill the pipe."""


def _busy_message_is_clear(text: str) -> None:
    assert "server busy" in text
    assert f"{MAX_CALLS} tool calls are already under way" in text
    assert "nothing was sent to Customer.io" in text
    assert "Retry in " in text


async def test_streamable_http_answers_503_with_retry_after_beyond_the_limit(fake: FakeCustomerIO) -> None:
    fake.fail(CALLS, delay=UPSTREAM_SECONDS)
    answers: list[httpx2.Response] = []
    with http_server(fake, "streamable-http", CUSTOMERIO_MCP_MAX_CONCURRENT_CALLS=str(MAX_CALLS), **QUIET) as server:
        limits = httpx2.Limits(max_connections=CALLS + 10, max_keepalive_connections=0)
        async with httpx2.AsyncClient(timeout=60, limits=limits) as http:

            async def call(number: int) -> None:
                message = {"jsonrpc": "2.0", "id": number, "method": "tools/call", "params": EVENT_CALL}
                answers.append(await http.post(server.url + "/mcp", headers=MCP_HEADERS, json=message))

            async with anyio.create_task_group() as tasks:
                for number in range(CALLS):
                    tasks.start_soon(call, number)
                await anyio.sleep(1.0)  # the flood is queued now
                health = await http.get(server.url + "/healthz")
    served = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 503]
    assert len(served) + len(refused) == CALLS
    assert MAX_CALLS <= len(served) < CALLS // 2
    assert len(fake.requests) == len(served)  # every refused call was refused before anything was sent
    for answer in refused:
        assert int(answer.headers["retry-after"]) >= 1
        error = answer.json()["error"]
        assert error["code"] == -32000
        _busy_message_is_clear(error["message"])
        assert f"Retry in {answer.headers['retry-after']} s" in error["message"]
    assert {answer.json()["id"] for answer in refused} <= set(range(CALLS))
    assert health.status_code == 200


async def test_sse_refuses_beyond_the_limit_with_an_error_result(fake: FakeCustomerIO) -> None:
    fake.fail(CALLS, delay=UPSTREAM_SECONDS)
    results: list[Any] = []
    with http_server(fake, "sse", CUSTOMERIO_MCP_MAX_CONCURRENT_CALLS=str(MAX_CALLS), **QUIET) as server:

        async def session() -> None:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with Client(sse_client(server.url + "/sse", headers=headers, sse_read_timeout=60)) as client:
                await client.list_tools()
                async with anyio.create_task_group() as calls:
                    for _ in range(CALLS // 3):
                        calls.start_soon(_append, results, client.call_tool(*EVENT_CALL.values()))

        async with anyio.create_task_group() as sessions:
            for _ in range(3):
                sessions.start_soon(session)
    served = [r for r in results if not r.is_error]
    refused = [r for r in results if r.is_error]
    assert len(results) == CALLS
    assert MAX_CALLS <= len(served) < CALLS // 2
    assert len(fake.requests) == len(served)
    for result in refused:
        _busy_message_is_clear(result.content[0].text)


async def _append(into: list[Any], awaitable: Any) -> None:
    into.append(await awaitable)


async def test_in_process_calls_beyond_the_limit_wait_then_are_refused(fake: FakeCustomerIO) -> None:
    """stdio takes the same path: one slot, one slow call, and a second call that waits and is refused."""
    fake.fail(1, delay=UPSTREAM_SECONDS)
    results: list[Any] = []
    async with (
        connect(settings_for(fake, mcp_max_concurrent_calls=1)) as client,
        anyio.create_task_group() as tasks,
    ):
        tasks.start_soon(_append, results, client.call_tool(*EVENT_CALL.values()))
        await anyio.to_thread.run_sync(fake.first_request.wait, 10)
        tasks.start_soon(_append, results, client.call_tool(*EVENT_CALL.values()))
    refused, served = results
    assert refused.is_error
    assert "server busy: 1 tool calls are already under way" in refused.content[0].text
    assert not served.is_error
    assert len(fake.requests) == 1


def test_sse_sessions_beyond_the_limit_get_503_until_one_closes() -> None:
    async def scenario(url: str) -> tuple[list[int], int]:
        async with httpx2.AsyncClient(timeout=10) as http:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with (
                sse_session(url, http),
                sse_session(url, http),
                http.stream("GET", url + "/sse", headers=headers) as third,
            ):
                refused = [third.status_code, int(third.headers["retry-after"])]
            await anyio.sleep(0.5)  # the server notices the two streams closed
            async with sse_session(url, http):
                return refused, 200

    with http_server(None, "sse", CUSTOMERIO_MCP_MAX_SESSIONS="2") as server:
        refused, reopened = anyio.run(scenario, server.url)
        _, stderr = server.stop()
    assert refused == [503, 5]
    assert reopened == 200
    assert "2 SSE sessions are open (CUSTOMERIO_MCP_MAX_SESSIONS)" in stderr


def test_stateful_streamable_http_sessions_beyond_the_limit_get_503() -> None:
    env = {"CUSTOMERIO_MCP_STATELESS": "false", "CUSTOMERIO_MCP_MAX_SESSIONS": "2"}
    with http_server(None, "streamable-http", **env) as server, httpx2.Client(timeout=10) as http:
        opened = [http.post(server.url + "/mcp", headers=MCP_HEADERS, json=INITIALIZE) for _ in range(3)]
        first_id = opened[0].headers["mcp-session-id"]
        http.delete(server.url + "/mcp", headers={**MCP_HEADERS, "Mcp-Session-Id": first_id})
        after_close = http.post(server.url + "/mcp", headers=MCP_HEADERS, json=INITIALIZE)
    assert [answer.status_code for answer in opened] == [200, 200, 503]
    assert "Too many open sessions" in opened[2].text
    assert after_close.status_code == 200


def test_idle_sse_session_is_closed_but_not_while_its_call_is_answered(fake: FakeCustomerIO) -> None:
    fake.fail(1, delay=3.0)

    async def scenario(url: str) -> tuple[Any, float]:
        async with httpx2.AsyncClient(timeout=30) as http, sse_session(url, http) as (endpoint, lines):
            await initialize_sse(url, endpoint, http)
            call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": EVENT_CALL}
            await http.post(url + endpoint, json=call, headers=MCP_HEADERS)
            started = anyio.current_time()
            result = None
            with anyio.fail_after(20):
                async for line in lines:  # ends when the server closes the stream
                    if line.startswith("data:") and '"id":2' in line:
                        result = json.loads(line.removeprefix("data:"))
            return result, anyio.current_time() - started

    with http_server(fake, "sse", CUSTOMERIO_MCP_SESSION_IDLE_SECONDS="1.5") as server:
        result, lasted = anyio.run(scenario, server.url)
        _, stderr = server.stop()
    assert result is not None
    assert result["result"]["isError"] is False  # the 3 s call outlived the 1.5 s idle time
    assert lasted >= 3.0 + 1.5
    assert "SSE session closed after 1.5 s without a message" in stderr


def test_idle_stateful_streamable_http_session_expires() -> None:
    env = {"CUSTOMERIO_MCP_STATELESS": "false", "CUSTOMERIO_MCP_SESSION_IDLE_SECONDS": "1"}
    with http_server(None, "streamable-http", **env) as server, httpx2.Client(timeout=10) as http:
        opened = http.post(server.url + "/mcp", headers=MCP_HEADERS, json=INITIALIZE)
        session = {**MCP_HEADERS, "Mcp-Session-Id": opened.headers["mcp-session-id"]}
        ping = {"jsonrpc": "2.0", "id": 3, "method": "ping"}
        fresh = http.post(server.url + "/mcp", headers=session, json=ping)
        anyio.run(anyio.sleep, 3.0)
        expired = http.post(server.url + "/mcp", headers=session, json=ping)
    assert fresh.status_code == 200
    assert expired.status_code == 404


GATE_BODIES = [
    b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","arguments":{"request_body":[1,2,3]}}}',
    b'{"params":{"s":"tools/call"},"method":"tools/list","id":1}',
    b'{"method":"tools/call","jsonrpc":"2.0"}',  # a notification: no id
    b'{"method":"tools/call","id":null}',
    b'{"method":"x","method":"tools/call","id":1,"id":"two"}',  # the last of each, as json.loads reads it
    b'{"method":"tools/call","id":1.5e400}',
    b'{"method":"tools/call","id":"\\ud800"}',  # refused by the Rust parser: read by json.loads
    b'\xef\xbb\xbf{"method":"tools/call","id":1}',
    b'{"method":"tools/call","id":1,"params":{"n":NaN}}',
    b'{"method":"tools/call","id":' + b"9" * 5000 + b"}",
    b'[{"method":"tools/call","id":1}]',
    b'{"method":"tools/call","id":1',
]


def test_the_gate_reads_a_calls_id_as_json_loads_does() -> None:
    """The gate parses only ``method`` and ``id`` (in Rust); its verdict must be the one a full parse gives."""
    for body in GATE_BODIES:
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        is_call = isinstance(message, dict) and message.get("method") == "tools/call" and "id" in message
        expected = (True, message["id"]) if is_call else (False, None)
        assert tool_call_id(body) == expected, body


def test_a_call_nested_too_deep_to_parse_is_left_to_the_sdk() -> None:
    """json.loads raises RecursionError, not ValueError, on deep nesting: it once made the gate answer 500."""
    deep = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert tool_call_id(deep) == (False, None)
