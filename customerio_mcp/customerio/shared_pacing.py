"""The request budget shared by every replica, kept in Redis by ``limits``; per-process while Redis is away.

``limits``' moving-window strategy runs atomically in Redis as a Lua script, so no replica can
take a slot another took: never more than the rate in any trailing second, whichever replica
sends. A call over budget asks Redis when the oldest request of the window leaves it, sleeps
until then (with a little jitter, so that the waiters of every replica do not ask at once) and
tries again: paced calls wait, they are never refused.

Every Redis operation is bounded by ``REDIS_TIMEOUT_SECONDS`` of our own (``bounded``): coredis'
``connect_timeout`` and ``stream_timeout`` bound each command, but a Redis that accepts connections
and never answers makes it retry the handshake (``HELLO``) of every command ``limits`` sends, 2.6 s
in all before the first call gave up. A timed-out operation is a failure like any other: pacing
falls back to the process.

Timestamps are each replica's own clock: replicas on different machines need synchronised clocks
(NTP), as any distributed rate limit does.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import coredis
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from customerio_mcp.text_safety import shown_url

logger = logging.getLogger(__name__)
T = TypeVar("T")

REDIS_TIMEOUT_SECONDS = 0.5
"""Longest one Redis operation may take (connecting and handshake included) before it counts as a failure:
the longest a call waits on an unresponsive Redis before pacing falls back to the process."""
REDIS_RETRY_SECONDS = 5.0
"""After a failure, how long pacing stays per-process before trying Redis again."""
REDIS_KEY_PREFIX = "customerio-mcp"
LONGEST_SLEEP = 1.0
"""A waiting call asks Redis again at least this often."""
_REDIS_ERRORS = (Exception,)
"""Whatever goes wrong with Redis (refused, timed out, wrong password, an old server) falls back to the
process: shared pacing is an optimisation and must never fail a call. Cancellation still goes through."""


async def bounded(operation: Awaitable[T]) -> T:
    """``operation``, or TimeoutError once it has taken ``REDIS_TIMEOUT_SECONDS``, whatever it waits for."""
    with anyio.fail_after(REDIS_TIMEOUT_SECONDS):
        return await operation


async def ping(url: str) -> str | None:
    """None when the Redis at ``url`` answers PING, else the kind of failure (no secret in it)."""
    client = coredis.Redis.from_url(url, connect_timeout=REDIS_TIMEOUT_SECONDS, stream_timeout=REDIS_TIMEOUT_SECONDS)
    try:
        await bounded(client.ping())
    except Exception as error:  # any failure means the same to an operator: not usable
        return type(error).__name__
    finally:
        client.connection_pool.disconnect()
    return None


def redis_rate_item(rate: float) -> RateLimitItem:
    """``rate`` per second as a ``limits`` item: a whole number of requests per whole number of seconds."""
    if rate >= 1:
        return RateLimitItemPerSecond(math.floor(rate), 1)
    return RateLimitItemPerSecond(1, math.ceil(1 / rate))


class RedisBudgets:
    """The process's connection to the shared budgets in Redis, and whether Redis is usable right now."""

    def __init__(self, url: str) -> None:
        self._shown = shown_url(url)  # no password, no query
        # Our own pool, so that shutdown can close its connections (``limits`` has no close).
        self._pool = coredis.ConnectionPool.from_url(
            url, connect_timeout=REDIS_TIMEOUT_SECONDS, stream_timeout=REDIS_TIMEOUT_SECONDS
        )
        scheme = "async+redis+unix://" if url.startswith("unix://") else "async+"
        storage = RedisStorage(
            scheme + url.removeprefix("unix://"),
            wrap_exceptions=True,
            key_prefix=REDIS_KEY_PREFIX,
            connection_pool=self._pool,
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self._retry_at = 0.0
        self._unreachable = False

    @property
    def shown_url(self) -> str:
        return self._shown

    @property
    def usable(self) -> bool:
        """False for a few seconds after a failure, while calls pace in the process."""
        return time.monotonic() >= self._retry_at

    async def wait_for_room(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> None:
        """Take one request from the shared budget at ``item``'s rate, waiting while it is spent; raises on a
        Redis failure."""
        while not await bounded(self._limiter.hit(item, *identifiers)):
            stats = await bounded(self._limiter.get_window_stats(item, *identifiers))
            room_in = stats.reset_time - time.time()
            # Jitter spreads the waiters of every replica, so that they do not all ask Redis at once.
            await anyio.sleep(min(LONGEST_SLEEP, max(0.001, room_in)) + random.uniform(0, 0.005))  # noqa: S311
        if self._unreachable:
            self._unreachable = False
            logger.info("Redis at %s is reachable again: pacing is shared across replicas again", self._shown)

    def failed(self, error: BaseException) -> None:
        """Pace in this process for a while; say so once per outage."""
        self._retry_at = time.monotonic() + REDIS_RETRY_SECONDS
        if not self._unreachable:
            self._unreachable = True
            logger.warning(
                "Redis at %s cannot be reached (%s): each process paces on its own budget until it is back (so "
                "each replica may send up to CUSTOMERIO_RATE_LIMIT per second); calls go on",
                self._shown,
                type(error).__name__,
            )

    def pacer(self, identifiers: tuple[str, ...], rate: float, fallback: Callable[[], Awaitable[None]]) -> SharedPacer:
        """The pacer of the budget named by ``identifiers``, at ``rate`` per second; ``fallback`` paces while Redis
        is away."""
        return SharedPacer(self, identifiers, redis_rate_item(rate), fallback)

    def close(self) -> None:
        self._pool.disconnect()


class SharedPacer:
    """One API's budget for one workspace, shared by every replica through Redis; local while Redis is away."""

    def __init__(
        self,
        budgets: RedisBudgets,
        identifiers: tuple[str, ...],
        item: RateLimitItem,
        fallback: Callable[[], Awaitable[None]],
    ) -> None:
        self._budgets = budgets
        self._identifiers = identifiers
        self._item = item
        self._fallback = fallback

    async def acquire(self) -> None:
        if self._budgets.usable:
            try:
                await self._budgets.wait_for_room(self._item, self._identifiers)
                return
            except _REDIS_ERRORS as error:
                self._budgets.failed(error)
        await self._fallback()
