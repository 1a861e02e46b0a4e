"""A schema failure turned into an error a model can act on: the field, the rule it breaks, the fix.

``jsonschema``'s own messages echo whole values ("[... 5,000 items ...] is too long") and name the
parent when a property is missing. Here every message names the exact field (the missing property
itself), states the rule ("at most 1000 items"), shows at most ~100 characters of the value, and
says what the branch the body selected needs ("is required for a person `event`", "is required for a
`User Suppressed` event" when the rule of a typed event failed). Within a union
that no ``type``/``action`` selects (``identifiers``: one of id, email, cio_id) the error is
reported in the branch the value came closest to.

Of several errors, the shallowest is reported, and of siblings the first in the document
(``ids[0]``, not ``ids[1]``); the message says how many other items break the same rule in the
same place of the schema ("and 1 more item fails the same way", ``more_failing`` in the details).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from customerio_mcp.errors import InputError
from customerio_mcp.text_safety import clip, shown
from customerio_mcp.tools.schemas import EXPLAINED_FAILURES_MAX

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

    from customerio_mcp.tools.schemas import UnionInfo

SCHEMA_HINT = "call this tool with mode='get_request_schema' to see the body's JSON Schema"
_JSON_TYPES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return {str: "a string", list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def location(where: str, path: Iterable[Any]) -> str:
    """``where`` followed by ``path``: ``request_body.batch[3].name``; a member's name is client text, so clipped."""
    text = where
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{clip(part)}"
    return text


def _one_of(values: Sequence[Any]) -> str:
    return ", ".join(shown(value) for value in values)


def _types(expected: Any) -> str:
    names = [expected] if isinstance(expected, str) else list(expected)
    return " or ".join(_JSON_TYPES.get(name, name) for name in names)


