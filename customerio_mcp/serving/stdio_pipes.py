"""stdin and stdout read and written on the event loop, when they are pipes.

The SDK's ``stdio_server`` reads each line and writes each answer through a worker thread
(``anyio.wrap_file``): one thread round trip to read a call, two to write its answer (write, then
flush). On the reference 2-core VM that was about 0.3 ms of a 3 ms call, and with hundreds of calls
in flight the largest cost of the whole server. Every MCP client starts a server with pipes (or a
socket pair) on stdin and stdout, and a pipe can be waited on by the event loop like a socket: this
module hands ``stdio_server`` a line reader and a writer that do just that, with no thread. The SDK
still parses, frames and serializes every message; only the two file objects differ (it takes any
object that iterates text lines and has async ``write`` and ``flush``).

What the SDK guarantees stays true: while serving, fd 0 reads ``/dev/null`` and fd 1 writes to
stderr, so a stray ``print`` or a child process never reaches the wire, which is served from private
duplicates; both are restored when serving ends. Anything that is not a pair of pipes (a terminal,
a file, streams replaced in ``sys``, Windows, pipes given non-blocking) is served by the SDK's own
transport, unchanged, as is a stdout that shares its pipe with stderr (the one descriptor would be
non-blocking for stderr too while an answer is written).

Three differences from the SDK's reader and writer, each deliberate:

- stdin is never made non-blocking: it is read only once the event loop says it is readable. stdout is
  made non-blocking only for the moment of each write, so that another process holding the same pipe
  (a shell's ``{ customerio-mcp; next; } > fifo``) meets a non-blocking descriptor it did not ask for
  only for that instant, and never after this process is killed.
- Lines end at ``\n`` only (``\r\n`` works: the ``\r`` is JSON whitespace). MCP's stdio framing is
  newline-delimited; the SDK's text layer would also split at a lone ``\r``.
- When serving ends (a signal, say) with stdin still open, reading stops at once, where the SDK's
  reader thread would keep the process alive until the client closed stdin.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import anyio
from mcp.server.stdio import stdio_server

READ_CHUNK = 1 << 16
"""Bytes asked of stdin per read; a longer line is assembled from several."""


class PipeLines:
    """The text lines of a pipe, each with its newline, decoded as the SDK's reader does."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = bytearray()
        self._searched = 0  # bytes of the buffer known to hold no newline: a long line is scanned once
        self._ended = False
        self._waiting: anyio.CancelScope | None = None

    def close(self) -> None:
        """Read no more: the iteration ends now, even while waiting for input."""
        self._ended = True
        self._buffer.clear()
        if self._waiting is not None:
            self._waiting.cancel()

    def __aiter__(self) -> PipeLines:
        return self

    async def __anext__(self) -> str:
        while True:
            end = self._buffer.find(b"\n", self._searched)
            if end >= 0:
                return self._take(end + 1)
            self._searched = len(self._buffer)
            if self._ended:
                if self._buffer:  # a last line without its newline
                    return self._take(len(self._buffer))
                raise StopAsyncIteration
            with anyio.CancelScope() as self._waiting:
                await anyio.wait_readable(self._fd)
            self._waiting = None
            if self._ended:  # closed while waiting
                continue
            chunk = os.read(self._fd, READ_CHUNK)  # readable: returns at once, with data or at end of file
            if chunk:
                self._buffer += chunk
            else:
                self._ended = True

    def _take(self, size: int) -> str:
        line = self._buffer[:size].decode("utf-8", errors="replace")
        del self._buffer[:size]
        self._searched = 0
        return line


class PipeWriter:
    """Writes text to a pipe, waiting on the event loop while the reader is behind."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    async def write(self, text: str) -> None:
        data = memoryview(text.encode("utf-8"))
        while data:
            os.set_blocking(self._fd, False)
            try:
                written = os.write(self._fd, data)
            except BlockingIOError:
                written = 0
            finally:
                os.set_blocking(self._fd, True)
            data = data[written:]
            if data:
                await anyio.wait_writable(self._fd)

    async def flush(self) -> None:
        """Nothing to flush: every ``write`` reached the pipe before returning."""


@dataclass
class _PipeClaim:
    """The wire's private descriptors, while fd 0 and fd 1 point elsewhere."""

    stdin: int
    stdout: int

    def release(self) -> None:
        """Point fd 0 and fd 1 back at the wire and close the duplicates."""
        for private, fd in ((self.stdin, 0), (self.stdout, 1)):
            os.dup2(private, fd)
            os.close(private)


def _is_pipe(fd: int) -> bool:
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _same_file(first: int, second: int) -> bool:
    try:
        a, b = os.fstat(first), os.fstat(second)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _claim_pipes() -> _PipeClaim | None:
    """Divert fd 0 and fd 1 and serve the wire from private duplicates; None when it must not be done."""
    if sys.platform == "win32":  # pragma: no cover - anyio waits only on sockets there
        return None
    try:
        if sys.stdin.buffer.fileno() != 0 or sys.stdout.buffer.fileno() != 1:
            return None  # the streams were replaced: serve what the caller put there, as the SDK does
        if not (_is_pipe(0) and _is_pipe(1)) or _same_file(1, 2):
            return None
        if not (os.get_blocking(0) and os.get_blocking(1)):
            return None  # whoever started us chose non-blocking pipes: the SDK's threads cope with that
    except (AttributeError, OSError, ValueError):
        return None
    claim = _PipeClaim(os.dup(0), os.dup(1))
    try:
        with open(os.devnull, "rb") as null:
            os.dup2(null.fileno(), 0)
        os.dup2(2, 1)
    except OSError:
        claim.release()
        return None
    for fd in (claim.stdin, claim.stdout):
        os.set_inheritable(fd, False)
    return claim


@asynccontextmanager
async def stdio_streams() -> AsyncIterator[tuple[Any, Any]]:
    """The SDK's ``stdio_server`` streams, over the pipes read on the event loop when they are pipes."""
    claim = _claim_pipes()
    if claim is None:
        async with stdio_server() as streams:
            yield streams
        return
    try:
        lines = PipeLines(claim.stdin)
        stdout = cast("anyio.AsyncFile[str]", PipeWriter(claim.stdout))
        async with stdio_server(cast("anyio.AsyncFile[str]", lines), stdout) as streams:
            try:
                yield streams
            finally:
                lines.close()  # the SDK's reader then ends, even with stdin still open
    finally:
        claim.release()
