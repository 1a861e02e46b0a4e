"""The SSE and Streamable HTTP transports: the SDK's own apps behind a bearer token.

Layout of the Starlette app:

- ``GET /healthz``: ``{"status": "ok"}`` without a token, for container health checks;
- SSE (``--transport sse``): ``GET /sse`` opens the stream, ``POST /messages/`` carries messages;
- Streamable HTTP (``--transport streamable-http``): ``/mcp``, stateless by default so that any
  replica behind a load balancer can answer any request.

Every MCP path requires ``Authorization: Bearer <CUSTOMERIO_MCP_AUTH_TOKEN>`` when a token is set,
and/or an OAuth access token when OAuth is configured (``http_auth.py``); ``host_check`` matches
Host and Origin exactly (DNS rebinding), the SDK caps body sizes. Around it all, ``access_log``
writes one clipped line per request; inside, ``limits`` bounds tool calls (``BusyGate``: 503 before
the SDK) and sessions (``sse_sessions`` for SSE, the SDK's session manager for stateful Streamable HTTP).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import RequestBodyLimitMiddleware, TransportSecuritySettings
from sse_starlette.sse import AppStatus
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from customerio_mcp.serving.access_log import AccessLog
from customerio_mcp.serving.host_check import AllowedAuthorities, HostOriginCheck
from customerio_mcp.serving.http_auth import OPEN_PATHS, HttpAuth
from customerio_mcp.serving.limits import BusyGate, SessionLimit
from customerio_mcp.serving.mcp_server import AppState, create_server, freeze_startup_heap, open_app_state
from customerio_mcp.serving.sse_sessions import SseSessions
from customerio_mcp.settings import Settings

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1024 * 1024
"""Largest MCP request body accepted: a 500 KB batch, even sent as a JSON string, fits."""
STREAM_FLUSH_SECONDS = 0.2
SDK_SECURITY = TransportSecuritySettings(enable_dns_rebinding_protection=False)
"""The SDK matches Host/Origin patterns by prefix; ``host_check`` does it exactly instead. The SDK
still checks a POST's Content-Type."""
__all__ = ["build_http_app"]


async def _drain_then_close_streams(shutdown: anyio.Event, state: AppState, window: float) -> None:
    await shutdown.wait()
    await state.in_flight.drain(window)  # calls still running at the window's end answer "shutting down"
    await anyio.sleep(STREAM_FLUSH_SECONDS)  # let the last results reach their streams
    AppStatus.should_exit = True


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
    auth = HttpAuth(settings)
    routes: list[Route | Mount] = [Route("/healthz", healthz, methods=["GET"]), *auth.routes]
    manager: StreamableHTTPSessionManager | None = None

    if settings.mcp_transport == "sse":
        sse = SseServerTransport("/messages/", security_settings=SDK_SECURITY, max_request_body_size=MAX_REQUEST_BYTES)
        sessions = SessionLimit(settings.mcp_max_sessions)
        routes += [
            Route("/sse", SseSessions(sse, server, sessions, settings.mcp_session_idle_seconds), methods=["GET"]),
            Mount("/messages/", app=sse.handle_post_message),
        ]
    else:
        manager = StreamableHTTPSessionManager(
            app=server,
            stateless=settings.mcp_stateless,
            security_settings=SDK_SECURITY,
            max_request_body_size=MAX_REQUEST_BYTES,
            max_sessions=settings.mcp_max_sessions,
            session_idle_timeout=settings.mcp_session_idle_seconds,
        )
        gate = BusyGate(StreamableHTTPASGIApp(manager), limiter=lambda: holder[0].calls)
        routes.append(Route("/mcp", RequestBodyLimitMiddleware(gate, MAX_REQUEST_BYTES)))

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
                freeze_startup_heap()
                yield
            else:
                async with manager.run():
                    freeze_startup_heap()
                    yield
            tasks.cancel_scope.cancel()
            logger.info("shutting down: closing the Customer.io HTTP client")

    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(auth.protect)
    allowed = AllowedAuthorities.from_settings(settings)
    if allowed is not None:
        app.add_middleware(HostOriginCheck, allowed=allowed, open_paths=OPEN_PATHS)
    app.add_middleware(AccessLog, quiet_paths=OPEN_PATHS)
    return app
