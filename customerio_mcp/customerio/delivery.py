"""One request to Customer.io, attempted until it succeeds, fails for good, or its deadline passes.

Retries never duplicate data. Each failed attempt is classified by what Customer.io can have done
with it: nothing (the connection was refused, the local pool had no connection free, a 429, the
deadline came before sending) or maybe everything (the connection dropped after sending, a timeout
while waiting for the answer, a 5xx). A request that is *replay-safe* (idempotent, or deduplicated
by the keys it carries) is retried after either kind; any other request only after the first kind.
When the last attempt fails, ``Undelivered`` says whether *any* attempt may have been applied.

``RetryPolicy.deadline`` bounds the whole call, last attempt included: the wait for the pacer, each
backoff and each attempt are cut to the time left, so a 5 s deadline ends in about 5 s, not 7 or 65.
stamina drives the loop (attempt count, instrumentation); the waits are computed here because
stamina's own time limit does not count the wait it is about to sleep.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from dataclasses import dataclass
from functools import cache
from typing import Literal, Protocol

import anyio
import httpx2

from customerio_mcp.customerio.network_failures import ConnectFailure, connect_failure
from customerio_mcp.text_safety import clip

logger = logging.getLogger(__name__)

MIN_ATTEMPT_SECONDS = 0.05
"""An attempt with less time left than this is not started: it could not get an answer."""

FailureKind = Literal["connect", "overloaded", "deadline", "timeout", "lost", "status"]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Waits are exponential with jitter unless Customer.io says Retry-After."""

    max_retries: int = 3
    deadline: float = 60.0
    attempt_timeout: float = 10.0
    """Used when the request carries no timeout of its own (the HTTP client's usually sets one)."""
    wait_initial: float = 0.2
    wait_max: float = 8.0
    wait_jitter: float = 1.0

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1-based): exponential, capped, with jitter."""
        return min(self.wait_max, self.wait_initial * 2 ** (retry - 1)) + random.uniform(0, self.wait_jitter)  # noqa: S311


class Pacer(Protocol):
    async def acquire(self) -> None:
        """Wait until one more request may be sent; never refuses."""
        ...


@dataclass(frozen=True)
class Failure:
    """One failed attempt."""

    kind: FailureKind
    unprocessed: bool
    """True when Customer.io cannot have processed this attempt."""
    response: httpx2.Response | None = None
    cause: Exception | None = None
    connect: ConnectFailure | None = None
    """Why no connection was made (kind ``connect``): DNS, TLS, refused, timeout, with the host."""

    def describe(self) -> str:
        if self.response is not None:
            return f"HTTP {self.response.status_code}"
        if self.connect is not None:
            return self.connect.explained()
        return type(self.cause).__name__ if self.cause is not None else self.kind


class Undelivered(Exception):
    """Every attempt failed, or the last one failed in a way no retry cures."""

    def __init__(self, last: Failure, attempts: int, maybe_applied: bool) -> None:
        super().__init__(last.describe())
        self.last = last
        self.attempts = attempts
        self.maybe_applied = maybe_applied
        """Whether any attempt may have been applied by Customer.io."""


class _AttemptFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.kind)
        self.failure = failure


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


async def deliver(
    http: httpx2.AsyncClient,
    request: httpx2.Request,
    *,
    policy: RetryPolicy,
    pacer: Pacer | None,
    replay_safe: bool,
) -> tuple[httpx2.Response, int, bool]:
    """Send ``request`` until it gets an answer worth returning.

    Returns the response, the number of attempts, and whether an earlier failed attempt may have been
    applied (an answer that is itself an error, after a dropped first attempt, must still say so).

    Raises ``Undelivered`` when it does not.
    """
    import stamina  # only a call that fails once pays for importing the retry machinery

    _quiet_stamina()

    deadline = anyio.current_time() + policy.deadline
    attempts = 0
    maybe_applied = False

    async def attempt() -> httpx2.Response:
        nonlocal attempts, maybe_applied
        try:
            response = await _attempt(http, request, deadline, policy, pacer, attempts + 1)
        except _AttemptFailed as failed:
            if failed.failure.kind != "deadline":
                attempts += 1
            maybe_applied = maybe_applied or not failed.failure.unprocessed
            raise
        attempts += 1
        return response

    def decide(exc: Exception) -> bool | float:
        """Retry (after how long), or not: never past the deadline, never a maybe-applied non-replay-safe call."""
        if not isinstance(exc, _AttemptFailed):
            return False
        failure = exc.failure
        if failure.kind == "deadline" or not (replay_safe or failure.unprocessed):
            return False
        told = parse_retry_after(failure.response.headers.get("Retry-After")) if failure.response is not None else None
        wait = told if told is not None else policy.backoff(attempts)
        left = deadline - anyio.current_time()
        if wait + MIN_ATTEMPT_SECONDS > left:
            return False
        return wait

    # The first attempt runs outside stamina: setting up a retry context costs more than a fast
    # answer from Customer.io, and nearly every call succeeds first time.
    try:
        return await attempt(), attempts, maybe_applied
    except _AttemptFailed as first:
        if policy.max_retries == 0 or decide(first) is False:
            raise Undelivered(first.failure, attempts, maybe_applied) from first.failure.cause
        replay: _AttemptFailed | None = first
    try:
        async for retry in stamina.retry_context(on=decide, attempts=policy.max_retries + 1, timeout=None):
            with retry:
                if replay is not None:
                    # Hand stamina the first failure, so that it schedules the first wait and counts it.
                    failed, replay = replay, None
                    raise failed
                return await attempt(), attempts, maybe_applied
    except _AttemptFailed as last:
        raise Undelivered(last.failure, attempts, maybe_applied) from last.failure.cause
    raise AssertionError("unreachable: stamina either returns an attempt's answer or re-raises")  # pragma: no cover


@cache
def _quiet_stamina() -> None:
    """Without stamina's own WARNING per scheduled retry: each attempt has a DEBUG line here, each failed call
    one WARNING from the client, and a retry that then succeeds is no failure."""
    import stamina.instrumentation

    stamina.instrumentation.set_on_retry_hooks([])


class _Where:
    """``METHOD url`` of a request for a log line, without its query; built only if the line is written."""

    __slots__ = ("_request",)

    def __init__(self, request: httpx2.Request) -> None:
        self._request = request

    def __str__(self) -> str:
        return f"{self._request.method} {clip(str(self._request.url.copy_with(query=None)), 200)}"


def _logged(failure: Failure, number: int, request: httpx2.Request) -> Failure:
    """One DEBUG line per failed attempt; the client writes the one WARNING when the whole call fails."""
    logger.debug("attempt %d: %s failed (%s): %s", number, _Where(request), failure.kind, failure.describe())
    return failure


async def _attempt(
    http: httpx2.AsyncClient,
    request: httpx2.Request,
    deadline: float,
    policy: RetryPolicy,
    pacer: Pacer | None,
    number: int,
) -> httpx2.Response:
    if pacer is not None:
        with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
            await pacer.acquire()  # waits while the API's request budget is spent; never refuses
    left = deadline - anyio.current_time()
    if left < MIN_ATTEMPT_SECONDS:
        raise _AttemptFailed(Failure("deadline", unprocessed=True))
    configured = request.extensions.setdefault("configured_timeout", request.extensions.get("timeout") or {})
    request.extensions["timeout"] = {
        name: left if value is None else min(value, left) for name, value in configured.items()
    } or httpx2.Timeout(min(policy.attempt_timeout, left)).as_dict()
    try:
        with anyio.fail_after(left):
            response = await http.send(request)
    except httpx2.PoolTimeout as exc:
        failure = Failure("overloaded", unprocessed=True, cause=exc)
        raise _AttemptFailed(_logged(failure, number, request)) from exc
    except (httpx2.ConnectError, httpx2.ConnectTimeout) as exc:
        failure = Failure("connect", unprocessed=True, cause=exc, connect=connect_failure(exc, request.url))
        raise _AttemptFailed(_logged(failure, number, request)) from exc
    except (httpx2.TimeoutException, TimeoutError) as exc:
        raise _AttemptFailed(_logged(Failure("timeout", unprocessed=False, cause=exc), number, request)) from exc
    except httpx2.TransportError as exc:
        raise _AttemptFailed(_logged(Failure("lost", unprocessed=False, cause=exc), number, request)) from exc
    logger.debug("attempt %d: %s -> %d", number, _Where(request), response.status_code)
    if response.status_code == 429:
        raise _AttemptFailed(Failure("status", unprocessed=True, response=response))
    if response.status_code >= 500 or response.status_code == 408:
        raise _AttemptFailed(Failure("status", unprocessed=False, response=response))
    return response
