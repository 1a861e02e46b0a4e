"""Every tool declares an output schema, and every kind of result of every tool matches it (issue 20, point 2).

The suite-wide check in ``conftest.py`` validates whatever result any test happens to get; this file
makes each tool produce each kind on purpose: success, dry run, schema mode, every error kind
(local, configuration, each Customer.io failure, no connection, not confirmed, server busy,
shutting down, a bug), and checks that they all came (``result_shapes.SEEN``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from customerio_mcp import errors
from customerio_mcp.customerio.api import ApiRequest
from customerio_mcp.serving.limits import ServerBusy
from customerio_mcp.settings import Settings
from customerio_mcp.tools import confirmation
from customerio_mcp.tools.result_schema import DECLARED_OUTPUT_SCHEMA, ERROR_SCHEMA, RESULT_SCHEMA
from customerio_mcp.tools.results import failure_result, interrupted_result
from customerio_mcp.tools.runner import CallRecord, ToolRunner
from customerio_mcp.tools.table import TOOLS, TOOLS_BY_NAME, ToolSpec
from tests.conftest import connect, settings_for
from tests.fake_customerio import FakeCustomerIO
from tests.result_shapes import SEEN, check_result
from tests.test_requests import CASES, PERSON, PHONE

ARGUMENTS = {name: arguments for name, arguments, *_ in reversed(CASES)}
"""A valid call of each tool (the first case test_requests.py has for it)."""
FAILURES: list[tuple[str, dict[str, Any]]] = [
    ("bad_request", {"status": 400, "body": {"meta": {"error": "bad"}}}),
    ("authentication", {"status": 401, "body": {"meta": {"error": "no"}}}),
    ("not_found", {"status": 404}),
    ("rate_limited", {"status": 429}),
    ("server_error", {"status": 503}),
    ("transport", {"drop": True}),
]
"""Customer.io's failures, each repeated on every attempt."""


def test_the_result_schema_is_valid_and_the_declared_one_is_its_root() -> None:
    Draft202012Validator.check_schema(RESULT_SCHEMA)
    Draft202012Validator.check_schema(DECLARED_OUTPUT_SCHEMA)
    assert DECLARED_OUTPUT_SCHEMA == {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    assert "$ref" not in json.dumps(RESULT_SCHEMA)


def test_every_error_kind_is_in_the_schema() -> None:
    kinds = set()
    pending = [errors.CustomerIOMCPError]
    while pending:
        cls = pending.pop()
        kinds.add(cls.kind)
        pending += cls.__subclasses__()
    assert confirmation.NotConfirmedError.kind in kinds
    assert kinds == set(ERROR_SCHEMA["properties"]["type"]["enum"])


async def test_every_tool_declares_its_output_schema(fake: FakeCustomerIO) -> None:
    async with connect(settings_for(fake, app_api_key=fake.app_key)) as client:
        listed = (await client.list_tools()).tools
    assert len(listed) == len(TOOLS)
    for tool in listed:
        assert tool.output_schema == DECLARED_OUTPUT_SCHEMA, tool.name


def seed(fake: FakeCustomerIO) -> None:
    """The person and object the verify tools' calls read."""
    fake.app.add_person(PERSON, email="a@example.com", phone=PHONE)
    fake.app.add_object("1", "acme/1", name="Acme")


@pytest.mark.parametrize("tool", TOOLS, ids=lambda tool: tool.name)
async def test_every_kind_of_result_of_every_tool_matches_the_schema(
    fake: FakeCustomerIO, tool: ToolSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, arguments = tool.name, ARGUMENTS[tool.name]
    SEEN.pop(name, None)  # only what this test produces counts
    seed(fake)
    keys = {"app_api_key": fake.app_key}
    expected = {"success", "dry_run", "invalid_input", "unknown_tool", "server_busy", "delivery", "error"}
    expected |= {kind for kind, _ in FAILURES}
    async with connect(settings_for(fake, **keys)) as client:
        await client.call_tool(name, arguments)
        await client.call_tool(name, {**arguments, "no_such_parameter": 1})
        if tool.body is not None:
            await client.call_tool(name, {**arguments, "mode": "get_request_schema"})
            expected.add("schema")
        for _, fault in FAILURES:
            fake.fail(times=8, **fault)  # more than every attempt
            await client.call_tool(name, arguments)
            fake.clear_faults()
        if name == "batch_process_requests":
            fake.next_response["/api/v2/batch"] = (207, {"errors": [{"batch_index": 0, "reason": "bad"}]})
            await client.call_tool(name, arguments)
            expected.add("partial_failure")
        with monkeypatch.context() as patched:
            patched.setattr(ToolRunner, "build_request", _a_bug)
            await client.call_tool(name, arguments)
    if tool.destructive == "always":  # confirmation required, and this client cannot be asked
        async with connect(settings_for(fake, **keys, confirm_destructive="required")) as client:
            await client.call_tool(name, arguments)
        expected.add("not_confirmed")
    async with connect(Settings(dry_run=True, **keys)) as client:
        await client.call_tool(name, arguments)
    another = "add_to_group" if name == "get_track_api_region" else "get_track_api_region"
    async with connect(Settings(tools=[another], **keys)) as client:
        await client.call_tool(name, arguments)
    if tool.api == "track":  # a Pipelines or verify tool is never served without its key
        async with connect(Settings(region="us")) as client:  # no key at all: nothing can be sent
            await client.call_tool(name, arguments)
        expected.add("configuration")
    check_result(name, failure_result(name, ServerBusy(64, 3)))
    check_result(name, interrupted_result(name, CallRecord()))
    sent = ApiRequest(tool.api, tool.method, tool.path, body={"name": "e", "id": "01HZY3T6Q4V5W7X8Y9Z0A1B2C3"})
    check_result(name, interrupted_result(name, CallRecord(tool, sent, sending=True)))

    assert expected <= SEEN[name], expected - SEEN[name]


def _a_bug(*_: Any, **__: Any) -> Any:
    raise RuntimeError("a bug in customerio-mcp")


def test_every_tool_has_a_valid_call() -> None:
    assert set(ARGUMENTS) == set(TOOLS_BY_NAME)
