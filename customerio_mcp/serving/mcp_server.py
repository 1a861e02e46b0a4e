"""MCP wiring: a lowlevel ``Server`` whose two handlers serve the tool table.

The lowlevel server is used rather than ``MCPServer`` because the tools are rows in a table, not
Python functions: ``tools/list`` returns the prebuilt definitions and ``tools/call`` hands every
call to the one ``ToolRunner``. The HTTP client lives in the server's lifespan, so there is one
per process, opened before the first call and closed on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp.server import Server, ServerRequestContext

from customerio_mcp import __version__
from customerio_mcp.customerio.api import REGION_URLS, Endpoints, Region
from customerio_mcp.customerio.client import DEFAULT_HEADERS, CustomerIOClient, RetryPolicy
from customerio_mcp.customerio.pacing import Pacing
from customerio_mcp.customerio.workspace_clients import WorkspaceClients, keyless_workspace
from customerio_mcp.serving.request_scope import scope_for
from customerio_mcp.settings import Settings
from customerio_mcp.tools.definitions import tool_definitions
from customerio_mcp.tools.runner import ToolRunner
from customerio_mcp.tools.selection import enabled_tools

INSTRUCTIONS = (
    "Tools that send data to Customer.io: Track API (people, devices, events, segments, v2 entity/batch) and "
    "Data Pipelines API (identify, track, page, screen, group, alias, batch). For tools with a request_body, "
    "call with mode='get_request_schema' first when unsure of the body's shape. Errors say which field to fix."
)


class InFlightCalls:
    """Counts tool calls under way, so that a shutdown can wait for them to finish."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = anyio.Event()
        self._idle.set()

    @contextmanager
    def track(self) -> Iterator[None]:
        if self._count == 0:
            self._idle = anyio.Event()
        self._count += 1
        try:
            yield
        finally:
            self._count -= 1
            if self._count == 0:
                self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()


@dataclass
class AppState:
    runner: ToolRunner
    client: CustomerIOClient
    in_flight: InFlightCalls = field(default_factory=InFlightCalls)
    workspaces: WorkspaceClients | None = None
    """One client per workspace when requests carry their own keys (CUSTOMERIO_CREDENTIALS_FROM=request)."""


def open_http_client(settings: Settings) -> httpx2.AsyncClient:
    """The process's one HTTP client: pooled connections, explicit timeouts, a versioned User-Agent."""
    return httpx2.AsyncClient(
        timeout=httpx2.Timeout(settings.timeout, connect=min(settings.timeout, 5.0)),
        # Every request goes to one or two hosts: keep the connections a burst opened, not just 20.
        limits=httpx2.Limits(max_connections=100, max_keepalive_connections=100),
        headers=DEFAULT_HEADERS,
        follow_redirects=False,
        # No cookie jar: a cookie one workspace's answer set must never ride on another's request.
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )


@asynccontextmanager
async def open_app_state(
    settings: Settings,
    retry: RetryPolicy | None = None,
    region_urls: Mapping[Region, Endpoints] = REGION_URLS,
) -> AsyncIterator[AppState]:
    """Open the process's HTTP client, pacing and the runner that uses them; close them on exit."""
    pacing = Pacing.from_settings(settings)
    try:
        async with open_http_client(settings) as http:
            workspaces, own = None, None
            if settings.credentials_from == "request":
                workspaces = WorkspaceClients(settings, http, pacing, retry, region_urls)
                own = keyless_workspace(settings)  # the environment's keys are never used
            client = CustomerIOClient(settings, http, retry, region_urls, workspace=own, pacing=pacing)
            yield AppState(runner=ToolRunner(client, settings), client=client, workspaces=workspaces)
    finally:
        pacing.close()


def create_server(
    settings: Settings,
    *,
    retry: RetryPolicy | None = None,
    region_urls: Mapping[Region, Endpoints] = REGION_URLS,
    shared_state: Callable[[], AppState] | None = None,
) -> Server[AppState]:
    """The MCP server. Its lifespan opens the HTTP client, unless ``shared_state`` lends one.

    stdio runs the server once, so the lifespan owns the client. The SSE transport runs the
    server once per connection; there the HTTP app opens the state once and lends it, so every
    connection shares one client and its connection pool.
    """

    schemas = {tool.name: tool.input_schema for tool in tool_definitions(enabled_tools(settings))}

    @asynccontextmanager
    async def lifespan(_: Server[AppState]) -> AsyncIterator[AppState]:
        if shared_state is not None:
            yield shared_state()
            return
        async with open_app_state(settings, retry, region_urls) as state:
            yield state

    async def list_tools(
        ctx: ServerRequestContext[AppState], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        scope = scope_for(ctx)
        tools = ctx.lifespan_context.runner.enabled(scope.narrowing)
        return types.ListToolsResult(tools=list(tool_definitions(tuple(tools.values()))))

    async def call_tool(ctx: ServerRequestContext[AppState], params: types.CallToolRequestParams) -> Any:
        state = ctx.lifespan_context
        with state.in_flight.track():
            return await state.runner.call(params.name, params.arguments, scope_for(ctx))

    return Server(
        "customerio-mcp",
        version=__version__,
        title="Customer.io",
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        # Lets the SDK check a modern Streamable HTTP call's parameters without re-running tools/list.
        get_tool_input_schema=schemas.get,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def run_stdio(settings: Settings) -> None:
    from mcp.server.stdio import stdio_server

    server = create_server(settings)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
