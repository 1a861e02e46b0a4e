"""MCP over stdio, with a shutdown that answers every call it accepted.

The SDK's stdio loop ends, and cancels the calls it is running, the moment stdin closes. A relay
sits between the real stdio streams and the server instead: it forwards every message, remembers
each request until its answer has been written, and when stdin closes or SIGTERM/SIGINT arrives it
stops reading, lets the requests under way finish within the drain window (``drain.InFlightCalls``
stops the calls still running when it closes, and they answer "shutting down"), waits until those
answers are on stdout, and only then ends the server. The process then exits 0.
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
from customerio_mcp.serving.mcp_server import AppState, create_server, open_app_state
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
    from mcp.server.stdio import stdio_server

    async with open_app_state(settings) as state:
        server = create_server(settings, shared_state=lambda: state)
        async with stdio_server() as (stdin, stdout):
            to_server, server_in = anyio.create_memory_object_stream[SessionMessage | Exception](16)
            server_out, from_server = anyio.create_memory_object_stream[SessionMessage](16)
            unanswered = _Unanswered()
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_relay_in, stdin, to_server, unanswered, state, settings.mcp_drain_seconds)
                tasks.start_soon(_relay_out, from_server, stdout, unanswered)
                async with server_out:  # the relay out ends when the server has written its last answer
                    await server.run(server_in, server_out, server.create_initialization_options())


async def _relay_in(
    stdin: ObjectReceiveStream[SessionMessage | Exception],
    to_server: ObjectSendStream[SessionMessage | Exception],
    unanswered: _Unanswered,
    state: AppState,
    drain_seconds: float,
) -> None:
    async with to_server:
        with anyio.CancelScope() as reading:
            async with anyio.create_task_group() as signals:
                signals.start_soon(_cancel_on_signal, reading)
                async for message in stdin:
                    if isinstance(message, SessionMessage) and isinstance(message.message, types.JSONRPCRequest):
                        unanswered.add(message.message.id)
                    await to_server.send(message)
                signals.cancel_scope.cancel()
        # stdin closed, or a stop signal: no new calls; the ones under way finish, or answer "shutting down".
        await state.in_flight.drain(drain_seconds)
        with anyio.move_on_after(FLUSH_SECONDS):
            await unanswered.wait()


async def _relay_out(
    from_server: ObjectReceiveStream[SessionMessage],
    stdout: ObjectSendStream[SessionMessage],
    unanswered: _Unanswered,
) -> None:
    async with from_server, stdout:  # closing stdout lets the SDK's writer finish, and the process end
        async for message in from_server:
            await stdout.send(message)
            if isinstance(message.message, types.JSONRPCResponse | types.JSONRPCError):
                unanswered.answered(message.message.id)


async def _cancel_on_signal(reading: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
        async for signum in received:
            logger.info("%s received: no new calls; finishing the ones under way", signal.Signals(signum).name)
            reading.cancel()
            return
