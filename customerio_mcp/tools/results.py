"""What a tool call answers: the shapes of success, dry run, schema, and failure results.

Every result has a one-line (or short) text a model reads first and structured content a program
can rely on. Failures are ``isError`` results whose text is the error's own message. A success or
dry run whose body holds fields Customer.io ignores carries ``warnings`` (each a ``field``, its
``problem`` and the ``fix``), and the text says so in one sentence.
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types

from customerio_mcp.customerio.api import ApiRequest, ApiResponse
from customerio_mcp.errors import CustomerIOMCPError, DeliveryError
from customerio_mcp.tools.dedupe_keys import sent_ids
from customerio_mcp.tools.ignored_fields import NOTHING_IGNORED, IgnoredFields
from customerio_mcp.tools.schemas import body_schema
from customerio_mcp.tools.table import ToolSpec

MAX_TEXT_RESPONSE = 4_000


def schema_result(tool: ToolSpec) -> types.CallToolResult:
    """The body's JSON Schema, once, in the text (a model reads text; the schema is ≤ 16 KB)."""
    note = (
        f"JSON Schema of the request_body for {tool.name} ({tool.method} {tool.path}); nothing was sent. "
        "Call again with mode='execute' and a request_body that matches it."
    )
    if tool.call_type is not None:
        note += f" `type` is filled in as {tool.call_type!r} when omitted."
    return types.CallToolResult(
        content=[
            types.TextContent(type="text", text=note + "\n" + json.dumps(body_schema(tool), separators=(",", ":")))
        ],
        structured_content={"tool": tool.name, "method": tool.method, "path": tool.path},
    )


def success_result(
    tool: ToolSpec, request: ApiRequest, response: ApiResponse, warnings: IgnoredFields = NOTHING_IGNORED
) -> types.CallToolResult:
    shaped: dict[str, Any] = {
        "ok": True,
        "status": response.status,
        "api": tool.api,
        "method": request.method,
        "path": request.path,
        "region": response.region,
        "attempts": response.attempts,
        "response": response.body,
    }
    if request.query:
        shaped["query"] = dict(request.query)
    keys = sent_ids(request.body)
    if keys:
        shaped["sent_ids"] = keys
    if warnings:
        shaped["warnings"] = warnings.as_list()
    tries = f"{response.attempts} attempt{'s' if response.attempts != 1 else ''}"
    body_text = json.dumps(response.body, ensure_ascii=False)
    if len(body_text) > MAX_TEXT_RESPONSE:
        body_text = body_text[:MAX_TEXT_RESPONSE] + "… (truncated; see structured content)"
    text = (
        f"Done: {request.method} {request.path} -> {response.status} ({tool.api} API, region {response.region}, "
        f"{tries}). Response: {body_text}"
    )
    if warnings:
        text += "\n" + warnings.sentence()
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=shaped)


def dry_run_result(
    tool: ToolSpec, preview: dict[str, Any], missing: list[str], warnings: IgnoredFields = NOTHING_IGNORED
) -> types.CallToolResult:
    """The request that would have been sent, and what a real call would still need."""
    lines = [
        f"DRY RUN: nothing was sent to Customer.io. {tool.name} passed every local check; this is the request "
        "that would have been sent:",
        f"{preview['method']} {preview['url']}",
    ]
    if preview["body"] is not None:
        lines.append(json.dumps(preview["body"], ensure_ascii=False))
    if missing:
        lines.append(f"A real call would still need {' and '.join(missing)} in the server's environment.")
    if warnings:
        lines.append(warnings.sentence())
    structured: dict[str, Any] = {
        "ok": True,
        "dry_run": True,
        "tool": tool.name,
        "api": tool.api,
        "request": preview,
        "missing_credentials": missing,
    }
    if warnings:
        structured["warnings"] = warnings.as_list()
    return types.CallToolResult(
        content=[types.TextContent(type="text", text="\n".join(lines))], structured_content=structured
    )


def failure_result(name: str, error: CustomerIOMCPError) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=error.message)],
        structured_content={"ok": False, "tool": name, "error": error.to_dict()},
        is_error=True,
    )


def with_repeat_guidance(error: DeliveryError, tool: ToolSpec, request: ApiRequest) -> DeliveryError:
    """``error`` with the keys the request carried (``sent_ids``) and, when it may have been applied, how to
    repeat it without duplicating anything: with the same keys, as is (idempotent), or after a check."""
    keys = sent_ids(request.body)
    if keys:
        error.details["sent_ids"] = keys
    if not error.details.get("maybe_applied"):
        return error
    if keys and request.replay_safe:
        advice = f"It is safe to repeat with the same ids: {_how_to_pass(keys)}; Customer.io drops what it already has."
    elif request.replay_safe:
        advice = "Repeating it is safe: applying it twice changes nothing more than once."
    else:
        advice = (
            f"Before repeating it, check {tool.check_before_repeat or 'in Customer.io whether it was applied'}: "
            "sending it again may apply it twice."
        )
    error.message = f"{error.message.rstrip()} {advice}"
    return error


def _how_to_pass(keys: dict[str, Any]) -> str:
    if "batch" in keys:
        return (
            "send the same batch with each item's `id`/`messageId` as listed in `sent_ids.batch` (same order; null: "
            "the item needs none)"
        )
    name, value = next(iter(keys.items()))
    return f'pass `request_body.{name}` = "{value}"'


def interrupted_result(name: str, record: Any) -> types.CallToolResult:
    """The answer of a call that the server stopped at shutdown, when its drain window closed.

    ``record`` is the runner's ``CallRecord``: whether the request may have left, and which keys it carried.
    """
    if not record.sending or record.request is None or record.tool is None:
        error = DeliveryError(
            f"The server is shutting down and stopped {name} before it sent anything to Customer.io. Nothing was "
            "sent: call it again once the server is back."
        )
        return failure_result(name, error)
    error = DeliveryError(
        f"The server is shutting down (CUSTOMERIO_MCP_DRAIN_SECONDS ran out) while {name} was waiting for "
        "Customer.io's answer. Customer.io may or may not have applied it.",
        reason="shutting_down",
        maybe_applied=True,
    )
    return failure_result(name, with_repeat_guidance(error, record.tool, record.request))
