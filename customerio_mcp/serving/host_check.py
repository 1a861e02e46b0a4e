"""Host and Origin checks against DNS rebinding, matched exactly: host and port, never by prefix.

The SDK's own check accepts ``127.0.0.1:*`` for any Host that merely *starts with*
``127.0.0.1:``, so ``Host: 127.0.0.1:8000.evil.example`` passes it. Here a header is parsed into
its parts first and each part must equal the pattern's: ``name:*`` allows that exact name with any
numeric port (or none), ``name:8000`` only port 8000, and ``name`` only the name without a port.
Origins are matched the same way, scheme included (``http://127.0.0.1:*``).

A refusal is the SDK's answer (421 for Host, 403 for Origin); the access log writes the one
warning line, with the refused value clipped.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from customerio_mcp.serving.access_log import refuse
from customerio_mcp.settings import Settings
from customerio_mcp.text_safety import clip

LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]

_AUTHORITY = r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()+,;=%-]+)(?::(?P<port>[0-9]{1,5}|\*))?"
_HOST = re.compile(_AUTHORITY)
_ORIGIN = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://" + _AUTHORITY)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Authority:
    """A parsed Host or Origin: scheme (origins only), lower-case host, and port (``*``: any, None: none)."""

    scheme: str | None
    host: str
    port: str | None

    def allows(self, given: Authority) -> bool:
        if (self.scheme, self.host) != (given.scheme, given.host) or given.port == "*":
            return False
        return self.port == "*" or self.port == given.port


def parse_host(value: str) -> Authority | None:
    match = _HOST.fullmatch(value)
    if match is None:
        return None
    return Authority(None, match["host"].lower(), match["port"])


def parse_origin(value: str) -> Authority | None:
    match = _ORIGIN.fullmatch(value)
    if match is None:
        return None
    return Authority(match["scheme"].lower(), match["host"].lower(), match["port"])


def _patterns(values: Sequence[str], parse: Callable[[str], Authority | None]) -> list[Authority]:
    parsed = []
    for value in values:
        authority = parse(value)
        if authority is None:
            raise ValueError(f"not a host[:port] or scheme://host[:port] pattern: {value!r}")
        parsed.append(authority)
    return parsed


class AllowedAuthorities:
    """The Host and Origin values a request may carry (None: that header is not checked)."""

    def __init__(self, hosts: Sequence[str] | None, origins: Sequence[str] | None) -> None:
        self.hosts = None if hosts is None else _patterns(hosts, parse_host)
        self.origins = None if origins is None else _patterns(origins, parse_origin)

    @classmethod
    def from_settings(cls, settings: Settings) -> AllowedAuthorities | None:
        """On for loopback binds, and wherever allowed hosts or origins are set; else None (no check)."""
        hosts, origins = settings.mcp_allowed_hosts, settings.mcp_allowed_origins
        loopback = is_loopback(settings.mcp_host)
        if hosts is None and origins is None and not loopback:
            return None
        return cls(
            hosts if hosts is not None else (LOOPBACK_HOSTS if loopback else []),
            origins if origins is not None else (LOOPBACK_ORIGINS if loopback else []),
        )

    def host_allowed(self, value: str | None) -> bool:
        if self.hosts is None:
            return True
        given = parse_host(value) if value else None
        return given is not None and any(pattern.allows(given) for pattern in self.hosts)

    def origin_allowed(self, value: str | None) -> bool:
        """An absent Origin is a same-origin or non-browser request, and allowed."""
        if self.origins is None or value is None:
            return True
        given = parse_origin(value)
        return given is not None and any(pattern.allows(given) for pattern in self.origins)


class HostOriginCheck:
    """Refuse requests whose Host or Origin is not allowed, on every path but the open ones."""

    def __init__(self, app: ASGIApp, allowed: AllowedAuthorities, open_paths: Collection[str]) -> None:
        self.app = app
        self._allowed = allowed
        self._open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open_paths:
            await self.app(scope, receive, send)
            return
        host = origin = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
        if not self._allowed.host_allowed(host):
            await refuse(scope, send, 421, "Invalid Host header", f"Host header {clip(host)!r} is not allowed")
        elif not self._allowed.origin_allowed(origin):
            await refuse(scope, send, 403, "Invalid Origin header", f"Origin header {clip(origin)!r} is not allowed")
        else:
            await self.app(scope, receive, send)
