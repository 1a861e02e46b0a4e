"""Everything that happens to a request body before it may leave: parse, validate, add IDs, size.

Checks run in this order so that the sizes measured are the sizes sent: validation against the
endpoint's schema, then deduplication keys (a ULID ``id`` on person events, a ``messageId`` on
Pipelines calls) for any item that lacks one, then Customer.io's documented limits on the exact
bytes that will be sent. Each failure is an ``InputError`` naming the field and the fix.
"""

from __future__ import annotations

import json
from typing import Any

from ulid import ULID

from customerio_mcp.errors import InputError
from customerio_mcp.tools.schemas import validator_for
from customerio_mcp.tools.table import ToolSpec

KB = 1024
PERSON_ID_MAX = 150
EVENT_NAME_MAX = 100
EVENT_DATA_MAX = 100_000
V2_OPERATION_MAX = 32 * KB
V2_BATCH_MAX = 500 * KB
PIPELINES_CALL_MAX = 32 * KB
PIPELINES_BATCH_MAX = 500 * KB
PIPELINES_BATCH_TYPES = ("identify", "track", "page", "screen", "group")
V2_EVENT_ACTIONS = frozenset({"event", "page", "screen"})
MAX_MESSAGE = 300
SCHEMA_HINT = "call this tool with mode='get_request_schema' to see the body's JSON Schema"


