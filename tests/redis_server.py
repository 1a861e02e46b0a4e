"""A real Redis for the tests: Debian's ``redis-server`` on a free loopback port, stopped afterwards.

``.ci/run`` installs the ``redis-server`` package when the command is missing; elsewhere,
``apt-get install redis-server`` (or any Redis >= 6 on the PATH) does.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.processes import free_port


@dataclass
class RedisProcess:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server(directory: Path, port: int | None = None) -> Iterator[RedisProcess]:
    """A Redis on ``port`` (default: a free one), answering PING when this yields."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed: apt-get install redis-server (.ci/run does this in CI)"
    port = port or free_port()
    proc = subprocess.Popen(
        # No persistence, loopback only, its files in a temporary folder.
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    running = RedisProcess(proc, port)
    try:
        deadline = time.monotonic() + 10
        while not _answers_ping(port):
            assert proc.poll() is None, f"redis-server exited with {proc.returncode}"
            assert time.monotonic() < deadline, "redis-server did not answer PING within 10 s"
            time.sleep(0.05)
        yield running
    finally:
        running.stop()


@contextmanager
def silent_redis() -> Iterator[str]:
    """The URL of a loopback "Redis" that accepts connections and reads, but never answers anything.

    What a hung Redis (or a black-holing proxy in front of one) looks like to a client: the TCP
    handshake succeeds, so only timeouts of the client's own can end the wait.
    """
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    accepted: list[socket.socket] = []
    stopping = threading.Event()

    def read_forever(connection: socket.socket) -> None:
        with connection:
            while not stopping.is_set():
                try:
                    if not connection.recv(65536):
                        return
                except OSError:
                    return

    def accept_forever() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(connection)
            threading.Thread(target=read_forever, args=(connection,), daemon=True).start()

    threading.Thread(target=accept_forever, daemon=True).start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        stopping.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept
        listener.close()
        for connection in accepted:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
