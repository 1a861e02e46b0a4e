"""Why no connection to Customer.io was made, in words an operator can act on: one classification.

``check`` (its verdict on the region lookup) and every tool call (the structured error's
``reason`` and its text) sort a failed connection the same way: ``dns`` (the name does not
resolve), ``tls`` (the handshake failed), ``refused`` (nothing listens on that port), ``timeout``
(no connection within the timeout) or ``unreachable`` (any other connection error), each with the
host named. The cause is found by walking the exception chain httpx2 raises, down to the socket
or ssl error underneath.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import httpx2

ConnectReason = Literal["dns", "tls", "refused", "timeout", "unreachable"]


@dataclass(frozen=True)
class ConnectFailure:
    reason: ConnectReason
    host: str
    """``host`` or ``host:port`` as the URL gave it."""
    detail: str = ""
    """The TLS library's reason, or the exception's name for ``unreachable``."""

    def explained(self) -> str:
        """What happened: ``the name track.example.invalid could not be resolved (DNS)``."""
        if self.reason == "dns":
            return f"the name {urlsplit('//' + self.host).hostname or self.host} could not be resolved (DNS)"
        if self.reason == "tls":
            return f"the TLS handshake with {self.host} failed ({self.detail})"
        if self.reason == "refused":
            return f"{self.host} refused the connection"
        if self.reason == "timeout":
            return f"{self.host} did not accept a connection in time"
        return f"could not talk to {self.host} ({self.detail})"

    def fix(self) -> str:
        """What to check, lower case, to follow a semicolon."""
        return {
            "dns": "check the URL and the network",
            "tls": "check the URL's scheme and port, and any proxy that intercepts TLS",
            "refused": "check the URL's host and port",
            "timeout": "check the network, or raise CUSTOMERIO_TIMEOUT",
        }.get(self.reason, "check the URL and the network")


def host_of(url: str | httpx2.URL) -> str:
    """``host`` or ``host:port`` of ``url``: how every failure names where it tried to go."""
    parts = urlsplit(str(url))
    host = parts.hostname or str(url)
    return f"{host}:{parts.port}" if parts.port else host


def causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception it was raised from or while handling."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_timeout(error: BaseException) -> bool:
    return any(isinstance(cause, (httpx2.TimeoutException, TimeoutError)) for cause in causes(error))


def connect_failure(error: BaseException, url: str | httpx2.URL) -> ConnectFailure:
    """Why connecting to ``url`` failed with ``error`` (an httpx2 error, or one raised from it)."""
    host = host_of(url)
    chain = list(causes(error))
    for cause in chain:
        if isinstance(cause, socket.gaierror):
            return ConnectFailure("dns", host)
        if isinstance(cause, ssl.SSLError):
            return ConnectFailure("tls", host, getattr(cause, "reason", None) or type(cause).__name__)
        if isinstance(cause, ConnectionRefusedError):
            return ConnectFailure("refused", host)
    if is_timeout(error):
        return ConnectFailure("timeout", host)
    name = next((type(c).__name__ for c in chain if isinstance(c, httpx2.TransportError)), "connection error")
    return ConnectFailure("unreachable", host, name)
