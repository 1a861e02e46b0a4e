"""Derive the request-body JSON Schemas the server ships from Customer.io's OpenAPI descriptions.

Run from the repository root (the descriptions are vendored in ``openapi/``):

    python scripts/derive_schemas.py            # rewrite customerio_mcp/tools/request_schemas.json
    python scripts/derive_schemas.py --check    # exit 1 if the shipped file is stale

The output is deterministic (sorted keys, no timestamps), so the same inputs always give the
same bytes and a test can prove the shipped file is what this script makes.

What it changes, and why (see ``openapi/README.md``):

- every ``$ref`` is inlined, so ``get_request_schema`` hands a model one self-contained schema;
- ``oneOf`` becomes ``anyOf``: the descriptions' branches overlap (``{"id": ...}`` matches both
  the ``id`` and the ``email`` branch of ``merge_customers``), and strict ``oneOf`` would refuse
  calls Customer.io accepts;
- OpenAPI 3.0 ``nullable: true`` becomes a ``"null"`` type, ``example`` becomes JSON Schema
  ``examples``, and ``x-*`` vendor keys go;
- the v2 person ``page`` operation is declared with ``action: "screen"`` (a copy-paste slip in
  the description); its enum is corrected to ``"page"`` so page views validate;
- Pipelines ``integrations`` may be ``null``: the description's own ``/track`` example sends
  ``"integrations": null``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT / "openapi"
OUTPUT = ROOT / "customerio_mcp" / "tools" / "request_schemas.json"

# Operations the server does not wrap (deprecated upstream).
SKIPPED = {("track", "POST /api/v1/push/events")}
DRAFT = "http://json-schema.org/draft-07/schema#"


def _resolve(node: Any, root: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                raise ValueError(f"recursive $ref {ref}: cannot inline")
            target: Any = root
            for part in ref.removeprefix("#/").split("/"):
                target = target[part]
            return _resolve(target, root, (*seen, ref))
        return {key: _resolve(value, root, seen) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(item, root, seen) for item in node]
    return node


def _to_json_schema(node: Any) -> Any:
    """Turn an OpenAPI 3.0 schema object into plain, lenient JSON Schema (draft 7)."""
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-") or key in {"nullable", "readOnly", "writeOnly", "discriminator"}:
            continue
        if key == "oneOf":
            out["anyOf"] = _to_json_schema(value)
        elif key == "example":
            out["examples"] = [value]
        elif key in {"properties", "patternProperties", "definitions"}:
            out[key] = {name: _to_json_schema(sub) for name, sub in value.items()}
        else:
            out[key] = _to_json_schema(value)
    if node.get("nullable") is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def _fix_v2_page_action(node: Any) -> int:
    """Correct the ``action`` enum of v2 person page operations; returns how many were fixed."""
    fixed = 0
    if isinstance(node, dict):
        if "pageview" in str(node.get("description", "")) and "allOf" in node:
            for part in node["allOf"]:
                action = part.get("properties", {}).get("action")
                if action and action.get("enum") == ["screen"]:
                    action["enum"] = ["page"]
                    fixed += 1
        for value in node.values():
            fixed += _fix_v2_page_action(value)
    elif isinstance(node, list):
        for item in node:
            fixed += _fix_v2_page_action(item)
    return fixed


def _allow_null_integrations(node: Any) -> None:
    if isinstance(node, dict):
        integrations = node.get("properties", {}).get("integrations")
        if isinstance(integrations, dict) and integrations.get("type") == "object":
            integrations["type"] = ["object", "null"]
        for value in node.values():
            _allow_null_integrations(value)
    elif isinstance(node, list):
        for item in node:
            _allow_null_integrations(item)


def derive(source: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"_source": {}}
    for api in ("track", "pipelines"):
        raw = (source / f"{api}.json").read_bytes()
        result["_source"][f"{api}.json"] = hashlib.sha256(raw).hexdigest()
        document = json.loads(raw)
        bodies: dict[str, Any] = {}
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                if method == "parameters" or "requestBody" not in operation:
                    continue
                key = f"{method.upper()} {path}"
                if (api, key) in SKIPPED:
                    continue
                body = _resolve(operation["requestBody"], document)
                schema = _to_json_schema(body["content"]["application/json"]["schema"])
                _fix_v2_page_action(schema)
                if api == "pipelines":
                    _allow_null_integrations(schema)
                bodies[key] = {"$schema": DRAFT, **schema}
        result[api] = dict(sorted(bodies.items()))
    return result


def render(source: Path) -> str:
    return json.dumps(derive(source), sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source", type=Path, default=DEFAULT_SOURCE, help="folder holding track.json and pipelines.json"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the shipped file differs from a fresh derivation"
    )
    args = parser.parse_args(argv)
    text = render(args.source)
    if args.check:
        if OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT} is stale: run python scripts/derive_schemas.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT} ({len(text):,} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
