"""Helpers to run the installed ``customerio-mcp`` command as a real process."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from queue import Queue
from typing import Any

import httpx2

from tests.fake_customerio import FakeCustomerIO

TOKEN = "test-token-7c1f0b9a2e-5d04c8e1f3a6b927"  # 32+ characters: public binds refuse shorter
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def command() -> str:
    found = shutil.which("customerio-mcp", path=str(Path(sys.executable).parent)) or shutil.which("customerio-mcp")
    assert found, "the customerio-mcp console script is not installed (pip install -e .)"
    return found


def server_env(fake: FakeCustomerIO | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMERIO_")}
    if fake is not None:
        env.update(
            CUSTOMERIO_SITE_ID=fake.site_id,
            CUSTOMERIO_API_KEY=fake.api_key,
            CUSTOMERIO_PIPELINES_API_KEY=fake.pipelines_key,
            CUSTOMERIO_TRACK_URL=fake.url,
            CUSTOMERIO_PIPELINES_URL=fake.pipelines_url,
        )
    env.update({"CUSTOMERIO_LOG_LEVEL": "DEBUG", **extra})
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StderrDrain:
    """Reads a process's stderr as it comes, so that a chatty DEBUG log never fills the pipe and blocks it."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        self._stream = proc.stderr
        self._lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            self._lines.append(line)

    def text(self, timeout: float = 10) -> str:
        """Everything read so far; after the process ended, everything it wrote."""
        self._thread.join(timeout)
        return "".join(self._lines)


@dataclass
class Running:
    proc: subprocess.Popen[str]
    url: str
    drain: StderrDrain | None = None

    def stop(self, timeout: float = 30, *, signal_first: bool = True) -> tuple[int, str]:
        """SIGTERM (unless already signalled), wait, and return the exit code and stderr."""
        if signal_first and self.proc.poll() is None:
            self.proc.terminate()
        if self.drain is not None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            return self.proc.returncode, self.drain.text()
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


def wait_healthy(url: str, proc: subprocess.Popen[str], timeout: float = 30, stderr: StderrDrain | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = stderr.text() if stderr is not None else proc.communicate()[1]
            raise AssertionError(f"server exited early with {proc.returncode}: {said}")
        try:
            if httpx2.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become healthy")


@contextmanager
def http_server(
    fake: FakeCustomerIO | None,
    transport: str,
    *,
    args: Sequence[str] = (),
    argv: Sequence[str] | None = None,
    **env: str,
) -> Iterator[Running]:
    port = free_port()
    environment = server_env(fake, CUSTOMERIO_MCP_TRANSPORT=transport, CUSTOMERIO_MCP_PORT=str(port))
    environment.setdefault("CUSTOMERIO_MCP_AUTH_TOKEN", TOKEN)
    environment.update(env)
    proc = subprocess.Popen(
        [*(argv or [command()]), *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = Running(proc, f"http://127.0.0.1:{port}", StderrDrain(proc))
    try:
        try:
            wait_healthy(running.url, proc, stderr=running.drain)
        except AssertionError as failure:
            raise AssertionError(f"{failure}\n{running.stop()[1]}") from None
        yield running
    finally:
        running.stop()


class StdioPeer:
    """A server subprocess and a reader thread that hands back each JSON-RPC answer by id."""

    def __init__(self, argv: list[str], env: dict[str, str], stderr: Any = subprocess.DEVNULL) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env, bufsize=0
        )
        self.answers: Queue[tuple[float, dict[str, Any]]] = Queue()
        self.sizes: dict[int, int] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        """Read answers through a buffer: the pipe itself is unbuffered (so that requests leave at once),
        and iterating lines on an unbuffered pipe reads one byte per system call, which made the
        measured latency grow with the size of each answer (the client's cost, not the server's)."""
        assert self.proc.stdout is not None
        for line in io.BufferedReader(self.proc.stdout):  # type: ignore[arg-type]
            message = json.loads(line)
            if "id" in message:
                self.sizes[message["id"]] = len(line.strip())
                self.answers.put((time.perf_counter(), message))

    def send(self, *messages: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in messages))

    def wait(self, count: int = 1, timeout: float = 60) -> list[tuple[float, dict[str, Any]]]:
        return [self.answers.get(timeout=timeout) for _ in range(count)]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
