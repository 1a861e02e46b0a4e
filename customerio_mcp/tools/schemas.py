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
from collections.abc import Callable, Iterator
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


class _Branches(dict[tuple[Any, ...], "jsonschema_rs.Validator"]):
    """A batch item's validator by what its type/action keys hold: its branch's, or the whole union's.

    The item's union (written by ``scripts/derive_schemas.py``) is an object whose keys hold strings,
    with an ``allOf`` of rules: ``if`` the keys hold one valid pair, ``then`` that pair's branch
    (and, for two keys, ``if`` the first holds a value, ``then`` the second holds one that goes with
    it). An item whose keys hold a valid pair meets all of that except its own pair's ``then``, so it
    is valid exactly when that ``then`` accepts it. The whole union makes jsonschema-rs try all ~20
    ``if``s of every item: 5,000 operations took 15 ms instead of 3. Each branch is compiled the
    first time an item selects it (all 18 at once cost a first batch about 10 ms more).
    """

    def __init__(self, api: str, schema_key: str) -> None:
        super().__init__()
        union = union_for(api, schema_key)
        assert union is not None
        self._item = _item_schema(api, schema_key)
        self._whole = compiled(api, schema_key, item=True)
        self._rules: dict[tuple[str, ...], str] = {}
        for index, rule in enumerate(self._item["$defs"][union.definition]["allOf"]):
            selects = rule["if"]["properties"]
            if "$ref" in rule["then"] and set(selects) == set(union.keys):
                values = tuple(selects[key]["const"] for key in union.keys)
                self._rules[values] = f"#/$defs/{union.definition}/allOf/{index}/then"
        assert set(self._rules) == set(union.valid), f"{api} {schema_key}: the union's rules changed shape"

    def __missing__(self, values: tuple[Any, ...]) -> jsonschema_rs.Validator:
        then = self._rules.get(values)
        if then is None:  # not a valid pair: the union refuses the item, and says why
            return self._whole
        import jsonschema_rs

        validator = self[values] = jsonschema_rs.validator_for({**self._item, "$ref": then})
        return validator


@cache
def _branches(api: str, schema_key: str) -> _Branches:
    return _Branches(api, schema_key)


def _selector(keys: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """What an item holds under ``keys`` (one or two); a lambda per arity is 3× faster than a generic tuple."""
    if len(keys) == 1:
        (only,) = keys
        return lambda item: (item.get(only),)
    first, second = keys
    return lambda item: (item.get(first), item.get(second))


def first_invalid_item(api: str, schema_key: str, items: list[Any]) -> int | None:
    """The index of the first item of a batch that its schema refuses; None when every item passes.

    An item whose keys hold a valid pair is checked against that pair's branch alone (``_branches``);
    any other item, which the union refuses, against the whole union.
    """
    union = union_for(api, schema_key)
    assert union is not None
    select, branches = _selector(union.keys), _branches(api, schema_key)
    for index, item in enumerate(items):
        try:
            validator = branches[select(item)]
        except (AttributeError, TypeError):  # not an object, or a key holding an object or an array
            validator = compiled(api, schema_key, item=True)
        if not validator.is_valid(item):
            return index
    return None


EXPLAINED_FAILURES_MAX = 10
"""Failing items of one array (or other members of one object) the explainer looks into; the rest are skipped."""


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


def _bounded_class(root: dict[str, Any]) -> type[Validator]:
    """Draft 2020-12 for ``root``, except that its walk, and what it prints, are bounded.

    jsonschema walks every item of an array and every other member of an object in Python, building an
    error for each that fails: refusing 100,000 segment ids took 0.7 s (strings, one error for the count)
    to 1.9 s (numbers, 100,000 errors more), to report one error. Here ``items`` and
    ``additionalProperties`` have jsonschema-rs check each child first (a tenth of a microsecond each),
    and only the first ``EXPLAINED_FAILURES_MAX`` children it refuses are walked and explained, members
    in the body's own order; and no message prints a whole value (``_quiet``).
    """
    from jsonschema import Draft202012Validator, validators

    accepts = _Accepts(root)
    plain_items = Draft202012Validator.VALIDATORS["items"]
    plain_additional = Draft202012Validator.VALIDATORS["additionalProperties"]

    def items(validator: Validator, each: Any, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
        if not isinstance(each, dict) or "prefixItems" in schema or not validator.is_type(instance, "array"):
            yield from plain_items(validator, each, instance, schema)
            return
        valid = accepts.check(each)
        failing = (index for index, item in enumerate(instance) if not valid(item))
        for _, index in zip(range(EXPLAINED_FAILURES_MAX), failing, strict=False):
            yield from validator.descend(instance[index], each, path=index)

    def additional(validator: Validator, each: Any, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
        if not isinstance(each, dict) or not validator.is_type(instance, "object"):
            yield from plain_additional(validator, each, instance, schema)
            return
        if not each:  # {}: anything goes
            return
        named, patterns = schema.get("properties", {}), "|".join(schema.get("patternProperties", {}))
        valid = accepts.check(each)
        failing = (
            key
            for key, value in instance.items()
            if key not in named and not (patterns and re.search(patterns, key)) and not valid(value)
        )
        for _, key in zip(range(EXPLAINED_FAILURES_MAX), failing, strict=False):
            yield from validator.descend(instance[key], each, path=key)

    quieted = {name: _quiet(Draft202012Validator.VALIDATORS[name]) for name in _REPR_IN_MESSAGE}
    return validators.extend(Draft202012Validator, {**quieted, "items": items, "additionalProperties": additional})


@cache
def explainer(api: str, schema_key: str, item: bool = False) -> Validator:
    """The pure-Python validator used to explain why a body (or one batch item) failed (its walk bounded)."""
    schema = _item_schema(api, schema_key) if item else schema_for(api, schema_key)
    return _bounded_class(schema)(schema)
