"""The one async client the server talks to Customer.io with: auth, region, pacing, then delivery.

Each prepared ``ApiRequest`` gets its credentials and its region's base URL here, waits for the
API's pacer, and is handed to ``delivery.deliver``, which attempts it within the retry policy and
deadline without ever duplicating data. Answers that are errors become exceptions from
``error_mapping`` that say what to fix.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import anyio
import httpx2

from customerio_mcp.customerio.api import (
    APIS,
    REGION_LOOKUP_PATH,
    REGION_URLS,
    Api,
    ApiRequest,
    ApiResponse,
    Endpoints,
    Region,
)
from customerio_mcp.customerio.delivery import RetryPolicy, Undelivered, deliver
from customerio_mcp.customerio.error_mapping import (
    MAX_ERROR_TEXT,
    partial_failure,
    status_error,
    undelivered_error,
)
from customerio_mcp.customerio.http_client import DEFAULT_HEADERS, SharedHttpClient
from customerio_mcp.customerio.pacing import Pacing
from customerio_mcp.customerio.workspace import Workspace
from customerio_mcp.errors import ConfigurationError, DeliveryError
from customerio_mcp.settings import Settings
from customerio_mcp.text_safety import clip, redact, secret_texts, shown_url

logger = logging.getLogger(__name__)


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_retries=settings.max_retries, deadline=settings.retry_deadline, attempt_timeout=settings.timeout
    )


def _decode_body(response: httpx2.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text[:MAX_ERROR_TEXT]


def _request_headers(request: ApiRequest, authorization: str) -> dict[str, str]:
    """The headers one request adds to the client's defaults."""
    headers = {"Authorization": authorization, **request.headers}
    if request.body is not None:
        headers["Content-Type"] = "application/json"
    return headers


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


AUTH_SCHEMES: Mapping[Api, str] = {"track": "Basic", "pipelines": "Basic", "app": "Bearer"}
"""Track and Pipelines take Basic auth; the App API a bearer key."""


