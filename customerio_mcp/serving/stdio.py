"""MCP over stdio, with a shutdown that answers every call it accepted.

The SDK's stdio loop ends, and cancels the calls it is running, the moment stdin closes. The server
reads and writes through thin wrappers of the stdio streams instead: they remember each request
until its answer has been written, and when stdin closes or SIGTERM/SIGINT arrives the server stops
reading, the requests under way finish within the drain window (``drain.InFlightCalls`` stops the
calls still running when it closes, and they answer "shutting down"), those answers reach stdout,
and only then does the server's input end. The process then exits 0.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

import anyio
import mcp_types as types
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from mcp.shared.message import SessionMessage

from customerio_mcp.serving.drain import FLUSH_SECONDS
from customerio_mcp.serving.mcp_server import AppState, create_server, freeze_startup_heap, open_app_state
from customerio_mcp.serving.stdio_pipes import stdio_streams
from customerio_mcp.serving.stream_wrappers import WrappedReadStream, WrappedStream
from customerio_mcp.settings import Settings

logger = logging.getLogger(__name__)


class _Unanswered:
    """Ids of the requests forwarded to the server whose answers have not been written yet."""

    def __init__(self) -> None:
        self._ids: set[Any] = set()
        self._none_left = anyio.Event()
        self._none_left.set()

    def add(self, request_id: Any) -> None:
        if not self._ids:
            self._none_left = anyio.Event()
        self._ids.add(request_id)

    def answered(self, request_id: Any) -> None:
        self._ids.discard(request_id)
        if not self._ids:
            self._none_left.set()

    async def wait(self) -> None:
        await self._none_left.wait()


async def run_stdio(settings: Settings) -> None:
    async with open_app_state(settings) as state:
        server = create_server(settings, shared_state=lambda: state)
        async with stdio_streams() as (stdin, stdout):
            freeze_startup_heap()
            unanswered = _Unanswered()
            incoming = _Incoming(stdin, unanswered, state, settings.mcp_drain_seconds)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_stop_on_signal, incoming)
                await server.run(incoming, _Outgoing(stdout, unanswered), server.create_initialization_options())
                tasks.cancel_scope.cancel()


class _Incoming(WrappedReadStream):
    """What the server reads: stdin's messages, each request remembered until its answer is written.

    After a stop (stdin closed, or ``stop()`` from a signal) it reads no more: it lets the calls
    under way finish or answer "shutting down" within the drain window, waits until their answers
    are written, and only then ends, which ends the server. It wraps stdin rather than relaying
    it through a task of its own, so a message costs no extra hop through the event loop.
    """

    def __init__(
        self,
        stdin: ObjectReceiveStream[SessionMessage | Exception],
        unanswered: _Unanswered,
        state: AppState,
        drain_seconds: float,
    ) -> None:
        super().__init__(stdin)
        self._unanswered = unanswered
        self._state = state
        self._drain_seconds = drain_seconds
        self._stopped = False
        self._reading: anyio.CancelScope | None = None
        self._drained = False

    def stop(self) -> None:
        self._stopped = True
        if self._reading is not None:
            self._reading.cancel()

    async def receive(self) -> SessionMessage | Exception:
        if not self._stopped:
            with anyio.CancelScope() as self._reading:
                try:
                    message = await self._inner.receive()
                except anyio.EndOfStream:
                    self._stopped = True
                else:
                    self._reading = None
                    if isinstance(message, SessionMessage) and isinstance(message.message, types.JSONRPCRequest):
                        self._unanswered.add(message.message.id)
                    return message
            self._reading = None
            self._stopped = True
        if not self._drained:
            self._drained = True
            # No new calls; the ones under way finish, or answer "shutting down", and are written.
            await self._state.in_flight.drain(self._drain_seconds)
            with anyio.move_on_after(FLUSH_SECONDS):
                await self._unanswered.wait()
        raise anyio.EndOfStream


class _Outgoing(WrappedStream):
    """What the server writes: stdout, noting each answer written."""

    def __init__(self, stdout: ObjectSendStream[SessionMessage], unanswered: _Unanswered) -> None:
        super().__init__(stdout)  # closing it lets the SDK's writer finish, and the process end
        self._unanswered = unanswered

    async def send(self, message: SessionMessage) -> None:
        await self._inner.send(message)
        if isinstance(message.message, types.JSONRPCResponse | types.JSONRPCError):
            self._unanswered.answered(message.message.id)


async def _stop_on_signal(incoming: _Incoming) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
        async for signum in received:
            logger.info("%s received: no new calls; finishing the ones under way", signal.Signals(signum).name)
            incoming.stop()
            return
