"""What one MCP request may do and which workspace it writes to, read from the request itself.

Every ``tools/list`` and ``tools/call`` asks ``scope_for`` first. Over stdio, and over HTTP with
nothing request-specific configured, the answer is the server's own settings and its one client.
The remote features add to it here, in one place, and each can only narrow what the operator's
settings allow: an OAuth token without the destructive scope, the ``X-MCP-*`` narrowing headers,
and the workspace credentials a request carries.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import TYPE_CHECKING, Any

from mcp.server.auth.middleware.auth_context import get_access_token

from customerio_mcp.serving.request_headers import scope_from_headers
from customerio_mcp.text_safety import clip
from customerio_mcp.tools.runner import CallScope
from customerio_mcp.tools.selection import Narrowing

if TYPE_CHECKING:
    from mcp.server import ServerRequestContext

MAX_PRINCIPAL_CHARS = 200
"""Characters of an OAuth subject kept: the issuer chose it, and it goes into every audit record."""


@cache
def without_destructive(scope_name: str) -> Narrowing:
    """The narrowing of an OAuth token that lacks ``scope_name``: as in no-destructive mode."""
    return Narrowing(no_destructive=True, why_no_destructive=f"the access token lacks the {scope_name} scope")


def scope_for(ctx: ServerRequestContext[Any, Any]) -> CallScope:
    """The scope of the request behind ``ctx`` (``ctx.request`` is the HTTP request, None on stdio).

    Two sources may narrow it, and each only takes away: the request's headers (workspace keys and
    ``X-MCP-*`` narrowing, ``request_headers.py``) and its OAuth access token, which the SDK's auth
    middleware sets for each HTTP request. A request with the operator's static token, or over stdio,
    has no token and is not narrowed by one. The scope also names who sent the request (``principal``): the
    token's ``sub`` (or its client, when it has none), else ``AppState.http_principal``.
    """
    state = ctx.lifespan_context
    scope = state.runner.default_scope
    if ctx.request is None:  # stdio: nothing to narrow, and the principal is the person who started it
        return scope
    scope = scope_from_headers(ctx.request.headers, state.workspaces, scope)
    token = get_access_token()
    if token is None:  # the static token, or no authentication: nothing more to narrow
        return replace(scope, principal=state.http_principal)
    from customerio_mcp.serving.oauth import OAuthAccessToken  # not at import: it brings PyJWT and cryptography

    scope = replace(scope, principal=clip(token.subject or f"client {token.client_id}", MAX_PRINCIPAL_CHARS))
    if isinstance(token, OAuthAccessToken) and not token.may_destroy:
        scope = replace(scope, narrowing=scope.narrowing.combined_with(without_destructive(token.destructive_scope)))
    return scope
