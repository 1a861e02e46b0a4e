"""Stand-ins for a transport's message streams, for wrappers that watch what passes through them.

The SDK takes any object with the stream protocol (``mcp.shared._stream_protocols``); a wrapper only
adds its own ``receive`` or ``send`` and inherits the rest here: closing, ``async with``, iteration
by ``receive``, and the sender context the SDK looks for on a read stream.
"""

from __future__ import annotations

from typing import Any, Self

import anyio


class WrappedStream:
    """Closing a wrapper closes the stream it stands in for."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class WrappedReadStream(WrappedStream):
    """A read stream whose subclass defines ``receive``; iterating it calls that ``receive``."""

    @property
    def last_context(self) -> Any:
        """The sender context of the last message, when the inner stream carries one."""
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Any:
        return await self._inner.receive()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None
