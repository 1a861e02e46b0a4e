"""The one async client the server talks to Customer.io with: auth, region, retries, error mapping.

Retries never duplicate data. A request is *replay-safe* when sending it twice changes nothing
more than sending it once: idempotent endpoints (PUT, DELETE, suppress, segment membership) and
calls whose body carries a deduplication key (event ``id``, Pipelines ``messageId``), which the
tool runner adds before the first attempt so that every attempt sends the same bytes. Any other
request is retried only when Customer.io cannot have processed it (429, or a connection that
was never established); otherwise the error says the call may or may not have been applied.
"""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import anyio
import httpx2
import stamina

from customerio_mcp import __version__
from customerio_mcp.customerio.api import (
    REGION_LOOKUP_PATH,
    REGION_URLS,
    Api,
    ApiRequest,
    ApiResponse,
    Endpoints,
    Region,
)
from customerio_mcp.customerio.error_mapping import MAX_ERROR_TEXT, MAYBE_APPLIED, during, partial_failure, status_error
from customerio_mcp.customerio.pacing import Pacing
from customerio_mcp.customerio.workspace import Workspace
from customerio_mcp.errors import ConfigurationError, DeliveryError, TransportError
from customerio_mcp.settings import Settings

logger = logging.getLogger(__name__)

USER_AGENT = f"customerio-mcp/{__version__} httpx2/{httpx2.__version__}"
DEFAULT_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}
"""Sent on every request by the process's HTTP client (see ``serving.mcp_server.open_http_client``)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Waits are exponential with jitter unless Customer.io says Retry-After."""

    max_retries: int = 3
    deadline: float = 60.0
    wait_initial: float = 0.2
    wait_max: float = 8.0
    wait_jitter: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(max_retries=settings.max_retries, deadline=settings.retry_deadline)


class _RetryableFailure(Exception):
    """One failed attempt that a retry might cure; never leaves this module."""

    def __init__(
        self, *, unprocessed: bool, response: httpx2.Response | None = None, cause: Exception | None = None
    ) -> None:
        super().__init__("retryable failure")
        self.unprocessed = unprocessed
        self.response = response
        self.cause = cause


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


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


