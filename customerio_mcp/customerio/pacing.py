"""Pacing: each API's request budget per workspace (``CUSTOMERIO_RATE_LIMIT`` per second), waited for.

Customer.io allows 1,000 requests per second per workspace to Track and to Pipelines (its current
descriptions; the default budget of 100 stays well inside that, raise ``CUSTOMERIO_RATE_LIMIT`` for
more), and answers 429 beyond 10 per second on its App API, whose budget is the smaller of the two
(``API_RATE_CAPS``). A call over budget waits for room; it is never refused. With one process the
budget lives in that process (``aiolimiter``, a leaky bucket with a tenth of a second of burst).
With ``CUSTOMERIO_REDIS_URL`` every replica draws from one budget kept in Redis by ``limits`` (its
moving-window strategy, run atomically by Redis as a Lua script: never more than the rate in any
trailing second), so that N replicas send the rate Customer.io asks for, not N times it.

Redis is an optimisation that must never fail a call: when it cannot be reached, pacing falls
back to the per-process budget with one WARNING, and Redis is tried again a few seconds later.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from aiolimiter import AsyncLimiter
from cachetools import TTLCache

from customerio_mcp.customerio.api import Api
from customerio_mcp.settings import Settings

if TYPE_CHECKING:
    from customerio_mcp.customerio.shared_pacing import RedisBudgets

logger = logging.getLogger(__name__)

PACER_CACHE_SIZE = 4096
API_RATE_CAPS: dict[Api, float] = {"app": 10.0}
"""Requests per second an API allows whatever ``CUSTOMERIO_RATE_LIMIT`` says."""
PACER_IDLE_SECONDS = 900.0
"""A budget nobody drew from for this long is forgotten (a new one starts full)."""


class Pacer(Protocol):
    async def acquire(self) -> None:
        """Return once one request may be sent; wait while the budget is spent."""


class LocalPacer:
    """This process's budget: a leaky bucket at ``rate`` per second with a tenth of a second of burst."""

    def __init__(self, rate: float) -> None:
        self._limiter = AsyncLimiter(max_rate=max(1.0, rate / 10), time_period=max(1.0, rate / 10) / rate)

    async def acquire(self) -> None:
        await self._limiter.acquire()


class Pacing:
    """Hands out the pacer of each API and workspace: one per budget, shared when Redis is configured.

    Pacers live in a bounded cache that forgets a budget idle for ``PACER_IDLE_SECONDS``, keyed
    by a hash of the workspace's credentials, never the credentials.
    """

    def __init__(self, rate: float, redis_url: str | None = None) -> None:
        self._rate = rate
        self._budgets: RedisBudgets | None = None
        if redis_url and rate > 0:
            # Imported only when used: the Redis client adds a quarter of a second to every start.
            from customerio_mcp.customerio.shared_pacing import RedisBudgets

            self._budgets = RedisBudgets(redis_url)
            logger.info("pacing is shared across replicas through Redis at %s", self._budgets.shown_url)
        self._pacers: TTLCache[tuple[Api, str], Pacer] = TTLCache(PACER_CACHE_SIZE, PACER_IDLE_SECONDS)

    @classmethod
    def from_settings(cls, settings: Settings) -> Pacing:
        url = settings.redis_url.get_secret_value() if settings.redis_url is not None else None
        return cls(settings.rate_limit, url)

    def pacer(self, api: Api, budget_key: str) -> Pacer | None:
        """The pacer of ``api`` for the workspace whose ``budget_key`` this is; None when pacing is off."""
        if self._rate <= 0:
            return None
        key = (api, budget_key)
        found = self._pacers.get(key)
        if found is None:
            rate = min(self._rate, API_RATE_CAPS.get(api, self._rate))
            local = LocalPacer(rate)
            if self._budgets is None:
                found = local
            else:
                found = self._budgets.pacer(("pace", api, budget_key), rate, local.acquire)
        self._pacers[key] = found  # (re)inserted: the idle clock starts again
        return found

    def close(self) -> None:
        if self._budgets is not None:
            self._budgets.close()
