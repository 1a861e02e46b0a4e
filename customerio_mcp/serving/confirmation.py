"""Asking the person behind the client, with what the SDK provides for each protocol era.

- 2025-era clients (a ``initialize`` handshake) are asked with a server-to-client
  ``elicitation/create`` request, answered while the tool call waits. The call gives its call slot
  back meanwhile (``limits.CallSlot.released``), a client may have at most
  ``MAX_PENDING_PER_CLIENT`` questions waiting, and a question unanswered after
  ``CUSTOMERIO_CONFIRM_TIMEOUT`` is a no: one client that leaves its questions unanswered (or a
  client that declares elicitation and never shows it) holds nothing another client needs. Any
  answer that is not a well-formed elicitation result (an error, ``"ACCEPT"``, a bare string) is a
  no, never an internal error.
- 2026-07-28 clients are asked with the ``input_required`` round trip: the call answers with an
  ``InputRequiredResult`` holding the question, and the client calls again with the person's answer
  and the ``requestState`` it was given. The SDK's ``RequestStateBoundary`` seals that state
  (AES-GCM, bound to the tool, a digest of its arguments, the OAuth principal and this server).
  Inside it, this module puts what the SDK cannot know: a random nonce, so that each state is
  answered once (``answered_states``: a replay, or a yes after a no, is refused, across replicas
  with Redis); the workspace the call writes to (per-request credentials: a state minted for one
  workspace does nothing in another); when the question was asked (an answer after the timeout is a
  no); and which question it was (an answer counts only for the exact question shown).

A client without the elicitation capability, or a channel that cannot carry a server request, is
``unavailable``; the runner decides what that means for the configured mode.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types import REQUEST_TIMEOUT
from mcp_types.version import is_version_at_least

from customerio_mcp.customerio.workspace import Workspace
from customerio_mcp.serving.answered_states import (
    AnsweredStates,
    CannotVerify,
    LocalAnsweredStates,
    RedisAnsweredStates,
)
from customerio_mcp.serving.limits import CallSlot, PendingQuestions, TooManyPending
from customerio_mcp.settings import Settings
from customerio_mcp.text_safety import clip
from customerio_mcp.tools.confirmation import MAX_PENDING_PER_CLIENT, Answer, Asker, Question

logger = logging.getLogger(__name__)

INPUT_REQUIRED_VERSION = "2026-07-28"
CONFIRM_KEY = "confirm_destructive"
"""The key of the question in ``inputRequests`` and of its answer in ``inputResponses``."""
SERVER_NAME = "customerio-mcp"
LATE_ANSWER_SECONDS = 60.0
"""How long a sealed state outlives the timeout, so that a late answer is told it came too late (a no)."""
CLOCK_SKEW_SECONDS = 60.0
"""The SDK accepts a state minted up to this far in the future (another replica's clock): keep nonces as long."""
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


def state_lifetime(settings: Settings) -> float:
    """Seconds a sealed ``requestState`` can be opened: the person's time to answer, and a little more."""
    return settings.confirm_timeout + LATE_ANSWER_SECONDS


def state_boundary(settings: Settings) -> RequestStateBoundary:
    """The SDK middleware that seals and verifies ``requestState``, with the operator's keys or a process key."""
    keys = [key.get_secret_value() for key in settings.mcp_state_keys or ()]
    ttl = state_lifetime(settings)
    security = RequestStateSecurity(keys=keys, ttl=ttl) if keys else RequestStateSecurity.ephemeral(ttl=ttl)
    return RequestStateBoundary(security, default_audience=SERVER_NAME)


@dataclass
class Confirmations:
    """The process's side of asking: the person's time, the answered states, the questions waiting."""

    timeout: float
    answered: AnsweredStates
    pending: PendingQuestions

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings) -> AsyncIterator[Confirmations]:
        """The record of answered states in Redis when ``CUSTOMERIO_REDIS_URL`` is set (every replica), else here."""
        keep = state_lifetime(settings) + CLOCK_SKEW_SECONDS
        answered: AnsweredStates
        if settings.redis_url is not None:
            answered = RedisAnsweredStates(settings.redis_url.get_secret_value(), keep)
        else:
            answered = LocalAnsweredStates(keep)
        try:
            yield cls(settings.confirm_timeout, answered, PendingQuestions(MAX_PENDING_PER_CLIENT))
        finally:
            await answered.aclose()


@dataclass(frozen=True)
class _SealedQuestion:
    """What this server puts inside a ``requestState`` (the SDK seals it; the client cannot read it)."""

    question: str
    nonce: str
    workspace: str
    asked_at: float

    def dumps(self) -> str:
        return json.dumps({"q": self.question, "n": self.nonce, "w": self.workspace, "t": self.asked_at})

    @classmethod
    def loads(cls, text: str) -> _SealedQuestion | None:
        """The state's contents, or None for one this version did not mint (then the question is asked again)."""
        try:
            data = json.loads(text)
            found = cls(str(data["q"]), str(data["n"]), str(data["w"]), float(data["t"]))
        except (ValueError, TypeError, KeyError):
            return None
        return found


