"""MCP wiring: a lowlevel ``Server`` whose two handlers serve the tool table.

The lowlevel server is used rather than ``MCPServer`` because the tools are rows in a table, not
Python functions: ``tools/list`` returns the prebuilt definitions and ``tools/call`` hands every
call to the one ``ToolRunner``. The HTTP client lives in the server's lifespan, so there is one
per process, opened before the first call and closed on shutdown.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import mcp_types as types
from mcp.server import Server, ServerRequestContext

from customerio_mcp import __version__
from customerio_mcp.customerio.api import REGION_URLS, Endpoints, Region
from customerio_mcp.customerio.client import CustomerIOClient
from customerio_mcp.customerio.delivery import RetryPolicy
from customerio_mcp.customerio.http_client import open_http_client
from customerio_mcp.customerio.pacing import Pacing
from customerio_mcp.customerio.workspace_clients import WorkspaceClients, keyless_workspace
from customerio_mcp.serving.audit import AuditTrail, open_audit_trail
from customerio_mcp.serving.confirmation import Confirmations, asker_for, state_boundary
from customerio_mcp.serving.drain import InFlightCalls
from customerio_mcp.serving.limits import CallLimiter, ServerBusy, held_slot
from customerio_mcp.serving.request_scope import scope_for
from customerio_mcp.settings import Settings
from customerio_mcp.tools.definitions import tool_definitions
from customerio_mcp.tools.results import failure_result, interrupted_result
from customerio_mcp.tools.runner import CallRecord, CallScope, ToolRunner
from customerio_mcp.tools.selection import enabled_tools

INSTRUCTIONS = (
    "Tools that send data to Customer.io: Track API (people, devices, events, segments, v2 entity/batch) and "
    "Data Pipelines API (identify, track, page, screen, group, alias, batch). request_body is a JSON object (a "
    "string holding one is accepted too); tool descriptions say its fields. When unsure of its shape, call the tool "
    "with mode='get_request_schema': it returns the body's JSON Schema and sends nothing. Errors name the field to "
    "fix and the rule it breaks. Every tool writes to the open world (openWorldHint)."
)


@dataclass
class AppState:
    runner: ToolRunner
    client: CustomerIOClient
    calls: CallLimiter
    confirmations: Confirmations
    in_flight: InFlightCalls = field(default_factory=InFlightCalls)
    workspaces: WorkspaceClients | None = None
    """One client per workspace when requests carry their own keys (CUSTOMERIO_CREDENTIALS_FROM=request)."""
    audit: AuditTrail | None = None
    """Where every call that may have reached Customer.io is recorded (None: CUSTOMERIO_AUDIT=off)."""
    http_principal: str = "unauthenticated"
    """Who an HTTP request without an OAuth token is: "static token" when CUSTOMERIO_MCP_AUTH_TOKEN is set (the
    only way past authentication without OAuth), else "unauthenticated"."""


@asynccontextmanager
async def open_app_state(
    settings: Settings,
    retry: RetryPolicy | None = None,
    region_urls: Mapping[Region, Endpoints] = REGION_URLS,
) -> AsyncIterator[AppState]:
    """Open the process's HTTP client, pacing, confirmations, audit trail and the runner that uses them; close them
    on exit."""
    pacing = Pacing.from_settings(settings)
    try:
        async with (
            open_http_client(settings) as http,
            Confirmations.open(settings) as confirmations,
            open_audit_trail(settings) as audit,
        ):
            workspaces, own = None, None
            if settings.credentials_from == "request":
                workspaces = WorkspaceClients(settings, http, pacing, retry, region_urls)
                own = keyless_workspace(settings)  # the environment's keys are never used
            client = CustomerIOClient(settings, http, retry, region_urls, workspace=own, pacing=pacing)
            calls = CallLimiter(settings.mcp_max_concurrent_calls)
            yield AppState(
                runner=ToolRunner(client, settings),
                client=client,
                calls=calls,
                confirmations=confirmations,
                workspaces=workspaces,
                audit=audit,
                http_principal="static token" if settings.mcp_auth_token is not None else "unauthenticated",
            )
    finally:
        pacing.close()


def freeze_startup_heap() -> None:
    """Leave what start-up made (modules, pydantic models, schemas) out of every later garbage collection.

    A full collection walks every tracked object, and pydantic-core's validators and serializers
    (the SDK has hundreds) are slow to walk: in a started server one took 60-90 ms on a 2-core VM,
    on the event loop. Parsing one large call's arguments allocates enough to set one off, so a
    concurrent call waited that long. Frozen, the start-up heap is never walked again; a full
    collection then walks only what requests made (1-2 ms). ``gc.freeze`` moves lists, it does not
    collect: start-up garbage not yet collected stays, a bounded amount, once.
    """
    gc.freeze()


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
        record = CallRecord()
        scope: CallScope | None = None
        result = None
        try:
            async with state.calls.slot(held=held_slot(ctx.request)) as slot:
                # Cancelled only when a shutdown's drain window closes on this call.
                with state.in_flight.track():
                    scope = scope_for(ctx)
                    ask = asker_for(ctx, params, state.confirmations, scope.client.workspace, slot)
                    result = await state.runner.call(params.name, params.arguments, replace(scope, ask=ask), record)
        except ServerBusy as busy:  # refused before anything was sent to Customer.io
            return failure_result(params.name, busy)
        finally:  # also when the client cancels the call: it may have reached Customer.io all the same
            if state.audit is not None and scope is not None:
                state.audit.submit(record, scope)
        return result if result is not None else interrupted_result(params.name, record)

    server: Server[AppState] = Server(
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
    # Seals the requestState of confirmation round trips (2026-07-28) before it leaves, verifies it when it returns.
    server.middleware.append(state_boundary(settings))
    return server
