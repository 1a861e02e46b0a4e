"""MCP over stdio, with a shutdown that answers every call it accepted.

The SDK's stdio loop ends, and cancels the calls it is running, the moment stdin closes. The server
reads and writes through thin wrappers of the stdio streams instead: they remember each request
until its answer has been written, and when stdin closes or SIGTERM/SIGINT arrives the server stops
reading, the requests under way finish within the drain window (``drain.InFlightCalls`` stops the
calls still running when it closes, and they answer "shutting down"), those answers reach stdout,
and only then does the server's input end. The process then exits 0.

A line the SDK cannot read as a JSON-RPC message (it hands the server the parse error, which the
server would drop) is answered here with a JSON-RPC error carrying the line's id when it can be
recovered (``stdio_refusals``), and logged as one WARNING on ``customerio_mcp.clients``.
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
from customerio_mcp.serving.stdio_refusals import LARGE_LINE, Refusal, line_size, refusal_for
from customerio_mcp.serving.stream_wrappers import WrappedReadStream, WrappedStream
from customerio_mcp.settings import Settings
from customerio_mcp.text_safety import clip

logger = logging.getLogger(__name__)
CLIENTS = logging.getLogger("customerio_mcp.clients")


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
            outgoing = _Outgoing(stdout, unanswered)
            incoming = _Incoming(stdin, outgoing, unanswered, state, settings.mcp_drain_seconds)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_stop_on_signal, incoming)
                await server.run(incoming, outgoing, server.create_initialization_options())
                tasks.cancel_scope.cancel()


class _Incoming(WrappedReadStream):
    """What the server reads: stdin's messages, each request remembered until its answer is written.

    After a stop (stdin closed, or ``stop()`` from a signal) it reads no more: it lets the calls
    under way finish or answer "shutting down" within the drain window, waits until their answers
    are written, and only then ends, which ends the server. It wraps stdin rather than relaying
    it through a task of its own, so a message costs no extra hop through the event loop. A line
    that is no message is answered on ``outgoing`` and never reaches the server.
    """

    def __init__(
        self,
        stdin: ObjectReceiveStream[SessionMessage | Exception],
        outgoing: _Outgoing,
        unanswered: _Unanswered,
        state: AppState,
        drain_seconds: float,
    ) -> None:
        super().__init__(stdin)
        self._outgoing = outgoing
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
        while not self._stopped:
            message = await self._read()
            if isinstance(message, Exception):
                answered = await self._refuse(message)
                if answered is not None:  # a malformed answer to one of the server's requests: that request fails
                    return SessionMessage(answered)
            elif message is not None:
                if isinstance(message.message, types.JSONRPCRequest):
                    self._unanswered.add(message.message.id)
                return message
        if not self._drained:
            self._drained = True
            # No new calls; the ones under way finish, or answer "shutting down", and are written.
            await self._state.in_flight.drain(self._drain_seconds)
            with anyio.move_on_after(FLUSH_SECONDS):
                await self._unanswered.wait()
        raise anyio.EndOfStream

    async def _read(self) -> SessionMessage | Exception | None:
        """The next item from stdin; None, and stopped, when stdin ended or a stop cancelled the wait."""
        with anyio.CancelScope() as self._reading:
            try:
                return await self._inner.receive()
            except anyio.EndOfStream:
                pass
            finally:
                self._reading = None
        self._stopped = True
        return None

    async def _refuse(self, error: Exception) -> types.JSONRPCError | None:
        """Answer the line the SDK could not read (unless it is a notification or blank), and log it once.

        Returns the error the server's own request gets when the line was a malformed answer to it.
        """
        if line_size(error) > LARGE_LINE:
            refusal: Refusal = await anyio.to_thread.run_sync(refusal_for, error)
        else:
            refusal = refusal_for(error)
        if refusal.answer is not None:
            await self._outgoing.send(SessionMessage(refusal.answer))
        if refusal.excerpt:
            answer = refusal.answer
            CLIENTS.warning(
                "stdio: refused a line, %s%s: %s",
                refusal.reason,
                f"; answered {answer.error.code} for id {clip(repr(answer.id), 60)}" if answer is not None else "",
                refusal.excerpt,
                extra={"rate_key": "stdio refused"},
            )
        return refusal.for_server


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
