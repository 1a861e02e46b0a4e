"""Top-level fields Customer.io would drop: the call is accepted as Customer.io accepts it, and flagged.

A v1 event with ``propertiez``, or Segment's ``properties``, beside ``name`` passes every check, and
Customer.io ignores the field: a model believes its data landed. Such a call is still sent as
given, with a warning naming each field the endpoint does not read and where it probably belongs.

The fields an endpoint reads come from its shipped schema, at run time (``schemas.schema_for``),
so they follow the schemas when those change: an object's ``properties``, those of every
``allOf``/``anyOf``/``oneOf`` part, and those of the ``if``/``then`` branch the body's own
``type``/``action`` select (a v1 event of type ``page``: that branch's fields). A schema that
accepts any other field (``additionalProperties`` other than ``false``, ``patternProperties``: a
person's attributes are top-level keys of ``update_or_add_person``) fixes nothing and never warns.
Only top-level fields are judged, of the body and of each batch item: what an object such as
``data`` or ``attributes`` holds is the caller's own.

Where a dropped field probably belongs: the field it nearly spells (``trait``: ``traits``,
``anonymousID``: ``anonymousId``), else the branch's free-form object, the one member whose
schema takes any member of any value (``data``, ``attributes``, ``traits``, ``properties``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from customerio_mcp.tools.schema_errors import location
from customerio_mcp.tools.schemas import UnionInfo, schema_for, selector, union_for
from customerio_mcp.tools.table import ToolSpec

LISTED_MAX = 20
"""Warnings described one by one; the others are counted in one last entry."""
FIELDS_NAMED_MAX = 10
"""A fix names the fields a call reads when there are at most this many, else points at the schema."""
_CLOSE_ENOUGH = 0.8
"""``difflib`` ratio of a near miss, compared in lower case: ``trait``/``traits`` 0.91, ``user_id``/``userid`` 0.92."""
_ANNOTATIONS = frozenset({"description", "title"})


@dataclass(frozen=True)
class IgnoredField:
    """One warning: a field Customer.io accepts and drops, and what to do instead."""

    field: str
    problem: str
    fix: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem, "fix": self.fix}


@dataclass(frozen=True)
class IgnoredFields:
    """The warnings of one body: the first ``LISTED_MAX`` described, the others counted."""

    listed: tuple[IgnoredField, ...] = ()
    unlisted: int = 0

    def __bool__(self) -> bool:
        return bool(self.listed)

    def as_list(self) -> list[dict[str, str]]:
        """The result's ``warnings``: one entry per field, and a last one counting those not listed."""
        entries = [warning.as_dict() for warning in self.listed]
        if self.unlisted:
            entries.append(
                {
                    "field": "request_body",
                    "problem": f"has {self.unlisted:,} more field{'s' if self.unlisted != 1 else ''} Customer.io "
                    "ignores, not listed here",
                    "fix": "compare each item's fields with the schema (call this tool with mode='get_request_schema')",
                }
            )
        return entries

    def sentence(self) -> str:
        """One sentence for a result's text: the first warning, and how many others there are."""
        first, others = self.listed[0], len(self.listed) - 1 + self.unlisted
        more = f" (and {others:,} more field{'s' if others != 1 else ''}: see `warnings`)" if others else ""
        return f"Warning: Customer.io ignores `{first.field}`: {first.fix}{more}."


NOTHING_IGNORED = IgnoredFields()


@dataclass(frozen=True)
class _Reads:
    """What one body (or one branch of a union) reads: its top-level fields, and where free-form data goes."""

    fields: frozenset[str]
    homes: tuple[str, ...]
    branch: str
    """The branch in words (``for an event of type `page```), or empty outside a union."""


def ignored_fields(
    tool: ToolSpec, body: dict[str, Any], added: Callable[[tuple[Any, ...]], frozenset[str]]
) -> IgnoredFields:
    """The top-level fields of ``body`` (and of its batch items) that ``tool``'s endpoint does not read.

    ``body`` has passed every check. ``added`` says which fields this server adds to a body or item
    whose type/action hold the values it is given (its deduplication key, ``id`` or ``messageId``):
    a field the server itself sends is never flagged, even where a schema does not name it.
    """
    api, key = tool.api, tool.schema_key
    union = union_for(api, key)
    listed: list[IgnoredField] = []
    unlisted = 0

    def judge(item: dict[str, Any], where: str, reads: _Reads) -> None:
        nonlocal unlisted
        for name in item:
            if name in reads.fields:
                continue
            if len(listed) < LISTED_MAX:
                listed.append(_warning(location(where, [name]), name, reads))
            else:
                unlisted += 1

    if union is not None and union.at == "batch" and isinstance(body.get("batch"), list):
        envelope = _reads(api, key, (), False, frozenset())  # the server adds no key to the envelope
        if envelope is not None and not envelope.fields.issuperset(body):
            judge(body, "request_body", envelope)
        # 5,000 items: the per-item work is what a batch pays (≈ 1 ms), so it is kept to a lookup and a set test.
        select, by_branch = selector(union.keys), _BranchReads(union, api, key, added)
        for index, item in enumerate(body["batch"]):
            try:
                reads = by_branch[select(item)]
            except (AttributeError, TypeError):  # not an object, or a key holding an object or an array
                continue
            if reads is not None and not reads.fields.issuperset(item):
                judge(item, f"request_body.batch[{index}]", reads)
    else:
        values = union.selected(body) if union is not None and union.at == "" else ()
        reads = None if values is None else _reads(api, key, values, False, added(values))
        if reads is not None and not reads.fields.issuperset(body):
            judge(body, "request_body", reads)
    return IgnoredFields(tuple(listed), unlisted) if listed else NOTHING_IGNORED