def encoded_size(value: Any) -> int:
    """Bytes of ``value`` as the client serialises it (compact UTF-8 JSON)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def parse_body(raw: Any) -> dict[str, Any]:
    """Accept a JSON object, or a string holding one (for callers written for the string form)."""
    if raw is None:
        raise InputError(
            "request_body",
            "is required when mode is 'execute'",
            f"pass the request body as a JSON object; {SCHEMA_HINT}",
        )
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(
                "request_body",
                f"is a string but not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
                "send a JSON object (preferably as an object, not a string), with double-quoted keys and no "
                "trailing commas",
            ) from exc
    if not isinstance(raw, dict):
        raise InputError(
            "request_body",
            f"must be a JSON object, not {_json_type(raw)}",
            f'wrap the fields in an object such as {{"name": ...}}; {SCHEMA_HINT}',
        )
    return raw


def prepare_body(tool: ToolSpec, body: dict[str, Any]) -> dict[str, Any]:
    """Validate ``body`` for ``tool`` and return the body to send (a copy, with IDs added)."""
    body = json.loads(json.dumps(body))  # a private deep copy, and proof that it is plain JSON
    if tool.call_type is not None:
        _fill_call_type(tool.call_type, body)
    if tool.body == "pipelines_batch":
        _check_batch_types(body)
    _validate(tool, body)
    _add_dedupe_keys(tool, body)
    _check_limits(tool, body)
    return body


def check_person_identifier(field: str, value: str) -> None:
    size = len(value.encode())
    if size > PERSON_ID_MAX:
        raise InputError(
            field,
            f"is {size} bytes; Customer.io allows at most {PERSON_ID_MAX} bytes for a person identifier",
            "use the person's id, email or cio_id rather than a longer value",
        )


def _fill_call_type(call_type: str, body: dict[str, Any]) -> None:
    given = body.setdefault("type", call_type)
    if given != call_type:
        raise InputError(
            "request_body.type",
            f"is {given!r} but this tool sends {call_type!r} calls",
            f"remove `type` or set it to {call_type!r}, or use the tool for {given!r} calls",
        )


def _check_batch_types(body: dict[str, Any]) -> None:
    batch = body.get("batch")
    if not isinstance(batch, list):
        return  # the schema check reports it
    for index, item in enumerate(batch):
        if isinstance(item, dict) and item.get("type") not in PIPELINES_BATCH_TYPES:
            problem = "is missing" if "type" not in item else f"is {item['type']!r}"
            raise InputError(
                f"request_body.batch[{index}].type",
                problem,
                f"give every call in the batch a type: one of {', '.join(PIPELINES_BATCH_TYPES)}",
            )


def _validate(tool: ToolSpec, body: dict[str, Any]) -> None:
    from jsonschema.exceptions import best_match

    validator = validator_for(tool.api, tool.schema_key)
    error = best_match(validator.iter_errors(body))
    if error is None:
        return
    shapes: list[str] = []
    while error.validator in ("anyOf", "oneOf") and error.context:
        # Report the problem in the accepted shape the body came closest to, not "matches no shape".
        branches: dict[int, list[Any]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        index, closest = min(branches.items(), key=lambda item: (len(item[1]), item[0]))
        title = error.validator_value[index].get("title") if isinstance(error.validator_value[index], dict) else None
        if title:
            shapes.append(title)
        error = best_match(closest)
    location = _location(error.absolute_path)
    message = error.message if len(error.message) <= MAX_MESSAGE else error.message[:MAX_MESSAGE] + "…"
    fix = "add the missing field" if error.validator == "required" else "correct the value"
    if shapes:
        fix += f" (closest accepted shape: {' / '.join(shapes)})"
    raise InputError(location, message, f"{fix}; {SCHEMA_HINT}", schema_path="/".join(map(str, error.schema_path)))


def _location(path: Any) -> str:
    text = "request_body"
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), "null"
    )


def _new_id() -> str:
    return str(ULID())


def _add_dedupe_keys(tool: ToolSpec, body: dict[str, Any]) -> None:
    kind = tool.body
    if kind == "v1_event":
        body.setdefault("id", _new_id())
    elif kind == "v2_entity":
        _add_v2_id(body)
    elif kind == "v2_batch":
        for operation in body.get("batch", []):
            _add_v2_id(operation)
    elif kind == "pipelines_call":
        body.setdefault("messageId", _new_id())
    elif kind == "pipelines_batch":
        for call in body.get("batch", []):
            if isinstance(call, dict):
                call.setdefault("messageId", _new_id())


def _add_v2_id(operation: Any) -> None:
    if (
        isinstance(operation, dict)
        and operation.get("type") == "person"
        and operation.get("action") in V2_EVENT_ACTIONS
    ):
        operation.setdefault("id", _new_id())


def _too_big(field: str, size: int, limit: int, what: str, fix: str) -> InputError:
    return InputError(field, f"is {size:,} bytes; Customer.io accepts at most {limit:,} bytes for {what}", fix)


def _check_limits(tool: ToolSpec, body: dict[str, Any]) -> None:
    kind = tool.body
    if kind == "v1_event":
        _check_event(body, "request_body", "data")
    elif kind == "v2_entity":
        size = encoded_size(body)
        if size > V2_OPERATION_MAX:
            raise _too_big("request_body", size, V2_OPERATION_MAX, "one v2 operation", "send less data per call")
        _check_v2_operation(body, "request_body")
    elif kind == "v2_batch":
        _check_batch(body, V2_BATCH_MAX, V2_OPERATION_MAX, "a v2 batch", "operation")
        for index, operation in enumerate(body.get("batch", [])):
            _check_v2_operation(operation, f"request_body.batch[{index}]")
    elif kind == "pipelines_call":
        size = encoded_size(body)
        if size > PIPELINES_CALL_MAX:
            raise _too_big("request_body", size, PIPELINES_CALL_MAX, "one Pipelines call", "send fewer traits")
    elif kind == "pipelines_batch":
        _check_batch(body, PIPELINES_BATCH_MAX, PIPELINES_CALL_MAX, "a Pipelines batch", "call")


def _check_batch(body: dict[str, Any], total_max: int, item_max: int, what: str, item: str) -> None:
    for index, entry in enumerate(body.get("batch", [])):
        size = encoded_size(entry)
        if size > item_max:
            raise _too_big(
                f"request_body.batch[{index}]", size, item_max, f"one {item}", f"split or shrink this {item}"
            )
    size = encoded_size(body)
    if size > total_max:
        raise _too_big("request_body", size, total_max, what, "split the batch into several smaller calls")


def _check_event(event: dict[str, Any], where: str, data_key: str) -> None:
    name = event.get("name")
    if isinstance(name, str) and len(name.encode()) > EVENT_NAME_MAX:
        raise InputError(
            f"{where}.name",
            f"is {len(name.encode())} bytes; Customer.io allows at most {EVENT_NAME_MAX} bytes for an event name",
            "use a shorter event name and put details in the event data",
        )
    data = event.get(data_key)
    if data is not None:
        size = encoded_size(data)
        if size > EVENT_DATA_MAX:
            raise _too_big(f"{where}.{data_key}", size, EVENT_DATA_MAX, "event data", "send less event data")


def _check_v2_operation(operation: Any, where: str) -> None:
    if not isinstance(operation, dict):
        return
    identifiers = operation.get("identifiers")
    if operation.get("type") == "person" and isinstance(identifiers, dict):
        for key in ("id", "email", "cio_id"):
            if isinstance(identifiers.get(key), str):
                check_person_identifier(f"{where}.identifiers.{key}", identifiers[key])
    if operation.get("action") in V2_EVENT_ACTIONS:
        _check_event(operation, where, "attributes")
