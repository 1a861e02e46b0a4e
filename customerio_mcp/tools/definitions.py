"""The MCP ``Tool`` definitions (input schema, output schema, annotations) derived from the tool table.

Input schemas stay small and portable: plain objects with no ``$ref``, no type arrays and no
combinators, so every mainstream client accepts them. The full request-body schema is not inlined
here (it would make ``tools/list`` hundreds of kilobytes); a model gets it on demand with
``mode='get_request_schema'``. What ``mode`` and the Pipelines strict flags mean is said once, in the
server's instructions, rather than 18 and 7 times here: that room holds every tool's ``outputSchema``
within 16 KB (``result_schema.py`` says why it is the root of the result schema only).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import mcp_types as types

from customerio_mcp.tools.result_schema import DECLARED_OUTPUT_SCHEMA
from customerio_mcp.tools.table import TOOLS, QueryParam, ToolSpec

MODES = ("execute", "get_request_schema")

_MODE = {"type": "string", "enum": list(MODES), "default": "execute"}
_BODY = {"type": "object"}
_STRICT = {"type": "boolean"}
"""These three are explained once, in the server's instructions, rather than in every tool that takes them."""


def _query_schema(query: QueryParam) -> dict[str, Any]:
    if query.kind == "integer":
        bounds = {"minimum": 1} | ({"maximum": query.maximum} if query.maximum is not None else {})
        return {"type": "integer", **bounds, "description": query.description}
    if query.kind == "text":
        return {"type": "string", "minLength": 1, "description": query.description}
    return {"type": "string", "enum": list(query.choices), "default": query.default, "description": query.description}


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
        properties[query.name] = _query_schema(query)
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
        output_schema=DECLARED_OUTPUT_SCHEMA,
        # Hints equal to their MCP defaults are left out (readOnly false, idempotent false, openWorld true),
        # which keeps tools/list within 16 KB; destructiveHint defaults to true, so it is always given. A tool
        # that reads Customer.io's data says openWorldHint all the same: what it returns comes from outside.
        annotations=types.ToolAnnotations(
            read_only_hint=tool.read_only or None,
            destructive_hint=tool.destructive_hint,
            idempotent_hint=tool.idempotent or None,
            open_world_hint=tool.reads_data or None,
        ),
    )


@cache
def tool_definitions(tools: tuple[ToolSpec, ...] = TOOLS) -> tuple[types.Tool, ...]:
    return tuple(tool_definition(tool) for tool in tools)
