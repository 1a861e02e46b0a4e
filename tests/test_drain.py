"""No call is left without an answer when the server stops.

stdio: when stdin closes or SIGTERM/SIGINT arrives, the calls under way finish and their answers are
written before the process exits 0. Over HTTP, the drain window (``CUSTOMERIO_MCP_DRAIN_SECONDS``)
bounds the wait, and a call still running when it closes answers that the server is shutting down,
that it may or may not have been applied, and with its ``sent_ids``: never a cut connection.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from typing import Any

import anyio
import pytest

from tests.fake_customerio import FakeCustomerIO
from tests.processes import INITIALIZE, INITIALIZED, command, http_server, server_env
from tests.test_http_transports import mcp_client

EVENT_ROUTE = "/api/v1/customers/{identifier}/events"


def _call(number: int) -> dict[str, Any]:
    arguments = {"customer_identifier": str(number), "request_body": {"name": "e"}}
    return {
        "jsonrpc": "2.0",
        "id": number,
        "method": "tools/call",
        "params": {"name": "send_customer_event", "arguments": arguments},
    }


def _stdio_server(fake: FakeCustomerIO, **env: str) -> subprocess.Popen[bytes]:
    environment = server_env(fake, CUSTOMERIO_RATE_LIMIT="0", CUSTOMERIO_LOG_LEVEL="INFO", **env)
    proc = subprocess.Popen(
        [command()], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment
    )
    assert proc.stdin is not None
    proc.stdin.write((json.dumps(INITIALIZE) + "\n" + json.dumps(INITIALIZED) + "\n").encode())
    proc.stdin.write("".join(json.dumps(_call(100 + i)) + "\n" for i in range(50)).encode())
    proc.stdin.flush()
    return proc


def _wait_for_requests(fake: FakeCustomerIO, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(fake.requests) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(fake.requests) >= count, f"only {len(fake.requests)} requests reached the fake"


def _answers(out: bytes) -> dict[int, Any]:
    return {m["id"]: m for m in map(json.loads, out.splitlines()) if "id" in m}


@pytest.mark.parametrize("stop", ["stdin closes", "SIGTERM", "SIGINT"])
def test_stdio_answers_all_fifty_calls_in_flight_then_exits_0(fake: FakeCustomerIO, stop: str) -> None:
    fake.fail(50, delay=1.0, status=200, route=EVENT_ROUTE)
    proc = _stdio_server(fake)
    _wait_for_requests(fake, 50)  # every call is now waiting on Customer.io
    if stop != "stdin closes":
        proc.send_signal(signal.SIGTERM if stop == "SIGTERM" else signal.SIGINT)
    out, err = proc.communicate(timeout=60)  # closes stdin
    answers = _answers(out)
    calls = [answers.get(100 + i) for i in range(50)]
    assert all(answer is not None and "result" in answer for answer in calls), err.decode()[-2000:]
    assert all(answer["result"].get("isError") is not True for answer in calls)
    assert proc.returncode == 0
    assert len(fake.requests) == 50


def test_stdio_calls_outliving_the_window_answer_that_the_server_is_shutting_down(fake: FakeCustomerIO) -> None:
    fake.fail(50, delay=6.0, status=200, route=EVENT_ROUTE)
    proc = _stdio_server(fake, CUSTOMERIO_MCP_DRAIN_SECONDS="1")
    _wait_for_requests(fake, 50)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert time.monotonic() - started < 5, "the drain window bounds the shutdown"
    assert proc.returncode == 0
    answers = _answers(out)
    for i in range(50):
        result = answers[100 + i]["result"]
        assert result["isError"] is True
        text = result["content"][0]["text"]
        assert "shutting down" in text
        assert "may or may not have applied it" in text
        sent = fake.requests_by_path()[f"/api/v1/customers/{100 + i}/events"].body["id"]
        assert result["structuredContent"]["error"]["sent_ids"] == {"id": sent}
        assert f'pass `request_body.id` = "{sent}"' in text


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_http_calls_outliving_the_window_get_an_answer_not_a_cut_connection(
    fake: FakeCustomerIO, transport: str
) -> None:
    fake.fail(1, delay=8.0, status=200, route=EVENT_ROUTE)
    results: list[Any] = []
    with http_server(fake, transport, CUSTOMERIO_MCP_DRAIN_SECONDS="1") as server:

        async def session() -> None:
            with contextlib.suppress(Exception):  # closing the session after the server is gone may fail
                async with mcp_client(transport, server.url) as client:
                    await client.list_tools()
                    results.append(await client.call_tool("send_customer_event", _call(7)["params"]["arguments"]))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(session)
            await anyio.to_thread.run_sync(fake.first_request.wait)
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
        code, _ = server.stop(signal_first=False)
    assert time.monotonic() - started < 6
    assert code == 0
    assert len(results) == 1, "the call was cut off without an answer"
    assert results[0].is_error
    text = results[0].content[0].text
    assert "shutting down" in text
    assert "may or may not have applied it" in text
    assert results[0].structured_content["error"]["sent_ids"]["id"] == fake.requests[0].body["id"]
