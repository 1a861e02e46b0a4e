"""Request-body schemas shipped with the package, compiled once, and what their unions are.

``request_schemas.json`` is written by ``scripts/derive_schemas.py`` from Customer.io's OpenAPI
descriptions: one compact JSON Schema (2020-12) per endpoint, plus ``_unions``, which says where a
body holds a union told apart by ``type`` (and ``action``) and which values are valid.

The file is read on first use, not at import, and each validator is compiled by ``jsonschema-rs``
(Rust) the first time its endpoint is called, so start-up stays as fast as a bare MCP server's
and a call costs microseconds. Batch endpoints also get a validator for one item, so a batch is
checked operation by operation, each against the branch its ``type``/``action`` select
(``first_invalid_item``). The pure-Python ``jsonschema`` is loaded only to explain a
failure (its error tree is richer), and only ever for one item, never a whole batch. Its walk is
bounded (``explainer``): of an array's items or an object's other members, it looks only at those
jsonschema-rs refuses, and at no more than ``EXPLAINED_FAILURES_MAX`` of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema_rs
    from jsonschema.exceptions import ValidationError
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

    def selected(self, instance: Any) -> tuple[str, ...] | None:
        """The valid type/action values ``instance`` selects (``default`` when the first key is missing), or None."""
        if not isinstance(instance, dict):
            return None
        values = tuple(instance.get(key, self.default if key == self.keys[0] else None) for key in self.keys)
        return values if values in self.valid else None

    def branch_phrase(self, values: tuple[str, ...]) -> str:
        """The branch ``values`` select, in words: ``for a person `event` operation``."""
        if len(values) == 2:
            return f"for a {values[0]} `{values[1]}` operation"
        if self.definition == "event":
            return f"for an event of type `{values[0]}`"
        return f"for a `{values[0]}` call"


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


def _variant_rules(branch: dict[str, Any]) -> dict[str, int]:
    """A branch's own rules that select on one key's constant (``if event == "User Deleted"``): value -> index.

    These are the typed variants of a branch (Customer.io's semantic ``track`` events): an item meets
    the branch and, when its key holds one of the values, that rule's ``then`` too.
    """
    found: dict[str, int] = {}
    for index, part in enumerate(branch.get("allOf", [])):
        selects = part.get("if", {}).get("properties", {})
        if len(selects) == 1 and "const" in next(iter(selects.values())):
            found[next(iter(selects.values()))["const"]] = index
    return found


class _Branches(dict[tuple[Any, ...], "jsonschema_rs.Validator"]):
    """A batch item's validator by what its type/action keys hold: its branch's, or the whole union's.

    The item's union (written by ``scripts/derive_schemas.py``) is an object whose keys hold strings,
    with an ``allOf`` of rules: ``if`` the keys hold one valid pair, ``then`` that pair's branch
    (and, for two keys, ``if`` the first holds a value, ``then`` the second holds one that goes with
    it). An item whose keys hold a valid pair meets all of that except its own pair's ``then``, so it
    is valid exactly when that ``then`` accepts it. The whole union makes jsonschema-rs try all ~20
    ``if``s of every item: 5,000 operations took 15 ms instead of 3. Each branch is compiled the
    first time an item selects it (all 18 at once cost a first batch about 10 ms more).

    A branch with typed variants (``_variant_rules``: a ``track`` call named "User Deleted") is
    split the same way: ``refinements`` says which key tells them apart, and the item's values get
    that key's value appended (None for any other value), selecting the branch without the variant
    rules, or with only its own: 5,000 ordinary track calls would otherwise try 9 ``if``s each.
    """

    def __init__(self, api: str, schema_key: str) -> None:
        super().__init__()
        union = union_for(api, schema_key)
        assert union is not None
        self._item = _item_schema(api, schema_key)
        self._whole = compiled(api, schema_key, item=True)
        self._base = {key: value for key, value in self._item.items() if key != "$ref"}
        self._rules: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.refinements: dict[tuple[str, ...], tuple[str, frozenset[str]]] = {}
        defs = self._item["$defs"]
        for rule in defs[union.definition]["allOf"]:
            selects = rule["if"]["properties"]
            if "$ref" in rule["then"] and set(selects) == set(union.keys):
                values = tuple(selects[key]["const"] for key in union.keys)
                self._rules[values] = rule["then"]
                branch = defs[rule["then"]["$ref"].removeprefix("#/$defs/")]
                variants = _variant_rules(branch)
                if variants:
                    (key,) = {next(iter(branch["allOf"][index]["if"]["properties"])) for index in variants.values()}
                    self.refinements[values] = (key, frozenset(variants))
                    others = [part for index, part in enumerate(branch["allOf"]) if index not in variants.values()]
                    self._rules[(*values, None)] = {**branch, "allOf": others}
                    for value, index in variants.items():
                        self._rules[(*values, value)] = {**branch, "allOf": [*others, branch["allOf"][index]["then"]]}
        valid = {values[: len(union.keys)] for values in self._rules}
        assert valid == set(union.valid), f"{api} {schema_key}: the union's rules changed shape"

    def __missing__(self, values: tuple[Any, ...]) -> jsonschema_rs.Validator:
        branch = self._rules.get(values)
        if branch is None:  # not a valid pair: the union refuses the item, and says why
            return self._whole
        import jsonschema_rs

        validator = self[values] = jsonschema_rs.validator_for({**self._base, **branch})
        return validator


@cache
def _branches(api: str, schema_key: str) -> _Branches:
    return _Branches(api, schema_key)


def selector(keys: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """What an item holds under ``keys`` (one or two); a lambda per arity is 3× faster than a generic tuple."""
    if len(keys) == 1:
        (only,) = keys
        return lambda item: (item.get(only),)
    first, second = keys
    return lambda item: (item.get(first), item.get(second))


def _refined(
    select: Callable[[dict[str, Any]], tuple[Any, ...]], refinements: dict[tuple[str, ...], tuple[str, frozenset[str]]]
) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """``select``, then for a branch with variants its variant key's value (None for any other value)."""

    def refined(item: dict[str, Any]) -> tuple[Any, ...]:
        values = select(item)
        found = refinements.get(values)
        if found is None:
            return values
        key, variants = found
        value = item.get(key)
        return (*values, value if value in variants else None)

    return refined


def first_invalid_item(api: str, schema_key: str, items: list[Any]) -> int | None:
    """The index of the first item of a batch that its schema refuses; None when every item passes.

    An item whose keys hold a valid pair is checked against that pair's branch alone (``_branches``);
    any other item, which the union refuses, against the whole union.
    """
    union = union_for(api, schema_key)
    assert union is not None
    branches = _branches(api, schema_key)
    select = selector(union.keys)
    if branches.refinements:
        select = _refined(select, branches.refinements)
    for index, item in enumerate(items):
        try:
            validator = branches[select(item)]
        except (AttributeError, TypeError):  # not an object, or a key holding an object or an array
            validator = compiled(api, schema_key, item=True)
        if not validator.is_valid(item):
            return index
    return None


EXPLAINED_FAILURES_MAX = 100
"""Failing items of one array (or members of one object) an explanation counts exactly; past one more, it stops.

Each is walked in pure Python (about 20 µs): at 1,000, refusing 60,000 wrong form fields spent 40 of
its 60 ms there, over the 50 ms every body must be checked in. "and at least 100 more fail the same
way" tells a model as much as a count to a thousand would."""


def _first_failures(children: Iterable[Iterator[ValidationError]]) -> Iterator[ValidationError]:
    """The errors of ``children`` (one iterator per item), until more than ``EXPLAINED_FAILURES_MAX`` items fail."""
    failed = 0
    for errors in children:
        found = False
        for error in errors:
            found = True
            yield error
        if found:
            failed += 1
            if failed > EXPLAINED_FAILURES_MAX:
                return


class _Accepts(dict[int, "jsonschema_rs.Validator"]):
    """jsonschema-rs validators for the subschemas of one body schema, by the subschema's identity.

    A subschema's ``$ref``s point into the body schema's ``$defs``, so each is compiled with them;
    the subschemas live as long as the cached document, so their ids stay theirs.
    """

    def __init__(self, root: dict[str, Any]) -> None:
        super().__init__()
        self._context = {key: root[key] for key in ("$schema", "$defs") if key in root}

    def check(self, subschema: Any) -> Callable[[Any], bool]:
        validator = self.get(id(subschema))
        if validator is None:
            import jsonschema_rs

            whole = {**self._context, **subschema} if isinstance(subschema, dict) else subschema
            validator = self[id(subschema)] = jsonschema_rs.validator_for(whole)
        return validator.is_valid


class _QuietList(list[Any]):
    """A shallow copy of an array whose ``repr`` does not walk it (see ``_quiet``)."""

    def __repr__(self) -> str:
        return f"<array of {len(self)}>"


class _QuietDict(dict[str, Any]):
    """A shallow copy of an object whose ``repr`` does not walk it (see ``_quiet``)."""

    def __repr__(self) -> str:
        return f"<object of {len(self)}>"


_REPR_IN_MESSAGE = frozenset(
    {"type", "enum", "const", "anyOf", "oneOf", "not", "minItems", "maxItems", "minProperties", "maxProperties"}
    | {"contains", "uniqueItems", "format", "pattern", "minLength", "maxLength"}
)
"""jsonschema keywords whose error message holds ``repr`` of the whole value that fails them."""


def _quiet(keyword: Callable[..., Any]) -> Callable[..., Any]:
    """``keyword``, applied to an array or object through a shallow copy whose ``repr`` is a few characters.

    jsonschema writes ``repr`` of the value into each error message (which ``schema_errors`` never
    reads): a body holding 100,000 numbers where the schema wants a string, refused by each of a
    union's branches, spent 150 ms printing the list 18 times. The copy is made at C speed and
    compares equal; the errors still carry the value itself (``ValidationError.instance``).
    """

    def run(validator: Validator, value: Any, instance: Any, schema: dict[str, Any]) -> Any:
        if type(instance) is list:
            instance = _QuietList(instance)
        elif type(instance) is dict:
            instance = _QuietDict(instance)
        return keyword(validator, value, instance, schema)

    return run


def _explaining_class(root: dict[str, Any]) -> type[Validator]:
    """Draft 2020-12 for ``root``, except that its walk, and what it prints, are bounded, in the body's order.

    jsonschema walks every item of an array and every other member of an object in Python, building an
    error for each that fails: refusing 100,000 segment ids took 0.7 s (strings, one error for the count)
    to 1.9 s (numbers, 100,000 errors more), to report one error. Here ``items`` and
    ``additionalProperties`` have jsonschema-rs check each child first (a tenth of a microsecond each),
    walk only the children it refuses, and stop after ``EXPLAINED_FAILURES_MAX`` of them; no message
    prints a whole value (``_quiet``). jsonschema walks ``properties`` in the schema's order and the
    other members as a set: in the body's order, the first wrong member is the first in the document,
    every time.
    """
    from jsonschema import Draft202012Validator, validators

    accepts = _Accepts(root)
    plain_items = Draft202012Validator.VALIDATORS["items"]
    plain_additional = Draft202012Validator.VALIDATORS["additionalProperties"]

    def items(validator: Validator, each: Any, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
        if not isinstance(each, dict) or not validator.is_type(instance, "array"):
            yield from plain_items(validator, each, instance, schema)
            return
        valid = accepts.check(each)
        failing = (
            index for index in range(len(schema.get("prefixItems", [])), len(instance)) if not valid(instance[index])
        )
        yield from _first_failures(validator.descend(instance[index], each, path=index) for index in failing)

    def additional(validator: Validator, each: Any, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
        if not isinstance(each, dict) or not validator.is_type(instance, "object"):
            yield from plain_additional(validator, each, instance, schema)
            return
        if not each:  # {}: anything goes
            return
        named, patterns = schema.get("properties", {}), list(schema.get("patternProperties", {}))
        valid = accepts.check(each)
        failing = (
            key
            for key, value in instance.items()
            if key not in named and not any(re.search(p, key) for p in patterns) and not valid(value)
        )
        yield from _first_failures(validator.descend(instance[key], each, path=key) for key in failing)

    def properties(
        validator: Validator, named: Any, instance: Any, schema: dict[str, Any]
    ) -> Iterator[ValidationError]:
        if not validator.is_type(instance, "object"):
            return
        for key in [key for key in instance if key in named]:
            yield from validator.descend(instance[key], named[key], path=key, schema_path=key)

    quieted = {name: _quiet(Draft202012Validator.VALIDATORS[name]) for name in _REPR_IN_MESSAGE}
    return validators.extend(
        Draft202012Validator, {**quieted, "items": items, "additionalProperties": additional, "properties": properties}
    )


@cache
def explainer(api: str, schema_key: str, item: bool = False) -> Validator:
    """The pure-Python validator used to explain why a body (or one batch item) failed (its walk bounded)."""
    schema = _item_schema(api, schema_key) if item else schema_for(api, schema_key)
    return _explaining_class(schema)(schema)
