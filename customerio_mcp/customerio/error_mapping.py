"""How Customer.io's error answers read to a model: which variable to check, what to fix, what to retry.

Each function returns an exception from ``errors``; the client raises it. Customer.io's own words
(``meta.error`` and its variants) are quoted, truncated, never a stack trace or a header. Every
error after which Customer.io may have applied the request says so (``maybe_applied``); how to
repeat it safely depends on the keys the body carries, which the tools layer adds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from customerio_mcp.customerio.workspace import names_for
from customerio_mcp.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PartialFailureError,
    RateLimitedError,
    ServerError,
    TransportError,
)

if TYPE_CHECKING:
    from customerio_mcp.customerio.api import Api, ApiRequest
    from customerio_mcp.customerio.delivery import Undelivered
    from customerio_mcp.settings import Settings

MAX_ERROR_TEXT = 2_000
ALLOWED_RATE: dict[Api, int] = {"track": 1000, "pipelines": 1000, "app": 10}
"""Requests per second Customer.io allows per workspace, as its current descriptions state (Track 1,000 per
second, Data Pipelines 3,000 per 3 seconds); its App API answers 429 beyond 10."""
MAYBE_APPLIED = " Customer.io may or may not have applied it."
NOT_APPLIED = " Customer.io did not apply it."
_UNDELIVERED = {
    "overloaded": (
        "is overloaded locally: every connection in its pool to Customer.io stayed busy, so the request "
        "never left this process"
    ),
    "deadline": "ran out of time (CUSTOMERIO_RETRY_DEADLINE) before it could send the request again",
    "timeout": "sent the request but got no answer in time (CUSTOMERIO_TIMEOUT / CUSTOMERIO_RETRY_DEADLINE)",
    "lost": "lost the connection to Customer.io after sending the request",
}
_UNDELIVERED_FIX = {
    "overloaded": "Retry in a few seconds, or send fewer calls at once.",
    "deadline": "Try again later, or raise CUSTOMERIO_RETRY_DEADLINE.",
    "timeout": "Try again later.",
    "lost": "Try again later.",
}
API_NAMES = {"track": "Track API", "pipelines": "Data Pipelines API", "app": "App API"}
URL_SETTINGS = {"track": "CUSTOMERIO_TRACK_URL", "pipelines": "CUSTOMERIO_PIPELINES_URL", "app": "CUSTOMERIO_APP_URL"}
"""The setting that overrides each API's base URL, named when a connection to it fails."""


def _where(request: ApiRequest, lookup_for: ApiRequest | None) -> str:
    """How an error names what failed: the request itself, or the region lookup a call waited for."""
    return "the region lookup at the Track API" if lookup_for is not None else f"{request.method} {request.path}"


def _not_sent(settings: Settings, lookup_for: ApiRequest | None) -> str:
    """What an error about the region lookup adds: the call that waited was not sent, and how to skip the lookup.

    A call whose base URL waits for the lookup (``CUSTOMERIO_REGION=auto``) is named, so that a
    Pipelines call is never blamed on the Track API's endpoint.
    """
    if lookup_for is None:
        return ""
    region = names_for(settings.credentials_from).region_is("us")
    return (
        f" The {API_NAMES[lookup_for.api]} call {lookup_for.method} {lookup_for.path} was not sent; to skip the "
        f"region lookup, set {region} or eu."
    )


def status_error(
    settings: Settings,
    status: int,
    body: Any,
    request: ApiRequest,
    attempts: int,
    lookup_for: ApiRequest | None = None,
    *,
    maybe_applied: bool = False,
) -> APIError:
    said = customerio_said(body)
    where = _where(request, lookup_for)
    maybe_applied = maybe_applied and lookup_for is None  # the lookup only reads; the call itself was not sent
    common: dict[str, Any] = {"status": status, "body": body, "attempts": attempts, "maybe_applied": maybe_applied}
    applied = MAYBE_APPLIED if maybe_applied else ""
    tail = _not_sent(settings, lookup_for)
    if status in (400, 422):
        return BadRequestError(
            f"Customer.io rejected {where} with {status}: {said or 'no reason given'}. Fix the request to "
            "match the endpoint (call the tool with mode='get_request_schema' to see the body schema) "
            f"and try again.{tail}",
            **common,
        )
    if status in (401, 403):
        return AuthenticationError(_auth_hint(settings, request.api, status, where) + tail, **common)
    if status == 404:
        return NotFoundError(
            f"Customer.io answered 404 Not Found for {where}{': ' + said if said else ''}. Check the "
            f"identifiers in the path (the person, segment, device or delivery must exist).{tail}",
            **common,
        )
    if status == 429:
        return RateLimitedError(
            f"Customer.io is rate limiting {where} (429) after {attempts} attempts. Wait a minute and "
            f"try again, or send fewer requests (Customer.io allows about {ALLOWED_RATE[request.api]:,} requests per "
            f"second).{tail}",
            **common,
        )
    if status >= 500 or status == 408:
        return ServerError(
            f"Customer.io failed {where} with {status} after {attempts} attempt"
            f"{'s' if attempts != 1 else ''}{': ' + said.rstrip('.') if said else ''}.{applied or NOT_APPLIED}{tail}",
            **common,
        )
    return APIError(f"Customer.io answered {status} for {where}{': ' + said if said else ''}.{tail}", **common)


