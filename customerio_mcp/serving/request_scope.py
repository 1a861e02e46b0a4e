"""What one MCP request may do and which workspace it writes to, read from the request itself.

Every ``tools/list`` and ``tools/call`` asks ``scope_for`` first. Over stdio, and over HTTP with
nothing request-specific configured, the answer is the server's own settings and its one client.
The remote features add to it here, in one place, and each can only narrow what the operator's
settings allow: an OAuth token without the destructive scope, the ``X-MCP-*`` narrowing headers,
and the workspace credentials a request carries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from customerio_mcp.serving.request_headers import scope_from_headers
from customerio_mcp.tools.runner import CallScope

if TYPE_CHECKING:
    from mcp.server import ServerRequestContext


def scope_for(ctx: ServerRequestContext[Any, Any]) -> CallScope:
    """The scope of the request behind ``ctx`` (``ctx.request`` is the HTTP request, None on stdio)."""
    state = ctx.lifespan_context
    scope = state.runner.default_scope
    if ctx.request is not None:
        # Workspace keys and X-MCP-* narrowing headers (serving/request_headers.py).
        scope = scope_from_headers(ctx.request.headers, state.workspaces, scope)
    return scope
