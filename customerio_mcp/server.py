"""MCP wiring: a lowlevel ``Server`` whose two handlers serve the tool table.

The lowlevel server is used rather than ``MCPServer`` because the tools are rows in a table, not
Python functions: ``tools/list`` returns the prebuilt definitions and ``tools/call`` hands every
call to the one ``ToolRunner``. The HTTP client lives in the server's lifespan, so there is one
per process, opened before the first call and closed on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
import mcp_types as types
from mcp.server import Server, ServerRequestContext

from customerio_mcp import __version__
from customerio_mcp.client import REGION_URLS, USER_AGENT, CustomerIOClient, Endpoints, RetryPolicy
from customerio_mcp.settings import Region, Settings
from customerio_mcp.tool_definitions import all_tool_definitions
from customerio_mcp.tool_runner import ToolRunner

INSTRUCTIONS = (
    "Tools that send data to Customer.io: Track API (people, devices, events, segments, v2 entity/batch) and "
    "Data Pipelines API (identify, track, page, screen, group, alias, batch). For tools with a request_body, "
    "call with mode='get_request_schema' first when unsure of the body's shape. Errors say which field to fix."
)


@dataclass
class AppState:
    runner: ToolRunner
    client: CustomerIOClient


def open_http_client(settings: Settings) -> httpx2.AsyncClient:
    """The process's one HTTP client: pooled connections, explicit timeouts, a versioned User-Agent."""
    return httpx2.AsyncClient(
        timeout=httpx2.Timeout(settings.timeout, connect=min(settings.timeout, 5.0)),
        limits=httpx2.Limits(max_connections=100, max_keepalive_connections=20),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        follow_redirects=False,
    )


def create_server(
    settings: Settings,
    *,
    retry: RetryPolicy | None = None,
    region_urls: Mapping[Region, Endpoints] = REGION_URLS,
) -> Server[AppState]:
    @asynccontextmanager
    async def lifespan(_: Server[AppState]) -> AsyncIterator[AppState]:
        async with open_http_client(settings) as http:
            client = CustomerIOClient(settings, http, retry, region_urls)
            yield AppState(runner=ToolRunner(client, settings), client=client)

    async def list_tools(
        ctx: ServerRequestContext[AppState], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=list(all_tool_definitions()))

    async def call_tool(ctx: ServerRequestContext[AppState], params: types.CallToolRequestParams) -> Any:
        return await ctx.lifespan_context.runner.call(params.name, params.arguments)

    return Server(
        "customerio-mcp",
        version=__version__,
        title="Customer.io",
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def run_stdio(settings: Settings) -> None:
    from mcp.server.stdio import stdio_server

    server = create_server(settings)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
