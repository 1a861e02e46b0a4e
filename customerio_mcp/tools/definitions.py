"""The MCP ``Tool`` definitions (input schema, annotations) derived from the tool table.

Input schemas stay small and portable: plain objects with no ``$ref``, no type arrays and no
combinators, so every mainstream client accepts them. The full request-body schema is not inlined
here (it would make ``tools/list`` hundreds of kilobytes); a model gets it on demand with
``mode='get_request_schema'``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import mcp_types as types

from customerio_mcp.tools.table import TOOLS, ToolSpec

MODES = ("execute", "get_request_schema")

_MODE = {
    "type": "string",
    "enum": list(MODES),
    "default": "execute",
    "description": "get_request_schema: the body's JSON Schema; nothing sent",
}
_BODY = {"type": "object"}
"""Explained once, in the server's instructions, rather than 20 times here."""
_STRICT = {
    "type": "boolean",
    "description": "Reject invalid calls instead of dropping them (default true).",
}


def input_schema(tool: ToolSpec) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    if tool.body is not None:
        properties["mode"] = _MODE
    for param in tool.path_params:
        if param.kind == "integer":
            properties[param.name] = {"type": "integer", "minimum": 1, "description": param.description}
        else:
            properties[param.name] = {"type": "string", "minLength": 1, "description": param.description}
        required.append(param.name)
    for query in tool.query_params:
        properties[query.name] = {
            "type": "string",
            "enum": list(query.choices),
            "default": query.default,
            "description": query.description,
        }
    if tool.strict_param is not None:
        properties[tool.strict_param] = _STRICT
    if tool.name == "global_unsubscribe_user":
        properties["set_unsubscribed_attribute"] = {
            "type": "boolean",
            "default": True,
            "description": "Whether to set the person's unsubscribed attribute.",
        }
    if tool.body is not None:
        properties["request_body"] = _BODY
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def tool_definition(tool: ToolSpec) -> types.Tool:
    return types.Tool(
        name=tool.name,
        title=tool.title,
        description=tool.description,
        input_schema=input_schema(tool),
        # Hints equal to their MCP defaults are left out (readOnly false, idempotent false, openWorld true),
        # which keeps tools/list within 16 KB; destructiveHint defaults to true, so it is always given.
        annotations=types.ToolAnnotations(
            read_only_hint=tool.read_only or None,
            destructive_hint=tool.destructive_hint,
            idempotent_hint=tool.idempotent or None,
        ),
    )


@cache
def tool_definitions(tools: tuple[ToolSpec, ...] = TOOLS) -> tuple[types.Tool, ...]:
    return tuple(tool_definition(tool) for tool in tools)
