"""The baseline: the smallest useful forwarding server on the same MCP SDK.

One tool, ``forward``, that POSTs its ``body`` argument to ``$BENCH_TARGET_URL`` with one shared
``httpx2`` client and returns the status. No validation, no retries, no region, no settings: what
any server built on this SDK has to pay for, and nothing more.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server

TOOL = types.Tool(name="forward", description="POST body to the target.", input_schema={"type": "object"})


@asynccontextmanager
async def lifespan(_: Server[httpx2.AsyncClient]) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as http:
        yield http


async def list_tools(ctx: ServerRequestContext[Any], params: Any) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[TOOL])


async def call_tool(ctx: ServerRequestContext[httpx2.AsyncClient], params: types.CallToolRequestParams) -> Any:
    response = await ctx.lifespan_context.post(
        os.environ["BENCH_TARGET_URL"], json=(params.arguments or {}).get("body"), auth=("site", "key")
    )
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=f"{response.status_code}")],
        structured_content={"status": response.status_code, "response": response.json() if response.content else None},
    )


async def main() -> None:
    server = Server("minimal", version="0", lifespan=lifespan, on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
