"""The shape of every tool's structured result, as JSON Schema: the contract hosts and code-mode clients rely on.

One shape for every tool, its ``ok`` telling the kinds apart (``tools/results.py`` builds them):

- success: ``ok: true``, ``status``, ``api``, ``method``, ``path``, ``region``, ``attempts``, then
  Customer.io's answer as ``response`` (writes) or ``data_from_customerio`` (the verify reads, whose
  text is untrusted), ``query``, ``sent_ids`` and ``warnings`` when there are some;
- dry run: ``ok: true, dry_run: true``, the ``request`` it would send and ``missing_credentials``;
- schema mode: ``ok: true, mode: "get_request_schema"`` (the schema itself is in the text);
- error (``isError``): ``ok: false`` and ``error`` with ``type`` and ``message``, and the details a
  program acts on: ``field``, ``problem``, ``fix``, ``rule``, ``status``, ``attempts``,
  ``maybe_applied``, ``sent_ids``, ``failed_indexes``, ``answer``, ``retry_after``...

``RESULT_SCHEMA`` says all of that; the test suite validates every result it produces against it.
What each tool declares as ``outputSchema`` is ``DECLARED_OUTPUT_SCHEMA``, its root only (an object
whose boolean ``ok`` is required): 24 copies of the whole schema (about 1.9 KB each) would take
``tools/list`` from 16 KB to 60 KB, and a tool definition has no way to share one. Every result
matches both; objects allow more properties wherever detail varies from one call to the next.
"""

from __future__ import annotations

from typing import Any, get_args

from customerio_mcp.tools.confirmation import Answer

_TEXT: dict[str, Any] = {"type": "string"}
_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
_OBJECT: dict[str, Any] = {"type": "object"}
_ANY: dict[str, Any] = {}
_TEXTS: dict[str, Any] = {"type": "array", "items": _TEXT}

WARNINGS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"field": _TEXT, "problem": _TEXT, "fix": _TEXT},
        "required": ["field", "problem", "fix"],
    },
}
"""Things a call sent although they look wrong (optional on success and dry run)."""

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {
            "enum": [
                "error",
                "invalid_input",
                "unknown_tool",
                "configuration",
                "delivery",
                "transport",
                "api",
                "bad_request",
                "authentication",
                "not_found",
                "rate_limited",
                "server_error",
                "partial_failure",
                "not_confirmed",
                "server_busy",
            ]
        },
        "message": _TEXT,
        "field": _TEXT,
        "problem": _TEXT,
        "fix": _TEXT,
        "rule": _TEXT,
        "valid": {"type": "array", "items": _TEXTS},
        "missing": _TEXTS,
        "status": {"type": "integer"},
        "response": _ANY,
        "attempts": _COUNT,
        "maybe_applied": {"type": "boolean"},
        "reason": _TEXT,
        "sent_ids": _OBJECT,
        "failed_indexes": {"type": "array"},
        "more_failing": {"type": "integer", "minimum": 1},
        "more_failing_at_least": {"const": True},
        "answer": {"enum": list(get_args(Answer))},
        "retry_after": _COUNT,
    },
    "required": ["type", "message"],
}

_SUCCESS: dict[str, Any] = {
    "properties": {
        "ok": {"const": True},
        "status": {"type": "integer"},
        "api": {"enum": ["track", "pipelines", "app"]},
        "method": _TEXT,
        "path": _TEXT,
        "region": _TEXT,
        "attempts": _COUNT,
        "response": _ANY,
        "data_from_customerio": _ANY,
        "data_cut": {"type": "boolean"},
        "query": {"type": "object", "additionalProperties": _TEXT},
        "sent_ids": _OBJECT,
        "warnings": WARNINGS_SCHEMA,
    },
    "required": ["ok", "status", "api", "method", "path", "region", "attempts"],
    "oneOf": [{"required": ["response"]}, {"required": ["data_from_customerio"]}],
}
_DRY_RUN: dict[str, Any] = {
    "properties": {
        "ok": {"const": True},
        "dry_run": {"const": True},
        "tool": _TEXT,
        "api": {"enum": ["track", "pipelines", "app"]},
        "request": {
            "type": "object",
            "properties": {"method": _TEXT, "url": _TEXT, "headers": _OBJECT, "body": _ANY, "region": _TEXT},
            "required": ["method", "url", "headers", "body", "region"],
        },
        "missing_credentials": _TEXTS,
        "warnings": WARNINGS_SCHEMA,
    },
    "required": ["ok", "dry_run", "tool", "api", "request", "missing_credentials"],
}
_SCHEMA_MODE: dict[str, Any] = {
    "properties": {
        "ok": {"const": True},
        "mode": {"const": "get_request_schema"},
        "tool": _TEXT,
        "method": _TEXT,
        "path": _TEXT,
    },
    "required": ["ok", "mode", "tool", "method", "path"],
}
_ERROR: dict[str, Any] = {
    "properties": {"ok": {"const": False}, "tool": _TEXT, "error": ERROR_SCHEMA},
    "required": ["ok", "tool", "error"],
}

RESULT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "oneOf": [_SUCCESS, _DRY_RUN, _SCHEMA_MODE, _ERROR],
}
"""Every structured result of every tool: success, dry run, schema mode or error, told apart by ``ok``."""

DECLARED_OUTPUT_SCHEMA: dict[str, Any] = {
    "type": RESULT_SCHEMA["type"],
    "properties": {"ok": RESULT_SCHEMA["properties"]["ok"]},
    "required": RESULT_SCHEMA["required"],
}
"""The root of ``RESULT_SCHEMA``: what fits in ``tools/list`` 24 times over (74 bytes each)."""
