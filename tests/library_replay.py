"""Replaying what Customer.io's own libraries sent through the matching tools (Python and Node libraries alike).

A request a library put on the wire is turned back into tool arguments (path parameters read back
from the path, query parameters from the query, the body as sent), called through the real server
against a fresh fake Customer.io, and what the tool sends must mean the same request: same method,
same path once each segment is decoded (``encodeURIComponent`` and Python's ``quote`` escape a few
characters differently, e.g. ``(``), same body apart from the ``id`` / ``messageId`` / ``type`` keys
the server adds. Two differences are decisions, asserted here (README "Relaxations"): a bodiless
endpoint (suppress, unsuppress) gets no body where the libraries send ``{}``, and the segment tools
always send ``id_type`` (``id`` when not given) where a library may send none.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from customerio_mcp.tools.table import TOOLS, ToolSpec
from tests.conftest import call
from tests.fake_customerio import FakeCustomerIO, Recorded

ADDED = {"id", "messageId", "type"}
PIPELINES_TOOLS = {
    "identify": "identify_person_and_assign_traits",
    "track": "track_user_event",
    "page": "send_page_view_event",
    "screen": "send_screen_view_event",
    "group": "add_to_group",
    "alias": "alias_user_identity",
}


def tool_for(request: Recorded) -> ToolSpec:
    if request.api == "pipelines":
        return next(tool for tool in TOOLS if tool.api == "pipelines" and request.raw_path == "/v1" + tool.path)
    return next(
        tool for tool in TOOLS if tool.api == "track" and (tool.method, tool.path) == (request.method, request.route)
    )


def arguments_for(tool: ToolSpec, request: Recorded) -> dict[str, Any]:
    """The tool arguments that make ``request``: path and query parameters read back, and the body."""
    arguments: dict[str, Any] = {}
    template, actual = (
        tool.path.split("/"),
        request.raw_path.removeprefix("/v1" if tool.api == "pipelines" else "").split("/"),
    )
    for part, value in zip(template, actual, strict=True):
        for param in tool.path_params:
            if part == "{" + param.segment + "}":
                arguments[param.name] = unquote(value)
    for query in tool.query_params:
        if query.key in request.query:
            (arguments[query.name],) = request.query[query.key]
    if tool.body is not None:
        arguments["request_body"] = request.body
    elif tool.name == "global_unsubscribe_user" and isinstance(request.body, dict) and "unsubscribe" in request.body:
        arguments["set_unsubscribed_attribute"] = request.body["unsubscribe"]
    return arguments


def _expected_body(tool: ToolSpec, request: Recorded) -> Any:
    """What the tool sends for ``request``: its body; none for a bodiless endpoint (the libraries send {})."""
    if tool.body is not None or tool.name == "global_unsubscribe_user":
        return request.body
    assert request.body in (None, {}), tool.name
    return None


def replays(requests: list[Recorded]) -> Iterator[tuple[str, dict[str, Any], Recorded]]:
    """(tool, arguments, original) for every request, and for each call inside a Pipelines batch."""
    for request in requests:
        tool = tool_for(request)
        yield tool.name, arguments_for(tool, request), request
        if tool.name == "send_batch_requests":  # each call in the batch is also a single call
            for item in request.body["batch"]:
                yield PIPELINES_TOOLS[item["type"]], {"request_body": item}, request


def without(value: Any, keys: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [without(v, keys) for v in value]
    return value


def decoded_path(raw_path: str) -> list[str]:
    """The path's segments, each percent-decoded: equal for two encodings of the same path."""
    return [unquote(segment) for segment in raw_path.split("/")]


async def replay_all(requests: list[Recorded]) -> int:
    """Replay every request through its tool; each must pass and reach Customer.io meaning the same. The count."""
    replayed = 0
    for tool_name, arguments, original in replays(requests):
        with FakeCustomerIO() as fake:
            result = await call(fake, tool_name, arguments)
            assert not result.is_error, f"{tool_name}: {result.content[0].text}"
            # A field Customer.io's own library sends is never one "Customer.io ignores".
            assert "warnings" not in result.structured_content, (tool_name, result.structured_content["warnings"])
            sent = fake.only_request()
        body = arguments.get("request_body")
        if original.raw_path == "/v1/batch" and tool_name != "send_batch_requests":
            assert without(sent.body, ADDED) == without(body, ADDED)
            assert sent.raw_path == "/v1/" + body["type"]
        else:
            assert sent.method == original.method, tool_name
            assert decoded_path(sent.raw_path) == decoded_path(original.raw_path), tool_name
            assert without(sent.body, ADDED) == without(_expected_body(tool_for(original), original), ADDED), tool_name
            for query in tool_for(original).query_params:  # always sent, the default when the library sent none
                assert sent.query[query.key] == original.query.get(query.key, [query.default]), tool_name
        assert fake.rejections == []
        replayed += 1
    return replayed
