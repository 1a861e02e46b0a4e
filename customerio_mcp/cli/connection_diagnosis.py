"""Why a check against Customer.io failed, in the words an operator can act on.

``check`` makes one attempt (no retries, so no retry warnings and no minute-long wait) and
sorts a failure into one of a few verdicts: ``refused`` (401/403: the credentials), ``unreachable``
(DNS, TLS, a refused or dropped connection: the network or the URL, with the host named, in the
words of ``customerio.network_failures``, which tool calls use too), ``timeout``, or ``error`` (any
other answer from Customer.io).
"""

from __future__ import annotations

from dataclasses import dataclass

from customerio_mcp.customerio.network_failures import connect_failure, host_of, is_timeout
from customerio_mcp.errors import APIError, AuthenticationError, CustomerIOMCPError, TransportError
from customerio_mcp.settings import Settings


@dataclass(frozen=True)
class Verdict:
    label: str
    """``refused``, ``unreachable``, ``timeout`` or ``error``: what ``check`` prints after ``credentials:``."""
    problem: str
    """One line saying what happened and what to do about it."""


def diagnose(error: CustomerIOMCPError, url: str, settings: Settings) -> Verdict:
    """The verdict on a failed region lookup against ``url``."""
    host = host_of(url)
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
    if is_timeout(error):
        return Verdict(
            "timeout",
            f"timeout: {host} did not answer within {settings.timeout:g} s (CUSTOMERIO_TIMEOUT); check the network "
            "or raise CUSTOMERIO_TIMEOUT",
        )
    failure = connect_failure(error, url)
    return Verdict("unreachable", f"unreachable: {failure.explained()}; {failure.fix()}")
