"""The authorization server as this resource server sees it: its metadata and its signing keys.

The issuer's metadata is found the ways the MCP authorization specification lists (RFC 8414
``/.well-known/oauth-authorization-server``, then OpenID Connect discovery), and its ``jwks_uri``
gives the public keys access tokens are signed with. Keys are cached. An authorization server
rotates keys by publishing a new one and signing with it, so a token naming a key id (``kid``)
not in the cache makes the cache refetch the key set, at most once per ``UNKNOWN_KEY_COOLDOWN``:
a stream of tokens with made-up key ids costs the authorization server one request per period,
not one per token. The set is also refetched after ``KEYS_MAX_AGE``, so that a key the server
withdrew stops being trusted. A failed fetch is not retried for ``FAILURE_COOLDOWN``, and keys
already cached stay in use meanwhile.

Keys are parsed by PyJWT (``PyJWK``); nothing here does cryptography.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
from jwt import PyJWK
from jwt.exceptions import PyJWKError

logger = logging.getLogger(__name__)

KEYS_MAX_AGE = 3600.0
"""Seconds a fetched key set is used before it is fetched again."""
UNKNOWN_KEY_COOLDOWN = 30.0
"""Least seconds between two refetches caused by tokens naming keys not in the cache."""
FAILURE_COOLDOWN = 10.0
"""Seconds after a failed fetch during which no new fetch is tried."""
MAX_DOCUMENT_BYTES = 512 * 1024
"""Largest metadata or key-set document read: real ones are a few kilobytes."""
FETCH_TIMEOUT = 5.0


class IssuerUnavailable(Exception):
    """The issuer's metadata or keys could not be fetched or made no sense; the message says why."""


@dataclass(frozen=True)
class SigningKeys:
    """One fetched key set: the public signing keys by key id (``None`` for keys without one)."""

    by_kid: dict[str | None, dict[str, Any]]
    fetched_at: float

    def find(self, kid: str | None) -> dict[str, Any] | None:
        """The key ``kid`` names; without a ``kid``, the one key when the set holds exactly one."""
        if kid is not None:
            return self.by_kid.get(kid)
        return next(iter(self.by_kid.values())) if len(self.by_kid) == 1 else None


def metadata_urls(issuer: str) -> list[str]:
    """Where the issuer's metadata may be, in the order the MCP authorization spec tries them."""
    parts = urlsplit(issuer)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    urls = [f"{origin}/.well-known/oauth-authorization-server{path}"]
    if path:
        urls.append(f"{origin}/.well-known/openid-configuration{path}")
    urls.append(f"{origin}{path}/.well-known/openid-configuration")
    return urls


