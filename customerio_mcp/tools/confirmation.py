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
Answer = Literal[
    "accept",
    "decline",
    "cancel",
    "unavailable",
    "timeout",
    "unreadable",
    "already_answered",
    "other_workspace",
    "too_many_pending",
    "unverified",
]
"""What came of asking. ``accept``, ``decline``, ``cancel``: the person's answer. ``unavailable``: this
client cannot be asked (no elicitation capability, or no channel to ask on). Every other value is a
no, with nothing sent: ``timeout`` (no answer within ``CUSTOMERIO_CONFIRM_TIMEOUT``), ``unreadable``
(the client answered something that is not an elicitation result, or an error), ``already_answered``
(a round-trip state that came back before), ``other_workspace`` (a state minted for another
workspace), ``too_many_pending`` (this client has too many questions waiting), ``unverified``
(whether the state was answered before cannot be checked right now)."""
MAX_LISTED = 5
MAX_PENDING_PER_CLIENT = 4
"""Questions one client connection may have waiting for a person at once; more destructive calls are refused."""


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


def question_for(tool: ToolSpec, arguments: Mapping[str, Any], request: ApiRequest, workspace: str) -> Question | None:
    """The question to ask before sending ``request`` to ``workspace``, or None when nothing in it destroys.

    ``workspace`` says which one in words a person recognises (its site ID, never a key), so that a
    yes is given for one workspace and reads as such.
    """
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
        f"Allow {tool.name} to {listed} in {workspace}? This cannot be undone. Nothing is sent unless you accept."
    )


_SENT_NOTHING = "Nothing was sent to Customer.io."
_NO_ANSWER = {
    "timeout": "The server got no answer to the confirmation for {tool} within {timeout:g} s "
    "(CUSTOMERIO_CONFIRM_TIMEOUT), so it counts as a no. {nothing} If the user never saw a question, this client "
    "declares MCP elicitation without showing it: the operator can set CUSTOMERIO_CONFIRM_DESTRUCTIVE=off (the "
    "client's own approval of destructive tools then applies), or use a client that shows elicitation requests.",
    "unreadable": "The server could not read the client's answer to the confirmation for {tool} (it was not an "
    "elicitation result, or the client answered with an error), so it counts as a no. {nothing}",
    "already_answered": "This confirmation for {tool} was already answered: each answer counts once, and a no "
    "stays a no. {nothing} (If an earlier request with this answer got no reply, it may have been sent then.) "
    "To ask the user again, call the tool again without requestState.",
    "other_workspace": "This confirmation for {tool} was given for another Customer.io workspace. {nothing} To "
    "ask the user about this workspace, call the tool again without requestState.",
    "too_many_pending": "The server did not ask about {tool}: this client already has {pending} confirmations "
    "waiting for the user, the most it may have (too many confirmations pending). {nothing} Call it again once "
    "the user has answered them.",
    "unverified": "The server cannot check right now that this confirmation for {tool} was not used before, so "
    "it counts as a no. {nothing} Try again in a moment; if it persists, the operator should check "
    "CUSTOMERIO_REDIS_URL.",
}


def refusal(tool: ToolSpec, answer: Answer, mode: ConfirmMode, timeout: float = 0.0) -> NotConfirmedError | None:
    """The error for an answer that does not allow sending, or None when the call may go ahead.

    ``timeout`` is ``CUSTOMERIO_CONFIRM_TIMEOUT``, said in the error it causes.
    """
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
    if answer in _NO_ANSWER:
        said = _NO_ANSWER[answer].format(
            tool=tool.name, timeout=timeout, pending=MAX_PENDING_PER_CLIENT, nothing=_SENT_NOTHING
        )
        return NotConfirmedError(said, answer=answer)
    said = "declined" if answer == "decline" else "cancelled"
    return NotConfirmedError(
        f"The user {said} the confirmation for {tool.name}. {_SENT_NOTHING} Do not repeat the call unless the "
        "user asks for it again.",
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
