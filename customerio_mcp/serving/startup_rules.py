"""Configurations the server refuses to serve, with what to change: one list, for ``serve`` and ``check``.

A server on a non-loopback address hands whoever reaches its port the workspace's write keys, so
it needs a strong static token or OAuth (or ``--allow-unauthenticated`` when something in front
of it authenticates). OAuth settings that cannot work together (an audience without an issuer,
an issuer without the public URL that names this server) are refused at start rather than
answering every request with a 401 nobody can explain.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from customerio_mcp.serving.host_check import is_loopback
from customerio_mcp.settings import RANDOM_STRING_COMMAND, Settings
from customerio_mcp.text_safety import shown_url

MIN_PUBLIC_TOKEN_LENGTH = 32


def serves_publicly_without_authentication(settings: Settings) -> bool:
    """An HTTP transport on a non-loopback address with neither a static token nor OAuth."""
    return (
        settings.mcp_transport != "stdio"
        and not is_loopback(settings.mcp_host)
        and settings.mcp_auth_token is None
        and settings.mcp_oauth_issuer is None
    )


def startup_refusals(settings: Settings, allow_unauthenticated: bool) -> list[str]:
    """Every reason not to serve as configured (empty: serve), each saying what to change."""
    if settings.mcp_transport == "stdio":
        return []
    return [
        *_public_bind_refusals(settings, allow_unauthenticated),
        *_oauth_refusals(settings),
        *_port_refusals(settings),
    ]


def _port_refusals(settings: Settings) -> list[str]:
    if settings.mcp_health_port != settings.mcp_port:
        return []
    return [
        f"CUSTOMERIO_MCP_HEALTH_PORT and CUSTOMERIO_MCP_PORT are both {settings.mcp_port}: the health port is a "
        "second port, answered apart from MCP traffic. Pick another one (e.g. "
        f"{settings.mcp_port + 1 if settings.mcp_port < 65535 else settings.mcp_port - 1}), or unset it."
    ]


def _public_bind_refusals(settings: Settings, allow_unauthenticated: bool) -> list[str]:
    if is_loopback(settings.mcp_host):
        return []
    if serves_publicly_without_authentication(settings):
        if allow_unauthenticated:
            return []
        return [
            f"refusing to serve {settings.mcp_transport} on {settings.mcp_host} without a token: anyone who can "
            "reach the port could write to your Customer.io workspace. Set CUSTOMERIO_MCP_AUTH_TOKEN to a long "
            f"random secret (generate one with: {RANDOM_STRING_COMMAND}; clients then send 'Authorization: Bearer "
            "<token>'), configure OAuth (CUSTOMERIO_MCP_OAUTH_ISSUER and CUSTOMERIO_MCP_PUBLIC_URL), bind to "
            "127.0.0.1, or pass --allow-unauthenticated if something in front of this server already authenticates."
        ]
    token = settings.mcp_auth_token.get_secret_value() if settings.mcp_auth_token is not None else None
    if token is not None and (len(token.strip()) < MIN_PUBLIC_TOKEN_LENGTH):
        what = "only whitespace" if not token.strip() else f"{len(token.strip())} characters long"
        return [
            f"refusing to serve {settings.mcp_transport} on {settings.mcp_host} with a CUSTOMERIO_MCP_AUTH_TOKEN "
            f"that is {what}: on a public address it must be at least {MIN_PUBLIC_TOKEN_LENGTH} characters of "
            f"random text, which cannot be guessed. Generate one with: {RANDOM_STRING_COMMAND}"
        ]
    return []


def _oauth_refusals(settings: Settings) -> list[str]:
    refusals: list[str] = []
    dependent = {
        "CUSTOMERIO_MCP_OAUTH_AUDIENCE": settings.mcp_oauth_audience,
        "CUSTOMERIO_MCP_OAUTH_SCOPES": settings.mcp_oauth_scopes or None,
        "CUSTOMERIO_MCP_OAUTH_INTROSPECTION_URL": settings.mcp_oauth_introspection_url,
        "CUSTOMERIO_MCP_OAUTH_CLIENT_ID": settings.mcp_oauth_client_id,
        "CUSTOMERIO_MCP_OAUTH_CLIENT_SECRET": settings.mcp_oauth_client_secret,
    }
    given = [name for name, value in dependent.items() if value is not None]
    if settings.mcp_oauth_issuer is None:
        if given:
            refusals.append(
                f"OAuth is incomplete: {', '.join(given)} set but CUSTOMERIO_MCP_OAUTH_ISSUER is not. Set it to your "
                "authorization server's issuer URL (e.g. https://your-tenant.eu.auth0.com/), or unset "
                f"{'it' if len(given) == 1 else 'them'}."
            )
        return refusals
    if settings.mcp_public_url is None:
        refusals.append(
            "OAuth is configured (CUSTOMERIO_MCP_OAUTH_ISSUER) but CUSTOMERIO_MCP_PUBLIC_URL is missing: set it to "
            "the URL clients connect to, e.g. https://mcp.example.com/mcp (for SSE, https://mcp.example.com/sse). "
            "It is the resource access tokens are issued for and where clients find the OAuth metadata."
        )
    for name, url in (
        ("CUSTOMERIO_MCP_OAUTH_ISSUER", settings.mcp_oauth_issuer),
        ("CUSTOMERIO_MCP_OAUTH_INTROSPECTION_URL", settings.mcp_oauth_introspection_url),
    ):
        if url is not None and not _https_or_loopback(url):
            refusals.append(
                f"{name} must be an https:// URL (plain http is accepted on loopback only): signing keys and "
                f"tokens would otherwise travel unprotected. It is {shown_url(url)[:100]!r}."
            )
    if settings.mcp_oauth_introspection_url is not None and not (
        settings.mcp_oauth_client_id and settings.mcp_oauth_client_secret
    ):
        refusals.append(
            "CUSTOMERIO_MCP_OAUTH_INTROSPECTION_URL is set but CUSTOMERIO_MCP_OAUTH_CLIENT_ID and "
            "CUSTOMERIO_MCP_OAUTH_CLIENT_SECRET are not both set: the introspection endpoint needs the client this "
            "server authenticates as (register one for it at your authorization server)."
        )
    elif settings.mcp_oauth_introspection_url is None and (
        settings.mcp_oauth_client_id or settings.mcp_oauth_client_secret
    ):
        refusals.append(
            "CUSTOMERIO_MCP_OAUTH_CLIENT_ID / CUSTOMERIO_MCP_OAUTH_CLIENT_SECRET are only used for token "
            "introspection: set CUSTOMERIO_MCP_OAUTH_INTROSPECTION_URL too, or unset them."
        )
    return refusals


def _https_or_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or ""))