def asker_for(
    ctx: ServerRequestContext[Any, Any],
    params: types.CallToolRequestParams,
    confirmations: Confirmations,
    workspace: Workspace,
    slot: CallSlot,
) -> Asker:
    """The ``Asker`` for one ``tools/call``: its era, capabilities, round-trip state, workspace and call slot."""

    async def ask(question: Question) -> Answer | types.InputRequiredResult:
        if not _can_elicit_forms(ctx.session.client_capabilities):
            return "unavailable"
        if is_version_at_least(ctx.protocol_version, INPUT_REQUIRED_VERSION):
            answered = await _answer_in(params, question, workspace, confirmations)
            if answered is not None:
                return answered
            sealed = _SealedQuestion(question.digest, secrets.token_urlsafe(16), workspace.fingerprint, time.time())
            request = types.ElicitRequest(
                params=types.ElicitRequestFormParams(message=question.message, requested_schema=_SCHEMA)
            )
            return types.InputRequiredResult(input_requests={CONFIRM_KEY: request}, request_state=sealed.dumps())
        if not ctx.session.can_send_request:
            return "unavailable"
        try:
            with confirmations.pending.waiting(_connection_of(ctx)):
                async with slot.released():  # a person may take minutes: hold no call slot meanwhile
                    return await _elicit(ctx, question, confirmations.timeout)
        except TooManyPending:
            return "too_many_pending"

    return ask


def _connection_of(ctx: ServerRequestContext[Any, Any]) -> object:
    """An object that stands for the client connection behind ``ctx``, the same for each of its requests.

    The SDK builds a ``ServerSession`` per request and keeps the connection private; the client's
    ``initialize`` parameters belong to the connection, one object per client that shook hands.
    """
    return ctx.session.client_params or ctx.session


def _can_elicit_forms(capabilities: types.ClientCapabilities | None) -> bool:
    """The client declared form elicitation (a bare ``elicitation: {}`` predates modes and means forms)."""
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


async def _elicit(ctx: ServerRequestContext[Any, Any], question: Question, seconds: float) -> Answer:
    """Ask with ``elicitation/create``; whatever comes back that is not a well-formed yes is a no."""
    request = types.ElicitRequest(
        params=types.ElicitRequestFormParams(message=question.message, requested_schema=_SCHEMA)
    )
    try:
        # The SDK's own timeout: it also tells the client to stop asking (notifications/cancelled).
        result = await ctx.session.send_request(
            request,
            types.ElicitResult,
            request_read_timeout_seconds=seconds,
            metadata=ServerMessageMetadata(related_request_id=ctx.request_id),
        )
    except MCPError as error:
        if error.error.code == REQUEST_TIMEOUT:
            return "timeout"
        logger.info("the client answered a confirmation with an error: %s", clip(error.error.message))
        return "unreadable"
    except Exception as error:  # not an elicitation result ("ACCEPT", a bare string): a no, never a crash
        logger.info("the client's answer to a confirmation could not be read (%s)", type(error).__name__)
        return "unreadable"
    return _action(result)


async def _answer_in(
    params: types.CallToolRequestParams, question: Question, workspace: Workspace, confirmations: Confirmations
) -> Answer | None:
    """The answer this round carries for this exact question, or None (then the question is asked).

    ``request_state`` arrives already verified and unsealed by ``RequestStateBoundary``. A state that
    comes back with an answer is recorded as answered before anything else is decided, whatever
    the answer: it never counts twice.
    """
    response = (params.input_responses or {}).get(CONFIRM_KEY)
    if response is None or params.request_state is None:
        return None
    sealed = _SealedQuestion.loads(params.request_state)
    if sealed is None:
        return None
    if sealed.workspace != workspace.fingerprint:
        return "other_workspace"
    try:
        if not await confirmations.answered.first_answer(sealed.nonce):
            return "already_answered"
    except CannotVerify as reason:
        logger.warning("a confirmation answer could not be checked for reuse: %s", reason)
        return "unverified"
    if time.time() - sealed.asked_at > confirmations.timeout:
        return "timeout"
    if sealed.question != question.digest:
        logger.info("a confirmation answer did not match the question asked: asking again")
        return None
    if not isinstance(response, types.ElicitResult):
        return "unreadable"
    return _action(response)


def _action(result: types.ElicitResult) -> Answer:
    if result.action == "accept":
        return "accept" if (result.content or {}).get("confirm") is True else "decline"
    return "decline" if result.action == "decline" else "cancel"
