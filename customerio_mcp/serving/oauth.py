"""OAuth 2.1 access tokens: who may call this server, and whether they may delete.

The MCP authorization specification makes an MCP server an OAuth *resource server*: clients such
as claude.ai get a token from the organisation's authorization server (Okta, Entra ID, Auth0,
Keycloak, …) and send it as ``Authorization: Bearer``. ``OAuthTokenVerifier`` is the SDK's
``TokenVerifier`` for those tokens:

- a JWT (RFC 9068) is checked locally: an asymmetric signature by a key the issuer publishes
  (``oauth_issuer.IssuerKeys``), ``iss``, ``aud`` (the RFC 8707 resource this server is), ``exp``
  and ``nbf`` with ``LEEWAY_SECONDS`` for clock skew. PyJWT does the cryptography.
- any other token is asked about at the RFC 7662 introspection endpoint when one is configured,
  with the same ``iss``/``aud``/``exp`` rules; answers are cached briefly.

The scopes a token carries decide what it may do (``request_scope.scope_for``): without the
destructive scope the request is served as in no-destructive mode. Tokens are never logged and
never sent anywhere but to the introspection endpoint; Customer.io only ever sees the workspace's
own keys. Why a token was refused is an INFO line on ``customerio_mcp.clients``, rate-limited like
every line a client can cause at will (``log_hygiene``): 15,000 bad tokens were 15,000 lines.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import quote

import httpx2
import jwt
from jwt import PyJWK
from jwt.exceptions import InvalidAudienceError, InvalidIssuerError, PyJWKError, PyJWTError
from mcp.server.auth.provider import AccessToken

from customerio_mcp.serving.oauth_issuer import FETCH_TIMEOUT, IssuerKeys, IssuerUnavailable
from customerio_mcp.settings import Settings

logger = logging.getLogger(__name__)
CLIENTS = logging.getLogger("customerio_mcp.clients")

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""Signature algorithms accepted: public-key ones only (no ``none``, no HMAC with a public key)."""
LEEWAY_SECONDS = 30
"""Clock skew tolerated on ``exp`` and ``nbf``."""
INTROSPECTION_CACHE_SECONDS = 30.0
"""How long an introspection answer is reused (never beyond the token's own expiry)."""
INTROSPECTION_CACHE_SIZE = 1024


class OAuthAccessToken(AccessToken):
    """A verified access token, with the scope name that grants destructive operations."""

    destructive_scope: str

    @property
    def may_destroy(self) -> bool:
        return self.destructive_scope in self.scopes


class TokenRefused(Exception):
    """The token is not valid here; the message says why (and never quotes the token)."""


def shown(value: object) -> str:
    """A claim value as it may appear in a log line: short, control characters neutralised."""
    text = repr(value)
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= 100 else text[:100] + "…"


def accepted_audiences(audience: str) -> list[str]:
    """The configured audience, with and without a trailing slash (both spellings name one URL)."""
    bare = audience.rstrip("/")
    return [bare, bare + "/"]


def token_scopes(claims: dict[str, Any]) -> list[str]:
    """Scopes from ``scope`` (RFC 9068 / 7662: space-separated) or ``scp`` (Okta, Entra ID: list or string).

    Separated by U+0020 only (RFC 6749 §3.3: ``scope-token *( SP scope-token )``): a token holding
    another space (``a<NBSP>customerio:destructive``) is one strange scope name, and grants nothing
    else. ``str.split()`` split on every Unicode space, which granted the destructive scope to that one.
    """
    value = claims.get("scope", claims.get("scp"))
    if isinstance(value, str):
        return [scope for scope in value.split(" ") if scope]
    if isinstance(value, list):
        return [scope for scope in value if isinstance(scope, str)]
    return []


def token_client_id(claims: dict[str, Any]) -> str:
    for name in ("client_id", "azp", "cid", "appid", "sub"):
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return "unknown-client"


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and all(token.split("."))


