"""The one code path every tool call takes: check the arguments, build the request, send, shape.

Nothing reaches Customer.io unless every check passes. Every failure, local or remote, becomes a
``CallToolResult`` with ``isError: true`` whose text says which field is wrong and how to fix it;
only a bug in this package produces a generic message (and a stack trace on stderr, never in the
result). Checking a large body (a batch of thousands) runs on a worker thread, so other calls and
health checks keep being answered meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import anyio.to_thread
import mcp_types as types

from customerio_mcp.customerio.api import ApiRequest, ApiResponse
from customerio_mcp.customerio.client import CustomerIOClient
from customerio_mcp.errors import CustomerIOMCPError, DeliveryError, UnknownToolError
from customerio_mcp.settings import Settings
from customerio_mcp.text_safety import clip, shown
from customerio_mcp.tools.arguments import (
    check_arguments,
    encode_segment,
    mode_of,
    parse_flag,
    path_value,
    query_value,
)
from customerio_mcp.tools.body_checks import is_large, parse_body, prepare_body
from customerio_mcp.tools.confirmation import Asker, question_for, refusal
from customerio_mcp.tools.ignored_fields import NOTHING_IGNORED, IgnoredFields
from customerio_mcp.tools.operations import replay_safe
from customerio_mcp.tools.results import (
    dry_run_result,
    failure_result,
    schema_result,
    success_result,
    with_repeat_guidance,
)
from customerio_mcp.tools.selection import (
    EVERYTHING,
    Narrowing,
    destructive_allowed,
    enabled_tools,
    refuse_destructive_operations,
    why_disabled,
    why_no_destructive,
)
from customerio_mcp.tools.table import TOOLS_BY_NAME, ToolSpec

logger = logging.getLogger(__name__)

Confirmation = Literal["accepted", "not asked", "off", "not destructive"]
"""How a call was confirmed: a person accepted it; it destroys but nobody could be asked (``auto``);
CUSTOMERIO_CONFIRM_DESTRUCTIVE=off (nothing is asked, whatever the call does); nothing in it destroys."""


@dataclass
class CallRecord:
    """How far one call got, so that a call stopped at shutdown can still say what it sent, and the audit
    trail what happened."""

    tool: ToolSpec | None = None
    request: ApiRequest | None = None
    sending: bool = False
    """True from the moment the request may have left this process."""
    confirmation: Confirmation = "not destructive"
    response: ApiResponse | None = None
    """Customer.io's answer to a call that succeeded."""
    error: Exception | None = None
    """What stopped a call that failed."""


@dataclass(frozen=True)
class CheckedRequest:
    """The exact request to send, and the warnings its body earned: top-level fields Customer.io ignores."""

    request: ApiRequest
    warnings: IgnoredFields = NOTHING_IGNORED


@dataclass(frozen=True)
class CallScope:
    """What one request may do and where it goes: set by the serving layer for each request."""

    client: CustomerIOClient
    """The client of the workspace this request writes to."""
    narrowing: Narrowing = EVERYTHING
    ask: Asker | None = None
    """Asks the person behind this request's client to confirm a destructive call; None: nobody to ask."""
    principal: str = "stdio"
    """Who sent the request, for the audit trail: an OAuth subject, "static token", "unauthenticated"."""


_NARROWINGS_KEPT = 256
"""How many distinct narrowings keep their computed tool list (each is a small dict)."""