def undelivered_error(
    settings: Settings, request: ApiRequest, undelivered: Undelivered, lookup_for: ApiRequest | None = None
) -> TransportError:
    """No HTTP answer worth quoting: no connection (DNS, TLS, refused...), overloaded locally, out of time,
    timed out, or dropped. ``reason`` is the connection failure's (``dns``, ``tls``...) or else the kind."""
    failure = undelivered.last
    attempts = undelivered.attempts
    tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else "before any attempt"
    connect = failure.connect
    if connect is not None:
        what = f"{connect.explained()}, {tries}"
        url_setting = URL_SETTINGS[request.api]
        fix = connect.fix()
        fix = f"{fix[0].upper()}{fix[1:]} ({url_setting}, {names_for(settings.credentials_from).region})"
    else:
        what = f"the server {_UNDELIVERED[failure.kind]} ({failure.describe()}) {tries}"
        fix = _UNDELIVERED_FIX[failure.kind].removesuffix(".")
    maybe_applied = undelivered.maybe_applied and lookup_for is None
    if lookup_for is not None:
        message = (
            f"The {API_NAMES[lookup_for.api]} call {lookup_for.method} {lookup_for.path} was not sent: its base URL "
            f"depends on the account's region, and looking that up at the Track API failed: {what}. {fix}, or set "
            f"{names_for(settings.credentials_from).region_is('us')} or eu to skip the region lookup."
        )
    elif connect is not None:
        message = (
            f"The server could not connect to Customer.io: {what}: {request.method} {request.path}.{NOT_APPLIED} "
            f"{fix}, then try again."
        )
    else:
        applied = MAYBE_APPLIED if maybe_applied else NOT_APPLIED
        message = f"{what[0].upper()}{what[1:]}: {request.method} {request.path}.{applied} {fix}."
    return TransportError(
        message,
        reason=connect.reason if connect is not None else failure.kind,
        attempts=attempts,
        maybe_applied=maybe_applied,
    )


def _auth_hint(settings: Settings, api: Api, status: int, where: str) -> str:
    names = names_for(settings.credentials_from)
    region = settings.region
    region_hint = (
        f"the region lookup decided the URL; set {names.region_is('us')} or eu to force it"
        if region == "auto"
        else f"{names.region_is(region)}: an account in the other region answers {status} here"
    )
    if api == "app":
        return (
            f"Customer.io refused the App API key ({status}) for {where}. Check {names.app_api_key} (an App API "
            f"key or a service-account token, from Settings > API Credentials > App API keys, allowed to read "
            f"people and objects) and the region ({region_hint})."
        )
    if api == "track":
        return (
            f"Customer.io refused the Track API credentials ({status}) for {where}. Check "
            f"{names.site_id} and {names.api_key} (a Track API key, from Settings > API Credentials) "
            f"and the region ({region_hint})."
        )
    return (
        f"Customer.io refused the Data Pipelines API key ({status}) for {where}. Check "
        f"{names.pipelines_api_key} (the API key of your HTTP API source) and the region ({region_hint})."
    )


def customerio_said(body: Any) -> str:
    """Customer.io's own error text, without a closing period: every message that quotes it ends the sentence."""
    return _said(body).rstrip().rstrip(".")


def _said(body: Any) -> str:
    """Customer.io's own error text: ``meta.error``, ``meta.errors``, ``errors[]`` or a plain string."""
    if isinstance(body, str):
        return body.strip()[:MAX_ERROR_TEXT]
    if not isinstance(body, dict):
        return ""
    meta = body.get("meta")
    if isinstance(meta, dict):
        if meta.get("error"):
            return str(meta["error"])[:MAX_ERROR_TEXT]
        if meta.get("errors"):
            return "; ".join(map(str, meta["errors"]))[:MAX_ERROR_TEXT]
    for key in ("error", "message", "errors"):
        if body.get(key):
            value = body[key]
            return ("; ".join(map(str, value)) if isinstance(value, list) else str(value))[:MAX_ERROR_TEXT]
    return ""


def partial_failure(body: dict[str, Any], attempts: int) -> PartialFailureError:
    errors = [e for e in body["errors"] if isinstance(e, dict)]
    lines = []
    for item in errors:
        index = item.get("batch_index", "?")
        field_name = f" field `{item['field']}`" if item.get("field") else ""
        reason = item.get("reason") or "rejected"
        detail = f": {item['message']}" if item.get("message") else ""
        lines.append(f"- batch[{index}]{field_name}: {reason}{detail}")
    failed = {e.get("batch_index") for e in errors}
    count = len(failed)
    message = (
        f"Customer.io accepted the batch only in part (207): {count} operation{'s' if count != 1 else ''} failed and "
        "every other operation was applied.\n" + "\n".join(lines) + "\nFix only the failed operations and send "
        "them again; resending the whole batch would repeat the ones already applied."
    )
    return PartialFailureError(
        message,
        status=207,
        body=body,
        attempts=attempts,
        failed_indexes=sorted(failed, key=lambda i: (0, i, "") if isinstance(i, int) else (1, 0, str(i))),
    )
