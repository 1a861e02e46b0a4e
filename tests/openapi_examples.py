"""Every request example in Customer.io's OpenAPI descriptions, as whole request bodies.

An example counts as a request example when it describes a whole body: on the request's media
type, on the body schema, or on a branch of the body schema's ``oneOf`` / ``anyOf`` / ``allOf``
(recursively, however deep the unions nest). Two shapes wrap their examples: on the batch
endpoints an example of a ``batch`` item (or of one of its branches) is returned as
``{"batch": [item]}``, and a body whose one required property is an object (``data`` of a form
submission) turns that property's examples into ``{"data": example}``. Examples of other fragments
(a ``context`` object, ``traits``) are not requests and are left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

OPENAPI = Path(__file__).resolve().parent.parent / "openapi"
COMBINATORS = ("oneOf", "anyOf", "allOf")


def _resolver(document: dict[str, Any]) -> Any:
    def resolve(node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            target: Any = document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    return resolve


def _body_examples(node: Any, resolve: Any, where: str) -> Iterator[tuple[str, Any]]:
    node = resolve(node)
    if not isinstance(node, dict):
        return
    if "example" in node:
        yield where, node["example"]
    for name, example in (node.get("examples") or {}).items() if isinstance(node.get("examples"), dict) else ():
        yield f"{where} examples.{name}", resolve(example).get("value")
    for combinator in COMBINATORS:
        for index, branch in enumerate(node.get(combinator, [])):
            title = resolve(branch).get("title", "") if isinstance(resolve(branch), dict) else ""
            yield from _body_examples(branch, resolve, f"{where} {combinator}[{index}]{' ' + title if title else ''}")


def request_examples(api: str) -> Iterator[tuple[str, str, str, Any]]:
    """(method, path, where, body) for every request example of ``api`` ("track" or "pipelines")."""
    document = json.loads((OPENAPI / f"{api}.json").read_text(encoding="utf-8"))
    resolve = _resolver(document)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method == "parameters" or "requestBody" not in operation:
                continue
            media = resolve(operation["requestBody"])["content"]["application/json"]
            schema = resolve(media.get("schema", {}))
            found = list(_body_examples({k: v for k, v in media.items() if k != "schema"}, resolve, "media"))
            found += _body_examples(schema, resolve, "body")
            properties = schema.get("properties", {})
            items = resolve(resolve(properties.get("batch", {})).get("items", {}))
            found += [(where, {"batch": [item]}) for where, item in _body_examples(items, resolve, "batch item")]
            required = schema.get("required", [])
            if len(required) == 1 and required[0] != "batch":
                name = required[0]
                found += [(w, {name: e}) for w, e in _body_examples(properties.get(name, {}), resolve, f"{name}")]
            yield from ((method.upper(), path, where, body) for where, body in found)
