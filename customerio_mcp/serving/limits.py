"""Bounded work: how many tool calls run at once, and how many sessions stay open.

Every tool call takes a slot from the process's ``CallLimiter`` before anything is sent to
Customer.io. When all slots are taken a call waits about ``CALL_QUEUE_SECONDS`` for one (as many
calls may wait as there are slots; beyond that they are refused at once), then is refused with
"server busy, retry in N s", N being how long calls have lately taken. A refusal therefore never
reaches Customer.io, and a burst of calls against a slow upstream cannot pile up unbounded memory
in the process. Waits end at slightly different times, so that refusals do not come in one burst.

Where the transport allows it the refusal is an HTTP status: ``BusyGate`` sits in front of the
Streamable HTTP endpoint, takes the slot for a POST that carries a ``tools/call`` and answers
``503`` with ``Retry-After`` when none frees up, before the SDK has built anything for the
request. The handler then sees (``slot_held``) that the request already holds its slot. Over SSE
and stdio the result travels on a stream that is already open, so the refusal is an ``isError``
tool result instead.

``SessionLimit`` counts the open SSE sessions (the SDK bounds stateful Streamable HTTP itself).
"""

from __future__ import annotations

import json
import math
import random
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import anyio
import mcp_types as types
from pydantic_core import SchemaValidator, ValidationError, core_schema
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from customerio_mcp.errors import BusyError
from customerio_mcp.tools.results import failure_result

CALL_QUEUE_SECONDS = 2.0
"""How long a call waits for a free slot before it is refused."""
SLOT_HELD = "customerio_mcp.call_slot"
"""ASGI scope key: ``BusyGate`` already holds a call slot for this HTTP request."""
SERVER_BUSY_CODE = -32000
"""JSON-RPC server error code of a refused call (the implementation-defined range)."""
_TYPICAL_START = 1.0
_SMOOTHING = 0.2
_RETRY_AFTER_MAX = 60


class ServerBusy(Exception):
    """Every call slot stayed taken for the whole queueing time, or too many calls were already waiting."""

    def __init__(self, max_calls: int, retry_after: int) -> None:
        self.max_calls = max_calls
        self.retry_after = retry_after
        super().__init__(
            f"server busy: {max_calls} tool calls are already under way (CUSTOMERIO_MCP_MAX_CONCURRENT_CALLS); "
            f"nothing was sent to Customer.io. Retry in {retry_after} s."
        )

    def tool_result(self, name: str) -> types.CallToolResult:
        """The refusal of tool ``name`` as an ``isError`` result, shaped like every other failure."""
        return failure_result(name, BusyError(str(self), retry_after=self.retry_after, maybe_applied=False))


class CallLimiter:
    """At most ``max_calls`` tool calls at once in this process; the rest wait briefly, then are refused."""

    def __init__(self, max_calls: int, queue_seconds: float = CALL_QUEUE_SECONDS) -> None:
        self.max_calls = max_calls
        self._queue_seconds = queue_seconds
        self._slots = anyio.Semaphore(max_calls, fast_acquire=True)
        self._waiting = 0
        self._typical_seconds = _TYPICAL_START

    def retry_after(self) -> int:
        """Whole seconds to suggest before retrying: how long a call has lately taken."""
        return max(1, min(_RETRY_AFTER_MAX, math.ceil(self._typical_seconds)))

    @asynccontextmanager
    async def slot(self, already_held: bool = False) -> AsyncIterator[None]:
        """Hold a call slot for the body of the ``with``; raise ``ServerBusy`` if none frees up in time."""
        if already_held:
            yield
            return
        acquired = False
        if self._slots.value > 0 and not self._waiting:
            self._slots.acquire_nowait()  # a free slot and nobody ahead: no timer needed
            acquired = True
        elif self._slots.value > 0 or self._waiting < self.max_calls:
            self._waiting += 1
            try:
                with anyio.move_on_after(self._queue_seconds * random.uniform(0.75, 1.25)):  # noqa: S311
                    await self._slots.acquire()
                    acquired = True
            finally:
                self._waiting -= 1
        if not acquired:
            raise ServerBusy(self.max_calls, self.retry_after())
        started = anyio.current_time()
        try:
            yield
        finally:
            self._slots.release()
            taken = anyio.current_time() - started
            self._typical_seconds += _SMOOTHING * (taken - self._typical_seconds)


def slot_held(request: Any) -> bool:
    """Whether ``BusyGate`` took the slot for this request already (``request``: Starlette's, or None)."""
    return request is not None and bool(request.scope.get(SLOT_HELD))


@cache
def _envelope() -> SchemaValidator:
    """Reads a JSON-RPC message's ``method`` and ``id`` and nothing else (built on first use).

    pydantic-core parses the JSON in Rust and makes Python objects only of those two members, so a
    1 MiB call costs the event loop about a fifth of ``json.loads`` (200,000 empty batch operations:
    4.5 ms instead of 25 ms), which would build every object of its arguments, only for the SDK to
    parse them again.
    """
    only = {name: core_schema.typed_dict_field(core_schema.any_schema(), required=False) for name in ("method", "id")}
    return SchemaValidator(core_schema.typed_dict_schema(only, extra_behavior="ignore"))


def tool_call_id(body: bytes) -> tuple[bool, Any]:
    """Whether ``body`` is one JSON-RPC ``tools/call`` request, and its id.

    A cheap substring test first, so that other requests are never parsed twice; anything that is
    not plainly a call (a batch, malformed JSON) is left for the SDK to answer. What the Rust parser
    refuses (a batch, ``NaN``, a byte-order mark, an escaped lone surrogate) is decided by
    ``json.loads``, as the SDK will read it.
    """
    if b"tools/call" not in body:
        return False, None
    try:
        message = _envelope().validate_json(body)
    except ValidationError:
        try:
            message = json.loads(body)
        except (ValueError, RecursionError):  # nesting too deep for json.loads: the SDK answers a parse error
            return False, None
    if isinstance(message, dict) and message.get("method") == "tools/call" and "id" in message:
        return True, message["id"]
    return False, None


def busy_response_parts(busy: ServerBusy, request_id: Any) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of the ``503``: ``Retry-After`` and a JSON-RPC error the SDK client surfaces."""
    body = json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "error": {"code": SERVER_BUSY_CODE, "message": str(busy)}}
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"retry-after", str(busy.retry_after).encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    return headers, body


class BusyGate:
    """In front of ``/mcp``: a POSTed ``tools/call`` takes its call slot here, or gets ``503``.

    Must sit inside a body-size limit: it reads the whole (bounded) body to look at it, then
    replays it to the app behind.
    """

    def __init__(self, app: ASGIApp, limiter: Callable[[], CallLimiter]) -> None:
        self.app = app
        self._limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        received: deque[Message] = deque()
        body = bytearray()
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return received.popleft() if received else await receive()

        is_call, request_id = tool_call_id(bytes(body))
        if not is_call:
            await self.app(scope, replay, send)
            return
        try:
            async with self._limiter().slot():
                scope[SLOT_HELD] = True
                await self.app(scope, replay, send)
        except ServerBusy as busy:
            headers, payload = busy_response_parts(busy, request_id)
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": payload})


class SessionLimit:
    """Counts open sessions of one kind against a maximum."""

    def __init__(self, max_sessions: int) -> None:
        self.max_sessions = max_sessions
        self.open = 0

    def try_open(self) -> bool:
        if self.open >= self.max_sessions:
            return False
        self.open += 1
        return True

    def close(self) -> None:
        self.open -= 1
