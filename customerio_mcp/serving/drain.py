"""Shutting down without leaving a call unanswered.

On a stop (SIGTERM, SIGINT, stdin closing), the server stops taking new calls, lets the calls under
way finish within the drain window (``CUSTOMERIO_MCP_DRAIN_SECONDS``), and then stops the ones still
running: each of those answers that the server is shutting down, that Customer.io may or may not
have applied it, and with its ``sent_ids``, so a model can repeat it safely. No call is cut off
without an answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import anyio

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 2.0
"""After the window, how long the stopped calls get to write their "shutting down" answers."""


class InFlightCalls:
    """The tool calls under way: counted, so a shutdown can wait for them, and stoppable at the window's end."""

    def __init__(self) -> None:
        self._scopes: set[anyio.CancelScope] = set()
        self._idle = anyio.Event()
        self._idle.set()

    @property
    def count(self) -> int:
        return len(self._scopes)

    @contextmanager
    def track(self) -> Iterator[anyio.CancelScope]:
        """Run one call; the scope yielded is cancelled if the drain window closes before it ends."""
        scope = anyio.CancelScope()
        if not self._scopes:
            self._idle = anyio.Event()
        self._scopes.add(scope)
        try:
            with scope:
                yield scope
        finally:
            self._scopes.discard(scope)
            if not self._scopes:
                self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()

    def stop_all(self) -> int:
        """Stop every call still running; each answers that the server is shutting down. Returns how many."""
        for scope in list(self._scopes):
            scope.cancel()
        return len(self._scopes)

    async def drain(self, window: float) -> None:
        """Wait up to ``window`` seconds for the calls under way, then stop the rest and let them answer."""
        if self.count:
            logger.info("shutting down: waiting up to %ss for %d tool call(s) under way", window, self.count)
        with anyio.move_on_after(window):
            await self.wait_idle()
        if self.count:
            logger.warning("drain window closed: stopping %d tool call(s) still running", self.stop_all())
            with anyio.move_on_after(FLUSH_SECONDS):
                await self.wait_idle()
