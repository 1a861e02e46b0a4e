"""Clients that misbehave on purpose: raw sockets, idle and dripping connections, raw SSE streams."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any

import httpx2

from tests.processes import TOKEN

INITIALIZE_PARAMS = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
EVENT_CALL = {
    "name": "track_anonymous_event",
    "arguments": {"request_body": {"name": "soak", "anonymous_id": "anon-1"}},
}
MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "Authorization": f"Bearer {TOKEN}",
    "MCP-Protocol-Version": "2025-06-18",
}


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def request_bytes(port: int, method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def tool_call_bytes(port: int, request_id: int = 7, call: dict[str, Any] = EVENT_CALL) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": call}).encode()
    headers = {name.replace("-", "_"): value for name, value in MCP_HEADERS.items()}
    return request_bytes(port, "POST", "/mcp", body, **headers)


def raw_connection(port: int, data: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if data:
        sock.sendall(data)
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (or ``timeout`` passes)."""
    sock.settimeout(timeout)
    received = bytearray()
    with suppress(OSError):
        while chunk := sock.recv(65536):
            received += chunk
    return bytes(received)


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed ``sock`` (EOF or reset); reads what is there, never blocks."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


@contextmanager
def many_connections(port: int, count: int, first_bytes: bytes = b"") -> Iterator[list[socket.socket]]:
    socks = []
    try:
        for _ in range(count):
            socks.append(raw_connection(port, first_bytes))
        yield socks
    finally:
        for sock in socks:
            sock.close()


def wait_for(condition: Any, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


@asynccontextmanager
async def sse_session(url: str, http: httpx2.AsyncClient) -> AsyncIterator[tuple[str, AsyncIterator[str]]]:
    """Open ``GET /sse`` raw; yield the message endpoint (path and query) and the stream's further lines."""
    async with http.stream("GET", url + "/sse", headers={"Authorization": f"Bearer {TOKEN}"}) as stream:
        assert stream.status_code == 200, stream.status_code
        lines = stream.aiter_lines()
        async for line in lines:
            if line.startswith("data:"):
                yield line.removeprefix("data:").strip(), lines
                return
        raise AssertionError("no endpoint event")


async def initialize_sse(url: str, endpoint: str, http: httpx2.AsyncClient) -> None:
    for message in (
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INITIALIZE_PARAMS},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    ):
        answer = await http.post(url + endpoint, json=message, headers=MCP_HEADERS)
        assert answer.status_code == 202, answer.text
