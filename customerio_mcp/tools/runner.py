"""The one code path every tool call takes: check the arguments, build the request, send, shape.

Nothing reaches Customer.io unless every check passes. Every failure, local or remote, becomes a
``CallToolResult`` with ``isError: true`` whose text says which field is wrong and how to fix it;
only a bug in this package produces a generic message (and a stack trace on stderr, never in the
result).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import mcp_types as types

from customerio_mcp.customerio.api import ApiRequest, ApiResponse
from customerio_mcp.customerio.client import CustomerIOClient
from customerio_mcp.errors import CustomerIOMCPError, InputError, UnknownToolError
from customerio_mcp.settings import Settings
from customerio_mcp.tools.body_checks import check_person_identifier, parse_body, prepare_body
from customerio_mcp.tools.definitions import MODES
from customerio_mcp.tools.schemas import body_schema
from customerio_mcp.tools.selection import (
    EVERYTHING,
    Narrowing,
    destructive_allowed,
    enabled_tools,
    refuse_destructive_operations,
    why_disabled,
)
from customerio_mcp.tools.table import REPLAY_SAFE_BODIES, TOOLS_BY_NAME, PathParam, ToolSpec

logger = logging.getLogger(__name__)

MAX_TEXT_RESPONSE = 4_000
_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


def encode_segment(value: str) -> str:
    """Percent-encode ``value`` as exactly one path segment (``/``, ``?``, ``#`` and dot segments too)."""
    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if encoded in {".", ".."} else encoded


def parse_flag(field: str, value: Any) -> bool:
    """A boolean given as a JSON boolean, 0/1, or the strings true/false/1/0 in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InputError(field, f"must be a boolean, got {value!r}", "pass true or false")


@dataclass(frozen=True)
class CallScope:
    """What one request may do and where it goes: set by the serving layer for each request."""

    client: CustomerIOClient
    """The client of the workspace this request writes to."""
    narrowing: Narrowing = EVERYTHING


class ToolRunner:
    def __init__(self, client: CustomerIOClient, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self._enabled: dict[Narrowing, dict[str, ToolSpec]] = {}

    @property
    def default_scope(self) -> CallScope:
        """The scope of a request that carries nothing of its own (stdio, static token)."""
        return CallScope(self._client)

    def enabled(self, narrowing: Narrowing = EVERYTHING) -> dict[str, ToolSpec]:
        """The tools served to a request with ``narrowing``, by name; computed once per narrowing."""
        found = self._enabled.get(narrowing)
        if found is None:
            found = self._enabled[narrowing] = {tool.name: tool for tool in enabled_tools(self._settings, narrowing)}
        return found

    async def call(
        self, name: str, arguments: Mapping[str, Any] | None, scope: CallScope | None = None
    ) -> types.CallToolResult:
        scope = scope or self.default_scope
        try:
            tool = self._tool(name, scope.narrowing)
            args = dict(arguments or {})
            _reject_unknown_arguments(tool, args)
            if tool.body is not None and _mode(args) == "get_request_schema":
                return _schema_result(tool)
            request = self.build_request(tool, args, scope.narrowing)
            if self._settings.dry_run:
                return _dry_run_result(tool, scope.client.preview(request), scope.client.missing_credentials(tool.api))
            response = await scope.client.send(request)
            return _success(tool, request, response)
        except CustomerIOMCPError as error:
            logger.info("%s failed: %s", name, type(error).__name__)
            return _failure(name, error)
        except Exception:
            logger.exception("unexpected error in tool %s", name)
            return _failure(
                name,
                CustomerIOMCPError(
                    f"customerio-mcp hit an internal error while running {name}; this is a bug, please report it "
                    "with the server's stderr log. The request may or may not have reached Customer.io."
                ),
            )

    def _tool(self, name: str, narrowing: Narrowing) -> ToolSpec:
        enabled = self.enabled(narrowing)
        tool = enabled.get(name)
        if tool is not None:
            return tool
        if name in TOOLS_BY_NAME:
            raise UnknownToolError(
                "name",
                f"the tool {name!r} is not enabled on this server: "
                f"{why_disabled(TOOLS_BY_NAME[name], self._settings, narrowing)}",
                f"use one of the tools this server lists: {', '.join(enabled)}",
            )
        raise UnknownToolError("name", f"there is no tool {name!r}", f"call one of: {', '.join(enabled)}")

    def build_request(self, tool: ToolSpec, args: dict[str, Any], narrowing: Narrowing = EVERYTHING) -> ApiRequest:
        """Every local check, and the exact request to send; raises InputError with nothing sent."""
        path = tool.path
        for param in tool.path_params:
            path = path.replace("{" + param.segment + "}", encode_segment(_path_value(param, args.get(param.name))))
        query = {q.key: _choice(q.name, args.get(q.name, q.default), q.choices) for q in tool.query_params}
        headers: dict[str, str] = {}
        if tool.strict_param is not None:
            given = args.get(tool.strict_param)
            strict = self._settings.pipelines_strict if given is None else parse_flag(tool.strict_param, given)
            headers["X-Strict-Mode"] = "1" if strict else "0"
        body: Any = None
        if tool.name == "global_unsubscribe_user":
            flag = args.get("set_unsubscribed_attribute")
            body = {"unsubscribe": True if flag is None else parse_flag("set_unsubscribed_attribute", flag)}
        elif tool.body is not None:
            body = parse_body(args.get("request_body"))
            if not destructive_allowed(self._settings, narrowing):
                refuse_destructive_operations(tool, body)
            body = prepare_body(tool, body)
        return ApiRequest(tool.api, tool.method, path, query, headers, body, tool.replay_safe)


def _allowed_arguments(tool: ToolSpec) -> list[str]:
    names = [p.name for p in tool.path_params] + [q.name for q in tool.query_params]
    if tool.strict_param:
        names.append(tool.strict_param)
    if tool.name == "global_unsubscribe_user":
        names.append("set_unsubscribed_attribute")
    if tool.body is not None:
        names += ["mode", "request_body"]
    return names


def _reject_unknown_arguments(tool: ToolSpec, args: Mapping[str, Any]) -> None:
    allowed = _allowed_arguments(tool)
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) if allowed else "no parameters"
        raise InputError(
            unknown[0],
            f"is not a parameter of {tool.name}",
            f"remove it; {tool.name} takes {takes}"
            + ("; body fields go inside request_body" if tool.body is not None else ""),
        )


def _mode(args: Mapping[str, Any]) -> str:
    mode = args.get("mode", "execute")
    return _choice("mode", "execute" if mode is None else mode, MODES)


def _choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InputError(field, f"is {value!r}", f"use one of: {', '.join(choices)}")
    return value


def _path_value(param: PathParam, value: Any) -> str:
    if value is None:
        raise InputError(param.name, "is missing", f"pass {param.description[0].lower()}{param.description[1:]}")
    if param.kind == "integer":
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(param.name, f"must be a positive integer, got {value!r}", "pass the numeric ID")
        return str(value)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(param.name, f"must be a string, got {type(value).__name__}", "pass the identifier as text")
    text = str(value)
    if not text.strip():
        raise InputError(param.name, "is empty", "pass a non-empty identifier")
    if param.kind == "person":
        check_person_identifier(param.name, text)
    return text


def _schema_result(tool: ToolSpec) -> types.CallToolResult:
    schema = body_schema(tool)
    note = (
        f"JSON Schema of the request_body for {tool.name} ({tool.method} {tool.path}); nothing was sent. "
        "Call again with mode='execute' and a request_body that matches it."
    )
    if tool.call_type is not None:
        note += f" `type` is filled in as {tool.call_type!r} when omitted."
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=note + "\n" + json.dumps(schema, separators=(",", ":")))],
        structured_content={"tool": tool.name, "method": tool.method, "path": tool.path, "schema": schema},
    )


def _success(tool: ToolSpec, request: ApiRequest, response: ApiResponse) -> types.CallToolResult:
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
    if tool.body in REPLAY_SAFE_BODIES and isinstance(request.body, dict):
        sent_ids = _sent_ids(request.body)
        if sent_ids:
            shaped["sent_ids"] = sent_ids
    tries = f"{response.attempts} attempt{'s' if response.attempts != 1 else ''}"
    body_text = json.dumps(response.body, ensure_ascii=False)
    if len(body_text) > MAX_TEXT_RESPONSE:
        body_text = body_text[:MAX_TEXT_RESPONSE] + "… (truncated; see structured content)"
    text = (
        f"Done: {request.method} {request.path} -> {response.status} ({tool.api} API, region {response.region}, "
        f"{tries}). Response: {body_text}"
    )
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=shaped)


def _dry_run_result(tool: ToolSpec, preview: dict[str, Any], missing: list[str]) -> types.CallToolResult:
    lines = [
        f"DRY RUN: nothing was sent to Customer.io. {tool.name} passed every local check; this is the request "
        f"that would have been sent:",
        f"{preview['method']} {preview['url']}",
    ]
    if preview["body"] is not None:
        lines.append(json.dumps(preview["body"], ensure_ascii=False))
    if missing:
        lines.append(f"A real call would still need {' and '.join(missing)} in the server's environment.")
    return types.CallToolResult(
        content=[types.TextContent(type="text", text="\n".join(lines))],
        structured_content={
            "ok": True,
            "dry_run": True,
            "tool": tool.name,
            "api": tool.api,
            "request": preview,
            "missing_credentials": missing,
        },
    )


def _sent_ids(body: dict[str, Any]) -> dict[str, Any]:
    """The deduplication keys the request carried, so a caller can correlate or resend safely."""
    for key in ("id", "messageId"):
        if key in body and isinstance(body[key], str):
            return {key: body[key]}
    batch = body.get("batch")
    if isinstance(batch, list):
        keys = [item.get("messageId", item.get("id")) if isinstance(item, dict) else None for item in batch]
        if any(keys):
            return {"batch": keys}
    return {}


def _failure(name: str, error: CustomerIOMCPError) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=error.message)],
        structured_content={"ok": False, "tool": name, "error": error.to_dict()},
        is_error=True,
    )
