"""One client per workspace, for a server that takes each request's keys (``CUSTOMERIO_CREDENTIALS_FROM=request``).

A client holds what one workspace learned (its region answer, its cached Authorization values)
and its pacers, so that nothing of one workspace reaches another's call. Every client shares
the process's one HTTP client (its connection pool; it keeps no cookies) and the process's
``Pacing``. The cache is bounded and forgets a client ``CLIENT_TTL_SECONDS`` after creating it,
so that a region answer is asked again now and then and a key nobody uses leaves memory; it is
keyed by a hash of the credentials, never the credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from cachetools import TTLCache

from customerio_mcp.customerio.api import REGION_URLS, Endpoints, Region
from customerio_mcp.customerio.client import CustomerIOClient, RetryPolicy
from customerio_mcp.customerio.http_client import SharedHttpClient
from customerio_mcp.customerio.pacing import Pacing
from customerio_mcp.customerio.workspace import HEADER_NAMES, RegionChoice, Workspace
from customerio_mcp.settings import Settings

logger = logging.getLogger(__name__)

CLIENT_CACHE_SIZE = 1024
CLIENT_TTL_SECONDS = 900.0


def keyless_workspace(settings: Settings) -> Workspace:
    """The workspace of a request that carries no keys; says once that the environment's keys are ignored."""
    ignored = [
        name
        for name, value in (
            ("CUSTOMERIO_SITE_ID", settings.site_id),
            ("CUSTOMERIO_API_KEY", settings.api_key),
            ("CUSTOMERIO_PIPELINES_API_KEY", settings.pipelines_api_key),
            ("CUSTOMERIO_APP_API_KEY", settings.app_api_key),
        )
        if value
    ]
    if ignored:
        logger.warning(
            "CUSTOMERIO_CREDENTIALS_FROM=request: %s set in the environment %s ignored; every request brings its "
            "own keys in X-Customerio-* headers",
            ", ".join(ignored),
            "is" if len(ignored) == 1 else "are",
        )
    return Workspace(region=settings.region, names=HEADER_NAMES)


class WorkspaceClients:
    """A bounded, expiring cache of ``CustomerIOClient``, one per workspace fingerprint."""

    def __init__(
        self,
        settings: Settings,
        http: SharedHttpClient,
        pacing: Pacing,
        retry: RetryPolicy | None = None,
        region_urls: Mapping[Region, Endpoints] = REGION_URLS,
        *,
        size: int = CLIENT_CACHE_SIZE,
        ttl: float = CLIENT_TTL_SECONDS,
    ) -> None:
        self._settings = settings
        self._http = http
        self._pacing = pacing
        self._retry = retry
        self._region_urls = region_urls
        self._clients: TTLCache[str, CustomerIOClient] = TTLCache(size, ttl)

    @property
    def default_region(self) -> RegionChoice:
        """The region of a workspace whose requests name none: ``CUSTOMERIO_REGION``."""
        return self._settings.region

    def client_for(self, workspace: Workspace) -> CustomerIOClient:
        key = workspace.fingerprint
        client = self._clients.get(key)
        if client is None:
            client = CustomerIOClient(
                self._settings, self._http, self._retry, self._region_urls, workspace=workspace, pacing=self._pacing
            )
            self._clients[key] = client
            logger.debug("new client for workspace %s… (%d cached)", key[:8], len(self._clients))
        return client

    def __len__(self) -> int:
        return len(self._clients)
