"""Slow, idle and surplus connections, cut at the transport before any request reaches the app.

uvicorn holds a connection that never finishes its request head, or drips its body, for as long
as the client likes, and accepts connections until the process runs out of file descriptors;
then no one, authenticated or not, gets in. ``GuardedH11Protocol`` is uvicorn's h11 protocol
with three bounds, kept by one ``ConnectionGuard`` per server:

- a request head (request line and headers) must be complete within ``client_timeout`` seconds
  of the connection opening or of the previous response; otherwise the client gets ``408`` and
  the connection closes. Idle keep-alive connections close after uvicorn's keep-alive timeout;
- a request body must bring ``BODY_WINDOW_BYTES`` within each ``client_timeout`` window (or be
  complete); a window in which the server itself paused reading does not count;
- at most ``max_connections`` connections are open, a cap kept below the file-descriptor limit.
  When full, a new connection evicts the oldest connection that is still waiting for a request
  head (those hold no work, and are what a slow-client attack is made of); if every connection
  is busy, the new one gets ``503`` and is closed.

Once a request head is in, the connection is the app's: event streams and slow tool calls may
last as long as they need.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import time
from typing import Any, ClassVar

import anyio
import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

LOG = logging.getLogger("customerio_mcp.connections")
BODY_WINDOW_BYTES = 10 * 1024
SWEEP_SECONDS = 0.5
FD_RESERVE = 128
"""File descriptors kept for everything but client connections: the Customer.io connection pool
(up to 100), the listening socket, the event loop, logs."""
MIN_CONNECTIONS = 16
ACCEPT_LOG_SECONDS = 30.0
ACCEPT_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

_HEAD, _BODY, _BUSY = "head", "body", "busy"


def raw_response(
    status: str,
    body: bytes,
    *extra: str,
    content_type: str = "text/plain; charset=utf-8",
    head_only: bool = False,
) -> bytes:
    """A whole HTTP/1.1 response after which the connection closes, for answers written to a socket
    without an HTTP stack (here, and on the health port). ``head_only``: a HEAD answer, without the body."""
    lines = [f"HTTP/1.1 {status}", f"content-type: {content_type}", "connection: close", *extra]
    head = "\r\n".join([*lines, f"content-length: {len(body)}", "", ""]).encode()
    return head if head_only else head + body


TOO_SLOW = raw_response("408 Request Timeout", b"request headers not received in time\n")
FULL = raw_response("503 Service Unavailable", b"too many open connections\n", "retry-after: 1")


def connection_cap(wanted: int) -> int:
    """``wanted``, lowered so that connections leave ``FD_RESERVE`` descriptors free.

    The soft file-descriptor limit is first raised towards the hard one as far as the cap needs
    (as Go's runtime does at start), since the soft default is often 1024 while the hard limit
    allows far more.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(MIN_CONNECTIONS, min(wanted, soft - FD_RESERVE))


class ConnectionGuard:
    """The open connections of one server, their cap, and the sweep that cuts slow ones."""

    def __init__(self, max_connections: int, client_timeout: float) -> None:
        self.max_connections = max_connections
        self.client_timeout = client_timeout
        self._open: dict[GuardedH11Protocol, None] = {}  # oldest first

    def admit(self, connection: GuardedH11Protocol) -> bool:
        if len(self._open) >= self.max_connections:
            waiting = next((c for c in self._open if c.phase == _HEAD), None)
            if waiting is None:
                LOG.warning(
                    "%d connections open, all busy: refusing a new one (CUSTOMERIO_MCP_MAX_CONNECTIONS)",
                    len(self._open),
                    extra={"rate_key": "full"},
                )
                return False
            waiting.cut(f"closed to make room: {len(self._open)} connections open and this one sent no request")
        self._open[connection] = None
        return True

    def forget(self, connection: GuardedH11Protocol) -> None:
        self._open.pop(connection, None)

    def sweep(self, now: float) -> None:
        for connection in list(self._open):
            reason = connection.overdue(now, self.client_timeout)
            if reason:
                connection.cut(reason)

    async def sweep_forever(self) -> None:
        while True:
            await anyio.sleep(SWEEP_SECONDS)
            self.sweep(time.monotonic())


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with its connection registered in and policed by ``guard``."""

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.phase = _HEAD
        self._since = time.monotonic()
        self._window_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._since = time.monotonic()
        if not self.guard.admit(self):
            transport.write(FULL)
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.forget(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._observe(len(data))

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._observe(0)

    def _observe(self, received: int) -> None:
        """Follow h11's view of the client: waiting for a head, sending a body, or done sending."""
        state = self.conn.their_state
        if state is h11.IDLE:
            if self.phase != _HEAD:
                self.phase, self._since = _HEAD, time.monotonic()
        elif state is h11.SEND_BODY:
            if self.phase != _BODY:
                self.phase, self._since, self._window_bytes = _BODY, time.monotonic(), 0
            else:
                self._window_bytes += received
        else:
            self.phase = _BUSY

    def overdue(self, now: float, timeout: float) -> str | None:
        """Why this connection should be cut now, or None."""
        if self.phase == _HEAD and now - self._since > timeout:
            return f"no complete request head within {timeout:g} s"
        if self.phase == _BODY and now - self._since >= timeout:
            if self.flow is not None and self.flow.read_paused:
                self._since, self._window_bytes = now, 0  # the server is not reading: not the client's fault
            elif self._window_bytes < BODY_WINDOW_BYTES:
                return f"request body slower than {BODY_WINDOW_BYTES // 1024} KiB per {timeout:g} s"
            else:
                self._since, self._window_bytes = now, 0
        return None

    def cut(self, reason: str) -> None:
        """Close the connection (telling a client still to send its head why), and say so once."""
        self.guard.forget(self)
        if self.transport is None or self.transport.is_closing():
            return
        LOG.warning("%s: %s", _peer(self.client), reason, extra={"rate_key": reason.split(":")[0]})
        if self.phase == _HEAD and self.conn.our_state is h11.IDLE:
            self.transport.write(TOO_SLOW)
        self.transport.close()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "-"


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedH11Protocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` whose connections ``guard`` keeps."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"guard": guard})


def quiet_accept_errors(loop: asyncio.AbstractEventLoop, every_seconds: float = ACCEPT_LOG_SECONDS) -> None:
    """Make running out of descriptors at ``accept`` one line per ``every_seconds``, not tracebacks.

    asyncio pauses accepting for a second after each failure and reports it, traceback included,
    to the loop's exception handler. Here the first failure is one WARNING line, and later ones
    are counted into the next line at most every ``every_seconds``. Everything else still goes to
    the handler that was in place.
    """
    previous = loop.get_exception_handler()
    last_logged = -math.inf
    unreported = 0

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        nonlocal last_logged, unreported
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in ACCEPT_ERRNOS and "socket" in context:
            unreported += 1
            now = time.monotonic()
            if now - last_logged >= every_seconds:
                LOG.warning(
                    "cannot accept connections (%s; %d time(s) since the last line): accepting pauses for a "
                    "second each time; lower CUSTOMERIO_MCP_MAX_CONNECTIONS or raise the file-descriptor limit",
                    exc.strerror,
                    unreported,
                    extra={"rate_key": "accept"},
                )
                last_logged, unreported = now, 0
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)