class _BranchReads(dict[tuple[Any, ...], "_Reads | None"]):
    """What a batch item reads, by what its type/action keys hold (``schemas.selector``), looked up once per branch."""

    def __init__(
        self, union: UnionInfo, api: str, key: str, added: Callable[[tuple[Any, ...]], frozenset[str]]
    ) -> None:
        super().__init__()
        self._union, self._api, self._key, self._added = union, api, key, added

    def __missing__(self, held: tuple[Any, ...]) -> _Reads | None:
        values = self._union.selected(dict(zip(self._union.keys, held, strict=True)))
        reads = None if values is None else _reads(self._api, self._key, values, True, self._added(values))
        self[held] = reads
        return reads


def _warning(field: str, name: str, reads: _Reads) -> IgnoredField:
    """The warning for ``name``, which ``reads`` does not hold, with where it probably belongs.

    A near miss of a field the call reads, first (``trait``: ``traits``); then the call's free-form
    object (``data``); else nowhere.
    """
    where = f" {reads.branch}" if reads.branch else ""
    problem = f"is not a field Customer.io reads{where}: it accepts the call and drops this field"
    lowered = {known.lower(): known for known in reads.fields}
    # difflib's ratio is at most 2 * shorter / (both lengths): a name much longer than every known one (a
    # hostile 100 KB one) cannot reach the cutoff, and is not walked.
    near = len(name) * _CLOSE_ENOUGH <= max(map(len, lowered)) * (2 - _CLOSE_ENOUGH)
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=_CLOSE_ENOUGH) if near else []
    if close:
        fix = f"rename it to `{lowered[close[0]]}`"
    elif reads.homes:
        fix = f"put it inside `{'` or `'.join(reads.homes)}`"
    elif len(reads.fields) <= FIELDS_NAMED_MAX:
        fix = f"remove it: this call reads only {', '.join(f'`{known}`' for known in sorted(reads.fields))}"
    else:
        fix = "remove it, or see the fields this call reads with mode='get_request_schema'"
    return IgnoredField(field, problem, fix)


@cache
def _reads(api: str, key: str, values: tuple[str, ...], item: bool, also: frozenset[str]) -> _Reads | None:
    """What a body of ``api``/``key`` (or, ``item``, one batch item) selecting ``values`` reads; None: any field.

    Cached: the valid branches are few, and only a valid body gets here.
    """
    root = schema_for(api, key)
    union = union_for(api, key)
    node: Any = root["$defs"][union.definition] if item and union is not None else root
    selects = dict(zip(union.keys, values, strict=True)) if union is not None and values else {}
    fields: dict[str, Any] = {}
    if not _collect(node, root, selects, fields) or not fields:
        return None
    homes = tuple(name for name, schema in fields.items() if _takes_anything(_resolve(schema, root)))
    branch = union.branch_phrase(values) if union is not None and values else ""
    return _Reads(frozenset(fields) | also, homes, branch)


def _collect(node: Any, root: dict[str, Any], selects: Mapping[str, str], fields: dict[str, Any]) -> bool:
    """Add the top-level fields ``node`` names (name: schema) to ``fields``; False when it accepts any field."""
    if node is True:
        return False
    if not isinstance(node, dict):
        return True
    if "$ref" in node and not _collect(_resolve({"$ref": node["$ref"]}, root), root, selects, fields):
        return False
    if any(node.get(name, False) is not False for name in ("additionalProperties", "unevaluatedProperties")):
        return False
    if node.get("patternProperties"):
        return False
    for name, schema in node.get("properties", {}).items():
        fields.setdefault(name, schema)
    parts = [*node.get("allOf", ()), *node.get("anyOf", ()), *node.get("oneOf", ())]
    if "if" in node:
        holds = _holds(node["if"], selects)
        if holds is not False and "then" in node:
            parts.append(node["then"])
        if holds is not True and "else" in node:
            parts.append(node["else"])
    return all(_collect(part, root, selects, fields) for part in parts)


def _holds(condition: Any, selects: Mapping[str, str]) -> bool | None:
    """Whether an ``if`` holds for the selected type/action values; None when they cannot tell (both branches count)."""
    if not isinstance(condition, dict) or set(condition) - {"properties", "required"}:
        return None
    named, required = condition.get("properties", {}), condition.get("required", [])
    if any(name not in selects for name in (*named, *required)):
        return None
    for name, rule in named.items():
        if not isinstance(rule, dict) or set(rule) - {"const", "enum", "type"}:
            return None
        if ("const" in rule and selects[name] != rule["const"]) or (
            "enum" in rule and selects[name] not in rule["enum"]
        ):
            return False
    return True


def _takes_anything(schema: Any) -> bool:
    """Whether ``schema`` is an object taking members of any name and value: where free-form data belongs."""
    if not isinstance(schema, dict):
        return False
    extra = schema.get("additionalProperties")
    return extra is True or (isinstance(extra, dict) and not set(extra) - _ANNOTATIONS)


def _resolve(schema: Any, root: dict[str, Any]) -> Any:
    """``schema`` with its ``$ref`` (a JSON pointer into ``root``, as every shipped schema has) followed."""
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/"):
        target: Any = root
        for part in schema["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        schema = target
    return schema
