"""Over stdio, every line that could be a request gets an answer, even when it is no JSON-RPC message.

Before, a ``tools/call`` whose JSON the SDK's parser refuses (nesting beyond ~200 levels, a lone
surrogate escape, a 5,000-digit number) got no answer at all, while HTTP answered 400 -32700. The
real command runs as a subprocess with pipes, as MCP clients start it; the lines are written raw.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.fake_customerio import FakeCustomerIO
from tests.processes import INITIALIZE, INITIALIZED, StdioPeer, command, server_env


def _call(request_id: Any, arguments: str, id_last: bool = False) -> str:
    """A raw tools/call line whose arguments are ``arguments`` (JSON text, possibly not JSON)."""
    params = '{"name":"delete_customer","arguments":' + arguments + "}"
    if id_last:
        return '{"jsonrpc":"2.0","method":"tools/call","params":' + params + ',"id":' + json.dumps(request_id) + "}"
    return '{"jsonrpc":"2.0","id":' + json.dumps(request_id) + ',"method":"tools/call","params":' + params + "}"


# the raw line, the id and code of its answer
REFUSED: list[tuple[str, Any, int]] = [
    (_call(11, '{"customer_identifier":"1","x":' + "[" * 300 + "]" * 300 + "}"), 11, -32700),  # beyond ~200 levels
    (_call(12, '{"customer_identifier":"\\ud800"}'), 12, -32700),  # a lone surrogate escape
    (_call(13, '{"customer_identifier":' + "9" * 5000 + "}"), 13, -32700),  # a 5,000-digit number
    # Beyond what the standard parser nests, and an "id" inside the arguments: the top-level one counts.
    (_call("deep-14", '{"id":99,"x":' + "[" * 5000 + "]" * 5000 + "}", id_last=True), "deep-14", -32700),
    ('{"jsonrpc":"2.0","id":15,"method":"tools/call","params":{"name":', 15, -32700),  # not JSON: cut short
    ('{"jsonrpc":"2.0","method":"tools/call","params":{"arguments":{"id":99}},', None, -32700),  # only a nested id
    ("[1, 2]", None, -32600),  # JSON, but no message
    ('"hello"', None, -32600),
    ('{"jsonrpc":"2.0","id":16,"params":{}}', 16, -32600),  # a request without a method
]
NOT_ANSWERED = [
    '{"jsonrpc":"2.0","method":"notifications/cancelled","params":' + "[" * 300 + "]" * 300 + "}",  # a notification
    "",  # a blank line
    '{"jsonrpc":"2.0","id":77,"result":"accept"}',  # an answer (malformed) to a request: never answered back
]


def test_every_refused_line_that_may_be_a_request_gets_a_json_rpc_error(fake: FakeCustomerIO) -> None:
    env = server_env(fake, CUSTOMERIO_LOG_LEVEL="WARNING")
    peer = StdioPeer([command()], env, stderr=subprocess.PIPE)
    try:
        peer.send(INITIALIZE)
        peer.wait()
        peer.send(INITIALIZED)
        assert peer.proc.stdin is not None
        lines = [line for line, _, _ in REFUSED] + NOT_ANSWERED
        peer.proc.stdin.write("".join(line + "\n" for line in lines).encode())
        peer.send(
            {
                "jsonrpc": "2.0",
                "id": 17,
                "method": "tools/call",
                "params": {"name": "delete_customer", "arguments": {"customer_identifier": "still-answered"}},
            }
        )
        answers = [message for _, message in peer.wait(len(REFUSED) + 1, timeout=60)]
    finally:
        peer.close()
    assert peer.proc.stderr is not None
    log = peer.proc.stderr.read().decode()
    refused, last = answers[:-1], answers[-1]
    assert [(answer["id"], answer["error"]["code"]) for answer in refused] == [(i, code) for _, i, code in REFUSED]
    assert all(answer["jsonrpc"] == "2.0" and answer["error"]["message"] for answer in refused)
    assert last["id"] == 17  # the server kept serving, in order
    assert not last["result"]["isError"], last
    assert [request.raw_path for request in fake.requests] == ["/api/v1/customers/still-answered"]
    warnings = [line for line in log.splitlines() if "stdio: refused a line" in line]
    assert len(warnings) == len(REFUSED) + 1, log[-3000:]  # the notification too; not the blank line
    assert all(" WARNING " in line and len(line) < 500 for line in warnings), warnings
    assert '{"jsonrpc":"2.0","id":11,"method":"tools/call"' in warnings[0]  # the client's text, clipped
    assert "…(+" in warnings[0]