class CustomerIOClient:
    """Sends prepared requests to the Track or Pipelines API of one workspace's region.

    The workspace (keys and region) is the environment's unless one is given: with
    ``CUSTOMERIO_CREDENTIALS_FROM=request`` there is one client per workspace, all sharing the
    process's HTTP client and ``pacing``, and nothing else.
    """

    def __init__(
        self,
        settings: Settings,
        http: httpx2.AsyncClient,
        retry: RetryPolicy | None = None,
        region_urls: Mapping[Region, Endpoints] = REGION_URLS,
        *,
        workspace: Workspace | None = None,
        pacing: Pacing | None = None,
    ) -> None:
        self._workspace = workspace or Workspace.from_settings(settings)
        self._settings = self._workspace.applied_to(settings)
        self._http = http
        self._retry = retry or RetryPolicy.from_settings(settings)
        self._region_urls = region_urls
        self._detected: Region | None = None
        self._authorization: dict[Api, str] = {}
        pacing = pacing or Pacing(settings.rate_limit)
        self._pacers = {api: pacing.pacer(api, self._workspace.budget_key(api)) for api in ("track", "pipelines")}
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
        key = w.effective_pipelines_key
        if key is None:
            raise ConfigurationError(
                f"The Data Pipelines API key is not configured: set {names.pipelines_api_key} {names.where} (the "
                f"API key of an HTTP API source in Customer.io > Data Pipelines){names.then}. Nothing was sent.",
                missing=[names.pipelines_api_key],
            )
        return _basic(key.get_secret_value(), "")

    # -- region --------------------------------------------------------------------------------

    def explicit_base(self, api: Api) -> str | None:
        return self._settings.track_url if api == "track" else self._settings.pipelines_url

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

    async def base_url(self, api: Api) -> tuple[str, str]:
        """The base URL for ``api`` and the region label reported in results."""
        known = self.configured_base(api)
        if known is not None:
            return known
        region = await self.detect_region(api)
        return self._region_urls[region].for_api(api), region

    async def detect_region(self, api: Api) -> Region:
        """Ask Customer.io once which region the account is in; concurrent callers share the answer.

        A failed lookup is not cached, so the next call tries again.
        """
        if self._detected is not None:
            return self._detected
        async with self._region_lock:
            if self._detected is not None:
                return self._detected
            if api == "pipelines" and self._workspace.missing_track_credentials():
                logger.info("no Track credentials for the region lookup; Pipelines calls use the US region")
                return "us"
            answer = await self.lookup_region()
            if answer.region not in self._region_urls:
                raise DeliveryError(
                    f"The region lookup answered an unknown region {answer.region!r}; set "
                    f"{self._workspace.names.region} to us or eu.",
                    status=answer.status,
                )
            self._detected = answer.region  # type: ignore[assignment]
            logger.info("Customer.io account region: %s", answer.region)
            return self._detected  # type: ignore[return-value]

    async def lookup_region(self) -> ApiResponse:
        """``GET /api/v1/accounts/region`` against the explicit Track URL or the US endpoint.

        The US endpoint answers for accounts in every region; the response's ``region`` is reported.
        """
        answer = await self._send_to(
            ApiRequest("track", "GET", REGION_LOOKUP_PATH, replay_safe=True),
            self.lookup_base(),
            "",
            context="region lookup",
        )
        body = answer.body if isinstance(answer.body, dict) else {}
        return replace(answer, region=str(body.get("region", "")).lower())

    # -- sending -------------------------------------------------------------------------------

    async def send(self, request: ApiRequest) -> ApiResponse:
        if request.api == "track" and request.path == REGION_LOOKUP_PATH:
            return await self.lookup_region()
        self.authorization(request.api)  # fail before any network call, region lookup included
        base, region = await self.base_url(request.api)
        return await self._send_to(request, base, region)

    async def _send_to(self, request: ApiRequest, base: str, region: str, context: str | None = None) -> ApiResponse:
        url = base + request.path
        headers = _request_headers(request, self.authorization(request.api))
        content = None
        if request.body is not None:
            content = json.dumps(request.body, separators=(",", ":"), ensure_ascii=False).encode()
        policy = self._retry
        started = anyio.current_time()
        attempts = 1

        def retry_decision(exc: Exception) -> bool | float:
            if not isinstance(exc, _RetryableFailure):
                return False
            if not (request.replay_safe or exc.unprocessed):
                return False
            wait = parse_retry_after(exc.response.headers.get("Retry-After")) if exc.response is not None else None
            if wait is None:
                return True
            remaining = policy.deadline - (anyio.current_time() - started)
            return wait if wait < remaining else False

        # The first attempt runs outside stamina: setting up a retry context costs more than a fast
        # answer from Customer.io (see benchmarks/), and nearly every call succeeds first time.
        try:
            response = await self._attempt(request, url, headers, content, attempts)
        except _RetryableFailure as first_failure:
            if policy.max_retries == 0 or retry_decision(first_failure) is False:
                raise self._final_error(first_failure, request, attempts, context) from first_failure.cause
            replay: _RetryableFailure | None = first_failure
            try:
                async for attempt in stamina.retry_context(
                    on=retry_decision,
                    attempts=policy.max_retries + 1,
                    timeout=max(0.001, policy.deadline - (anyio.current_time() - started)),
                    wait_initial=policy.wait_initial,
                    wait_max=policy.wait_max,
                    wait_jitter=policy.wait_jitter,
                ):
                    with attempt:
                        if replay is not None:
                            # Hand stamina the first attempt's failure, so that it schedules the
                            # first wait (Retry-After or backoff) and counts the attempt.
                            failure, replay = replay, None
                            raise failure
                        attempts += 1
                        response = await self._attempt(request, url, headers, content, attempts)
            except _RetryableFailure as failure:
                raise self._final_error(failure, request, attempts, context) from failure.cause
        body = _decode_body(response)
        if response.status_code >= 400:
            raise status_error(self._settings, response.status_code, body, request, attempts, context)
        if response.status_code == 207 and isinstance(body, dict) and body.get("errors"):
            raise partial_failure(body, attempts)
        return ApiResponse(response.status_code, body, attempts, region, url)

    async def _attempt(
        self, request: ApiRequest, url: str, headers: dict[str, str], content: bytes | None, number: int
    ) -> httpx2.Response:
        method, query = request.method, request.query
        pacer = self._pacers[request.api]
        if pacer is not None:
            await pacer.acquire()  # waits while the API's request budget is spent; never refuses
        try:
            response = await self._http.request(
                method, url, params=dict(query) if query else None, headers=headers, content=content
            )
        except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout) as exc:
            logger.warning("attempt %d: %s %s could not connect (%s)", number, method, url, type(exc).__name__)
            raise _RetryableFailure(unprocessed=True, cause=exc) from exc
        except httpx2.TransportError as exc:
            logger.warning("attempt %d: %s %s failed after sending (%s)", number, method, url, type(exc).__name__)
            raise _RetryableFailure(unprocessed=False, cause=exc) from exc
        logger.debug("attempt %d: %s %s -> %d", number, method, url, response.status_code)
        if response.status_code == 429:
            raise _RetryableFailure(unprocessed=True, response=response)
        if response.status_code >= 500 or response.status_code == 408:
            raise _RetryableFailure(unprocessed=False, response=response)
        return response

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
        headers = {**DEFAULT_HEADERS, **_request_headers(request, "Basic [redacted]")}
        return {"method": request.method, "url": str(url), "headers": headers, "body": request.body, "region": region}

    # -- error mapping -------------------------------------------------------------------------

    def _final_error(
        self, failure: _RetryableFailure, request: ApiRequest, attempts: int, context: str | None
    ) -> DeliveryError:
        maybe = "" if (request.replay_safe or failure.unprocessed) else MAYBE_APPLIED
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        if failure.response is None:
            cause = type(failure.cause).__name__ if failure.cause else "connection error"
            what = "could not connect to" if failure.unprocessed else "lost the connection to"
            return TransportError(
                f"The server {what} Customer.io ({cause}) {tries}{during(context)}.{maybe} Check the network "
                "and the base URL settings (CUSTOMERIO_TRACK_URL / CUSTOMERIO_PIPELINES_URL / CUSTOMERIO_REGION), "
                "then try again.",
                attempts=attempts,
                maybe_applied=bool(maybe),
            )
        return status_error(
            self._settings,
            failure.response.status_code,
            _decode_body(failure.response),
            request,
            attempts,
            context,
            maybe,
        )