class OAuthTokenVerifier:
    """The SDK ``TokenVerifier`` for this server's issuer and audience (see the module docstring)."""

    def __init__(self, settings: Settings, http: httpx2.AsyncClient) -> None:
        assert settings.mcp_oauth_issuer is not None, "startup_rules refuses OAuth without an issuer"
        audience = settings.mcp_oauth_audience or settings.mcp_public_url
        assert audience is not None, "startup_rules refuses OAuth without a public URL"
        self.issuer = settings.mcp_oauth_issuer
        self.audiences = accepted_audiences(audience)
        self.destructive_scope = settings.mcp_oauth_destructive_scope
        self.keys = IssuerKeys(self.issuer, http)
        self._http = http
        self._introspection_url = settings.mcp_oauth_introspection_url
        self._client_auth: httpx2.BasicAuth | None = None
        if settings.mcp_oauth_client_id and settings.mcp_oauth_client_secret:
            # RFC 6749 §2.3.1: both are form-encoded before they go into the Basic header.
            self._client_auth = httpx2.BasicAuth(
                quote(settings.mcp_oauth_client_id, safe=""),
                quote(settings.mcp_oauth_client_secret.get_secret_value(), safe=""),
            )
        self._introspected: OrderedDict[bytes, tuple[float, OAuthAccessToken | None]] = OrderedDict()

    async def verify_token(self, token: str) -> OAuthAccessToken | None:
        """The verified token, or None (the SDK then answers 401 with the RFC 9728 challenge)."""
        token = token.strip()
        try:
            if looks_like_jwt(token):
                return await self._verify_jwt(token)
            if self._introspection_url is not None:
                return await self._introspect(token)
            raise TokenRefused("it is not a JWT, and no introspection endpoint is configured for opaque tokens")
        except TokenRefused as refusal:
            CLIENTS.info("access token refused: %s", refusal)
        except (IssuerUnavailable, httpx2.HTTPError) as exc:
            # Each request during an issuer outage says so: one line per kind, rate-limited.
            logger.warning(
                "could not verify an access token with %s: %s", self.issuer, exc, extra={"rate_key": "unverified"}
            )
        return None

    async def _verify_jwt(self, token: str) -> OAuthAccessToken:
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError as exc:
            raise TokenRefused(f"malformed JWT ({exc})") from exc
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in ASYMMETRIC_ALGORITHMS:
            raise TokenRefused(f"signature algorithm {shown(algorithm)} is not accepted")
        kid = header.get("kid") if isinstance(header.get("kid"), str) else None
        jwk = await self.keys.key(kid)
        if jwk is None:
            raise TokenRefused(f"signed with key {shown(kid)}, which {self.issuer} does not publish")
        if jwk.get("alg", algorithm) != algorithm:
            raise TokenRefused(f"signed with {shown(algorithm)} but key {shown(kid)} is for {shown(jwk.get('alg'))}")
        try:
            claims = jwt.decode(
                token,
                PyJWK(jwk, algorithm),
                algorithms=[algorithm],
                audience=self.audiences,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except InvalidAudienceError as exc:
            raise TokenRefused(self._wrong_audience(jwt.decode(token, options={"verify_signature": False}))) from exc
        except InvalidIssuerError as exc:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
            raise TokenRefused(f"issued by {shown(issuer)}, not {self.issuer}") from exc
        except (PyJWTError, PyJWKError) as exc:
            raise TokenRefused(f"{type(exc).__name__}: {exc}") from exc
        return self._access_token(token, claims)

    def _wrong_audience(self, claims: dict[str, Any]) -> str:
        return (
            f"its audience {shown(claims.get('aud'))} is not {self.audiences[0]} (CUSTOMERIO_MCP_OAUTH_AUDIENCE, "
            "default CUSTOMERIO_MCP_PUBLIC_URL)"
        )

    async def _introspect(self, token: str) -> OAuthAccessToken:
        digest = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        cached = self._introspected.get(digest)
        if cached is not None and cached[0] > now:
            if cached[1] is None:
                raise TokenRefused("the introspection endpoint said it is not active (cached answer)")
            return cached[1]
        try:
            verified = self._check_introspection(token, await self._ask_introspection(token))
        except TokenRefused:
            self._remember(digest, now + INTROSPECTION_CACHE_SECONDS, None)
            raise
        lifetime = INTROSPECTION_CACHE_SECONDS
        if verified.expires_at is not None:
            lifetime = min(lifetime, verified.expires_at - time.time())
        self._remember(digest, now + lifetime, verified)
        return verified

    def _remember(self, digest: bytes, until: float, verified: OAuthAccessToken | None) -> None:
        self._introspected[digest] = (until, verified)
        self._introspected.move_to_end(digest)
        while len(self._introspected) > INTROSPECTION_CACHE_SIZE:
            self._introspected.popitem(last=False)

    async def _ask_introspection(self, token: str) -> dict[str, Any]:
        assert self._introspection_url is not None
        response = await self._http.post(
            self._introspection_url,
            data={"token": token, "token_type_hint": "access_token"},
            auth=self._client_auth,
            headers={"Accept": "application/json"},
            timeout=FETCH_TIMEOUT,
        )
        if response.status_code != 200:
            raise IssuerUnavailable(
                f"the introspection endpoint answered {response.status_code} (check CUSTOMERIO_MCP_OAUTH_CLIENT_ID "
                "and CUSTOMERIO_MCP_OAUTH_CLIENT_SECRET)"
            )
        try:
            answer = response.json()
        except ValueError as exc:
            raise IssuerUnavailable("the introspection endpoint did not answer JSON") from exc
        if not isinstance(answer, dict):
            raise IssuerUnavailable("the introspection endpoint did not answer a JSON object")
        return answer

    def _check_introspection(self, token: str, claims: dict[str, Any]) -> OAuthAccessToken:
        """RFC 7662 says little about ``iss``/``aud``; this server insists on them as it does for JWTs."""
        if claims.get("active") is not True:
            raise TokenRefused("the introspection endpoint said it is not active")
        if "iss" in claims and claims["iss"] != self.issuer:
            raise TokenRefused(f"issued by {shown(claims['iss'])}, not {self.issuer}")
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else audiences
        if not isinstance(audiences, list) or not set(audiences) & set(self.audiences):
            raise TokenRefused(self._wrong_audience(claims))
        exp = claims.get("exp")
        if isinstance(exp, int | float) and exp + LEEWAY_SECONDS < time.time():
            raise TokenRefused("it has expired")
        return self._access_token(token, claims)

    def _access_token(self, token: str, claims: dict[str, Any]) -> OAuthAccessToken:
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else audiences or []
        resource = next((aud for aud in audiences if aud in self.audiences), None)
        exp = claims.get("exp")
        subject = claims.get("sub")
        return OAuthAccessToken(
            token=token,
            client_id=token_client_id(claims),
            scopes=token_scopes(claims),
            # When this server stops accepting it (the SDK's bearer backend checks this without leeway).
            expires_at=int(exp) + LEEWAY_SECONDS if isinstance(exp, int | float) else None,
            resource=resource,
            subject=subject if isinstance(subject, str) else None,
            claims={"iss": self.issuer},
            destructive_scope=self.destructive_scope,
        )