def explain(
    validator: Validator, instance: Any, where: str, union: UnionInfo | None = None, at_union: bool = True
) -> InputError:
    """Why ``instance`` (found at ``where``) fails ``validator``, as an InputError.

    ``union`` is the type/action union the instance is (``at_union``) or holds, used to say which
    branch a rule belongs to and, for an unknown pair, which pairs are valid.
    """
    # Not jsonschema's best_match: it descends into every union by itself, past a rule's own message.
    error, more = _first_and_more(validator.iter_errors(instance))
    shapes: list[str] = []
    while error.validator in ("anyOf", "oneOf") and error.context and "errorMessage" not in error.schema:
        branches: dict[int, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        index, closest = min(branches.items(), key=lambda item: (len(item[1]), item[0]))
        branch_schema = error.validator_value[index]
        if isinstance(branch_schema, dict) and branch_schema.get("title"):
            shapes.append(branch_schema["title"])
        error, within = _first_and_more(closest)
        more = within or more
    selected = union.selected(instance) if at_union and union is not None else None
    phrase = f" {union.branch_phrase(selected)}" if union is not None and selected is not None else ""
    event = _selecting_event(validator.schema, list(error.absolute_schema_path))
    if event is not None:
        phrase = f" for a `{event}`" + ("" if event.endswith(" Event") else " event")
    return _input_error(error, where, union if at_union else None, phrase, shapes, more)


def _selecting_event(root: Any, schema_path: list[Any]) -> str | None:
    """The event name of the rule whose ``then`` holds the failed keyword (``if event == "User Deleted"``), if any.

    Customer.io's typed ``track`` events are such rules (``SEMANTIC_EVENTS`` in ``scripts/derive_schemas.py``).
    The path is followed through the schema; it steps through a local ``$ref`` without naming it.
    """
    node, found = root, None
    for part in [part for part in schema_path if part != "$ref"]:
        while isinstance(node, dict) and part not in node and str(node.get("$ref", "")).startswith("#/"):
            node = _local(root, node["$ref"])
        if part == "then" and isinstance(node, dict):
            selects = node.get("if", {}).get("properties", {})
            if list(selects) == ["event"] and isinstance(selects["event"].get("const"), str):
                found = selects["event"]["const"]
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return found


def _local(root: Any, ref: str) -> Any:
    for step in ref.removeprefix("#/").split("/"):
        root = root.get(step) if isinstance(root, dict) else None
    return root


@dataclass(frozen=True)
class _More:
    """How many other items (or members) break the same rule as the error reported."""

    count: int
    noun: str
    at_least: bool

    def __bool__(self) -> bool:
        return self.count > 0

    def phrase(self) -> str:
        plural = self.count != 1
        return (
            f"and {'at least ' if self.at_least else ''}{self.count:,} more {self.noun}{'s' if plural else ''} "
            f"fail{'' if plural else 's'} the same way"
        )


def _first_and_more(errors: Iterable[ValidationError]) -> tuple[ValidationError, _More]:
    """The error to report, and how many others break the same rule elsewhere.

    The shallowest, and of those not a union's (weak) one when another is there, and of those the
    first the validator met: siblings are met in document order (``schemas.explainer``). jsonschema's
    own ``relevance`` prefers the last sibling (``ids[1]`` of ``[101, 102]``). Two errors fail "the
    same way" when they break the same keyword at the same place of the schema, at different places
    of the instance: ``ids[0]`` and ``ids[1]`` both not strings, not two fields missing from one object.
    """
    from jsonschema.exceptions import WEAK_MATCHES, relevance

    found = list(errors)
    first = max(found, key=lambda error: (-len(error.path), error.validator not in WEAK_MATCHES))
    best = max((error for error in found if error.path == first.path), key=relevance)
    same = [
        error
        for error in found
        if error.validator == best.validator
        and error.relative_schema_path == best.relative_schema_path
        and error.path != best.path
    ]
    if not same:
        return best, _More(0, "", False)
    # The instance paths differ where the rule is applied to each sibling: an index, or a member's name.
    where = next((mine for mine, theirs in zip(best.path, same[0].path, strict=False) if mine != theirs), best.path[-1])
    noun = "item" if isinstance(where, int) else "field"
    # More than EXPLAINED_FAILURES_MAX failing items: the explainer stopped looking, there may be more.
    return best, _More(len(same), noun, len(same) >= EXPLAINED_FAILURES_MAX)


def _input_error(
    error: ValidationError,
    where: str,
    union: UnionInfo | None,
    phrase: str,
    shapes: list[str],
    more: _More,
) -> InputError:
    """``phrase`` names the branch the body selected (" for a person `event` operation"), or is empty."""
    path = list(error.absolute_path)
    keyword, expected, value, schema = error.validator, error.validator_value, error.instance, error.schema
    field = location(where, path)
    fix = "correct the value"
    custom = schema.get("errorMessage") if isinstance(schema, dict) else None

    if union is not None and len(path) == 1 and path[0] in union.keys and keyword in ("enum", "const"):
        problem = f"is {shown(value)}: not a valid `{'`/`'.join(union.keys)}`"
        fix = f"use one of the valid {'/'.join(union.keys)} values ({union.describe_valid()})"
        return InputError(field, problem, fix, valid=[list(v) for v in union.valid])
    if keyword == "required":
        missing = next((name for name in expected if not isinstance(value, dict) or name not in value), expected[0])
        field = location(where, [*path, missing])
        if union is not None and not path and missing in union.keys:
            return InputError(
                field,
                "is required",
                f"set it to one of the valid {'/'.join(union.keys)} values ({union.describe_valid()})",
                valid=[list(v) for v in union.valid],
            )
        described = schema.get("properties", {}).get(missing, {}) if isinstance(schema, dict) else {}
        hint = described.get("description") if isinstance(described, dict) else None
        problem = f"is required{phrase}"
        fix = f"add `{missing}`" + (f" ({hint[0].lower()}{hint[1:].rstrip('.')})" if hint else "")
    elif custom:
        problem = custom.replace("{got}", f"{json_type(value)} ({shown(value)})")
        fix = schema.get("errorFix", fix)
    elif keyword == "type":
        problem = f"must be {_types(expected)}, not {json_type(value)} ({shown(value)})"
    elif keyword == "enum":
        problem = f"must be one of {_one_of(expected)} (got {shown(value)})"
        fix = "use one of the listed values"
    elif keyword == "const":
        problem = f"must be {shown(expected)} (got {shown(value)})"
    elif keyword in ("minItems", "maxItems"):
        bound = "at least" if keyword == "minItems" else "at most"
        count = len(value) if isinstance(value, list) else 0
        needed = "allowed" if keyword == "maxItems" else "required"
        problem = f"has {count:,} item{'s' if count != 1 else ''}; {bound} {expected:,} {needed}"
        fix = "send fewer items per call" if keyword == "maxItems" else "add at least one item"
    elif keyword in ("minLength", "maxLength"):
        bound = "at least" if keyword == "minLength" else "at most"
        size = len(value) if isinstance(value, str) else 0
        problem = f"is {size:,} character{'s' if size != 1 else ''} long; {bound} {expected:,} allowed"
    elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {
            "minimum": "at least",
            "maximum": "at most",
            "exclusiveMinimum": "more than",
            "exclusiveMaximum": "less than",
        }
        problem = f"must be {words[keyword]} {expected} (got {shown(value)})"
    elif keyword in ("minProperties", "maxProperties"):
        bound = "at least" if keyword == "minProperties" else "at most"
        count = len(value) if isinstance(value, dict) else 0
        problem = f"has {count} propert{'ies' if count != 1 else 'y'}; {bound} {expected} allowed"
        if shapes:
            fix = "keep exactly one identifier"
    elif keyword == "additionalProperties":
        extra = sorted(set(value) - set(schema.get("properties", {}))) if isinstance(value, dict) else []
        problem = f"has unexpected propert{'ies' if len(extra) != 1 else 'y'} {_one_of(extra)}"
        fix = "remove them"
    elif keyword == "pattern":
        problem = f"must match the pattern {shown(expected)} (got {shown(value)})"
    else:
        problem = f"breaks the schema's `{keyword}` rule (value {shown(value)})"
    if shapes:
        fix += f" (closest accepted shape: {' / '.join(shapes)})"
    if not more:
        return InputError(field, problem, f"{fix}; {SCHEMA_HINT}", rule=keyword)
    counted = {"more_failing": more.count, **({"more_failing_at_least": True} if more.at_least else {})}
    return InputError(field, f"{problem}, {more.phrase()}", f"{fix}; {SCHEMA_HINT}", rule=keyword, **counted)
