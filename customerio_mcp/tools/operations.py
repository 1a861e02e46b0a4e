"""What the operations inside a request body do: which destroy, and whether the request is safe to replay.

Two properties of a request depend on its content, not only on its tool:

- **Destructive operations.** A v2 body can delete, suppress or merge; a Pipelines ``track`` call
  named "User Deleted" deletes; a batch can hold an ``alias`` (an irreversible merge); a person
  update can carry ``cio_relationships`` with ``delete_relationships``. No-destructive mode refuses
  each such operation by name, and confirmation asks about each before anything is sent.
- **Replay safety.** A request is safe to send again when Customer.io deduplicates it (an event
  ``id``, a Pipelines ``messageId``) or applying it twice equals applying it once. A v2 delivery
  ``event`` (a metric) and a v2 ``merge`` are neither: a body holding one is retried only when
  Customer.io cannot have processed it, exactly like ``report_custom_metrics``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from customerio_mcp.text_safety import clip
from customerio_mcp.tools.table import ToolSpec

DESTRUCTIVE_ACTIONS = frozenset({"delete", "delete_device", "delete_relationships", "suppress", "merge"})
"""v2 actions that delete, suppress or merge."""
DESTRUCTIVE_EVENTS = frozenset(
    {"User Deleted", "User Suppressed", "Object Deleted", "Relationship Deleted", "Device Deleted", "Group Deleted"}
)
"""Pipelines semantic events that delete or suppress: the Customer.io semantic events of the Pipelines
description's complete list (``openapi/pipelines.json``) that do (not ``User Unsuppressed``, ``Device Created
or Updated``, ``Report Delivery Event``)."""
REPLAYABLE_V2 = frozenset(
    {
        ("person", "identify"),
        ("person", "delete"),
        ("person", "event"),  # deduplicated by its id
        ("person", "page"),
        ("person", "screen"),
        ("person", "add_relationships"),
        ("person", "delete_relationships"),
        ("person", "add_device"),
        ("person", "delete_device"),
        ("person", "suppress"),
        ("person", "unsuppress"),
        ("object", "identify"),
        ("object", "identify_anonymous"),
        ("object", "delete"),
        ("object", "add_relationships"),
        ("object", "delete_relationships"),
    }
)
"""v2 type/action pairs whose replay changes nothing more: idempotent, or deduplicated by an ``id``."""


@dataclass(frozen=True)
class DestructiveOperation:
    field: str
    """Where it is: ``request_body``, ``request_body.batch[3]``, ``request_body.cio_relationships``."""
    what: str
    """What it does, e.g. ``person delete``, ``"User Deleted" event``, ``alias``."""
    target: str
    """Whom it affects, e.g. ``id=42``; shown when asking for confirmation."""
    key: str
    """The field to name when refusing it (``.action``, ``.event``, ``.type``)."""


def destructive_operations(tool: ToolSpec, body: Any) -> list[DestructiveOperation]:
    """Every destructive operation inside ``body`` (empty for tools that cannot carry one)."""
    if tool.destructive != "by_content" or not isinstance(body, dict):
        return []
    kind = tool.body
    if kind == "v2_entity":
        return _v2(body, "request_body")
    if kind == "v2_batch":
        return [found for index, item in _items(body) for found in _v2(item, f"request_body.batch[{index}]")]
    if kind == "pipelines_call":
        return _pipelines(body, "request_body")
    if kind == "pipelines_batch":
        return [found for index, item in _items(body) for found in _pipelines(item, f"request_body.batch[{index}]")]
    relationships = body.get("cio_relationships")
    if isinstance(relationships, dict) and relationships.get("action") == "delete_relationships":
        count = len(relationships.get("relationships") or [])
        return [
            DestructiveOperation(
                "request_body.cio_relationships", "delete_relationships", f"{count} relationship(s)", ".action"
            )
        ]
    return []


def replay_safe(tool: ToolSpec, body: Any) -> bool:
    """Whether sending this exact request twice changes nothing more than sending it once."""
    if tool.body == "v2_entity":
        return _replayable_v2(body)
    if tool.body == "v2_batch":
        return isinstance(body, dict) and all(map(_replayable_v2, _batch(body)))
    return tool.replay_safe


def _batch(body: dict[str, Any]) -> list[Any]:
    """The body's batch items; none when ``batch`` is not a list (the schema refuses that body)."""
    batch = body.get("batch")
    return batch if isinstance(batch, list) else []


def _items(body: dict[str, Any]) -> list[tuple[int, Any]]:
    return list(enumerate(_batch(body)))


def _replayable_v2(operation: Any) -> bool:
    return isinstance(operation, dict) and (operation.get("type"), operation.get("action")) in REPLAYABLE_V2


def _v2(operation: Any, where: str) -> list[DestructiveOperation]:
    if not isinstance(operation, dict):
        return []
    action = operation.get("action")
    if not isinstance(action, str) or action not in DESTRUCTIVE_ACTIONS:
        return []
    kind = operation.get("type") if isinstance(operation.get("type"), str) else "?"
    if action == "merge":
        target = f"{identity_text(operation.get('secondary'))} into {identity_text(operation.get('primary'))}"
    else:
        target = identity_text(operation.get("identifiers"))
    return [DestructiveOperation(where, f"{clip(kind, 20)} {action}", target, ".action")]


def _pipelines(call: Any, where: str) -> list[DestructiveOperation]:
    if not isinstance(call, dict):
        return []
    who = _pipelines_identity(call)
    if call.get("type") == "alias":
        return [
            DestructiveOperation(
                where, "alias (merges two profiles)", f"{who} <- {clip(str(call.get('previousId')), 40)}", ".type"
            )
        ]
    event = call.get("event")
    if call.get("type") in ("track", None) and isinstance(event, str) and _event_key(event) in _DESTRUCTIVE_EVENT_KEYS:
        return [DestructiveOperation(where, f'"{clip(event, 40)}" event', who, ".event")]
    return []


def _event_key(event: str) -> str:
    """An event name reduced to what tells names apart: its letters and digits, compatibility-folded.

    Customer.io's description gives each semantic event one spelling and says nothing of how loosely
    a workspace's destination matches it, so every variant a person would read as the same name
    counts as that name: any case, spacing, ``_``/``-``, punctuation, zero-width or control
    characters (a trailing NUL), full-width or other compatibility forms (``Ｕser Deleted``). Only
    letters and digits are kept, so ``User Unsuppressed`` stays apart from ``User Suppressed``.
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", event).casefold())
    return "".join(char for char in folded if char.isalnum())


_DESTRUCTIVE_EVENT_KEYS = frozenset(map(_event_key, DESTRUCTIVE_EVENTS))


def identity_text(identifiers: Any) -> str:
    """``id=42, email=a@b`` for an identifiers object, cut short; for questions and errors."""
    if not isinstance(identifiers, dict) or not identifiers:
        return "(no identifiers)"
    return ", ".join(f"{clip(str(key), 20)}={clip(str(value), 60)}" for key, value in list(identifiers.items())[:3])


def _pipelines_identity(call: dict[str, Any]) -> str:
    for key in ("userId", "anonymousId"):
        if isinstance(call.get(key), str) and call[key]:
            return f"{key}={clip(call[key], 60)}"
    return "(no userId)"
