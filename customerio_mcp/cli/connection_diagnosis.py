"""Why a check against Customer.io failed, in the words an operator can act on.

``check`` makes one attempt (no retries, so no retry warnings and no minute-long wait) and
sorts a failure into one of a few verdicts: ``refused`` (401/403: the credentials), ``unreachable``
(DNS, TLS, a refused or dropped connection: the network or the URL, with the host named),
``timeout``, or ``error`` (any other answer from Customer.io).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx2

from customerio_mcp.errors import APIError, AuthenticationError, CustomerIOMCPError, TransportError
from customerio_mcp.settings import Settings


@dataclass(frozen=True)
class Verdict:
    label: str
    """``refused``, ``unreachable``, ``timeout`` or ``error``: what ``check`` prints after ``credentials:``."""
    problem: str
    """One line saying what happened and what to do about it."""


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception it was raised from or while handling."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or url
    return f"{host}:{parts.port}" if parts.port else host


def diagnose(error: CustomerIOMCPError, url: str, settings: Settings) -> Verdict:
    """The verdict on a failed region lookup against ``url``."""
    host = _host(url)
    if isinstance(error, AuthenticationError):
        return Verdict(
            "refused",
            f"refused: {host} answered {error.status} to the Track credentials: check CUSTOMERIO_SITE_ID and "
            "CUSTOMERIO_API_KEY (Customer.io > Settings > API Credentials > Track API keys)",
        )
    if isinstance(error, APIError):
        return Verdict("error", f"{host} answered {error.status} to the region lookup: {error.message}")
    if not isinstance(error, TransportError):
        return Verdict("error", error.message)
    causes = list(_causes(error))
    if any(isinstance(cause, httpx2.TimeoutException) for cause in causes):
        return Verdict(
            "timeout",
            f"timeout: {host} did not answer within {settings.timeout:g} s (CUSTOMERIO_TIMEOUT); check the network "
            "or raise CUSTOMERIO_TIMEOUT",
        )
    return Verdict("unreachable", f"unreachable: {_network_reason(causes, host)}")


def _network_reason(causes: list[BaseException], host: str) -> str:
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return f"the name {host.rsplit(':', 1)[0]} could not be resolved (DNS); check the URL and the network"
        if isinstance(cause, ssl.SSLError):
            reason = getattr(cause, "reason", None) or type(cause).__name__
            return (
                f"the TLS handshake with {host} failed ({reason}); check the URL's scheme and port, and any proxy "
                "that intercepts TLS"
            )
        if isinstance(cause, ConnectionRefusedError):
            return f"{host} refused the connection; check the URL's host and port"
    name = next((type(c).__name__ for c in causes if isinstance(c, httpx2.TransportError)), "connection error")
    return f"could not talk to {host} ({name}); check the URL and the network"
