"""Keep what clients do from flooding or forging the log, and keep their mistakes out of tracebacks.

``install`` puts one filter on the stderr handler. It

- neutralises control characters in every line from the HTTP stack and the SDK (they log values
  such as a refused session id verbatim) and clips their warnings;
- turns a record whose exception a client caused (a malformed message failing validation, a
  connection the client dropped) into one DEBUG line without a traceback: the access log has
  already written the one WARNING line for that request;
- rate-limits every line a client can cause at will: every line, at any level, on our loggers
  for what clients do (``customerio_mcp.clients``, ``customerio_mcp.connections``), every line
  that carries a ``rate_key`` (``extra={"rate_key": ...}``, on any logger), and warnings from the
  third-party loggers a client can drive (uvicorn, asyncio, the SDK): each kind of line may burst
  ``BURST`` times, then one per ``REFILL_SECONDS``; the next line that passes says how many were
  suppressed.

It also quiets the SDK's transport loggers below DEBUG: they log session ids and repeat, as
warnings, refusals the access log already reports.
"""

from __future__ import annotations

import json
import logging
import time

import anyio
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from customerio_mcp.text_safety import clip, neutralise

BURST = 10
REFILL_SECONDS = 6.0
THIRD_PARTY = ("mcp", "uvicorn", "sse_starlette", "starlette", "asyncio", "h11")
CLIENT_LOGGERS = ("customerio_mcp.clients", "customerio_mcp.connections")
"""Our loggers for what clients do and cause: every line on them is rate-limited, whatever its level."""
SDK_TRANSPORT_LOGGERS = (
    "mcp.server.sse",
    "mcp.server.streamable_http",
    "mcp.server.streamable_http_manager",
    "mcp.server.transport_security",
)
CLIENT_CAUSED = (
    ValidationError,
    json.JSONDecodeError,
    ConnectionError,
    ClientDisconnect,
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
    anyio.EndOfStream,
)
"""Exceptions that a client's input or departure raises, not a fault of this server."""
THIRD_PARTY_WARNING_CHARS = 300


def _from(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


class _Bucket:
    __slots__ = ("suppressed", "tokens", "updated")

    def __init__(self, now: float) -> None:
        self.tokens = float(BURST)
        self.updated = now
        self.suppressed = 0


class ClientNoiseFilter(logging.Filter):
    """The handler filter described in the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._buckets: dict[tuple[str, object], _Bucket] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if _from(record.name, THIRD_PARTY) and not self._tidy_third_party(record):
            return False
        if (
            getattr(record, "rate_key", None) is not None
            or _from(record.name, CLIENT_LOGGERS)
            or (record.levelno >= logging.WARNING and _from(record.name, THIRD_PARTY))
        ):
            return self._within_rate(record)
        return True

    def _tidy_third_party(self, record: logging.LogRecord) -> bool:
        """Rewrite a third-party record in place; False when it should not be written at all."""
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, CLIENT_CAUSED):
            first_line = next(iter(str(exc).splitlines()), "")
            record.msg = f"{record.getMessage()} ({type(exc).__name__}: {clip(first_line)})"
            record.args = ()
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
                return False
        message = record.getMessage()
        warning = record.levelno >= logging.WARNING
        record.msg = clip(message, THIRD_PARTY_WARNING_CHARS) if warning else neutralise(message)
        record.args = ()
        return True

    def _within_rate(self, record: logging.LogRecord) -> bool:
        # One kind of line: the same rate key, or else the same logging call in the code.
        key = (record.name, getattr(record, "rate_key", None) or (record.pathname, record.lineno))
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 1000:  # kinds are few; never let odd keys grow without bound
                self._buckets.clear()
            bucket = self._buckets[key] = _Bucket(now)
        bucket.tokens = min(float(BURST), bucket.tokens + (now - bucket.updated) / REFILL_SECONDS)
        bucket.updated = now
        if bucket.tokens < 1:
            bucket.suppressed += 1
            return False
        bucket.tokens -= 1
        if bucket.suppressed:
            record.msg = f"{record.msg} ({bucket.suppressed} similar lines suppressed)"
            bucket.suppressed = 0
        return True


def install(handler: logging.Handler) -> None:
    """Filter ``handler``'s records as above, and quiet the SDK's transport loggers unless at DEBUG."""
    handler.addFilter(ClientNoiseFilter())
    root_level = logging.getLogger().getEffectiveLevel()
    for name in SDK_TRANSPORT_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if root_level <= logging.DEBUG else logging.ERROR)