async def get_json(http: httpx2.AsyncClient, url: str) -> Any:
    """GET ``url`` and parse its JSON body, reading at most ``MAX_DOCUMENT_BYTES``."""
    async with http.stream("GET", url, headers={"Accept": "application/json"}) as response:
        if response.status_code != 200:
            raise IssuerUnavailable(f"GET {url} answered {response.status_code}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                raise IssuerUnavailable(f"GET {url} answered more than {MAX_DOCUMENT_BYTES} bytes")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise IssuerUnavailable(f"GET {url} did not answer JSON") from exc


def usable_signing_keys(document: Any) -> dict[str | None, dict[str, Any]]:
    """The signature keys of a JWK Set that PyJWT can load, by key id; encryption keys are left out."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise IssuerUnavailable("the jwks_uri did not answer a JWK Set ({'keys': [...]})")
    keys: dict[str | None, dict[str, Any]] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or jwk.get("kty") == "oct":
            continue
        try:
            PyJWK(jwk)
        except PyJWKError:
            continue  # a key type this process cannot use; other keys may still serve
        keys[jwk.get("kid") if isinstance(jwk.get("kid"), str) else None] = jwk
    if not keys:
        raise IssuerUnavailable("the issuer's JWK Set holds no usable signing key")
    return keys


class IssuerKeys:
    """The signing keys of one issuer, discovered from its metadata, cached and refreshed with bounds."""

    def __init__(self, issuer: str, http: httpx2.AsyncClient, clock: Callable[[], float] = time.monotonic) -> None:
        self.issuer = issuer
        self._http = http
        self._clock = clock
        self._jwks_uri: str | None = None
        self._keys: SigningKeys | None = None
        self._last_unknown_key_fetch = -math.inf
        self._last_failure = -math.inf
        self._lock = anyio.Lock()
        self.fetches = 0
        """Key-set fetches so far (for tests and diagnostics)."""

    async def key(self, kid: str | None) -> dict[str, Any] | None:
        """The public JWK that ``kid`` names, refetching the set when needed and allowed; else None.

        Raises ``IssuerUnavailable`` when no key set could ever be fetched.
        """
        keys = self._keys
        if keys is None or self._clock() - keys.fetched_at > KEYS_MAX_AGE:
            keys = await self._refresh(since=keys.fetched_at if keys else None)
        found = keys.find(kid)
        if found is not None or self._clock() - self._last_unknown_key_fetch < UNKNOWN_KEY_COOLDOWN:
            return found
        self._last_unknown_key_fetch = self._clock()
        logger.info("an access token names an unknown signing key; fetching %s's keys again", self.issuer)
        return (await self._refresh(since=keys.fetched_at)).find(kid)

    async def _refresh(self, since: float | None) -> SigningKeys:
        """Fetch the key set, unless another task did so after ``since`` or a failure is too recent."""
        async with self._lock:
            current = self._keys
            if current is not None and (since is None or current.fetched_at > since):
                return current  # fetched by another task while this one waited
            if self._clock() - self._last_failure < FAILURE_COOLDOWN:
                if current is not None:
                    return current
                raise IssuerUnavailable(f"{self.issuer}'s keys could not be fetched a moment ago; not retrying yet")
            try:
                self._keys = SigningKeys(await self._fetch_keys(), self._clock())
            except (IssuerUnavailable, httpx2.HTTPError) as exc:
                self._last_failure = self._clock()
                self._jwks_uri = None  # discover again next time: the metadata may have moved
                message = exc if isinstance(exc, IssuerUnavailable) else f"{type(exc).__name__}: {exc}"
                if current is not None:
                    logger.warning(
                        "could not refresh %s's signing keys (%s); keeping the cached ones", self.issuer, message
                    )
                    return current
                raise IssuerUnavailable(str(message)) from exc
            self.fetches += 1
            logger.info("using %d signing key(s) of %s from %s", len(self._keys.by_kid), self.issuer, self._jwks_uri)
            return self._keys

    async def _fetch_keys(self) -> dict[str | None, dict[str, Any]]:
        if self._jwks_uri is None:
            self._jwks_uri = await self._discover_jwks_uri()
        return usable_signing_keys(await get_json(self._http, self._jwks_uri))

    async def _discover_jwks_uri(self) -> str:
        tried: list[str] = []
        for url in metadata_urls(self.issuer):
            try:
                metadata = await get_json(self._http, url)
            except IssuerUnavailable as exc:
                tried.append(str(exc))
                continue
            if not isinstance(metadata, dict):
                tried.append(f"GET {url} did not answer a JSON object")
                continue
            if metadata.get("issuer") != self.issuer:
                raise IssuerUnavailable(
                    f"the metadata at {url} names the issuer {str(metadata.get('issuer'))[:100]!r}, not "
                    f"{self.issuer!r}; set CUSTOMERIO_MCP_OAUTH_ISSUER to exactly the issuer its tokens carry"
                )
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
                raise IssuerUnavailable(f"the metadata at {url} has no jwks_uri")
            return jwks_uri
        raise IssuerUnavailable("no authorization server metadata found: " + "; ".join(tried))
