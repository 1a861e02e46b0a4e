"""Which calls need a human's yes before they are sent, and the question that asks it.

A call is destructive when its tool only destroys (``delete_customer``, ``alias_user_identity``...)
or its body holds destructive operations (a v2 ``delete``, a "User Deleted" event, an ``alias``
batch item...). With ``CUSTOMERIO_CONFIRM_DESTRUCTIVE``:

- ``auto`` (default): ask when the client can (MCP elicitation); when it cannot, send as before (the
  tool annotations let the host ask);
- ``required``: ask, and refuse (nothing sent) when the client cannot ask;
- ``off``: never ask.

Dry run never asks. The answer comes only through the protocol (elicitation), never from a tool
argument, so no parameter a model can set skips the question. How to ask (2025-era
``elicitation/create`` or the 2026-07-28 ``input_required`` round trip) is the serving layer's job:
it hands the runner an ``Asker``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import mcp_types as types

from customerio_mcp.customerio.api import ApiRequest
from customerio_mcp.errors import CustomerIOMCPError
from customerio_mcp.text_safety import clip
from customerio_mcp.tools.operations import DestructiveOperation, destructive_operations, identity_text
from customerio_mcp.tools.table import ToolSpec

ConfirmMode = Literal["auto", "required", "off"]
Answer = Literal["accept", "decline", "cancel", "unavailable"]
"""``unavailable``: this client cannot be asked (no elicitation capability, or no channel to ask on)."""
MAX_LISTED = 5


@dataclass(frozen=True)
class Question:
    message: str
    """What the person reads: the tool, what it destroys, whom."""

    @property
    def digest(self) -> str:
        """Identifies the question, so an answer counts only for the exact question that was shown."""
        return hashlib.sha256(self.message.encode()).hexdigest()[:32]


Asker = Callable[[Question], Awaitable["Answer | types.InputRequiredResult"]]
"""Asks the person behind the client; returns the answer, or a 2026-07-28 round trip to hand back."""


class NotConfirmedError(CustomerIOMCPError):
    kind = "not_confirmed"


def question_for(tool: ToolSpec, arguments: Mapping[str, Any], request: ApiRequest) -> Question | None:
    """The question to ask before sending ``request``, or None when nothing in it destroys."""
    if tool.destructive == "always":
        targets = [f"{param.name}={clip(str(arguments.get(param.name)), 80)}" for param in tool.path_params]
        what = [f"{tool.title.lower()} ({', '.join(targets + _body_targets(request.body)) or 'as given'})"]
    else:
        operations = destructive_operations(tool, request.body)
        if not operations:
            return None
        what = _summary(operations)
    listed = "; ".join(what)
    return Question(
        f"Allow {tool.name} to {listed} in Customer.io? This cannot be undone. Nothing is sent unless you accept."
    )


def refusal(tool: ToolSpec, answer: Answer, mode: ConfirmMode) -> NotConfirmedError | None:
    """The error for an answer that does not allow sending, or None when the call may go ahead."""
    if answer == "accept":
        return None
    if answer == "unavailable":
        if mode != "required":
            return None
        return NotConfirmedError(
            f"{tool.name} destroys data, and this server asks a person to confirm every destructive call "
            "(CUSTOMERIO_CONFIRM_DESTRUCTIVE=required), but this client cannot ask (it does not support MCP "
            "elicitation). Nothing was sent to Customer.io: use a client that supports elicitation, or ask the "
            "operator.",
            answer=answer,
        )
    said = "declined" if answer == "decline" else "cancelled"
    return NotConfirmedError(
        f"The user {said} the confirmation for {tool.name}. Nothing was sent to Customer.io. Do not repeat the "
        "call unless the user asks for it again.",
        answer=answer,
    )


def _summary(operations: list[DestructiveOperation]) -> list[str]:
    counts = Counter(operation.what for operation in operations)
    lines = []
    for what, count in counts.items():
        targets = [operation.target for operation in operations if operation.what == what]
        shown = ", ".join(targets[:MAX_LISTED]) + (
            f" and {len(targets) - MAX_LISTED} more" if len(targets) > MAX_LISTED else ""
        )
        lines.append(f"{what} ×{count} ({shown})" if count > 1 else f"{what} ({shown})")
    return lines


def _body_targets(body: Any) -> list[str]:
    """Whom a destructive tool's body names: the people merged, aliased, or removed from a segment."""
    if not isinstance(body, dict):
        return []
    targets = [f"{key}: {identity_text(body[key])}" for key in ("primary", "secondary") if key in body]
    targets += [f"{key}={clip(str(body[key]), 60)}" for key in ("userId", "previousId") if key in body]
    if isinstance(body.get("ids"), list):
        targets.append(f"{len(body['ids'])} people ({', '.join(clip(str(i), 40) for i in body['ids'][:MAX_LISTED])})")
    return targets
