"""Every tool result the suite receives, checked against the declared output schema and the full result schema.

``conftest.py`` wraps the SDK's ``ClientSession.call_tool`` for every test, so that each
``CallToolResult`` any test gets (in process, over stdio, SSE or Streamable HTTP, success or error)
must carry ``structuredContent`` that matches both ``DECLARED_OUTPUT_SCHEMA`` (what ``tools/list``
declares) and ``RESULT_SCHEMA`` (the whole shape), with ``isError`` exactly when ``ok`` is false.
The SDK's own client checks only successful results against the declared schema; this checks
errors too, and the whole shape. ``SEEN`` records which kinds of result each tool produced.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import mcp_types as types
from jsonschema import Draft202012Validator

from customerio_mcp.tools.result_schema import DECLARED_OUTPUT_SCHEMA, RESULT_SCHEMA

_FULL = Draft202012Validator(RESULT_SCHEMA)
_DECLARED = Draft202012Validator(DECLARED_OUTPUT_SCHEMA)
SEEN: defaultdict[str, set[str]] = defaultdict(set)
"""Tool name -> the kinds of result seen: success, dry_run, schema, or the error's type."""


def kind_of(structured: dict[str, Any]) -> str:
    if structured.get("ok") is False:
        return str(structured["error"]["type"])
    if structured.get("dry_run"):
        return "dry_run"
    return "schema" if structured.get("mode") == "get_request_schema" else "success"


def check_result(name: str, result: Any) -> None:
    """Raise AssertionError unless ``result`` (a tools/call answer) has the shape every tool promises."""
    if not isinstance(result, types.CallToolResult):
        return  # an input_required round trip: no structuredContent to declare (the final answer is checked)
    structured = result.structured_content
    assert isinstance(structured, dict), f"{name}: a result without structuredContent: {result}"
    for validator in (_DECLARED, _FULL):
        problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(structured)]
        assert not problems, f"{name}: {problems[:3]} in {str(structured)[:500]}"
    assert bool(result.is_error) is (structured["ok"] is False), f"{name}: isError disagrees with ok"
    SEEN[name].add(kind_of(structured))
