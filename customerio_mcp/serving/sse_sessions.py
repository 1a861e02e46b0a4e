"""SSE sessions (``GET /sse``), bounded in number and closed when idle.

The SDK's SSE transport keeps every stream, and so every session, until the client goes away,
and opens as many as are asked for. Here a stream beyond ``max_sessions`` gets ``503`` with
``Retry-After``, and a session with no message either way for ``idle_seconds`` (and no request
of its own still being answered) is ended: its stream closes and the client must reconnect.
Streamable HTTP's stateful sessions get the same two bounds from the SDK's session manager.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.sse import SseServerTransport
from mcp.shared.message import SessionMessage
from starlette.types import Receive, Scope, Send

from customerio_mcp.serving.access_log import CLIENTS, client_address, refuse
from customerio_mcp.serving.limits import SessionLimit
from customerio_mcp.serving.stream_wrappers import WrappedReadStream, WrappedStream

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5


class Activity:
    """When a session last carried a message, and how many of the client's requests await an answer."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.pending = 0

    def received(self, item: object) -> None:
        self.last = time.monotonic()
        if isinstance(item, SessionMessage) and isinstance(item.message, types.JSONRPCRequest):
            self.pending += 1

    def sent(self, item: object) -> None:
        self.last = time.monotonic()
        if isinstance(item, SessionMessage) and isinstance(item.message, types.JSONRPCResponse | types.JSONRPCError):
            self.pending = max(0, self.pending - 1)

    async def close_when_idle(self, idle_seconds: float, scope: anyio.CancelScope) -> None:
        while True:
            wait = self.last + idle_seconds - time.monotonic()
            if wait > 0:
                await anyio.sleep(wait)
            elif self.pending:
                await anyio.sleep(min(idle_seconds, 1.0))
            else:
                scope.cancel()
                return


class _WatchedReader(WrappedReadStream):
    """The session's read stream, noting each message in ``Activity``."""

    def __init__(self, inner: Any, activity: Activity) -> None:
        super().__init__(inner)
        self._activity = activity

    async def receive(self) -> Any:
        item = await self._inner.receive()
        self._activity.received(item)
        return item


class _WatchedWriter(WrappedStream):
    """The session's write stream, noting each message in ``Activity``."""

    def __init__(self, inner: Any, activity: Activity) -> None:
        super().__init__(inner)
        self._activity = activity

    async def send(self, item: Any, /) -> None:
        await self._inner.send(item)
        self._activity.sent(item)


class SseSessions:
    """``GET /sse`` as a plain ASGI app: ``connect_sse`` sends the whole response itself."""

    def __init__(self, sse: SseServerTransport, server: Server[Any], limit: SessionLimit, idle_seconds: float) -> None:
        self._sse = sse
        self._server = server
        self._limit = limit
        self._idle_seconds = idle_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._limit.try_open():
            await refuse(
                scope,
                send,
                503,
                "too many open sessions\n",
                f"{self._limit.max_sessions} SSE sessions are open (CUSTOMERIO_MCP_MAX_SESSIONS)",
                headers=[(b"retry-after", str(RETRY_AFTER_SECONDS).encode())],
            )
            return
        try:
            async with self._sse.connect_sse(scope, receive, send) as (read, write):
                activity = Activity()
                with anyio.CancelScope() as idle:
                    async with anyio.create_task_group() as tasks:
                        tasks.start_soon(activity.close_when_idle, self._idle_seconds, idle)
                        await self._server.run(
                            _WatchedReader(read, activity),
                            _WatchedWriter(write, activity),
                            self._server.create_initialization_options(),
                        )
                        tasks.cancel_scope.cancel()
                if idle.cancelled_caught:
                    logger.info("SSE session closed after %g s without a message", self._idle_seconds)
                elif activity.pending:
                    CLIENTS.warning(
                        '%s "GET /sse": the client went away with %d request(s) unanswered',
                        client_address(scope),
                        activity.pending,
                        extra={"rate_key": "dropped"},
                    )
                with anyio.CancelScope(shield=True):
                    await write.aclose()  # ends the event stream, so the client sees the session end
        finally:
            self._limit.close()
