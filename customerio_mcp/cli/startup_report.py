"""What the server says about itself when it starts, and the settings it should warn about.

A terminal user who starts ``customerio-mcp`` over stdio sees no prompt: without one line on
stderr they think it hung. That line says what is being served and with which credentials
(names, never values). A base URL that is not a Customer.io host gets a WARNING, here and in
``check``: a ``.env`` planted in an untrusted checkout could otherwise send the keys elsewhere. So
do shared confirmation state keys without the Redis that records which confirmations were answered.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from customerio_mcp import __version__
from customerio_mcp.cli.setting_sources import SettingSources, shown_text
from customerio_mcp.settings import Settings
from customerio_mcp.tools.selection import enabled_tools
from customerio_mcp.tools.table import TOOLS

CUSTOMERIO_DOMAIN = "customer.io"
BASE_URL_FIELDS = (("track_url", "Track"), ("pipelines_url", "Pipelines"))


def is_customerio_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == CUSTOMERIO_DOMAIN or host.endswith("." + CUSTOMERIO_DOMAIN)


def base_url_warnings(settings: Settings, sources: SettingSources) -> list[str]:
    """One line per explicit base URL that would send a key somewhere other than Customer.io over TLS."""
    warnings = []
    for field, api in BASE_URL_FIELDS:
        url = getattr(settings, field)
        if url is None:
            continue
        parts = urlsplit(url)
        host = parts.hostname or ""
        where = shown_text(f"{host}:{parts.port}" if parts.port else host)
        if not is_customerio_host(host):
            warnings.append(
                f"{sources.describe(field)} is not a Customer.io host: every {api} API call, with its key, goes "
                f"to {where}. Unset it unless you run that proxy or test server yourself."
            )
        elif parts.scheme != "https":
            warnings.append(
                f"{sources.describe(field)} uses {parts.scheme}://, so the {api} API key would cross the network "
                "unencrypted: use https://."
            )
    return warnings


def shared_state_problems(settings: Settings) -> list[str]:
    """Configurations whose confirmations could be replayed on another replica: said at start and by ``check``.

    ``CUSTOMERIO_MCP_STATE_KEYS`` exists so that replicas open each other's confirmation round trips;
    which of those were answered already is then known across replicas only through Redis.
    """
    if settings.mcp_state_keys and settings.redis_url is None and settings.confirm_destructive != "off":
        return [
            "CUSTOMERIO_MCP_STATE_KEYS is set, so replicas open each other's confirmations, but CUSTOMERIO_REDIS_URL "
            "is not: a confirmation answered on one replica could be answered again on another. Set "
            "CUSTOMERIO_REDIS_URL (every replica the same), or unset CUSTOMERIO_MCP_STATE_KEYS for a single process."
        ]
    return []


def credential_names(settings: Settings) -> tuple[list[str], list[str]]:
    """The credential variables that are set and those that are not (names only)."""
    candidates = [
        ("CUSTOMERIO_SITE_ID", settings.site_id),
        ("CUSTOMERIO_API_KEY", settings.api_key),
        ("CUSTOMERIO_PIPELINES_API_KEY", settings.pipelines_api_key),
    ]
    if settings.mcp_transport != "stdio":
        candidates.append(("CUSTOMERIO_MCP_AUTH_TOKEN", settings.mcp_auth_token))
    present = [name for name, value in candidates if value]
    return present, [name for name, value in candidates if not value]


def region_mode(settings: Settings) -> str:
    explicit = [name for name, _ in BASE_URL_FIELDS if getattr(settings, name)]
    mode = {"auto": "auto (asks Customer.io once)", "us": "us", "eu": "eu"}[settings.region]
    if explicit:
        mode += f"; explicit {' and '.join('CUSTOMERIO_' + name.upper() for name in explicit)}"
    return mode


def startup_line(settings: Settings, served: int, total: int, sources: SettingSources) -> str:
    """The one INFO line ``serve`` logs before it starts listening."""
    if settings.mcp_transport == "stdio":
        transport = "stdio"
    else:
        path = "/sse" if settings.mcp_transport == "sse" else "/mcp"
        transport = f"{settings.mcp_transport} on http://{settings.mcp_host}:{settings.mcp_port}{path}"
        if settings.mcp_health_port is not None:
            transport += f" (health checks also on port {settings.mcp_health_port})"
    present, absent = credential_names(settings)
    env_file = sources.env_file.resolve()
    env_state = "read" if sources.env_file_values else ("empty" if sources.env_file.is_file() else "not found")
    return (
        f"customerio-mcp {__version__} serving {transport}: {served} of {total} tools; "
        f"dry run {'ON (nothing is sent to Customer.io)' if settings.dry_run else 'off'}; "
        f"credentials set: {', '.join(present) or 'none'}; not set: {', '.join(absent) or 'none'}; "
        f"region {region_mode(settings)}; env file {env_file} ({env_state})"
    )


def announce(settings: Settings, sources: SettingSources) -> None:
    """Log the WARNINGs about base URLs, then the one INFO line saying what is being served."""
    logger = logging.getLogger("customerio_mcp")
    for warning in base_url_warnings(settings, sources) + shared_state_problems(settings):
        logger.warning("%s", warning)
    logger.info("%s", startup_line(settings, len(enabled_tools(settings)), len(TOOLS), sources))
