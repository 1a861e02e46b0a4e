"""``/healthz`` on a port of its own, answered by a thread, so a busy event loop cannot delay it.

Every HTTP request on the main port goes through the one event loop, first come first served. A burst
of thousands of connections (a flood of calls, most refused "server busy") keeps that loop busy for
seconds, and a health check queued behind the burst waits as long: an orchestrator then restarts a
process that was doing exactly what it should. ``HealthListener`` answers on
``CUSTOMERIO_MCP_HEALTH_PORT`` from a thread with its own socket: it never waits for the loop, only for
the interpreter lock, which a busy thread hands over every few milliseconds.

Answering from a thread must not hide a loop that is stuck for good (a blocking call, a deadlock):
the loop beats ``LoopHeartbeat`` a few times a second, and when the last beat is older than
``STALL_SECONDS`` the answer is ``503`` with how long the loop has been silent, so a liveness probe
restarts the process. A burst of a few seconds is busy, not stuck.

The listener speaks just enough HTTP/1.1 for probes (Docker, Kubernetes, load balancers): it reads a
request head of at most ``MAX_HEAD_BYTES``, answers ``GET /healthz`` (``HEAD`` too) and ``404``
otherwise, and closes the connection. It serves many connections at once from one ``selectors``
loop, so a client that opens a connection and sends nothing delays no one; such a client is cut after
``CLIENT_SECONDS``, and at most ``MAX_CONNECTIONS`` are open (the oldest goes first). The few lines of
HTTP are ours rather than ``http.server``'s because every line of Python run here waits for the lock
the event loop holds: ``http.server`` parses headers with the email package and starts a thread per
request, and measured several times slower under load.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import threading
import time

import anyio

from customerio_mcp.serving.connections import ACCEPT_ERRNOS, raw_response

BEAT_SECONDS = 0.25
STALL_SECONDS = 10.0
"""The event loop silent this long is stuck, not busy: the health answer becomes ``503``."""
CLIENT_SECONDS = 2.0
ACCEPT_PAUSE_SECONDS = 1.0
"""After running out of descriptors at accept, stop accepting this long (as asyncio does), rather than
spin on a listening socket that stays readable."""
MAX_HEAD_BYTES = 4096
MAX_CONNECTIONS = 64
_HEAD_END = b"\r\n\r\n"


class LoopHeartbeat:
    """When the event loop last ran a step of ours; read from the health thread."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def silent_seconds(self) -> float:
        return time.monotonic() - self.last

    async def beat_forever(self) -> None:
        while True:
            self.last = time.monotonic()
            await anyio.sleep(BEAT_SECONDS)


def health_answer(request_head: bytes, heartbeat: LoopHeartbeat) -> bytes:
    """The whole response to one request head: the loop's health on ``/healthz``, ``404`` elsewhere."""
    method, _, rest = request_head.partition(b" ")
    path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
    if method not in (b"GET", b"HEAD") or path != b"/healthz":
        return raw_response("404 Not Found", b"", "cache-control: no-store")
    silent = heartbeat.silent_seconds()
    status = "200 OK"
    payload: dict[str, object] = {"status": "ok"}
    if silent > STALL_SECONDS:
        status = "503 Service Unavailable"
        payload = {"status": "stalled", "event_loop_silent_seconds": round(silent, 1)}
    body = json.dumps(payload).encode()
    return raw_response(
        status, body, "cache-control: no-store", content_type="application/json", head_only=method == b"HEAD"
    )


class _Client:
    __slots__ = ("head", "opened", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.opened = time.monotonic()
        self.head = b""


class HealthListener:
    """A daemon thread answering health checks on ``(host, port)`` until ``close()``.

    The event loop being watched runs ``heartbeat.beat_forever()``.
    """

    def __init__(self, host: str, port: int) -> None:
        self.heartbeat = LoopHeartbeat()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        dualstack = host == "::" and socket.has_dualstack_ipv6()  # as uvicorn's "::" also takes IPv4
        self._listener = socket.create_server((host, port), family=family, backlog=128, dualstack_ipv6=dualstack)
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._clients: dict[socket.socket, _Client] = {}  # oldest first
        self._stop_reader, self._stop_writer = socket.socketpair()
        self._selector.register(self._stop_reader, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._serve, name="customerio-mcp-health", daemon=True)
        self._accepting_again_at: float | None = None

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    def start(self) -> HealthListener:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop_writer.send(b"x")
        self._thread.join(timeout=5)
        for sock in [*self._clients, self._listener, self._stop_reader, self._stop_writer]:
            sock.close()
        self._selector.close()

    def _serve(self) -> None:
        while True:
            for key, _ in self._selector.select(timeout=CLIENT_SECONDS / 2):
                if key.fileobj is self._stop_reader:
                    return
                if key.fileobj is self._listener:
                    self._accept()
                elif (client := self._clients.get(key.fileobj)) is not None:  # type: ignore[call-overload]
                    self._read(client)
            now = time.monotonic()
            self._cut_slow(now)
            if self._accepting_again_at is not None and now >= self._accepting_again_at:
                self._selector.register(self._listener, selectors.EVENT_READ)
                self._accepting_again_at = None

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except OSError as exc:  # the client already left, or no descriptor is left to accept it with
            if exc.errno in ACCEPT_ERRNOS:
                self._selector.unregister(self._listener)
                self._accepting_again_at = time.monotonic() + ACCEPT_PAUSE_SECONDS
            return
        sock.setblocking(False)
        if len(self._clients) >= MAX_CONNECTIONS:
            self._drop(next(iter(self._clients.values())))
        self._clients[sock] = _Client(sock)
        self._selector.register(sock, selectors.EVENT_READ)

    def _read(self, client: _Client) -> None:
        try:
            chunk = client.sock.recv(MAX_HEAD_BYTES)
        except OSError:
            chunk = b""
        client.head += chunk
        if not chunk or len(client.head) > MAX_HEAD_BYTES:
            self._drop(client)
        elif _HEAD_END in client.head:
            with contextlib.suppress(OSError):  # a few hundred bytes: they fit in any socket buffer at once
                client.sock.send(health_answer(client.head, self.heartbeat))
            self._drop(client)

    def _cut_slow(self, now: float) -> None:
        for client in [c for c in self._clients.values() if now - c.opened > CLIENT_SECONDS]:
            self._drop(client)

    def _drop(self, client: _Client) -> None:
        self._selector.unregister(client.sock)
        del self._clients[client.sock]
        client.sock.close()
