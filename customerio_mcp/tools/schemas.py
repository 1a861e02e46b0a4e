"""Request-body schemas shipped with the package, compiled once, and what their unions are.

``request_schemas.json`` is written by ``scripts/derive_schemas.py`` from Customer.io's OpenAPI
descriptions: one compact JSON Schema (2020-12) per endpoint, plus ``_unions``, which says where a
body holds a union told apart by ``type`` (and ``action``) and which values are valid.

The file is read on first use, not at import, and each validator is compiled by ``jsonschema-rs``
(Rust) the first time its endpoint is called, so start-up stays as fast as a bare MCP server's
and a call costs microseconds. Batch endpoints also get a validator for one item, so a batch is
checked operation by operation. The pure-Python ``jsonschema`` is loaded only to explain a
failure (its error tree is richer), and only ever for one item, never a whole batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema_rs
    from jsonschema.protocols import Validator

    from customerio_mcp.tools.table import ToolSpec


@dataclass(frozen=True)
class UnionInfo:
    """A union told apart by ``keys``, the body itself (``at == ""``) or each item of ``batch``."""

    at: str
    keys: tuple[str, ...]
    default: str | None
    definition: str
    valid: tuple[tuple[str, ...], ...]

    def describe_valid(self) -> str:
        """The valid values, e.g. ``person: identify, delete; object: identify`` or ``event, page``."""
        if len(self.keys) == 1:
            return ", ".join(values[0] for values in self.valid)
        grouped: dict[str, list[str]] = {}
        for first, second in self.valid:
            grouped.setdefault(first, []).append(second)
        return "; ".join(f"{first}: {', '.join(seconds)}" for first, seconds in grouped.items())


@cache
def _document() -> dict[str, Any]:
    text = resources.files("customerio_mcp.tools").joinpath("request_schemas.json").read_text(encoding="utf-8")
    return json.loads(text)


def schema_for(api: str, schema_key: str) -> dict[str, Any]:
    return _document()[api][schema_key]


def body_schema(tool: ToolSpec) -> dict[str, Any]:
    """The JSON Schema of ``tool``'s request body: the one local validation uses."""
    return schema_for(tool.api, tool.schema_key)


@cache
def union_for(api: str, schema_key: str) -> UnionInfo | None:
    found = _document()["_unions"].get(f"{api} {schema_key}")
    if found is None:
        return None
    return UnionInfo(
        at=found["at"],
        keys=tuple(found["keys"]),
        default=found["default"],
        definition=found["definition"],
        valid=tuple(tuple(values) for values in found["valid"]),
    )


def _item_schema(api: str, schema_key: str) -> dict[str, Any]:
    schema = schema_for(api, schema_key)
    union = union_for(api, schema_key)
    assert union is not None
    return {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{union.definition}"}


@cache
def compiled(api: str, schema_key: str, item: bool = False) -> jsonschema_rs.Validator:
    """The compiled validator for a whole body, or (``item``) for one item of a batch body."""
    import jsonschema_rs

    schema = _item_schema(api, schema_key) if item else schema_for(api, schema_key)
    return jsonschema_rs.validator_for(schema)


@cache
def explainer(api: str, schema_key: str, item: bool = False) -> Validator:
    """The pure-Python validator used to explain why a body (or one batch item) failed."""
    from jsonschema import Draft202012Validator

    schema = _item_schema(api, schema_key) if item else schema_for(api, schema_key)
    return Draft202012Validator(schema)
