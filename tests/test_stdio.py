"""The installed ``customerio-mcp`` command over stdio, as Claude Desktop or Cursor spawn it."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time

from mcp import Client, StdioServerParameters

from tests.fake_customerio import FakeCustomerIO
from tests.processes import INITIALIZE, INITIALIZED, command, server_env


async def test_sdk_client_drives_the_subprocess(fake: FakeCustomerIO) -> None:
    params = StdioServerParameters(command=command(), args=[], env=server_env(fake))
    async with Client(params) as client:
        tools = await client.list_tools()
        result = await client.call_tool(
            "send_customer_event", {"customer_identifier": "a/b", "request_body": {"name": "signed_up"}}
        )
    assert len(tools.tools) == 24
    assert not result.is_error, result.content[0].text
    assert fake.only_request().raw_path == "/api/v1/customers/a%2Fb/events"


def test_stdout_carries_only_json_rpc(fake: FakeCustomerIO) -> None:
    messages = [
        INITIALIZE,
        INITIALIZED,
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "delete_customer", "arguments": {"customer_identifier": "7"}},
        },
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "tools/call",
            "params": {"name": "send_customer_event", "arguments": {"customer_identifier": "7", "request_body": "{"}},
        },
    ]
    proc = subprocess.Popen(
        [command()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=server_env(fake),
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
    proc.stdin.flush()
    answers = []
    deadline = time.monotonic() + 60
    while len([a for a in answers if "id" in a]) < 4 and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            answers.append(json.loads(line))  # every stdout line is one JSON-RPC message
    proc.stdin.close()
    proc.wait(timeout=30)
    stderr = proc.stderr.read() if proc.stderr else ""
    assert all(a.get("jsonrpc") == "2.0" for a in answers)
    assert proc.stdout.read() == ""  # nothing else followed
    by_id = {a["id"]: a for a in answers if "id" in a}
    assert set(by_id) == {1, 2, 3, 4}
    assert by_id[1]["result"]["serverInfo"]["name"] == "customerio-mcp"
    assert len(by_id[2]["result"]["tools"]) == 24
    assert by_id[3]["result"]["isError"] is False
    assert by_id[4]["result"]["isError"] is True
    assert "attempt 1: DELETE" in stderr  # DEBUG logs went to stderr
    assert fake.only_request().raw_path == "/api/v1/customers/7"
    assert proc.returncode == 0


def test_python_dash_m_and_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "customerio_mcp", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    assert "CUSTOMERIO_API_KEY" in done.stdout
    assert "CUSTOMERIO_PIPELINES_STRICT" in done.stdout
