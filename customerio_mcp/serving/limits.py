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
request. The handler then finds (``held_slot``) the slot the request already holds. Over SSE
and stdio the result travels on a stream that is already open, so the refusal is an ``isError``
tool result instead.

A call that waits for a person's confirmation (``elicitation/create``) gives its slot back while it
waits (``CallSlot.released``) and takes one again once the person has answered; a client may have
at most ``PendingQuestions.per_client`` questions waiting at once.

``SessionLimit`` counts the open SSE sessions (the SDK bounds stateful Streamable HTTP itself).
"""

from __future__ import annotations

import json
import math
import random
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import cache
from typing import Any

import anyio
from pydantic_core import SchemaValidator, ValidationError, core_schema
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from customerio_mcp.errors import CustomerIOMCPError

CALL_QUEUE_SECONDS = 2.0
"""How long a call waits for a free slot before it is refused."""
SLOT_HELD = "customerio_mcp.call_slot"
"""ASGI scope key: the ``CallSlot`` ``BusyGate`` already holds for this HTTP request."""
SERVER_BUSY_CODE = -32000
"""JSON-RPC server error code of a refused call (the implementation-defined range)."""
_TYPICAL_START = 1.0
_SMOOTHING = 0.2
_RETRY_AFTER_MAX = 60


class ServerBusy(CustomerIOMCPError):
    """Every call slot stayed taken for the whole queueing time, or too many calls were already waiting."""

    kind = "server_busy"

    def __init__(self, max_calls: int, retry_after: int) -> None:
        super().__init__(
            f"server busy: {max_calls} tool calls are already under way (CUSTOMERIO_MCP_MAX_CONCURRENT_CALLS); "
            f"nothing was sent to Customer.io. Retry in {retry_after} s.",
            retry_after=retry_after,
        )
        self.max_calls = max_calls
        self.retry_after = retry_after


class CallSlot:
    """One call's hold on a slot of its ``CallLimiter``, which it can let go of while it waits for a person.

    A call waiting for a person's confirmation (a 2025-era ``elicitation/create``) does no work for
    as long as the person takes, or forever when a client never shows the question: holding a slot
    meanwhile let one client that left its questions unanswered refuse every other client "server
    busy". ``released`` gives the slot back for that wait and takes one again after it, by the same
    rules as a new call.
    """

    def __init__(self, limiter: CallLimiter) -> None:
        self._limiter = limiter
        self.held = False
        self.held_seconds = 0.0
        """Time spent holding a slot so far; what the limiter learns how long calls take from."""
        self.since = 0.0

    @asynccontextmanager
    async def released(self) -> AsyncIterator[None]:
        """No slot for the body of the ``with``; a slot again after it, or ``ServerBusy`` when none frees up."""
        self._limiter.release(self, finished=False)
        yield  # on an exception (a cancellation) the call ends here, without a slot
        await self._limiter.acquire(self)


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
    async def slot(self, held: CallSlot | None = None) -> AsyncIterator[CallSlot]:
        """Hold a call slot for the body of the ``with``; raise ``ServerBusy`` if none frees up in time.

        ``held``: the slot ``BusyGate`` already took for this request, handed on as it is.
        """
        if held is not None:
            yield held
            return
        taken = CallSlot(self)
        await self.acquire(taken)
        try:
            yield taken
        finally:
            self.release(taken)

    async def acquire(self, slot: CallSlot) -> None:
        """Take a slot for ``slot``, waiting up to the queueing time; ``ServerBusy`` when none frees up."""
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
        slot.held, slot.since = True, anyio.current_time()

    def release(self, slot: CallSlot, finished: bool = True) -> None:
        """Give ``slot``'s slot back (if it holds one); when the call has ``finished``, learn how long it took."""
        if slot.held:
            self._slots.release()
            slot.held = False
            slot.held_seconds += anyio.current_time() - slot.since
        if finished:
            self._typical_seconds += _SMOOTHING * (slot.held_seconds - self._typical_seconds)


def held_slot(request: Any) -> CallSlot | None:
    """The slot ``BusyGate`` took for this request already (``request``: Starlette's, or None)."""
    return request.scope.get(SLOT_HELD) if request is not None else None


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
            async with self._limiter().slot() as slot:
                scope[SLOT_HELD] = slot
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


class TooManyPending(Exception):
    """This client already has the most questions waiting for a person that it may have."""


class PendingQuestions:
    """Questions waiting for a person, counted per client connection (its MCP session)."""

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self._counts: dict[int, int] = {}

    @contextmanager
    def waiting(self, client: object) -> Iterator[None]:
        """Count one more question of ``client`` for the body of the ``with``; ``TooManyPending`` beyond the cap.

        Keyed by ``id``: an id is reused only once its object is gone, and a session is gone only
        after its calls, whose questions leave the count when they end.
        """
        key = id(client)
        count = self._counts.get(key, 0)
        if count >= self.per_client:
            raise TooManyPending
        self._counts[key] = count + 1
        try:
            yield
        finally:
            left = self._counts[key] - 1
            if left:
                self._counts[key] = left
            else:
                del self._counts[key]
