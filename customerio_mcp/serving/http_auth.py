"""Who may use the MCP paths over HTTP: the operator's static token, OAuth access tokens, or both.

- ``CUSTOMERIO_MCP_AUTH_TOKEN`` alone: ``Authorization: Bearer <that token>``; anything else gets
  401 with a short JSON body saying so. The body matters: an MCP client that gets a bare 401
  assumes OAuth and shows its user a confusing OAuth error instead of "set the header".
- OAuth (``CUSTOMERIO_MCP_OAUTH_ISSUER`` and ``CUSTOMERIO_MCP_PUBLIC_URL``): the SDK's own building
  blocks (``BearerAuthBackend`` with our ``OAuthTokenVerifier``, ``AuthContextMiddleware``,
  ``RequireAuthMiddleware``), so a missing or invalid token gets 401 with the RFC 9728
  ``WWW-Authenticate: Bearer resource_metadata="…"`` challenge, a token without a scope of
  ``CUSTOMERIO_MCP_OAUTH_SCOPES`` gets 403 ``insufficient_scope``, and the protected-resource
  metadata is served at ``/.well-known/oauth-protected-resource`` (bare and path-suffixed).
- Both: a request carrying exactly the static token is the operator's own and passes as it does
  without OAuth (not narrowed by scopes); every other request goes through OAuth. So headers-capable
  clients and automation keep their token while claude.ai-style connectors use OAuth.

``/healthz`` and ``/.well-known/…`` need no token. Static tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from customerio_mcp.serving.oauth import OAuthTokenVerifier
from customerio_mcp.serving.oauth_issuer import FETCH_TIMEOUT
from customerio_mcp.settings import Settings

OPEN_PATHS = frozenset({"/healthz"})
OPEN_PREFIXES = ("/.well-known/",)
METADATA_PATH = "/.well-known/oauth-protected-resource"
STATIC_TOKEN_REQUIRED = json.dumps(
    {
        "error": "invalid_token",
        "error_description": "This server requires Authorization: Bearer <token>, with the token its operator set "
        "in CUSTOMERIO_MCP_AUTH_TOKEN; it does not offer OAuth.",
    }
).encode()


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def bearer_credentials(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            return credentials.strip() if scheme.lower() == b"bearer" else None
    return None


async def send_static_token_required(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"www-authenticate", b"Bearer"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(STATIC_TOKEN_REQUIRED)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": STATIC_TOKEN_REQUIRED})


class AuthGate:
    """ASGI middleware in front of every path: the static token first, then OAuth (when configured)."""

    def __init__(self, app: ASGIApp, static_token: str | None, oauth: ASGIApp | None) -> None:
        self.app = app
        self._static = static_token.encode() if static_token is not None else None
        self._oauth = oauth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        if self._static is not None:
            credentials = bearer_credentials(scope)
            if credentials is not None and hmac.compare_digest(credentials, self._static):
                await self.app(scope, receive, send)
                return
        if self._oauth is not None:
            await self._oauth(scope, receive, send)
            return
        await send_static_token_required(send)


class HttpAuth:
    """Everything ``build_http_app`` adds for authentication: routes, a wrapper and a lifespan."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._http: httpx2.AsyncClient | None = None
        self.verifier: OAuthTokenVerifier | None = None
        self.routes: list[Route] = []
        if settings.mcp_oauth_issuer is None:
            return
        assert settings.mcp_public_url is not None, "startup_rules refuses OAuth without a public URL"
        # Metadata, keys and introspection only: no redirects to follow, no cookies to keep.
        self._http = httpx2.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False)
        self.verifier = OAuthTokenVerifier(settings, self._http)
        self.routes = self._metadata_routes(settings.mcp_public_url, settings.mcp_oauth_issuer)

    @property
    def enabled(self) -> bool:
        return self.verifier is not None or self._settings.mcp_auth_token is not None

    def _metadata_routes(self, public_url: str, issuer: str) -> list[Route]:
        """RFC 9728 metadata at the path-suffixed URL for the public URL, the bare one, and the transport's."""
        scopes = [*(self._settings.mcp_oauth_scopes or []), self._settings.mcp_oauth_destructive_scope]
        # Strings, not AnyHttpUrl: the metadata model keeps them exactly as written (an issuer
        # is compared character for character, trailing slash included).
        [route] = create_protected_resource_routes(
            resource_url=public_url,  # type: ignore[arg-type]
            authorization_servers=[issuer],  # type: ignore[list-item]
            scopes_supported=list(dict.fromkeys(scopes)),
            resource_name="Customer.io (customerio-mcp)",
        )
        transport_path = "/sse" if self._settings.mcp_transport == "sse" else "/mcp"
        paths = dict.fromkeys([route.path, METADATA_PATH, METADATA_PATH + transport_path])
        return [Route(path, endpoint=route.endpoint, methods=["GET", "OPTIONS"]) for path in paths]

    def protect(self, app: ASGIApp) -> ASGIApp:
        """``app`` behind the static token and/or OAuth; unchanged when neither is configured."""
        if not self.enabled:
            return app
        oauth: ASGIApp | None = None
        if self.verifier is not None:
            assert self._settings.mcp_public_url is not None
            required = RequireAuthMiddleware(
                app,
                required_scopes=self._settings.mcp_oauth_scopes or [],
                resource_metadata_url=build_resource_metadata_url(self._settings.mcp_public_url),  # type: ignore[arg-type]
            )
            # The token's resource is checked by the verifier (aud), so the backend need not.
            oauth = AuthenticationMiddleware(AuthContextMiddleware(required), backend=BearerAuthBackend(self.verifier))
        token = self._settings.mcp_auth_token
        return AuthGate(app, token.get_secret_value() if token is not None else None, oauth)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Close the HTTP client used for the issuer's metadata, keys and introspection on shutdown."""
        try:
            yield
        finally:
            if self._http is not None:
                await self._http.aclose()
