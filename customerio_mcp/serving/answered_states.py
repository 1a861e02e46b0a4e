"""Which confirmation round trips have been answered already: each sealed ``requestState`` counts once.

A 2026-07-28 confirmation comes back as a sealed ``requestState`` and the person's answer. The
seal proves the state is one this server minted for this tool, these arguments and this caller,
but not that it is the first time it comes back: the same state answered "accept" three times
sent three DELETEs, and a state first answered "decline" was sent again with "accept". So every
state carries a random nonce, and the first time a state comes back with an answer its nonce is
recorded here, whatever the answer: a replay, or a "yes" after a "no", finds it and is refused.

- ``LocalAnsweredStates``: in this process, for one replica (stdio, one HTTP process).
- ``RedisAnsweredStates``: in Redis (``CUSTOMERIO_REDIS_URL``), shared by every replica: one
  atomic ``SET key NX EX`` per answer, so two replicas cannot both accept one state.

A nonce is kept as long as its state can still be opened (the state's lifetime and the clock skew
the SDK allows), then forgotten. When the record cannot be consulted (Redis unreachable or
silent, the local record full) the answer is not trusted: ``CannotVerify``, the call is refused
with nothing sent. Unlike pacing, which falls back to the process when Redis is away, a
confirmation must not: another replica might accept the same state meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Protocol

import anyio

from customerio_mcp.text_safety import shown_url

logger = logging.getLogger(__name__)

REDIS_KEY_PREFIX = "customerio-mcp:answered:"
REDIS_TIMEOUT_SECONDS = 0.5
"""Longest an answer waits for Redis before it is refused (nothing sent)."""
LOCAL_CAPACITY = 100_000
"""Nonces kept at most in one process: about 15 MB, hundreds of answers a second for a whole lifetime."""


class CannotVerify(Exception):
    """Whether this state was answered before cannot be known right now; the message says why."""


class AnsweredStates(Protocol):
    async def first_answer(self, nonce: str) -> bool:
        """Record ``nonce``; True the first time, False when it was recorded before. ``CannotVerify`` otherwise."""
        ...

    async def aclose(self) -> None: ...


class LocalAnsweredStates:
    """This process's record, each nonce kept ``keep_seconds``, at most ``capacity`` of them."""

    def __init__(self, keep_seconds: float, capacity: int = LOCAL_CAPACITY) -> None:
        self._keep = keep_seconds
        self._capacity = capacity
        self._until: OrderedDict[str, float] = OrderedDict()
        """Nonce -> when it may be forgotten; in insertion order, which is expiry order."""

    async def first_answer(self, nonce: str) -> bool:
        now = time.monotonic()
        while self._until and next(iter(self._until.values())) <= now:
            self._until.popitem(last=False)
        if nonce in self._until:
            return False
        if len(self._until) >= self._capacity:
            # Forgetting a live nonce would let its state be replayed: refuse new answers instead.
            raise CannotVerify(f"{self._capacity:,} confirmations were answered in the last {self._keep:.0f} s")
        self._until[nonce] = now + self._keep
        return True

    async def aclose(self) -> None:
        """Nothing to close."""


class RedisAnsweredStates:
    """The record in Redis, shared by every replica that uses the same ``CUSTOMERIO_REDIS_URL``."""

    def __init__(self, url: str, keep_seconds: float) -> None:
        import coredis  # only with CUSTOMERIO_REDIS_URL: the Redis client adds a quarter of a second to a start

        self._client = coredis.Redis.from_url(
            url, connect_timeout=REDIS_TIMEOUT_SECONDS, stream_timeout=REDIS_TIMEOUT_SECONDS
        )
        self._keep = max(1, round(keep_seconds))
        self._shown = shown_url(url)

    async def first_answer(self, nonce: str) -> bool:
        from coredis import PureToken

        try:
            with anyio.fail_after(REDIS_TIMEOUT_SECONDS):
                recorded = await self._client.set(REDIS_KEY_PREFIX + nonce, "1", condition=PureToken.NX, ex=self._keep)
        except Exception as error:  # any failure means the same: this answer cannot be trusted now
            logger.warning(
                "Redis at %s did not record a confirmation answer (%s): the call is refused, nothing sent",
                self._shown,
                type(error).__name__,
            )
            raise CannotVerify(f"Redis at {self._shown} did not record the answer") from None
        return bool(recorded)

    async def aclose(self) -> None:
        self._client.connection_pool.disconnect()
