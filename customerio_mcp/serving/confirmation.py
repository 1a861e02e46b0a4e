"""Asking the person behind the client, with what the SDK provides for each protocol era.

- 2025-era clients (a ``initialize`` handshake) are asked with a server-to-client
  ``elicitation/create`` request, answered while the tool call waits.
- 2026-07-28 clients are asked with the ``input_required`` round trip: the call answers with an
  ``InputRequiredResult`` holding the question, and the client calls again with the person's answer
  and the ``requestState`` it was given. The SDK's ``RequestStateBoundary`` seals that state (AES-GCM,
  bound to the tool, a digest of its arguments, the caller and this server), so an answer counts only
  for the exact call and question it was given for. With ``CUSTOMERIO_MCP_STATE_KEYS`` every replica
  seals with the same keys, so the second round may land on any replica behind a load balancer.

A client without the elicitation capability, or a channel that cannot carry a server request, is
``unavailable``; the runner decides what that means for the configured mode.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp_types.version import is_version_at_least

from customerio_mcp.settings import Settings
from customerio_mcp.tools.confirmation import Answer, Asker, Question

logger = logging.getLogger(__name__)

INPUT_REQUIRED_VERSION = "2026-07-28"
CONFIRM_KEY = "confirm_destructive"
"""The key of the question in ``inputRequests`` and of its answer in ``inputResponses``."""
SERVER_NAME = "customerio-mcp"
_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "confirm": {
            "type": "boolean",
            "title": "Yes, send it",
            "description": "Send this destructive call to Customer.io.",
            "default": False,
        }
    },
    "required": ["confirm"],
}


def state_boundary(settings: Settings) -> RequestStateBoundary:
    """The SDK middleware that seals and verifies ``requestState``, with the operator's keys or a process key."""
    keys = [key.get_secret_value() for key in settings.mcp_state_keys or ()]
    security = RequestStateSecurity(keys=keys) if keys else RequestStateSecurity.ephemeral()
    return RequestStateBoundary(security, default_audience=SERVER_NAME)


def asker_for(ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams) -> Asker:
    """The ``Asker`` for one ``tools/call``: it knows this request's era, capabilities and round-trip state."""

    async def ask(question: Question) -> Answer | types.InputRequiredResult:
        if not _can_elicit_forms(ctx.session.client_capabilities):
            return "unavailable"
        if is_version_at_least(ctx.protocol_version, INPUT_REQUIRED_VERSION):
            answered = _answer_in(params, question)
            if answered is not None:
                return answered
            request = types.ElicitRequest(
                params=types.ElicitRequestFormParams(message=question.message, requested_schema=_SCHEMA)
            )
            state = json.dumps({"question": question.digest})
            return types.InputRequiredResult(input_requests={CONFIRM_KEY: request}, request_state=state)
        if not ctx.session.can_send_request:
            return "unavailable"
        result = await ctx.session.elicit_form(question.message, _SCHEMA, related_request_id=ctx.request_id)
        return _action(result)

    return ask


def _can_elicit_forms(capabilities: types.ClientCapabilities | None) -> bool:
    """The client declared form elicitation (a bare ``elicitation: {}`` predates modes and means forms)."""
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def _answer_in(params: types.CallToolRequestParams, question: Question) -> Answer | None:
    """The answer this round carries for this exact question, or None (then the question is asked).

    ``request_state`` arrives already verified and unsealed by ``RequestStateBoundary``; an answer
    without it, or for another question, is ignored.
    """
    response = (params.input_responses or {}).get(CONFIRM_KEY)
    if response is None or params.request_state is None:
        return None
    try:
        asked = json.loads(params.request_state).get("question")
    except (ValueError, AttributeError):
        return None
    if asked != question.digest or not isinstance(response, types.ElicitResult):
        logger.info("a confirmation answer did not match the question asked: asking again")
        return None
    return _action(response)


def _action(result: types.ElicitResult) -> Answer:
    if result.action == "accept":
        return "accept" if (result.content or {}).get("confirm") is True else "decline"
    return "decline" if result.action == "decline" else "cancel"
