"""The access log: one line per HTTP request, with nothing in it a client could abuse or steal.

uvicorn's own access log is off: it prints the query string, where SSE carries its session id
and where a careless client may put a token. Here a line has the client address (the peer, or
the ``X-Forwarded-For`` address only when uvicorn was told to trust the proxy), the method, the
path without its query, the status and the time taken. Paths and reasons are clipped.

A request that went well is an INFO line on ``customerio_mcp.access``. A client mistake or a
refusal (any status from 400 up) and a client that went away before its answer are one WARNING
line on ``customerio_mcp.clients`` with the reason; that logger is rate-limited (see
``log_hygiene``), so a hostile client cannot flood the log.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from customerio_mcp.text_safety import clip

ACCESS = logging.getLogger("customerio_mcp.access")
CLIENTS = logging.getLogger("customerio_mcp.clients")
"""Client mistakes and refusals: one WARNING line each, rate-limited per kind."""
REASON = "customerio_mcp.refusal"
"""ASGI scope key: why a middleware refused the request, for the access log's line."""
_ERROR_TEXT_BYTES = 300


async def refuse(
    scope: Scope, send: Send, status: int, body: str, reason: str, headers: Collection[tuple[bytes, bytes]] = ()
) -> None:
    """Answer ``status`` with a short plain-text ``body``, and leave ``reason`` for the access log."""
    scope[REASON] = reason
    payload = body.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _error_reason(text: bytes) -> str:
    """What an error response said: a JSON-RPC error's message, a JSON ``error``, or the text."""
    try:
        answer = json.loads(text)
    except ValueError:
        return clip(text.strip())
    if isinstance(answer, dict):
        error = answer.get("error", answer.get("error_description"))
        if isinstance(error, dict):
            error = error.get("message")
        if error is not None:
            return clip(error)
    return clip(text.strip())


def client_address(scope: Scope) -> str:
    """The client's address and port, as uvicorn resolved it (X-Forwarded-For only from a trusted proxy)."""
    client = scope.get("client")
    if not client:
        return "-"
    host, port = client[0], client[1] if len(client) > 1 else None
    return clip(f"{host}:{port}" if port else host, limit=60)


class AccessLog:
    """Outermost ASGI layer: watches each request's status and body, and writes its line at the end."""

    def __init__(self, app: ASGIApp, quiet_paths: Collection[str] = ()) -> None:
        self.app = app
        self._quiet_paths = quiet_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status: int | None = None
        complete = dropped = False
        error_text = bytearray()

        async def watch_send(message: Message) -> None:
            nonlocal status, complete
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                if status is not None and status >= 400 and len(error_text) < _ERROR_TEXT_BYTES:
                    error_text.extend(message.get("body", b"")[: _ERROR_TEXT_BYTES - len(error_text)])
                complete = complete or not message.get("more_body", False)
            await send(message)

        async def watch_receive() -> Message:
            nonlocal dropped
            message = await receive()
            if message["type"] == "http.disconnect" and not complete:
                dropped = True
            return message

        try:
            await self.app(scope, watch_receive, watch_send)
        finally:
            self._write(scope, status, complete, dropped, bytes(error_text), time.monotonic() - started)

    def _write(
        self, scope: Scope, status: int | None, complete: bool, dropped: bool, error_text: bytes, seconds: float
    ) -> None:
        client, method, path = client_address(scope), scope["method"], clip(scope["path"])
        taken = f"{seconds * 1000:.0f} ms"
        if dropped and method != "GET":
            # A GET here is an event stream, which a client ends by closing it: that is no mistake.
            CLIENTS.warning(
                '%s "%s %s": the client went away after %s, before its answer was complete',
                client,
                method,
                path,
                taken,
                extra={"rate_key": "dropped"},
            )
        elif status is not None and status >= 400:
            reason = scope.get(REASON) or _error_reason(error_text) or "-"
            CLIENTS.warning(
                '%s "%s %s" %d %s: %s', client, method, path, status, taken, reason, extra={"rate_key": status}
            )
        elif status is not None or complete:
            level = logging.DEBUG if scope["path"] in self._quiet_paths else logging.INFO
            ACCESS.log(level, '%s "%s %s" %s %s', client, method, path, status, taken)
