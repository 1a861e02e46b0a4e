"""The process's one HTTP client to Customer.io, made when the first request needs it.

Making an ``httpx2.AsyncClient`` costs about 80 ms on the reference 2-core VM: importing httpcore
and h11, and loading the system's CA certificates into a TLS context. That was a seventh of the
time from start to the ``initialize`` answer, and nothing before the first call to Customer.io
needs it. So the client is made on first use, on a worker thread (the event loop keeps answering),
once: concurrent first calls wait for the same one. A dry-run server never makes it.

A client that cannot be made (``SSL_CERT_FILE`` naming no file, a malformed proxy variable, a SOCKS
proxy without its extra) fails the call that needed it with what to fix, nothing sent; the next call
tries again. Before, such a setting stopped the start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from http.cookiejar import CookieJar, DefaultCookiePolicy

import anyio
import anyio.to_thread
import httpx2

from customerio_mcp import __version__
from customerio_mcp.errors import ConfigurationError
from customerio_mcp.settings import Settings

USER_AGENT = f"customerio-mcp/{__version__} httpx2/{httpx2.__version__}"
DEFAULT_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}
"""Sent on every request by the process's HTTP client."""
POOL_WAIT_SECONDS = 2.0
"""How long a call waits for a free connection before it is refused as "overloaded locally"."""


def build_http_client(settings: Settings) -> httpx2.AsyncClient:
    """Pooled connections, explicit timeouts, a versioned User-Agent, no cookies."""
    return httpx2.AsyncClient(
        # A call waits at most POOL_WAIT_SECONDS for a free connection, then is refused (nothing sent),
        # rather than standing in a queue for its whole timeout.
        timeout=httpx2.Timeout(
            settings.timeout, connect=min(settings.timeout, 5.0), pool=min(settings.timeout, POOL_WAIT_SECONDS)
        ),
        # Every request goes to one or two hosts: keep the connections a burst opened, not just 20.
        limits=httpx2.Limits(
            max_connections=settings.max_connections, max_keepalive_connections=settings.max_connections
        ),
        headers=DEFAULT_HEADERS,
        follow_redirects=False,
        # No cookie jar: a cookie one workspace's answer set must never ride on another's request.
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )


class SharedHttpClient:
    """One ``httpx2.AsyncClient`` for every Customer.io client of the process, made on first ``get``."""

    def __init__(self, build: Callable[[], httpx2.AsyncClient]) -> None:
        self._build = build
        self._client: httpx2.AsyncClient | None = None
        self._making = anyio.Lock()

    @classmethod
    def of(cls, client: httpx2.AsyncClient) -> SharedHttpClient:
        """A client made already (tests, benchmarks): ``get`` returns it."""
        shared = cls(lambda: client)
        shared._client = client
        return shared

    async def get(self) -> httpx2.AsyncClient:
        if self._client is not None:
            return self._client
        async with self._making:
            if self._client is None:
                try:
                    self._client = await anyio.to_thread.run_sync(self._build)
                except Exception as error:  # whatever it is, nothing was sent: say so, and what to look at
                    raise ConfigurationError(
                        f"The HTTP client to Customer.io could not be set up ({type(error).__name__}: {error}). "
                        "Check SSL_CERT_FILE and SSL_CERT_DIR (they must name existing CA certificates) and the "
                        "proxy variables (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY). Nothing was sent."
                    ) from None
        return self._client

    async def aclose(self) -> None:
        async with self._making:  # a client being made now is closed too, once made
            if self._client is not None:
                await self._client.aclose()


@asynccontextmanager
async def open_http_client(settings: Settings) -> AsyncIterator[SharedHttpClient]:
    """The process's HTTP client, closed (if it was ever made) on exit."""
    shared = SharedHttpClient(partial(build_http_client, settings))
    try:
        yield shared
    finally:
        await shared.aclose()