class CustomerIOClient:
    """Sends prepared requests to the Track, Pipelines or App API of one workspace's region.

    The workspace (keys and region) is the environment's unless one is given: with
    ``CUSTOMERIO_CREDENTIALS_FROM=request`` there is one client per workspace, all sharing the
    process's HTTP client and ``pacing``, and nothing else.
    """

    def __init__(
        self,
        settings: Settings,
        http: SharedHttpClient,
        retry: RetryPolicy | None = None,
        region_urls: Mapping[Region, Endpoints] = REGION_URLS,
        *,
        workspace: Workspace | None = None,
        pacing: Pacing | None = None,
    ) -> None:
        self._workspace = workspace or Workspace.from_settings(settings)
        self._settings = self._workspace.applied_to(settings)
        self._http = http
        self._retry = retry or retry_policy(settings)
        self._region_urls = region_urls
        self._detected: Region | None = None
        self._authorization: dict[Api, str] = {}
        pacing = pacing or Pacing(settings.rate_limit)
        self._pacers = {api: pacing.pacer(api, self._workspace.budget_key(api)) for api in APIS}
        self._region_lock = anyio.Lock()

    @property
    def workspace(self) -> Workspace:
        return self._workspace

    # -- credentials -------------------------------------------------------------------------

    def authorization(self, api: Api) -> str:
        """The Authorization header value for ``api``; raises ConfigurationError when unset."""
        cached = self._authorization.get(api)
        if cached is None:
            cached = self._authorization[api] = self._build_authorization(api)
        return cached

    def secrets(self) -> tuple[str, ...]:
        """Every form a credential of this client can take on the wire: never let one back out."""
        s = self._settings
        raw = [key.get_secret_value() for key in (s.api_key, s.pipelines_api_key, s.app_api_key) if key is not None]
        if s.site_id and s.api_key is not None:
            raw.append(f"{s.site_id}:{s.api_key.get_secret_value()}")
        for api, header in self._authorization.items():
            raw += [header, header.removeprefix(AUTH_SCHEMES[api] + " ")]
        return secret_texts(raw)

    def missing_credentials(self, api: Api) -> list[str]:
        """The variables a real call to ``api`` still needs; empty when it could be sent (dry run says so)."""
        try:
            self.authorization(api)
        except ConfigurationError as error:
            return list(error.details.get("missing", []))
        return []

    def _build_authorization(self, api: Api) -> str:
        w = self._workspace
        names = w.names
        if api == "track":
            missing = w.missing_track_credentials()
            if missing:
                raise ConfigurationError(
                    f"The Track API credentials are not configured: set {' and '.join(missing)} {names.where} "
                    f"(Customer.io > Settings > API Credentials > Track API keys){names.then}. Nothing was sent.",
                    missing=missing,
                )
            return _basic(str(w.site_id), w.api_key.get_secret_value() if w.api_key else "")
        if api == "app":
            if w.app_api_key is None:
                raise ConfigurationError(
                    f"The App API key is not configured: set {names.app_api_key} {names.where} (Customer.io > "
                    "Settings > API Credentials > App API keys; a read-only service-account token works)"
                    f"{names.then}. Nothing was sent.",
                    missing=[names.app_api_key],
                )
            return "Bearer " + w.app_api_key.get_secret_value()
        key = w.pipelines_api_key  # never the Track key: Customer.io issues Data Pipelines its own
        if key is None:
            raise ConfigurationError(
                f"The Data Pipelines API key is not configured: set {names.pipelines_api_key} {names.where} (the "
                f"API key of an HTTP API source in Customer.io > Data Pipelines){names.then}. Nothing was sent.",
                missing=[names.pipelines_api_key],
            )
        return _basic(key.get_secret_value(), "")

    # -- region --------------------------------------------------------------------------------

    def explicit_base(self, api: Api) -> str | None:
        url: str | None = getattr(self._settings, f"{api}_url")  # track_url, pipelines_url, app_url
        return url

    def configured_base(self, api: Api) -> tuple[str, str] | None:
        """Base URL and region label known without asking Customer.io, or None when a lookup decides."""
        explicit = self.explicit_base(api)
        configured = self._workspace.region
        if explicit is not None:
            return explicit, ("custom" if configured == "auto" else configured)
        if configured != "auto":
            return self._region_urls[configured].for_api(api), configured
        return None

    def lookup_base(self) -> str:
        """Where the region lookup goes: the explicit Track URL, or the US endpoint (it answers for all)."""
        return self._settings.track_url or self._region_urls["us"].track

    async def base_url(self, request: ApiRequest) -> tuple[str, str]:
        """The base URL for ``request`` and the region label reported in results."""
        known = self.configured_base(request.api)
        if known is not None:
            return known
        region = await self.detect_region(request)
        return self._region_urls[region].for_api(request.api), region

    async def detect_region(self, request: ApiRequest) -> Region:
        """Ask Customer.io once which region the account is in; concurrent callers share the answer.

        A failed lookup is not cached, so the next call tries again. Its error names ``request`` as
        not sent, rather than the lookup's own endpoint as if that had been the call.
        """
        if self._detected is not None:
            return self._detected
        async with self._region_lock:
            if self._detected is not None:
                return self._detected
            if request.api != "track" and self._workspace.missing_track_credentials():
                logger.info("no Track credentials for the region lookup; %s API calls use the US region", request.api)
                return "us"
            answer = await self.lookup_region(lookup_for=request)
            if answer.region not in self._region_urls:
                raise DeliveryError(
                    f"The region lookup answered an unknown region {answer.region!r}; set "
                    f"{self._workspace.names.region} to us or eu.",
                    status=answer.status,
                )
            self._detected = answer.region  # type: ignore[assignment]
            logger.info("Customer.io account region: %s", answer.region)
            return self._detected  # type: ignore[return-value]

    async def lookup_region(self, lookup_for: ApiRequest | None = None) -> ApiResponse:
        """``GET /api/v1/accounts/region`` against the explicit Track URL or the US endpoint.

        The US endpoint answers for accounts in every region; the response's ``region`` is reported.
        ``lookup_for``: the call waiting for the answer, which a failure names.
        """
        answer = await self._send_to(
            ApiRequest("track", "GET", REGION_LOOKUP_PATH, replay_safe=True),
            self.lookup_base(),
            "",
            lookup_for=lookup_for,
        )
        body = answer.body if isinstance(answer.body, dict) else {}
        return replace(answer, region=str(body.get("region", "")).lower())

    # -- sending -------------------------------------------------------------------------------

    async def send(self, request: ApiRequest) -> ApiResponse:
        if request.api == "track" and request.path == REGION_LOOKUP_PATH:
            return await self.lookup_region()
        self.authorization(request.api)  # fail before any network call, region lookup included
        base, region = await self.base_url(request)
        return await self._send_to(request, base, region)

    async def _send_to(
        self, request: ApiRequest, base: str, region: str, lookup_for: ApiRequest | None = None
    ) -> ApiResponse:
        content = request.content
        if content is None and request.body is not None:
            content = json.dumps(request.body, separators=(",", ":"), ensure_ascii=False).encode()
        http = await self._http.get()
        prepared = http.build_request(
            request.method,
            base + request.path,
            params=dict(request.query) if request.query else None,
            headers=_request_headers(request, self.authorization(request.api)),
            content=content,
        )
        try:
            response, attempts, maybe_applied = await deliver(
                http,
                prepared,
                policy=self._retry,
                pacer=self._pacers[request.api],
                replay_safe=request.replay_safe,
            )
        except Undelivered as undelivered:
            failure = undelivered.last
            for_call = f" (the region lookup for {lookup_for.method} {lookup_for.path})" if lookup_for else ""
            logger.warning(
                "%s %s%s failed after %d attempt(s): %s", request.method, clip(base + request.path, 200),
                clip(for_call, 200), undelivered.attempts, failure.describe(),
            )  # fmt: skip
            if failure.response is not None:
                body = redact(_decode_body(failure.response), self.secrets())
                raise status_error(
                    self._settings,
                    failure.response.status_code,
                    body,
                    request,
                    undelivered.attempts,
                    lookup_for,
                    maybe_applied=undelivered.maybe_applied,
                ) from None
            raise undelivered_error(self._settings, request, undelivered, lookup_for) from None
        body = _decode_body(response)
        if response.status_code >= 400:
            body = redact(body, self.secrets())
            raise status_error(
                self._settings, response.status_code, body, request, attempts, lookup_for, maybe_applied=maybe_applied
            )
        if response.status_code == 207 and isinstance(body, dict) and body.get("errors"):
            raise partial_failure(body, attempts)
        return ApiResponse(response.status_code, body, attempts, region, str(prepared.url))

    # -- dry run -----------------------------------------------------------------------------------

    def preview(self, request: ApiRequest) -> dict[str, Any]:
        """The request as it would be sent, with no network call, no region lookup, no secret."""
        known = self.configured_base(request.api)
        base, region = known or (
            self._region_urls["us"].for_api(request.api),
            "us (CUSTOMERIO_REGION=auto: a real call first asks Customer.io for the account's region)",
        )
        if request.api == "track" and request.path == REGION_LOOKUP_PATH:
            base = self.lookup_base()
        url = httpx2.URL(base + request.path, params=dict(request.query) if request.query else None)
        headers = {**DEFAULT_HEADERS, **_request_headers(request, f"{AUTH_SCHEMES[request.api]} [redacted]")}
        shown = redact(shown_url(str(url), keep_query=True), self.secrets())  # a key in a base URL: redacted
        return {"method": request.method, "url": shown, "headers": headers, "body": request.body, "region": region}
