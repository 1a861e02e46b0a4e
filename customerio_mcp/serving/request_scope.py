"""What one MCP request may do and which workspace it writes to, read from the request itself.

Every ``tools/list`` and ``tools/call`` asks ``scope_for`` first. Over stdio, and over HTTP with
nothing request-specific configured, the answer is the server's own settings and its one client.
The remote features add to it here, in one place, and each can only narrow what the operator's
settings allow: an OAuth token without the destructive scope, the ``X-MCP-*`` narrowing headers,
and the workspace credentials a request carries.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from mcp.server.auth.middleware.auth_context import get_access_token

from customerio_mcp.serving.oauth import OAuthAccessToken
from customerio_mcp.tools.runner import CallScope
from customerio_mcp.tools.selection import Narrowing

if TYPE_CHECKING:
    from mcp.server import ServerRequestContext


@cache
def without_destructive(scope_name: str) -> Narrowing:
    """The narrowing of an OAuth token that lacks ``scope_name``: as in no-destructive mode."""
    return Narrowing(no_destructive=True, why_no_destructive=f"the access token lacks the {scope_name} scope")


def scope_for(ctx: ServerRequestContext[Any, Any]) -> CallScope:
    """The scope of the request behind ``ctx`` (``ctx.request`` is the HTTP request, None on stdio).

    The OAuth access token comes from the SDK's auth context: its middleware sets it for each HTTP
    request, and the SDK carries it to the handler of the message that request delivered. A request
    with the operator's static token, or over stdio, has none and is not narrowed.
    """
    default = ctx.lifespan_context.runner.default_scope
    token = get_access_token()
    if isinstance(token, OAuthAccessToken) and not token.may_destroy:
        return CallScope(default.client, without_destructive(token.destructive_scope))
    return default
