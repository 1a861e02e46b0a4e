"""The SSE and Streamable HTTP transports: the SDK's own apps behind a bearer token.

Layout of the Starlette app:

- ``GET /healthz``: ``{"status": "ok"}`` without a token, for container health checks;
- SSE (``--transport sse``): ``GET /sse`` opens the stream, ``POST /messages/`` carries messages;
- Streamable HTTP (``--transport streamable-http``): ``/mcp``, stateless by default so that any
  replica behind a load balancer can answer any request.

Every MCP path requires ``Authorization: Bearer <CUSTOMERIO_MCP_AUTH_TOKEN>`` when a token is set,
and/or an OAuth access token when OAuth is configured (``http_auth.py``); the SDK's transport
security checks Host and Origin (DNS rebinding) and caps body sizes.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from mcp.server import Server
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from sse_starlette.sse import AppStatus
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from customerio_mcp.serving.http_auth import HttpAuth
from customerio_mcp.serving.mcp_server import AppState, create_server, open_app_state
from customerio_mcp.settings import Settings

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1024 * 1024
"""Largest MCP request body accepted: a 500 KB batch, even sent as a JSON string, fits."""
STREAM_FLUSH_SECONDS = 0.2
LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """Host/Origin checks: on for loopback binds, and wherever allowed hosts or origins are set."""
    hosts = settings.mcp_allowed_hosts
    origins = settings.mcp_allowed_origins
    loopback = is_loopback(settings.mcp_host)
    if hosts is None and origins is None and not loopback:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts if hosts is not None else (LOOPBACK_HOSTS if loopback else []),
        allowed_origins=origins if origins is not None else (LOOPBACK_ORIGINS if loopback else []),
    )


async def _drain_then_close_streams(shutdown: anyio.Event, state: AppState, window: float) -> None:
    await shutdown.wait()
    await state.in_flight.drain(window)  # calls still running at the window's end answer "shutting down"
    await anyio.sleep(STREAM_FLUSH_SECONDS)  # let the last results reach their streams
    AppStatus.should_exit = True


class SseStream:
    """``GET /sse`` as a plain ASGI app: ``connect_sse`` sends the whole response itself."""

    def __init__(self, sse: SseServerTransport, server: Server[AppState]) -> None:
        self._sse = sse
        self._server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self._sse.connect_sse(scope, receive, send) as (read, write):
            await self._server.run(read, write, self._server.create_initialization_options())


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def build_http_app(settings: Settings, shutdown: anyio.Event | None = None, **server_options: object) -> Starlette:
    """The ASGI app for ``settings.mcp_transport`` (``sse`` or ``streamable-http``).

    ``shutdown`` is set when the process is asked to stop. Results travel back over SSE streams
    (the SSE transport's stream, or a Streamable HTTP response stream), which sse-starlette would
    close the moment a signal arrives; here they stay open until the tool calls under way have
    finished (or ``CUSTOMERIO_MCP_DRAIN_SECONDS`` have passed, when the calls still running answer that
    the server is shutting down), and only then are the streams closed.
    """
    holder: list[AppState] = []
    server = create_server(settings, shared_state=lambda: holder[0], **server_options)  # type: ignore[arg-type]
    security = transport_security(settings)
    auth = HttpAuth(settings)
    routes: list[Route | Mount] = [Route("/healthz", healthz, methods=["GET"]), *auth.routes]
    manager: StreamableHTTPSessionManager | None = None

    if settings.mcp_transport == "sse":
        sse = SseServerTransport("/messages/", security_settings=security, max_request_body_size=MAX_REQUEST_BYTES)

        routes += [
            Route("/sse", SseStream(sse, server), methods=["GET"]),
            Mount("/messages/", app=sse.handle_post_message),
        ]
    else:
        manager = StreamableHTTPSessionManager(
            app=server,
            stateless=settings.mcp_stateless,
            security_settings=security,
            max_request_body_size=MAX_REQUEST_BYTES,
        )
        routes.append(Route("/mcp", StreamableHTTPASGIApp(manager)))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with (
            open_app_state(settings, **server_options) as state,  # type: ignore[arg-type]
            auth.running(),
            anyio.create_task_group() as tasks,
        ):
            holder.append(state)
            if shutdown is not None:
                AppStatus.disable_automatic_graceful_drain()
                tasks.start_soon(_drain_then_close_streams, shutdown, state, settings.mcp_drain_seconds)
            if manager is None:
                yield
            else:
                async with manager.run():
                    yield
            tasks.cancel_scope.cancel()
            logger.info("shutting down: closing the Customer.io HTTP client")

    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(auth.protect)
    return app
