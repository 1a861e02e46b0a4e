"""Request-body schemas shipped with the package, and their validators.

``request_schemas.json`` is written by ``scripts/derive_schemas.py`` from Customer.io's OpenAPI
descriptions. It is read on first use, not at import, and each validator is compiled once, the
first time its endpoint is called, so start-up stays as fast as a bare MCP server's.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

    from customerio_mcp.tools.table import ToolSpec


@cache
def _all_schemas() -> dict[str, Any]:
    text = resources.files("customerio_mcp.tools").joinpath("request_schemas.json").read_text(encoding="utf-8")
    return json.loads(text)


def body_schema(tool: ToolSpec) -> dict[str, Any]:
    """The complete JSON Schema (every ``$ref`` inlined) of ``tool``'s request body."""
    return _all_schemas()[tool.api][tool.schema_key]


@cache
def validator_for(api: str, schema_key: str) -> Validator:
    from jsonschema import Draft7Validator

    schema = _all_schemas()[api][schema_key]
    return Draft7Validator(schema)
