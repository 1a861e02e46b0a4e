"""Everything that happens to a request body before it may leave: parse, check, add keys, measure, validate.

The order puts the cheapest checks first, so that no body, however large or hostile, costs much
to refuse:

1. shape: a JSON object (or a string holding one), nesting at most 64 levels; a Pipelines call
   gets its ``type`` from the endpoint;
2. plain JSON and size: one encode refuses what JSON cannot carry (``NaN``, lone surrogates, huge
   integers) and measures the body against Customer.io's size limit before anything else runs;
3. deduplication keys (``id``, ``messageId``) for the items that lack one, then the exact bytes to
   send, measured again, item by item for a batch;
4. the endpoint's schema, with a validator compiled once (``schemas.compiled``), a batch item by
   item, so the first failing item is explained alone;
5. Customer.io's documented limits that a schema cannot state (event name and data sizes,
   identifier lengths).

Each failure is an ``InputError`` naming the field, the rule and the fix; nothing is sent. A body
that passes may still hold top-level fields Customer.io ignores: it is sent as given, with
warnings (``ignored_fields``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from customerio_mcp.errors import InputError
from customerio_mcp.tools import json_hygiene
from customerio_mcp.tools.dedupe_keys import with_keys
from customerio_mcp.tools.ignored_fields import NOTHING_IGNORED, IgnoredFields, ignored_fields
from customerio_mcp.tools.schema_errors import SCHEMA_HINT, explain, json_type
from customerio_mcp.tools.schemas import compiled, explainer, first_invalid_item, union_for
from customerio_mcp.tools.table import ToolSpec

KB = 1024
PERSON_ID_MAX = 150
PATH_PARAMETER_MAX = 1_000
EVENT_NAME_MAX = 100
EVENT_DATA_MAX = 100_000
V2_OPERATION_MAX = 32 * KB
V2_BATCH_MAX = 500 * KB
PIPELINES_CALL_MAX = 32 * KB
PIPELINES_BATCH_MAX = 500 * KB
V2_EVENT_ACTIONS = ("event", "page", "screen")
"""A tuple, not a set: membership by equality never fails on an unhashable value from a model."""
V2_KINDS = ("v2_entity", "v2_batch")
KEY_NAMES = {
    "v1_event": "id",
    "v2_entity": "id",
    "v2_batch": "id",
    "pipelines_call": "messageId",
    "pipelines_batch": "messageId",
}
"""The deduplication key each kind of body (or its batch's items) carries."""
FLOOD_BYTES_PER_ITEM = 25
"""A batch with more items than one per 25 bytes of its size limit is a flood of tiny items (``_prepare_batch``)."""


@dataclass(frozen=True)
class Limits:
    whole: int
    item: int | None
    what: str
    item_what: str


LIMITS: dict[str, Limits] = {
    "v2_entity": Limits(V2_OPERATION_MAX, None, "one v2 operation", ""),
    "v2_batch": Limits(V2_BATCH_MAX, V2_OPERATION_MAX, "a v2 batch", "operation"),
    "pipelines_call": Limits(PIPELINES_CALL_MAX, None, "one Pipelines call", ""),
    "pipelines_batch": Limits(PIPELINES_BATCH_MAX, PIPELINES_CALL_MAX, "a Pipelines batch", "call"),
}


@dataclass(frozen=True)
class PreparedBody:
    body: dict[str, Any]
    """What is sent, deduplication keys included."""
    content: bytes
    """Its exact bytes: every attempt sends these."""
    warnings: IgnoredFields = NOTHING_IGNORED
    """Top-level fields sent that Customer.io ignores."""


def parse_body(raw: Any) -> dict[str, Any]:
    """Accept a JSON object, or a string holding one (for callers written for the string form)."""
    if raw is None:
        raise InputError(
            "request_body",
            "is required when mode is 'execute'",
            f"pass the request body as a JSON object; {SCHEMA_HINT}",
        )
    if isinstance(raw, str):
        raw = json_hygiene.parse(raw, "request_body")
    if not isinstance(raw, dict):
        raise InputError(
            "request_body",
            f"must be a JSON object, not {json_type(raw)}",
            f'wrap the fields in an object such as {{"name": ...}}; {SCHEMA_HINT}',
        )
    return raw


LARGE_BYTES = 64 * KB
LARGE_CONTAINERS = 200
"""A body with more text or more objects and arrays than these costs about a millisecond or more to check."""


def is_large(raw: Any) -> bool:
    """Whether checking ``raw`` may take long enough to belong on a worker thread, not the event loop.

    A string by its length. An object by a walk that stops as soon as it has seen more than
    ``LARGE_CONTAINERS`` objects and arrays (each costs Python work in the checks: a batch of a
    couple of hundred operations is large) or more than ``LARGE_BYTES`` of encoded text, counted low
    (each member or item 2 bytes, each string its length): one event whose data is 1 MiB of numbers
    is then encoded on the worker, not on the loop. A small body costs the walk a few microseconds;
    like ``json_hygiene.check_depth``, it types a container's children at C speed.
    """
    if isinstance(raw, str):
        return len(raw) > LARGE_BYTES
    if not isinstance(raw, dict):
        return False
    stack: list[Any] = [raw]
    containers = size = 0
    while stack:
        value = stack.pop()
        containers += 1
        size += 2 * len(value)
        if containers > LARGE_CONTAINERS or size > LARGE_BYTES:
            return True
        children = value.values() if type(value) is dict else value
        kinds = set(map(type, children))
        if str in kinds or dict in kinds or list in kinds:
            for child in children:
                if type(child) is str:
                    size += len(child)
                elif type(child) is dict or type(child) is list:
                    stack.append(child)
    return size > LARGE_BYTES


def prepare_body(tool: ToolSpec, body: dict[str, Any]) -> PreparedBody:
    """Check ``body`` for ``tool`` and return what to send; raises InputError with nothing sent."""
    if tool.call_type is not None:
        body = _with_call_type(tool.call_type, body)
    limits = LIMITS.get(tool.body or "")
    if limits is not None and limits.item is not None and isinstance(body.get("batch"), list):
        return _prepare_batch(tool, body, limits)
    name = KEY_NAMES.get(tool.body or "")
    if name is not None:
        [body], _ = with_keys([body], name, _lacking_keys(tool, name, [body]))
    content = json_hygiene.check_and_encode(body)
    if limits is not None:
        _check_size(len(content), limits.whole, "request_body", limits.what)
    _check_limits(tool, body, len(content))
    if json_hygiene.can_nest(len(content), json_hygiene.MAX_DEPTH):
        json_hygiene.check_depth(body, "request_body")
    _validate(tool, body)
    return PreparedBody(body, content, ignored_fields(tool, body, _added_fields(tool)))


def _prepare_batch(tool: ToolSpec, body: dict[str, Any], limits: Limits) -> PreparedBody:
    """A batch, cheapest checks first, so that no body up to the HTTP cap costs much to refuse.

    One C encode of the whole body (``EncodedBatch``) measures it; then items are validated in Rust,
    stopping at the first bad one. Only a body that passed both is cut into its items' texts, which
    measures each, and walked in Python: depth, only where an item is big enough to nest too deep;
    keys, spliced into the items' texts; per-operation limits, only where an operation is big enough.

    A flood of tiny items (200,000 empty ones fit under the HTTP cap) is checked and measured by a
    plain encode first, which costs it less (``EncodedBatch``'s ``plain_first``).
    """
    assert limits.item is not None
    batch = body["batch"]
    encoded = json_hygiene.EncodedBatch(body, plain_first=len(batch) > limits.whole // FLOOD_BYTES_PER_ITEM)
    _check_size(encoded.size(), limits.whole, "request_body", limits.what)
    _validate(tool, body)
    sizes = encoded.item_sizes()
    _check_items(sizes, limits)
    _check_batch_depth(body, sizes)
    name = KEY_NAMES[tool.body or ""]
    lacking = _lacking_keys(tool, name, batch)
    items, keys = with_keys(batch, name, lacking)
    encoded.add_keys(name, lacking, keys)
    content = encoded.content()
    _check_size(len(content), limits.whole, "request_body", limits.what)
    _check_items(encoded.item_sizes(), limits)
    if tool.body == "v2_batch":
        # An operation of n bytes cannot break a limit of more than n bytes: small ones need no look.
        # Each is looked at as given, with its size as given: the key just added concerns no limit.
        for index in [index for index, size in enumerate(sizes) if size > EVENT_NAME_MAX]:
            _check_v2_operation(batch[index], f"request_body.batch[{index}]", sizes[index])
    warnings = ignored_fields(tool, body, _added_fields(tool))
    return PreparedBody({**body, "batch": items} if lacking else body, content, warnings)


def _check_batch_depth(body: dict[str, Any], sizes: list[int]) -> None:
    """Depth of each item (3 levels below the body) that is big enough to nest too deep, and of the rest."""
    allowed = json_hygiene.MAX_DEPTH - 2
    deep_enough = json_hygiene.MIN_BYTES_PER_LEVEL * allowed  # json_hygiene.can_nest, for every item at once
    for index in [index for index, size in enumerate(sizes) if size >= deep_enough]:
        json_hygiene.check_depth(body["batch"][index], f"request_body.batch[{index}]", allowed)
    json_hygiene.check_depth({**body, "batch": []}, "request_body")


def check_path_parameter(field: str, value: str, limit: int) -> None:
    size = len(value.encode(errors="surrogatepass"))
    if size > limit:
        what = "a person identifier" if limit == PERSON_ID_MAX else "a path parameter"
        raise InputError(
            field,
            f"is {size:,} bytes; Customer.io allows at most {limit:,} bytes for {what}",
            "use the person's id, email or cio_id" if limit == PERSON_ID_MAX else "use the short identifier",
        )


def _with_call_type(call_type: str, body: dict[str, Any]) -> dict[str, Any]:
    given = body.get("type", call_type)
    if given != call_type:
        raise InputError(
            "request_body.type",
            f"is {json_type(given) if not isinstance(given, str) else repr(given[:100])} but this tool sends "
            f"{call_type!r} calls",
            f"remove `type` or set it to {call_type!r}, or use the tool for that kind of call",
        )
    return body if "type" in body else {**body, "type": call_type}


def _lacking_keys(tool: ToolSpec, name: str, items: list[Any]) -> list[int]:
    """Which of ``items`` (a batch's, or ``[body]``) get a deduplication key: those that carry one and lack it."""
    if tool.body in V2_KINDS:
        return [
            index
            for index, item in enumerate(items)
            if type(item) is dict and name not in item and _v2_keyed(item.get("type"), item.get("action"))
        ]
    return [index for index, item in enumerate(items) if type(item) is dict and name not in item]


def _v2_keyed(kind: Any, action: Any) -> bool:
    """Whether a v2 operation carries a deduplication key: person events only."""
    return kind == "person" and action in V2_EVENT_ACTIONS


def _added_fields(tool: ToolSpec) -> Callable[[tuple[Any, ...]], frozenset[str]]:
    """The fields this server adds to a body (or batch item) whose type/action hold ``selected``: its key."""
    name = KEY_NAMES.get(tool.body or "")
    keyed = frozenset({name} if name else ())
    if tool.body in V2_KINDS:
        return lambda selected: keyed if len(selected) == 2 and _v2_keyed(*selected) else frozenset()
    return lambda selected: keyed


def _too_big(field: str, size: int, limit: int, what: str, fix: str) -> InputError:
    return InputError(field, f"is {size:,} bytes; Customer.io accepts at most {limit:,} bytes for {what}", fix)


def _check_size(size: int, limit: int, field: str, what: str) -> None:
    if size > limit:
        fix = "split the batch into several smaller calls" if "batch" in what else "send less data per call"
        raise _too_big(field, size, limit, what, fix)


def _check_items(item_sizes: list[int], limits: Limits) -> None:
    assert limits.item is not None
    if max(item_sizes, default=0) <= limits.item:
        return
    index = next(index for index, size in enumerate(item_sizes) if size > limits.item)
    raise _too_big(
        f"request_body.batch[{index}]",
        item_sizes[index],
        limits.item,
        f"one {limits.item_what}",
        f"split or shrink this {limits.item_what}",
    )


def _validate(tool: ToolSpec, body: dict[str, Any]) -> None:
    api, key = tool.api, tool.schema_key
    union = union_for(api, key)
    if union is not None and union.at == "batch" and isinstance(body.get("batch"), list) and body["batch"]:
        index = first_invalid_item(api, key, body["batch"])
        if index is not None:
            item, where = body["batch"][index], f"request_body.batch[{index}]"
            json_hygiene.check_depth(item, where)  # explaining walks the item: bound it first
            raise explain(explainer(api, key, item=True), item, where, union)
        # Every item is valid: the envelope is checked with one of them, not all of them once more.
        envelope = {**body, "batch": body["batch"][:1]}
        if compiled(api, key).is_valid(envelope):
            return
        raise explain(explainer(api, key), envelope, "request_body", union, False)
    if not compiled(api, key).is_valid(body):
        raise explain(explainer(api, key), body, "request_body", union, union is not None and union.at == "")


def _check_limits(tool: ToolSpec, body: dict[str, Any], size: int) -> None:
    kind = tool.body
    if kind == "v1_event":
        _check_event(body, "request_body", "data", size)
    elif kind == "v2_entity":
        _check_v2_operation(body, "request_body", size)
    # A v2 batch whose ``batch`` is a list is checked by _prepare_batch; any other the schema refuses.


def _check_event(event: dict[str, Any], where: str, data_key: str, size: int) -> None:
    """Event name and data limits; ``size`` is ``event``'s own encoded size, so small events skip measuring data.

    The data's size is ``size`` less the event encoded with ``null`` in its place (plus the 4 bytes
    of ``null``): the encoder writes every other member the same, so a megabyte of data is not
    encoded a second time just to be measured.
    """
    name = event.get("name")
    # A character is at most 4 bytes: names of up to 25 characters need no encoding to measure.
    if isinstance(name, str) and len(name) > EVENT_NAME_MAX // 4 and len(name.encode()) > EVENT_NAME_MAX:
        raise InputError(
            f"{where}.name",
            f"is {len(name.encode())} bytes; Customer.io allows at most {EVENT_NAME_MAX} bytes for an event name",
            "use a shorter event name and put details in the event data",
        )
    data = event.get(data_key)
    if data is not None and size > EVENT_DATA_MAX:
        size -= len(json_hygiene.encode({**event, data_key: None})) - len(b"null")
        if size > EVENT_DATA_MAX:
            raise _too_big(f"{where}.{data_key}", size, EVENT_DATA_MAX, "event data", "send less event data")


def _check_v2_operation(operation: dict[str, Any], where: str, size: int) -> None:
    identifiers = operation.get("identifiers")
    if operation.get("type") == "person" and isinstance(identifiers, dict):
        for key in ("id", "email", "phone", "cio_id"):
            value = identifiers.get(key)
            if isinstance(value, str) and len(value) > PERSON_ID_MAX // 4:
                check_path_parameter(f"{where}.identifiers.{key}", value, PERSON_ID_MAX)
    if operation.get("action") in V2_EVENT_ACTIONS:
        _check_event(operation, where, "attributes", size)