class ToolRunner:
    def __init__(self, client: CustomerIOClient, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self._enabled: dict[Narrowing, dict[str, ToolSpec]] = {}
        self._large: anyio.CapacityLimiter | None = None

    @property
    def default_scope(self) -> CallScope:
        """The scope of a request that carries nothing of its own (stdio, static token)."""
        return CallScope(self._client)

    def _large_bodies(self) -> anyio.CapacityLimiter:
        """The one worker thread large bodies are checked on, made on first use (it needs the event loop).

        One at a time: a thread checking a body holds the interpreter lock through each C call (a
        megabyte's encode), and the event loop, which answers every other call, waits for it. Four
        100,000-identifier bodies checked at once left it a fifth of the lock (other calls waited
        120 ms); one at a time, about half, and the bodies wait their turn instead.
        """
        if self._large is None:
            self._large = anyio.CapacityLimiter(1)
        return self._large

    def enabled(self, narrowing: Narrowing = EVERYTHING) -> dict[str, ToolSpec]:
        """The tools served to a request with ``narrowing``, by name; computed once per narrowing."""
        found = self._enabled.get(narrowing)
        if found is None:
            if len(self._enabled) >= _NARROWINGS_KEPT:
                # Request headers choose the narrowing, so a client could grow this without end;
                # dropping the oldest entry only costs one recomputation later.
                del self._enabled[next(iter(self._enabled))]
            found = self._enabled[narrowing] = {tool.name: tool for tool in enabled_tools(self._settings, narrowing)}
        return found

    async def call(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        scope: CallScope | None = None,
        record: CallRecord | None = None,
    ) -> types.CallToolResult | types.InputRequiredResult:
        scope = scope or self.default_scope
        record = record or CallRecord()
        try:
            tool = record.tool = self._tool(name, scope.narrowing)
            args = dict(arguments or {})
            check_arguments(tool, args)
            if tool.body is not None and mode_of(args) == "get_request_schema":
                return schema_result(tool)
            if tool.body is not None and is_large(args.get("request_body")):
                checked = await anyio.to_thread.run_sync(
                    self.build_request, tool, args, scope.narrowing, limiter=self._large_bodies()
                )
            else:
                checked = self.build_request(tool, args, scope.narrowing)
            request = record.request = checked.request
            if self._settings.dry_run:
                preview, missing = scope.client.preview(request), scope.client.missing_credentials(tool.api)
                return dry_run_result(tool, preview, missing, checked.warnings)
            confirmation = await self._confirm(tool, args, request, scope, record)
            if confirmation is not None:
                return confirmation
            record.sending = True
            try:
                response = record.response = await scope.client.send(request)
            except DeliveryError as error:
                raise with_repeat_guidance(error, tool, request) from None
            return success_result(tool, request, response, checked.warnings)
        except CustomerIOMCPError as error:
            record.error = error
            logger.info("%s failed: %s", clip(name), type(error).__name__)
            return failure_result(name, error)
        except Exception as error:
            record.error = error
            logger.exception("unexpected error in tool %s", clip(name))
            return failure_result(
                name,
                CustomerIOMCPError(
                    f"customerio-mcp hit an internal error while running {clip(name)}; this is a bug, please report "
                    "it with the server's stderr log. The request may or may not have reached Customer.io."
                ),
            )

    async def _confirm(
        self, tool: ToolSpec, args: dict[str, Any], request: ApiRequest, scope: CallScope, record: CallRecord
    ) -> types.InputRequiredResult | None:
        """Ask before a destructive call (per CUSTOMERIO_CONFIRM_DESTRUCTIVE); raises when it must not be sent.

        Returns the 2026-07-28 round trip to hand back when the question is asked that way.
        """
        mode = self._settings.confirm_destructive
        if mode == "off":
            record.confirmation = "off"
            return None
        question = question_for(tool, args, request, scope.client.workspace.described_for(tool.api))
        if question is None:
            return None
        answer = await scope.ask(question) if scope.ask is not None else "unavailable"
        if isinstance(answer, types.InputRequiredResult):
            return answer
        error = refusal(tool, answer, mode, self._settings.confirm_timeout)
        if error is not None:
            raise error
        record.confirmation = "accepted" if answer == "accept" else "not asked"
        logger.info("%s: destructive call %s", tool.name, "confirmed" if answer == "accept" else "not asked")
        return None

    def _tool(self, name: str, narrowing: Narrowing) -> ToolSpec:
        enabled = self.enabled(narrowing)
        tool = enabled.get(name)
        if tool is not None:
            return tool
        if name in TOOLS_BY_NAME:
            raise UnknownToolError(
                "name",
                f"is {name!r}, a tool not enabled on this server: "
                f"{why_disabled(TOOLS_BY_NAME[name], self._settings, narrowing)}",
                f"use one of the tools this server lists: {', '.join(enabled)}",
            )
        raise UnknownToolError(
            "name", f"is {shown(name)}, which is no tool of this server", f"call one of: {', '.join(enabled)}"
        )

    def build_request(self, tool: ToolSpec, args: dict[str, Any], narrowing: Narrowing = EVERYTHING) -> CheckedRequest:
        """Every local check, and the exact request to send; raises InputError with nothing sent."""
        path = tool.path
        for param in tool.path_params:
            path = path.replace("{" + param.segment + "}", encode_segment(path_value(param, args.get(param.name))))
        query = {q.key: v for q in tool.query_params if (v := query_value(q, args.get(q.name))) is not None}
        headers: dict[str, str] = {}
        if tool.strict_param is not None:
            given = args.get(tool.strict_param)
            strict = self._settings.pipelines_strict if given is None else parse_flag(tool.strict_param, given)
            headers["X-Strict-Mode"] = "1" if strict else "0"
        if tool.name == "global_unsubscribe_user":
            flag = args.get("set_unsubscribed_attribute")
            body = {"unsubscribe": True if flag is None else parse_flag("set_unsubscribed_attribute", flag)}
            return CheckedRequest(ApiRequest(tool.api, tool.method, path, query, headers, body, tool.replay_safe))
        if tool.body is None:
            return CheckedRequest(ApiRequest(tool.api, tool.method, path, query, headers, None, tool.replay_safe))
        body = parse_body(args.get("request_body"))
        if not destructive_allowed(self._settings, narrowing):
            refuse_destructive_operations(tool, body, why_no_destructive(self._settings, narrowing))
        prepared = prepare_body(tool, body)
        request = ApiRequest(
            tool.api,
            tool.method,
            path,
            query,
            headers,
            prepared.body,
            replay_safe(tool, prepared.body),
            content=prepared.content,
        )
        return CheckedRequest(request, prepared.warnings)
