"""Derive the compact request-body JSON Schemas the server validates with from Customer.io's OpenAPI descriptions.

Run from the repository root (the descriptions are vendored in ``openapi/``):

    python3 scripts/derive_schemas.py                    # rewrite customerio_mcp/tools/request_schemas.json
    python3 scripts/derive_schemas.py --check            # exit 1 if the shipped file is stale
    python3 scripts/derive_schemas.py --relaxations-table # the table of relaxations in docs/tools.md
    python3 scripts/derive_schemas.py --updates-table    # ... of updates to Customer.io's current description

The output is deterministic (sorted keys, no timestamps), so a test can prove the shipped file is
exactly what this script makes. Each endpoint's schema is JSON Schema 2020-12, self-contained
(``$ref`` only to its own ``$defs``), at most 16 KB of compact JSON, and it is the schema local
validation uses and ``get_request_schema`` returns. The stages, in order:

1. **OpenAPI to JSON Schema**: every ``$ref`` inlined, ``nullable`` becomes a ``"null"`` type,
   ``oneOf`` becomes ``anyOf`` (the descriptions' branches overlap: ``{"id": ...}`` matches both the
   ``id`` and the ``email`` branch of ``merge_customers``), ``x-*`` keys go.
2. **Simplify**: examples and long prose go (one short description per field stays), ``allOf``
   parts are merged into one object, nested unions are flattened into one list of branches.
3. **Relaxations and rules** (``RELAXATIONS``, ``RULES``): where Customer.io's documented behaviour
   or its own client libraries are more lenient than the description, the lenient side wins; where
   a value is certainly wrong (a timestamp in milliseconds, an empty batch), a rule refuses it.
4. **Discriminated unions**: unions told apart by ``type`` (and ``action``) become ``if``/``then``
   chains, so a validator reports a problem inside the branch the body's own ``type``/``action``
   select, and an unknown pair is refused by an ``enum`` naming the valid ones.
5. **Shared definitions**: every subschema that occurs more than once moves to ``$defs``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT / "openapi"
OUTPUT = ROOT / "customerio_mcp" / "tools" / "request_schemas.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
SKIPPED = {("track", "POST /api/v1/push/events")}
"""Operations the server does not wrap (deprecated upstream)."""
MAX_SCHEMA_BYTES = 16 * 1024
DESCRIPTION_MAX = 70
UNIX_SECONDS_MAX = 99_999_999_999
"""Unix seconds stay below 10^11 until the year 5138; a larger value is milliseconds."""

Schema = dict[str, Any]
Node = Any


# -- stage 1: OpenAPI 3.0 to JSON Schema -------------------------------------------------------


def _resolve(node: Node, root: Schema, seen: tuple[str, ...] = ()) -> Node:
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


def _to_json_schema(node: Node) -> Node:
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: Schema = {}
    for key, value in node.items():
        if key.startswith("x-") or key in {"nullable", "readOnly", "writeOnly", "discriminator", "example"}:
            continue
        if key in {"examples", "externalDocs", "xml", "deprecated"}:
            continue
        if key == "oneOf":
            out["anyOf"] = _to_json_schema(value)
        elif key in {"properties", "patternProperties"}:
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


# -- stage 2: simplify ----------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def _short(description: str) -> str | None:
    """The first sentence of a description, without markdown links, if it is short enough to help."""
    text = _MARKDOWN_LINK.sub(r"\1", " ".join(description.split()))
    first = _SENTENCE_END.split(text, maxsplit=1)[0].strip()
    return first if 0 < len(first) <= DESCRIPTION_MAX else None


def _strip(node: Node, *, is_property: bool = False) -> Node:
    """Drop titles (but a union branch's, its name), defaults of null and long prose."""
    if isinstance(node, list):
        return [_strip(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: Schema = {}
    for key, value in node.items():
        if key == "description":
            short = _short(value) if is_property and isinstance(value, str) else None
            if short:
                out[key] = short
        elif key in {"properties", "patternProperties"}:
            out[key] = {name: _strip(sub, is_property=True) for name, sub in value.items()}
        elif key in {"anyOf", "allOf"}:
            out[key] = [_strip(branch) for branch in value]
        elif key == "default" and value is None:
            continue
        else:
            out[key] = _strip(value)
    return out


_OBJECT_KEYS = {"type", "properties", "required", "title", "description", "additionalProperties"}


def _mergeable(part: Node) -> bool:
    if not isinstance(part, dict) or not set(part) <= _OBJECT_KEYS | {"allOf"}:
        return False
    if part.get("type", "object") != "object":
        return False
    extra = part.get("additionalProperties")
    return extra in (None, True, {})


def _merge_property(first: Schema, second: Schema) -> Schema:
    """One schema for a property two ``allOf`` parts both declare (enums intersect; prose: the first's)."""
    if first == second:
        return first
    plain = {"type", "enum", "description"}
    if set(first) <= plain and set(second) <= plain and first.get("type") == second.get("type"):
        merged = {**second, **first}
        if "enum" in first and "enum" in second:
            merged["enum"] = [value for value in first["enum"] if value in second["enum"]]
        return merged
    return {"allOf": [first, second]}


def _merge_allof(node: Node) -> Node:
    """``allOf`` of plain object parts becomes one object: properties united, required united."""
    if isinstance(node, list):
        return [_merge_allof(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _merge_allof(value) for key, value in node.items()}
    parts = node.get("allOf")
    if not parts or not all(_mergeable(part) for part in parts):
        return node
    merged: Schema = {key: value for key, value in node.items() if key != "allOf"}
    merged["type"] = "object"
    properties: dict[str, Schema] = dict(merged.get("properties", {}))
    required: list[str] = list(merged.get("required", []))
    for part in parts:
        for name, sub in part.get("properties", {}).items():
            properties[name] = _merge_property(properties[name], sub) if name in properties else sub
        required += [name for name in part.get("required", []) if name not in required]
        if "additionalProperties" in part and "additionalProperties" not in merged:
            merged["additionalProperties"] = part["additionalProperties"]
        for key in ("title", "description"):
            if key in part and key not in merged:
                merged[key] = part[key]
    if properties:
        merged["properties"] = properties
    if required:
        merged["required"] = required
    return merged


def _flatten_unions(node: Node) -> Node:
    """A branch that is only a union (and a title) is spliced into its parent union."""
    if isinstance(node, list):
        return [_flatten_unions(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _flatten_unions(value) for key, value in node.items()}
    if "anyOf" not in node:
        return node
    branches = []
    for branch in node["anyOf"]:
        if isinstance(branch, dict) and "anyOf" in branch and set(branch) <= {"anyOf", "title", "description"}:
            prefix = branch.get("title")
            for inner in branch["anyOf"]:
                title = " / ".join(filter(None, (prefix, inner.get("title"))))
                branches.append({**inner, "title": title} if title else inner)
        else:
            branches.append(branch)
    return {**node, "anyOf": branches}


def simplify(schema: Schema) -> Schema:
    return _flatten_unions(_merge_allof(_strip(schema)))


# -- stage 3: relaxations and rules ---------------------------------------------------------------

Endpoint = tuple[str, str]
"""(api, "METHOD /path")."""


@dataclass(frozen=True)
class Change:
    """One place where the shipped schema differs from the description, and why.

    ``apply`` edits the endpoint's simplified schema in place and returns how many places it
    changed: a change that no longer finds its target fails the derivation instead of silently
    doing nothing after Customer.io updates a description.
    """

    endpoints: tuple[Endpoint, ...]
    field: str
    described: str
    accepted: str
    why: str
    apply: Callable[[Schema], int]
    before_simplifying: bool = False
    """Apply to the converted description itself, while it still has its prose."""


def _walk(node: Node) -> Iterator[Schema]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _branches(schema: Schema) -> list[Schema]:
    branches: list[Schema] = schema.get("anyOf", [schema])
    return branches


def _any_json_attributes(schema: Schema) -> int:
    schema["additionalProperties"] = {}
    return 1


def _screen_without_anonymous_id(schema: Schema) -> int:
    changed = 0
    for branch in _branches(schema):
        if branch.get("properties", {}).get("type", {}).get("enum") == ["screen"] and "anonymous_id" in branch.get(
            "required", []
        ):
            branch["required"].remove("anonymous_id")
            changed += 1
    return changed


def _numeric_form_id(schema: Schema) -> int:
    changed = 0
    for branch in schema["properties"]["data"]["anyOf"]:
        identifier = branch.get("properties", {}).get("id")
        if identifier is not None:
            identifier["type"] = ["string", "number", "null"]
            changed += 1
    return changed


def _pipelines_items(schema: Schema) -> Iterator[Schema]:
    """The schemas of single Pipelines calls: the body itself, or each batch item union."""
    if "batch" in schema.get("properties", {}):
        yield schema["properties"]["batch"]["items"]
    else:
        yield schema


def _calls_of_type(schema: Schema, kind: str) -> Iterator[Schema]:
    """The branches of the schema's Pipelines calls (single or batched) whose ``type`` is ``kind``."""
    for items in _pipelines_items(schema):
        for branch in _branches(items):
            if branch.get("properties", {}).get("type", {}).get("enum") == [kind]:
                yield branch


def _merge_known_and_anonymous(call: Schema) -> Schema:
    """One object for a call's "Known User" and "Anonymous User" branches, ids optional and nullable."""
    properties: dict[str, Schema] = {}
    required: list[str] | None = None
    for branch in call["anyOf"]:
        for name, sub in branch.get("properties", {}).items():
            properties.setdefault(name, sub)
        names = [name for name in branch.get("required", []) if name not in ("userId", "anonymousId")]
        required = names if required is None else [name for name in required if name in names]
    for name in ("userId", "anonymousId"):
        properties[name] = {
            "type": ["string", "null"],
            "errorMessage": f"must be a string (Customer.io's docs define `{name}` as a string) or null, not {{got}}",
            "errorFix": 'send the id as a string, e.g. "42" instead of 42',
        }
    merged: Schema = {"type": "object", "properties": properties}
    rules = [branch.get("allOf") for branch in call["anyOf"]]
    if rules[0] and all(rule == rules[0] for rule in rules):  # both carry the same event rules (SEMANTIC_EVENTS)
        merged["allOf"] = rules[0]
    title = call["anyOf"][0].get("title", "").rsplit(" / ", 1)[0]
    if title and title != call["anyOf"][0].get("title"):
        merged["title"] = title
    if required:
        merged["required"] = required
    return merged


def _nullable_ids(schema: Schema) -> int:
    changed = 0
    for items in _pipelines_items(schema):
        groups: dict[str, list[Schema]] = {}
        for branch in _branches(items):
            title = branch.get("title", "")
            if title.endswith(("Known User", "Anonymous User")):
                groups.setdefault(title.rsplit(" / ", 1)[0] if " / " in title else "", []).append(branch)
        if not groups:
            continue
        rebuilt = []
        seen: set[str] = set()
        for branch in _branches(items):
            title = branch.get("title", "")
            group = title.rsplit(" / ", 1)[0] if " / " in title else ""
            if title.endswith(("Known User", "Anonymous User")):
                if group not in seen:
                    seen.add(group)
                    rebuilt.append(_merge_known_and_anonymous({"anyOf": groups[group]}))
                    changed += 1
            else:
                rebuilt.append(branch)
        if "anyOf" in items and len(rebuilt) > 1:
            items["anyOf"] = rebuilt
        else:
            items.clear()
            items.update(rebuilt[0])
    return changed


def _batch_alias(alias_schema: Callable[[], Schema]) -> Callable[[Schema], int]:
    def apply(schema: Schema) -> int:
        items = schema["properties"]["batch"]["items"]
        alias = copy.deepcopy(alias_schema())
        alias["title"] = "Alias"
        alias.setdefault("required", [])
        if "type" not in alias["required"]:
            alias["required"].append("type")
        alias["properties"]["type"] = {"type": "string", "enum": ["alias"]}
        items["anyOf"].append(alias)
        return 1

    return apply


COMMON_FIELDS = (
    "context",
    "integrations",
    "messageId",
    "timestamp",
    "originalTimestamp",
    "receivedAt",
    "sentAt",
    "version",
)
"""The fields every Pipelines call may carry (Segment's common fields), as the description gives a single call them."""
PIPELINES_KINDS = ("identify", "track", "page", "screen", "group", "alias")


def _common_fields(single_call: Callable[[], Schema]) -> Callable[[Schema], int]:
    """Every Pipelines call, single or batched, takes the common fields and ``_metadata``; an alias its
    ``anonymousId``; a page or screen its ``category``; a batch its ``sentAt``.

    The description gives the common fields to single identify/track/page/screen/group calls only, yet
    ``customerio-cdp-analytics`` sends ``timestamp``, ``context`` and ``integrations`` on every call of
    a batch and on aliases, ``category`` at the top of pages and screens, and ``sentAt`` on the batch;
    ``@customerio/cdp-analytics-node`` sends ``_metadata`` (Segment's library diagnostics) on every
    call. Their definitions are copied from a single call (``single_call``), so that they mean the same.
    """

    def apply(schema: Schema) -> int:
        known = _branches(single_call())[0]["properties"]
        common = {name: known[name] for name in COMMON_FIELDS} | {"_metadata": {"type": "object"}}
        extra: dict[str, dict[str, Schema]] = {
            "alias": {"anonymousId": {"type": ["string", "null"]}},
            "page": {"category": {"type": "string"}},
            "screen": {"category": {"type": "string"}},
        }
        changed = 0
        for kind in PIPELINES_KINDS:
            for branch in _calls_of_type(schema, kind):
                properties = branch.setdefault("properties", {})
                for name, sub in {**common, **extra.get(kind, {})}.items():
                    if name not in properties:
                        properties[name] = copy.deepcopy(sub)
                        changed += 1
        if "batch" in schema.get("properties", {}) and "sentAt" not in schema["properties"]:
            schema["properties"]["sentAt"] = copy.deepcopy(known["sentAt"])
            changed += 1
        return changed

    return apply


def _nullable_integrations(schema: Schema) -> int:
    changed = 0
    for node in _walk(schema):
        integrations = (
            node.get("properties", {}).get("integrations") if isinstance(node.get("properties"), dict) else None
        )
        if isinstance(integrations, dict) and integrations.get("type") == "object":
            integrations["type"] = ["object", "null"]
            changed += 1
    return changed


def _v2_page_action(schema: Schema) -> int:
    """The description declares the person page operation with ``action: screen`` (a copy-paste slip).

    Runs before simplifying: only the branch's prose ("pageview") tells it from the screen branch.
    """
    changed = 0
    for node in _walk(schema):
        if "pageview" in str(node.get("description", "")).lower() and "allOf" in node:
            for part in node["allOf"]:
                action = part.get("properties", {}).get("action") if isinstance(part, dict) else None
                if action and action.get("enum") == ["screen"]:
                    action["enum"] = ["page"]
                    changed += 1
    return changed


# -- updates: where Customer.io's current description (OpenAPI 3.1) differs from the vendored one ----

PERSON_IDENTIFIERS = ("id", "email", "cio_id")
_PHONE = {"type": "string", "description": "A phone number in E.164 format, e.g. +14155552671."}


def _person_identifier_unions(schema: Schema) -> Iterator[list[Schema]]:
    """Each union of one-key person identifier branches (``{"id"}``, ``{"email"}``, ``{"cio_id"}``)."""
    for node in _walk(schema):
        branches = node.get("anyOf")
        if not isinstance(branches, list) or not all(isinstance(branch, dict) for branch in branches):
            continue
        names = [tuple(branch.get("properties", {})) for branch in branches]
        if sorted(names) == sorted((name,) for name in PERSON_IDENTIFIERS):
            yield branches


def _phone_identifier(schema: Schema) -> int:
    """A ``phone`` branch beside ``email`` in every person identifier union, shaped like the email branch."""
    changed = 0
    for branches in list(_person_identifier_unions(schema)):
        email = next(branch for branch in branches if "email" in branch["properties"])
        phone = {**copy.deepcopy(email), "properties": {"phone": dict(_PHONE)}, "title": "phone"}
        if "required" in email:
            phone["required"] = ["phone"]
        branches.insert(branches.index(email) + 1, phone)
        changed += 1
    return changed


def _properties_named(schema: Schema, name: str) -> Iterator[Schema]:
    """The schema of every property called ``name``, however deep."""
    for node in _walk(schema):
        properties = node.get("properties")
        if isinstance(properties, dict) and isinstance(properties.get(name), dict):
            yield properties[name]


def _scalar_device_attributes(schema: Schema) -> int:
    changed = 0
    for device in _properties_named(schema, "device"):
        attributes = device.get("properties", {}).get("attributes")
        if isinstance(attributes, dict) and attributes.get("additionalProperties") == {"type": "string"}:
            attributes["additionalProperties"] = {"type": ["string", "number", "boolean", "null"]}
            changed += 1
    return changed


def _numeric_anonymous_id(schema: Schema) -> int:
    changed = 0
    for anonymous in _properties_named(schema, "anonymous_id"):
        if anonymous.get("type") == "string":
            anonymous["type"] = ["string", "number"]
            changed += 1
    return changed


_TRAITS = {
    "unsubscribed": {
        "type": ["boolean", "string", "number"],
        "description": 'true unsubscribes the person (so do any casing of "true", 1 and "1").',
    },
}
_CHANNELS = {
    "type": "object",
    "additionalProperties": {"type": "boolean"},
    "description": "Channel subscriptions by channel type (email, sms, push...).",
}


def _identify_traits(schema: Schema) -> int:
    """``traits.unsubscribed`` and ``traits.cio_subscription_preferences.channels``, as now documented."""
    changed = 0
    for branch in _calls_of_type(schema, "identify"):
        traits = branch["properties"].get("traits")
        preferences = traits.get("properties", {}).get("cio_subscription_preferences") if traits else None
        if preferences is not None:
            traits["properties"].update(copy.deepcopy(_TRAITS))
            preferences.setdefault("properties", {})["channels"] = dict(_CHANNELS)
            changed += 1
    return changed


_USER_ID = {"type": "string"}
_DEVICE_CONTEXT = {
    "type": "object",
    "required": ["device"],
    "properties": {
        "device": {
            "type": "object",
            "required": ["token"],
            "properties": {"token": {"type": "string"}, "type": {"type": "string", "enum": ["ios", "android"]}},
        }
    },
}
_OBJECT = {"objectId": {"type": "string"}, "objectTypeId": {"type": "integer"}}
SEMANTIC_EVENTS: dict[str, Schema] = {
    "User Deleted": {"required": ["userId"], "properties": {"userId": _USER_ID}},
    "User Suppressed": {"required": ["userId"], "properties": {"userId": _USER_ID}},
    "User Unsuppressed": {"required": ["userId"], "properties": {"userId": _USER_ID}},
    "Relationship Deleted": {
        "required": ["userId", "properties"],
        "properties": {
            "userId": _USER_ID,
            "properties": {"type": "object", "required": ["objectId"], "properties": _OBJECT},
        },
    },
    "Object Deleted": {
        "required": ["anonymousId", "properties"],
        "properties": {"anonymousId": _USER_ID, "properties": {"type": "object", "properties": _OBJECT}},
    },
    "Device Created or Updated": {
        "required": ["userId", "context"],
        "properties": {"userId": _USER_ID, "context": _DEVICE_CONTEXT},
    },
    "Device Deleted": {
        "required": ["userId", "context"],
        "properties": {"userId": _USER_ID, "context": _DEVICE_CONTEXT},
    },
    "Report Delivery Event": {
        "required": ["properties"],
        "properties": {
            "properties": {
                "type": "object",
                "properties": {
                    "deliveryId": {"type": "string"},
                    "metric": {"type": "string", "enum": ["delivered", "clicked", "converted", "opened"]},
                    **{name: {"type": "string"} for name in ("recipient", "reason", "actionValue", "href")},
                },
            }
        },
    },
    "Report Content Event": {
        "required": ["properties"],
        "properties": {
            "properties": {
                "type": "object",
                "required": ["activityType"],  # sic: the description defines `actionType` (see _no_activity_type)
                "properties": {
                    "actionType": {"type": "string", "enum": ["viewed_content", "clicked_content"]},
                    "contentId": {"type": "integer"},
                    "templateId": {"type": "integer"},
                },
            }
        },
    },
}
"""Customer.io's typed ``track`` events (its current Pipelines description) and what each needs beyond a track call."""
REPORTS = ["Report Delivery Event", "Report Content Event"]
"""Semantic events attributed by their properties (a delivery, a piece of content): no userId or anonymousId."""


def variant_rule(event: str, then: Schema, when: dict[str, str] | None = None) -> Schema:
    """``if`` the call's ``event`` is ``event`` (and its ``when`` keys hold those values), ``then`` applies too."""
    selects = {**{key: {"const": value} for key, value in (when or {}).items()}, "event": {"const": event}}
    return {"if": {"properties": selects, "required": list(selects)}, "then": then}


def _v2_identify_timestamp(schema: Schema) -> int:
    """The current description names the v2 person identify's ordering time ``timestamp`` (``_timestamp`` before)."""
    changed = 0
    for node in _walk(schema):
        properties = node.get("properties") if isinstance(node.get("properties"), dict) else {}
        if "_timestamp" in properties and "timestamp" not in properties and "identifiers" in properties:
            properties["timestamp"] = copy.deepcopy(properties["_timestamp"])
            changed += 1
    return changed


def _no_activity_type(schema: Schema) -> int:
    changed = 0
    for node in _walk(schema):
        then = node.get("then") if node.get("if", {}).get("properties", {}).get("event") else None
        extra = then.get("properties", {}).get("properties", {}) if isinstance(then, dict) else {}
        if "activityType" in extra.get("required", []):
            extra["required"].remove("activityType")
            if not extra["required"]:
                del extra["required"]
            changed += 1
    return changed


def _semantic_events(schema: Schema) -> int:
    """Each typed event's own requirements on every track call (single or in a batch): a rule per event name."""
    changed = 0
    for branch in _calls_of_type(schema, "track"):
        if "event" in branch["properties"]:
            branch.setdefault("allOf", []).extend(
                variant_rule(event, copy.deepcopy(then)) for event, then in SEMANTIC_EVENTS.items()
            )
            changed += 1
    return changed


# -- rules: certainly wrong values, refused with a precise message ----------------------------

_TIMESTAMP_MESSAGE = "must be unix time in whole seconds, e.g. 1700000000 (not milliseconds, not an ISO date string)"


def _unix_seconds(schema: Schema) -> int:
    changed = 0
    for node in _walk(schema):
        for name, sub in node.get("properties", {}).items() if isinstance(node.get("properties"), dict) else ():
            if name in ("timestamp", "_timestamp") and isinstance(sub, dict) and sub.get("type") == "integer":
                sub["maximum"] = UNIX_SECONDS_MAX
                sub["errorMessage"] = _TIMESTAMP_MESSAGE
                sub["errorFix"] = "convert the time to whole seconds since 1970 (divide milliseconds by 1000)"
                changed += 1
    return changed


def _string_ids(schema: Schema) -> int:
    items = schema["properties"]["ids"]["items"]
    if items.get("type") != "string":
        return 0
    items["errorMessage"] = "must be a string (Customer.io's docs define `ids` as strings, numeric ids too), not {got}"
    items["errorFix"] = 'send each id as a string, e.g. "42" instead of 42'
    return 1


def _non_empty_batch(schema: Schema) -> int:
    schema.setdefault("required", [])
    if "batch" not in schema["required"]:
        schema["required"].append("batch")
    schema["properties"]["batch"]["minItems"] = 1
    return 1


_PRESENT = {"type": ["string", "number", "boolean", "object", "array"], "minLength": 1}
"""Present and not empty: a wrong type is the property's own rule, which names the property and the type."""
_IDENTITY = {
    "anyOf": [
        {"required": ["userId"], "properties": {"userId": _PRESENT}},
        {"required": ["anonymousId"], "properties": {"anonymousId": _PRESENT}},
    ],
    "errorMessage": "needs `userId` or `anonymousId` (a non-empty string; the other may be omitted or null)",
    "errorFix": "set `userId` to the person's id, or `anonymousId` to the visitor's anonymous id",
}


def _identity_required(schema: Schema) -> int:
    changed = 0
    for items in _pipelines_items(schema):
        for branch in _branches(items):
            kind = branch.get("properties", {}).get("type", {}).get("enum", [])
            if kind and set(kind) <= {"identify", "track", "page", "screen", "group"}:
                identity = copy.deepcopy(_IDENTITY)
                if kind == ["track"]:  # a report is attributed by its properties (a delivery), not a person
                    identity["anyOf"].append({"required": ["event"], "properties": {"event": {"enum": REPORTS}}})
                branch["allOf"] = [identity, *branch.get("allOf", [])]
                changed += 1
    return changed


def _group_id_required(schema: Schema) -> int:
    changed = 0
    for branch in _calls_of_type(schema, "group"):
        branch.setdefault("required", [])
        if "groupId" not in branch["required"]:
            branch["required"].append("groupId")
        branch["properties"]["groupId"] = {"type": "string", "minLength": 1}
        changed += 1
    return changed


# -- stage 4: discriminated unions ----------------------------------------------------------------


@dataclass(frozen=True)
class Union:
    """Where a union told apart by ``keys`` sits, and the key value that an absent key means."""

    at: str
    """"" for the body itself, "batch" for the items of its ``batch`` array."""
    keys: tuple[str, ...]
    default: str | None = None
    definition: str = "operation"


UNIONS: dict[Endpoint, Union] = {
    ("track", "POST /api/v1/customers/{identifier}/events"): Union("", ("type",), "event", "event"),
    ("track", "POST /api/v1/events"): Union("", ("type",), "event", "event"),
    ("track", "POST /api/v2/entity"): Union("", ("type", "action")),
    ("track", "POST /api/v2/batch"): Union("batch", ("type", "action")),
    ("pipelines", "POST /batch"): Union("batch", ("type",), None, "call"),
}


def _key_values(branch: Schema, key: str) -> list[str]:
    sub = branch.get("properties", {}).get(key, {})
    if "const" in sub:
        return [sub["const"]]
    return [value for value in sub.get("enum", []) if isinstance(value, str)]


def _definition_name(union: Union, values: tuple[str, ...]) -> str:
    """``person.identify`` for a type/action pair; ``call.identify`` for one key (never the union's own name)."""
    return ".".join(values) if len(values) > 1 else f"{union.definition}.{values[0]}"


def discriminate(schema: Schema, union: Union, defs: dict[str, Schema]) -> tuple[Schema, list[list[str]]]:
    """Turn the union into an ``if``/``then`` chain; return it and the valid key tuples, in order.

    A branch whose key allows several values serves each of them unless another branch names
    that value alone (the specific branch is what the description says of that kind).
    """
    by_values: dict[tuple[str, ...], Schema] = {}
    specific: set[tuple[str, ...]] = set()
    for branch in _branches(schema):
        choices: list[tuple[str, ...]] = [()]
        for key in union.keys:
            choices = [(*done, value) for done in choices for value in _key_values(branch, key)]
        if not choices or any(len(values) != len(union.keys) for values in choices):
            raise ValueError(f"a branch of the union has no value for {union.keys}: {json.dumps(branch)[:200]}")
        single = len(choices) == 1
        for values in choices:
            if values in specific and not single:
                continue
            if single or values not in by_values:
                by_values[values] = branch
            if single:
                specific.add(values)
    pairs = [list(values) for values in by_values]
    first_key = union.keys[0]
    firsts = list(dict.fromkeys(values[0] for values in by_values))
    rules: list[Schema] = []
    if len(union.keys) == 2:
        second = union.keys[1]
        for first in firsts:
            seconds = [values[1] for values in by_values if values[0] == first]
            rules.append(
                {
                    "if": {"properties": {first_key: {"const": first}}, "required": [first_key]},
                    "then": {"properties": {second: {"enum": seconds}}},
                }
            )
    for values, branch in by_values.items():
        name = _definition_name(union, values)
        if name in defs or name == union.definition:
            raise ValueError(f"definition name {name} is used twice")
        body = {key: value for key, value in branch.items() if key != "title"}
        # The condition already fixed the keys' values: the branch states them as constants, without prose.
        body["properties"] = {
            **body.get("properties", {}),
            **{key: {"const": value} for key, value in zip(union.keys, values, strict=True)},
        }
        defs[name] = body
        condition: Schema = {
            "properties": {key: {"const": value} for key, value in zip(union.keys, values, strict=True)}
        }
        if values[0] != union.default:
            condition["required"] = list(union.keys)
        rules.append({"if": condition, "then": {"$ref": f"#/$defs/{name}"}})
    composite: Schema = {
        "type": "object",
        "properties": {first_key: {"type": "string", "enum": firsts}},
        "allOf": rules,
    }
    required = [key for key in union.keys if union.default is None]
    if required:
        composite["required"] = required
    return composite, pairs


# -- stage 5: shared definitions ------------------------------------------------------------------

FACTOR_MIN_BYTES = 80


def _canonical(node: Node) -> str:
    return json.dumps(node, sort_keys=True, separators=(",", ":"))


def _count_subschemas(roots: dict[str, Node]) -> tuple[dict[str, int], dict[str, str]]:
    """How often each (not tiny) subschema occurs, and a name for it from where it first occurs."""
    counts: dict[str, int] = {}
    names: dict[str, str] = {}
    stack: list[tuple[Node, str]] = list(roots.items())[::-1]
    stack = [(node, name) for name, node in stack]
    while stack:
        node, name = stack.pop()
        if isinstance(node, dict):
            if "$ref" not in node:
                text = _canonical(node)
                if len(text) >= FACTOR_MIN_BYTES:
                    counts[text] = counts.get(text, 0) + 1
                    names.setdefault(text, name)
            for key, value in reversed(node.items()):
                if key in ("properties", "patternProperties"):
                    stack.extend((sub, prop) for prop, sub in reversed(value.items()))
                else:
                    stack.append((value, name))
        elif isinstance(node, list):
            stack.extend((item, name) for item in reversed(node))
    return counts, names


def _replace(node: Node, text: str, reference: Schema) -> Node:
    if isinstance(node, dict):
        if _canonical(node) == text:
            return dict(reference)
        return {key: _replace(value, text, reference) for key, value in node.items()}
    if isinstance(node, list):
        return [_replace(item, text, reference) for item in node]
    return node


def factor(schema: Schema, defs: dict[str, Schema]) -> None:
    """Move every subschema that occurs more than once (and is not tiny) into ``defs``, largest first."""
    while True:
        counts, names = _count_subschemas({"body": schema, **defs})
        repeated = sorted((len(text), text) for text, count in counts.items() if count > 1)
        if not repeated:
            return
        _, text = repeated[-1]
        base = names[text]
        name = base if base not in defs else next(f"{base}{n}" for n in range(2, 100) if f"{base}{n}" not in defs)
        reference = {"$ref": f"#/$defs/{name}"}
        for key in list(defs):
            defs[key] = _replace(defs[key], text, reference)
        replaced = _replace(schema, text, reference)
        schema.clear()
        schema.update(replaced)
        defs[name] = json.loads(text)


# -- putting it together ----------------------------------------------------------------------------


def _description_body(
    document: Schema, path: str, method: str, early: tuple[Callable[[Schema], int], ...] = ()
) -> Schema:
    """The body schema of one operation, converted, with ``early`` changes applied, simplified."""
    body = _resolve(document["paths"][path][method]["requestBody"], document)
    converted = _to_json_schema(body["content"]["application/json"]["schema"])
    for change in early:
        if change(converted) == 0:
            raise ValueError(f"{change.__name__} no longer applies to {method.upper()} {path}: update the script")
    return simplify(converted)


CURRENT = "Customer.io's current description (OpenAPI 3.1)"


def _changes(documents: dict[str, Schema]) -> tuple[list[Change], list[Change], list[Change]]:
    """The updates to Customer.io's current description, then the relaxations, then the rules, in that order."""

    def alias() -> Schema:
        return _description_body(documents["pipelines"], "/alias", "post")

    pipelines_calls = tuple(
        ("pipelines", f"POST /{name}") for name in ("identify", "track", "page", "screen", "group", "batch")
    )
    person_events = ("track", "POST /api/v1/customers/{identifier}/events")
    v2 = (("track", "POST /api/v2/entity"), ("track", "POST /api/v2/batch"))
    tracks = (("pipelines", "POST /track"), ("pipelines", "POST /batch"))
    identifies = (("pipelines", "POST /identify"), ("pipelines", "POST /batch"))
    devices = (("track", "PUT /api/v1/customers/{identifier}/devices"), *v2)
    updates = [
        Change(
            v2,
            "v2 person `identifiers`, `merge` `primary`/`secondary`",
            "`id`, `email` or `cio_id`",
            "also `phone` (E.164, e.g. `+14155552671`), for workspaces that identify people by phone",
            CURRENT + ": person_common `identifiers`",
            _phone_identifier,
        ),
        Change(
            tracks,
            "Pipelines `track` semantic events",
            "any event name, no other requirement",
            "typed variants with their own required fields: "
            + "; ".join(
                f"{event}: {', '.join(_required_paths(then)) or 'nothing more'}"
                for event, then in SEMANTIC_EVENTS.items()
            ),
            CURRENT + ": `track` `oneOf` (create_update_device, delete_device, delete_person, ...)",
            _semantic_events,
        ),
        Change(
            identifies,
            "Pipelines identify `traits`",
            "`email`, `createdAt`, `cio_subscription_preferences.topics`",
            'also `unsubscribed` (true, any casing of "true", 1 or "1") and `cio_subscription_preferences.channels`',
            CURRENT + ": `identify` traits",
            _identify_traits,
        ),
        Change(
            v2,
            "v2 person `identify` `timestamp`",
            "`_timestamp`",
            "`timestamp` (and `_timestamp`)",
            CURRENT + ": Person: Identify",
            _v2_identify_timestamp,
        ),
    ]
    relaxations = [
        Change(
            (("track", "PUT /api/v1/customers/{identifier}"),),
            "`update_or_add_person` attribute values",
            "string, integer or boolean",
            "any JSON value (numbers such as 99.5, arrays, objects, null)",
            "Customer.io's docs: attributes are strings, numbers or booleans and may hold complex JSON "
            '("Storing and using JSON"); its `customerio` library passes them through (NaN as null)',
            _any_json_attributes,
        ),
        Change(
            (person_events,),
            '`send_customer_event` `"type": "screen"`',
            "`anonymous_id` required",
            "no `anonymous_id` (the person is in the path)",
            "the description's own example of a person's screen view has none",
            _screen_without_anonymous_id,
        ),
        Change(
            (("track", "POST /api/v1/forms/{form_id}/submit"),),
            "`submit_form_response` `data.id`",
            "string",
            "string or number",
            'the description\'s own example sends `"id": 12345`',
            _numeric_form_id,
        ),
        Change(
            pipelines_calls,
            "Pipelines `userId`, `anonymousId`",
            "string, one of them required",
            "string or null, at least one a non-empty string",
            "`customerio-cdp-analytics` sends the other one as null on every call",
            _nullable_ids,
        ),
        Change(
            (("pipelines", "POST /batch"),),
            "`send_batch_requests` items",
            "identify, track, page, screen, group",
            "also alias",
            "`customerio-cdp-analytics` sends alias calls only through `/v1/batch`",
            _batch_alias(alias),
        ),
        Change(
            (*pipelines_calls, ("pipelines", "POST /alias")),
            "Pipelines calls' common fields",
            "`timestamp`, `context`, `integrations`, `messageId`, `sentAt`… on single identify, track, page, screen "
            "and group calls",
            "the same on every call, batched calls and aliases included, and `_metadata`; an alias's "
            "`anonymousId`; a page's or screen's `category`; a batch's `sentAt`",
            "`customerio-cdp-analytics` sends them (every batched call carries its `timestamp`, `context` and "
            "`integrations`), `@customerio/cdp-analytics-node` adds `_metadata`: a field Customer.io's own "
            "library sends is never warned of as ignored",
            _common_fields(lambda: _description_body(documents["pipelines"], "/page", "post")),
        ),
        Change(
            pipelines_calls,
            "Pipelines `integrations`",
            "object",
            "object or null",
            'the description\'s own `/track` example sends `"integrations": null`',
            _nullable_integrations,
        ),
        Change(
            v2,
            "v2 person `page` operation `action`",
            '`"screen"`',
            '`"page"`',
            "a copy-paste slip in the description: the branch documents page views",
            _v2_page_action,
            before_simplifying=True,
        ),
        Change(
            (("track", "POST /api/v1/merge_customers"),),
            "`merge_customer_profiles` `primary`/`secondary`",
            "`id`, `email` or `cio_id`",
            "also `phone`",
            "the current description takes `phone` wherever a v2 operation names a person; a merge names two",
            _phone_identifier,
        ),
        Change(
            (("track", "POST /api/v1/events"),),
            "`track_anonymous_event` `anonymous_id`",
            "string",
            "string or number",
            '`customerio-node` `trackAnonymous(anonymousId, ...)` ("String or number") sends a number as is',
            _numeric_anonymous_id,
        ),
        Change(
            devices,
            "device `attributes` values (v1 and v2)",
            "string",
            "string, number, boolean or null, as person attributes",
            '`customerio-node` `addDevice(id, token, "ios", {primary: true})`, its own documented example, '
            "sends a boolean",
            _scalar_device_attributes,
        ),
        Change(
            tracks,
            "`Report Content Event` `properties.activityType`",
            "required",
            "optional (`actionType`: viewed_content or clicked_content)",
            "the current description's own bug: it requires `activityType` but defines only `actionType`",
            _no_activity_type,
        ),
    ]
    rules = [
        Change(
            (person_events, ("track", "POST /api/v1/events"), *v2),
            "`timestamp`, `_timestamp` (v1 events, v2 operations)",
            "integer",
            "integer below 10^11 (unix seconds)",
            "a larger value is milliseconds, which Customer.io reads as a date thousands of years ahead",
            _unix_seconds,
        ),
        Change(
            tuple(("track", f"POST /api/v1/segments/{{segment_id}}/{verb}_customers") for verb in ("add", "remove")),
            "segment `ids`",
            "strings",
            "strings; a number is refused saying so",
            "`customerio-node` `addCustomersToSegment(7, [42])` sends numbers as given; "
            "Customer.io's docs want strings",
            _string_ids,
        ),
        Change(
            (("track", "POST /api/v2/batch"), ("pipelines", "POST /batch")),
            "`batch`",
            "optional array",
            "required, at least one item",
            "an empty batch does nothing",
            _non_empty_batch,
        ),
        Change(
            pipelines_calls,
            "Pipelines `userId` / `anonymousId`",
            "one of them required",
            "at least one of them present and non-empty (neither for a `Report Delivery Event` or "
            "`Report Content Event`, attributed by their properties)",
            "Customer.io cannot attribute a call without either",
            _identity_required,
        ),
        Change(
            (("pipelines", "POST /group"), ("pipelines", "POST /batch")),
            "Pipelines group `groupId`",
            "optional on some branches",
            "required, non-empty",
            "a group call without a group does nothing",
            _group_id_required,
        ),
    ]
    return updates, relaxations, rules


def _required_paths(schema: Schema, prefix: str = "") -> list[str]:
    """``userId``, ``context.device.token``: every field a schema requires, nested requirements included."""
    found = []
    for name in schema.get("required", []):
        sub = schema.get("properties", {}).get(name, {})
        inner = _required_paths(sub, f"{prefix}{name}.")
        found += inner or [f"`{prefix}{name}`"]
    return found


def derive(source: Path) -> dict[str, Any]:
    raw = {api: (source / f"{api}.json").read_bytes() for api in ("track", "pipelines")}
    documents = {api: json.loads(text) for api, text in raw.items()}
    updates, relaxations, rules = _changes(documents)
    result: dict[str, Any] = {"_source": {f"{api}.json": hashlib.sha256(text).hexdigest() for api, text in raw.items()}}
    unions: dict[str, Any] = {}
    for api, document in documents.items():
        bodies: dict[str, Any] = {}
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                key = f"{method.upper()} {path}"
                if method == "parameters" or "requestBody" not in operation or (api, key) in SKIPPED:
                    continue
                applicable = [change for change in (*updates, *relaxations, *rules) if (api, key) in change.endpoints]
                early = tuple(change.apply for change in applicable if change.before_simplifying)
                schema = _description_body(document, path, method, early)
                for change in applicable:
                    if not change.before_simplifying and change.apply(schema) == 0:
                        raise ValueError(f"{change.field} no longer applies to {api} {key}: update the script")
                defs: dict[str, Schema] = {}
                union = UNIONS.get((api, key))
                if union is not None:
                    target = schema["properties"]["batch"] if union.at == "batch" else None
                    composite, pairs = discriminate(target["items"] if target else schema, union, defs)
                    defs[union.definition] = composite
                    if target is not None:
                        target["items"] = {"$ref": f"#/$defs/{union.definition}"}
                    else:
                        schema = {"$ref": f"#/$defs/{union.definition}"}
                    unions[f"{api} {key}"] = {
                        "at": union.at,
                        "keys": list(union.keys),
                        "default": union.default,
                        "definition": union.definition,
                        "valid": pairs,
                    }
                factor(schema, defs)
                out = {"$schema": DRAFT, **schema}
                if defs:
                    out["$defs"] = dict(sorted(defs.items()))
                size = len(_canonical(out).encode())
                if size > MAX_SCHEMA_BYTES:
                    raise ValueError(f"{api} {key}: {size:,} bytes, over the {MAX_SCHEMA_BYTES:,}-byte budget")
                bodies[key] = out
        result[api] = dict(sorted(bodies.items()))
    result["_unions"] = unions
    return result


CONVERSIONS = [
    (
        "every `oneOf` (e.g. `merge_customer_profiles` `primary`)",
        "exactly one branch matches",
        "at least one branch matches",
        '`{"id": ...}` matches both the `id` and the `email` branch, neither of which requires its key',
    ),
    (
        "Pipelines single calls `type`",
        "required",
        "optional; the tool fills it from the endpoint",
        "the endpoint already says which call it is",
    ),
]
"""Relaxations made by the conversion itself (stage 1) or by the tool, listed with the others."""


def _documents(source: Path) -> dict[str, Schema]:
    return {api: json.loads((source / f"{api}.json").read_bytes()) for api in ("track", "pipelines")}


def updates_table(source: Path = DEFAULT_SOURCE) -> str:
    _updates, _, _ = _changes(_documents(source))
    rows = ["| field | the vendored description says | the current description says | where |", "|---|---|---|---|"]
    rows += [f"| {c.field} | {c.described} | {c.accepted} | {c.why} |" for c in _updates]
    return "\n".join(rows) + "\n"


def relaxations_table(source: Path = DEFAULT_SOURCE) -> str:
    _, relaxations, _ = _changes(_documents(source))
    rows = ["| field | the description says | we accept | why |", "|---|---|---|---|"]
    rows += [f"| {c.field} | {c.described} | {c.accepted} | {c.why} |" for c in relaxations]
    rows += [f"| {field} | {described} | {accepted} | {why} |" for field, described, accepted, why in CONVERSIONS]
    return "\n".join(rows) + "\n"


def rules_table(source: Path = DEFAULT_SOURCE) -> str:
    _, _, rules = _changes(_documents(source))
    rows = ["| field | the description says | we require | why |", "|---|---|---|---|"]
    rows += [f"| {c.field} | {c.described} | {c.accepted} | {c.why} |" for c in rules]
    return "\n".join(rows) + "\n"


def render(source: Path) -> str:
    return json.dumps(derive(source), sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="folder with track.json, pipelines.json")
    parser.add_argument("--check", action="store_true", help="exit 1 if the shipped file differs from a derivation")
    parser.add_argument("--relaxations-table", action="store_true", help="print the relaxations table of docs/tools.md")
    parser.add_argument("--rules-table", action="store_true", help="print the rules table of docs/tools.md")
    parser.add_argument("--updates-table", action="store_true", help="print the updates table of docs/tools.md")
    args = parser.parse_args(argv)
    if args.updates_table:
        sys.stdout.write(updates_table(args.source))
        return 0
    if args.relaxations_table:
        sys.stdout.write(relaxations_table(args.source))
        return 0
    if args.rules_table:
        sys.stdout.write(rules_table(args.source))
        return 0
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
