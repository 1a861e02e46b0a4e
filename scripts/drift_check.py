"""List every way a newer copy of Customer.io's OpenAPI descriptions differs from the vendored ones.

Run from the repository root with the newer copies (OpenAPI 3.0 or 3.1) on the command line:

    python3 scripts/drift_check.py --track NEW-track.json --pipelines NEW-pipelines.json

It prints one line per change (operation added or removed; field added or removed; a field's type,
``enum``, requirement or constraints changed) and exits 1 when there is any, 0 when there is none,
so the next drift is found by a command, not by a user. Each line is a candidate for a named
update in ``scripts/derive_schemas.py`` (the ``updates`` of ``_changes``), or for deciding that the
change does not matter.

What it compares: each operation's path and query parameters and its request body, the body
converted and simplified as ``derive_schemas.py`` does (``$ref`` inlined, ``nullable`` as a
``"null"`` type, ``allOf`` merged, nested unions flattened), so prose, examples, titles and the
3.0/3.1 spelling of "may be null" are not reported. A field is named by its path from the body
(``identifiers``, ``device.attributes.*`` for any other key, ``batch[]`` for an array item) and a
union branch by what tells it apart (``<type=person,action=identify>``; for branches that no
constant tells apart, the fields they require: ``<requires phone>``), because titles change
between versions while the discriminators do not.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from derive_schemas import DEFAULT_SOURCE, Schema, _resolve, _to_json_schema, simplify

METHODS = ("get", "put", "post", "delete", "patch")
CONSTRAINTS = ("format", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "maxProperties")
Facts = dict[str, Any]


def _types(node: Schema) -> list[str]:
    kind = node.get("type")
    found = [kind] if isinstance(kind, str) else list(kind or [])
    if node.get("nullable") is True and "null" not in found:
        found.append("null")
    return sorted(found)


def _enum(node: Schema) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    if "enum" in node:
        return sorted((value for value in node["enum"] if value is not None), key=json.dumps)
    return None


def _facts(node: Schema, required: bool) -> Facts:
    facts: Facts = {"type": _types(node), "enum": _enum(node), "required": required}
    facts.update({key: node[key] for key in CONSTRAINTS if key in node})
    return facts


def _constants(branch: Schema) -> list[str]:
    """``name=value`` for each property the branch fixes to one string (its discriminators)."""
    found = []
    for name, sub in sorted(branch.get("properties", {}).items()):
        values = _enum(sub) if isinstance(sub, dict) else None
        if values is not None and len(values) == 1 and isinstance(values[0], str):
            found.append(f"{name}={values[0]}")
    return found


def _branch_labels(branches: list[Schema]) -> list[str]:
    """A label for each branch of a union from what tells it apart, made unique as needed."""
    labels = [",".join(_constants(branch)) for branch in branches]
    for fallback in (
        lambda branch: "requires " + ",".join(sorted(branch.get("required", []))),
        lambda branch: str(branch.get("title", "")).rsplit(" / ", 1)[-1],
    ):
        for index, label in enumerate(labels):
            if not label or labels.count(label) > 1:
                extra = fallback(branches[index]) if isinstance(branches[index], dict) else ""
                labels[index] = "; ".join(filter(None, (label, extra)))
    seen: dict[str, int] = {}
    for index, label in enumerate(labels):
        seen[label] = seen.get(label, 0) + 1
        if labels.count(label) > 1:
            labels[index] = f"{label} #{seen[label]}"
    return labels


def fields(node: Any, path: str, required: bool = False) -> Iterator[tuple[str, Facts]]:
    """Every field of a (converted, simplified) schema, by its path, with what is said of it."""
    if not isinstance(node, dict):
        return
    yield path, _facts(node, required)
    yield from _children(node, path)


def _children(node: Schema, path: str) -> Iterator[tuple[str, Facts]]:
    needed = set(node.get("required", []))
    for name, sub in node.get("properties", {}).items():
        yield from fields(sub, f"{path}.{name}" if path else name, name in needed)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        yield from fields(extra, f"{path}.*")
    if isinstance(node.get("items"), dict):
        yield from fields(node["items"], f"{path}[]")
    branches = node.get("anyOf", [])
    for label, branch in zip(_branch_labels(branches), branches, strict=True):
        yield from fields(branch, f"{path}<{label}>")
    for part in node.get("allOf", []):  # parts simplify could not merge: their fields are the node's
        if isinstance(part, dict):
            yield from _children(part, path)


def operations(document: Schema) -> dict[str, dict[str, Facts]]:
    """Each operation (``METHOD /path``) and the facts of its parameters and body fields."""
    found: dict[str, dict[str, Facts]] = {}
    for path, item in document.get("paths", {}).items():
        shared = item.get("parameters", [])
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]  # only what a request holds is resolved: responses may be recursive
            facts: dict[str, Facts] = {}
            for parameter in _resolve([*shared, *operation.get("parameters", [])], document):
                schema = _to_json_schema(parameter.get("schema", {}))
                facts[f"{parameter['in']}.{parameter['name']}"] = _facts(schema, bool(parameter.get("required")))
            body = _resolve(operation.get("requestBody", {}), document)
            content = body.get("content", {}).get("application/json")
            if content is not None:
                facts.update(fields(simplify(_to_json_schema(content.get("schema", {}))), "body"))
            found[f"{method.upper()} {path}"] = facts
    return found


def _describe(facts: Facts) -> str:
    kind = " or ".join(facts["type"]) or "any type"
    return kind + (f" {json.dumps(facts['enum'], ensure_ascii=False)}" if facts["enum"] is not None else "")


def _field_changes(where: str, old: Facts, new: Facts) -> Iterator[str]:
    if old["type"] != new["type"]:
        yield f"{where}: type changed: {' or '.join(old['type']) or 'any'} -> {' or '.join(new['type']) or 'any'}"
    if old["enum"] != new["enum"]:
        before, after = old["enum"] or [], new["enum"] or []
        added = [value for value in after if value not in before]
        removed = [value for value in before if value not in after]
        if old["enum"] is None or new["enum"] is None:
            yield f"{where}: enum {'added' if old['enum'] is None else 'removed'}: {json.dumps(after or before)}"
        else:
            changes = [f"added {json.dumps(added, ensure_ascii=False)}"] if added else []
            changes += [f"removed {json.dumps(removed, ensure_ascii=False)}"] if removed else []
            yield f"{where}: enum changed: {'; '.join(changes)}"
    if old["required"] != new["required"]:
        yield f"{where}: requirement changed: {'now required' if new['required'] else 'no longer required'}"
    for key in CONSTRAINTS:
        if old.get(key) != new.get(key):
            yield f"{where}: {key} changed: {old.get(key)} -> {new.get(key)}"


def compare(api: str, old_document: Schema, new_document: Schema) -> list[str]:
    """One line per change from ``old_document`` to ``new_document``, in a stable order."""
    old, new = operations(old_document), operations(new_document)
    lines = [f"{api} {key}: operation added" for key in new if key not in old]
    lines += [f"{api} {key}: operation removed" for key in old if key not in new]
    for key in (key for key in old if key in new):
        before, after = old[key], new[key]
        lines += [
            f"{api} {key}: field added: {path} ({_describe(after[path])})" for path in after if path not in before
        ]
        lines += [f"{api} {key}: field removed: {path}" for path in before if path not in after]
        for path in (path for path in before if path in after):
            lines += _field_changes(f"{api} {key}: {path}", before[path], after[path])
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track", type=Path, help="a newer copy of the Track API description")
    parser.add_argument("--pipelines", type=Path, help="a newer copy of the Pipelines API description")
    parser.add_argument("--vendored", type=Path, default=DEFAULT_SOURCE, help="folder with the vendored copies")
    args = parser.parse_args(argv)
    newer = {api: path for api, path in (("track", args.track), ("pipelines", args.pipelines)) if path is not None}
    if not newer:
        parser.error("give --track, --pipelines or both")
    lines: list[str] = []
    for api, path in newer.items():
        vendored = json.loads((args.vendored / f"{api}.json").read_text(encoding="utf-8"))
        lines += compare(api, vendored, json.loads(path.read_text(encoding="utf-8")))
    sys.stdout.write("".join(line + "\n" for line in lines))
    print(f"{len(lines)} change{'s' if len(lines) != 1 else ''}", file=sys.stderr)
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
