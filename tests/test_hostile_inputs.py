"""Every bad input is an input error naming the field, never an internal error, and nothing is sent.

The inputs go to the real ``customerio-mcp`` process as raw JSON-RPC lines on stdin, exactly as a
client could write them: a ``1e400`` number, ``NaN`` inside a string body, a string body nested a
thousand levels deep, an integer of thousands of digits, an escaped lone surrogate, a superscript
digit as a segment ID, a 200,000-character identifier, and a list or an object as a v2 ``action``.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest

from tests.fake_customerio import FakeCustomerIO
from tests.processes import INITIALIZE, INITIALIZED, command, server_env

DEEP = "[" * 1000 + "]" * 1000


def _string_body(text: str) -> str:
    """Arguments whose request_body is ``text`` given as a JSON string (so we parse it, not the SDK)."""
    return '{"request_body":' + __import__("json").dumps(text) + "}"


def _v2(action: str) -> str:
    return '{"type":"person","action":' + action + ',"identifiers":{"id":"1"}}'


# raw "arguments" JSON text, tool, field named
CASES: list[tuple[str, str, str]] = [
    (
        '{"customer_identifier":"1","request_body":{"name":"e","data":{"n":1e400}}}',
        "send_customer_event",
        "request_body.data.n",
    ),
    (_string_body('{"name":"e","data":{"n":NaN}}'), "track_anonymous_event", "request_body"),
    (_string_body('{"name":"e","data":{"n":Infinity}}'), "track_anonymous_event", "request_body"),
    (_string_body('{"name":"e","data":' + DEEP + "}"), "track_anonymous_event", "request_body"),
    # 100 deep: past our bound of 64, inside the SDK's own JSON parser limit (deeper never reaches a tool at all)
    (
        '{"request_body":{"name":"e","data":' + "[" * 100 + "]" * 100 + "}}",
        "track_anonymous_event",
        "request_body.data" + "[0]" * 63,
    ),
    (_string_body('{"name":"e","data":{"n":' + "9" * 5000 + "}}"), "track_anonymous_event", "request_body"),
    ('{"request_body":{"name":"e","data":{"n":' + "9" * 3000 + "}}}", "track_anonymous_event", "request_body.data.n"),
    (_string_body(r'{"name":"\ud800"}'), "track_anonymous_event", "request_body.name"),  # an escaped lone surrogate
    ('{"segment_identifier":"\u00b2","request_body":{"ids":["1"]}}', "add_people_to_segment", "segment_identifier"),
    ('{"customer_identifier":"' + "x" * 200_000 + '"}', "delete_customer", "customer_identifier"),
    (
        '{"delivery_id_for_unsubscription":"' + "d" * 200_000 + '"}',
        "global_unsubscribe_user",
        "delivery_id_for_unsubscription",
    ),
    (
        '{"request_body":{"batch":[' + _v2('["delete"]') + "]}}",
        "batch_process_requests",
        "request_body.batch[0].action",
    ),
    ('{"request_body":' + _v2('{"x":1}') + "}", "manage_entity", "request_body.action"),
]


def _request(number: int, tool: str, arguments: str) -> str:
    params = '{"name":' + __import__("json").dumps(tool) + ',"arguments":' + arguments + "}"
    return '{"jsonrpc":"2.0","id":' + str(number) + ',"method":"tools/call","params":' + params + "}\n"


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[int, Any], str, FakeCustomerIO]:
    """Every case sent to one real server process, then one valid call to prove it kept serving."""
    fake = FakeCustomerIO().start()
    lines = [json.dumps(INITIALIZE) + "\n", json.dumps(INITIALIZED) + "\n"]
    lines += [_request(10 + i, tool, arguments) for i, (arguments, tool, _) in enumerate(CASES)]
    lines.append(_request(999, "delete_customer", '{"customer_identifier":"still-serving"}'))
    lines.append(_request(1000, "bad\ntool\nname: WARNING forged " + "y" * 5000, "{}"))
    proc = subprocess.Popen(
        [command()], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=server_env(fake)
    )
    try:
        out, err = proc.communicate("".join(lines).encode(), timeout=120)
    finally:
        fake.stop()
    answers = {message["id"]: message for message in map(json.loads, out.splitlines()) if "id" in message}
    return answers, err.decode(errors="replace"), fake


@pytest.mark.parametrize(("arguments", "tool", "field"), CASES, ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_each_hostile_input_is_an_input_error_naming_the_field(
    answers: tuple[dict[int, Any], str, FakeCustomerIO], arguments: str, tool: str, field: str
) -> None:
    replies, _, _ = answers
    result = replies[10 + CASES.index((arguments, tool, field))]["result"]
    assert result["isError"] is True
    error = result["structuredContent"]["error"]
    assert error["type"] == "invalid_input", result["content"][0]["text"]
    assert error["field"] == field, result["content"][0]["text"]
    text = result["content"][0]["text"]
    assert "internal error" not in text
    assert "Nothing was sent to Customer.io" in text
    assert len(text) < 1_500


def test_nothing_was_sent_and_the_server_kept_serving(answers: tuple[dict[int, Any], str, FakeCustomerIO]) -> None:
    replies, stderr, fake = answers
    assert "isError" not in replies[999]["result"] or replies[999]["result"]["isError"] is False
    assert [request.raw_path for request in fake.requests] == ["/api/v1/customers/still-serving"]
    assert "Traceback" not in stderr


def test_a_tool_name_cannot_forge_a_log_line(answers: tuple[dict[int, Any], str, FakeCustomerIO]) -> None:
    replies, stderr, _ = answers
    assert replies[1000]["result"]["isError"] is True
    assert not any(line.startswith("name: WARNING forged") for line in stderr.splitlines())
    assert "bad\\ntool\\nname" in stderr
    assert "y" * 200 not in stderr
    assert time.time()  # the whole module ran against one process, bounded by communicate()'s timeout
