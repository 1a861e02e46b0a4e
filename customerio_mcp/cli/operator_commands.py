"""``customerio-mcp check`` and ``customerio-mcp tools``: what an operator runs before a model does.

``check`` prints the effective configuration (secrets only as set / not set) with where each
value came from, the tools that would be served, then verifies the Track credentials with the
region lookup. It exits 0 when everything the enabled tools need is in place, 1 otherwise, with
one line per problem saying what to set.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from pydantic import SecretStr

from customerio_mcp.errors import CustomerIOMCPError
from customerio_mcp.settings import Settings
from customerio_mcp.tools.selection import enabled_tools, why_disabled
from customerio_mcp.tools.table import TOOLS


def setting_sources(settings: Settings, flags: Mapping[str, Any], env_file: Path = Path(".env")) -> dict[str, str]:
    """Where each setting's value came from: flag, environment, .env or default."""
    from dotenv import dotenv_values

    dotenv = {k: v for k, v in dotenv_values(env_file).items() if v} if env_file.is_file() else {}
    sources = {}
    for field in Settings.model_fields:
        variable = f"CUSTOMERIO_{field.upper()}"
        if field in flags:
            sources[field] = "flag"
        elif os.environ.get(variable):
            sources[field] = "environment"
        elif dotenv.get(variable):
            sources[field] = ".env"
        else:
            sources[field] = "default"
    return sources


def shown_value(value: Any) -> str:
    if isinstance(value, SecretStr):
        return "set"
    if value is None:
        return "not set"
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _table(rows: list[tuple[str, ...]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for number, row in enumerate(rows):
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")
        if number == 0:
            out.write("  ".join("-" * width for width in widths) + "\n")


async def run_check(settings: Settings, flags: Mapping[str, Any], out: TextIO = sys.stdout) -> int:
    from customerio_mcp.customerio.client import CustomerIOClient
    from customerio_mcp.serving.mcp_server import open_http_client

    sources = setting_sources(settings, flags)
    rows = [("setting", "value", "from")]
    for field in Settings.model_fields:
        rows.append((f"CUSTOMERIO_{field.upper()}", shown_value(getattr(settings, field)), sources[field]))
    out.write("Configuration\n")
    _table(rows, out)

    served = enabled_tools(settings)
    out.write(f"\nTools served ({len(served)} of {len(TOOLS)}): {', '.join(t.name for t in served) or 'none'}\n")

    problems: list[str] = []
    warnings: list[str] = []
    apis = {tool.api for tool in served}
    if not served:
        problems.append("no tool is enabled: check CUSTOMERIO_TOOLSETS, CUSTOMERIO_TOOLS and --no-destructive")
    from_requests = "credentials: from each request's X-Customerio-* headers (CUSTOMERIO_CREDENTIALS_FROM=request)\n"
    out.write("\nTrack API\n")
    if "track" not in apis:
        out.write("  not used by the enabled tools\n")
    elif settings.credentials_from == "request":
        out.write("  " + from_requests)
    elif missing := settings.missing_track_credentials():
        problems.append(f"set {' and '.join(missing)} (Customer.io > Settings > API Credentials > Track API keys)")
        out.write("  credentials: not configured\n")
    else:
        async with open_http_client(settings) as http:
            client = CustomerIOClient(settings, http)
            try:
                answer = await client.lookup_region()
            except CustomerIOMCPError as error:
                problems.append(f"the Track credentials were not accepted: {error.message}")
                out.write("  credentials: REFUSED\n")
            else:
                body = answer.body if isinstance(answer.body, dict) else {}
                out.write("  credentials: valid\n")
                out.write(f"  region: {answer.region}\n  url: {body.get('url')}\n")
                out.write(f"  environment id: {body.get('environment_id')}\n")
                if settings.region not in ("auto", answer.region):
                    problems.append(
                        f"CUSTOMERIO_REGION is {settings.region} but the account is in {answer.region}: set "
                        f"CUSTOMERIO_REGION={answer.region} or auto"
                    )
    out.write("\nPipelines API\n")
    if "pipelines" not in apis:
        out.write("  not used by the enabled tools\n")
    elif settings.credentials_from == "request":
        out.write("  " + from_requests)
    elif settings.pipelines_api_key is not None:
        out.write("  API key: configured (CUSTOMERIO_PIPELINES_API_KEY; checked on the first call)\n")
    elif settings.api_key is not None:
        out.write("  API key: falling back to CUSTOMERIO_API_KEY\n")
        warnings.append(
            "CUSTOMERIO_PIPELINES_API_KEY is not set, so Pipelines calls use the Track key; Customer.io issues "
            "separate keys: set CUSTOMERIO_PIPELINES_API_KEY to your HTTP API source's key"
        )
    else:
        out.write("  API key: not configured\n")
        problems.append("set CUSTOMERIO_PIPELINES_API_KEY (Data Pipelines > your HTTP API source > API key)")

    if settings.redis_url is not None:
        await check_shared_pacing(settings.redis_url.get_secret_value(), out, warnings)

    out.write("\n")
    for line in warnings:
        out.write(f"warning: {line}\n")
    for line in problems:
        out.write(f"problem: {line}\n")
    out.write("OK: everything the enabled tools need is in place.\n" if not problems else "")
    return 1 if problems else 0


async def check_shared_pacing(url: str, out: TextIO, warnings: list[str]) -> None:
    """Whether the Redis that shares the pacing budget answers; the server works without it, paced per process."""
    from customerio_mcp.customerio.shared_pacing import ping, shown_redis_url

    out.write("\nShared pacing (CUSTOMERIO_REDIS_URL)\n")
    problem = await ping(url)
    if problem is None:
        out.write(f"  Redis at {shown_redis_url(url)}: answers\n")
        return
    out.write(f"  Redis at {shown_redis_url(url)}: UNREACHABLE ({problem})\n")
    warnings.append(
        f"Redis at {shown_redis_url(url)} cannot be reached: calls will go on, paced per process (each replica "
        "may send up to CUSTOMERIO_RATE_LIMIT per second)"
    )


def print_tools(settings: Settings, out: TextIO = sys.stdout) -> int:
    served = {tool.name for tool in enabled_tools(settings)}
    rows = [("tool", "api", "endpoint", "annotations", "enabled")]
    for tool in TOOLS:
        hints = [
            name
            for name, on in (
                ("read-only", tool.read_only),
                ("destructive", tool.destructive),
                ("idempotent", tool.idempotent),
            )
            if on
        ]
        enabled = "yes" if tool.name in served else f"no: {why_disabled(tool, settings)}"
        rows.append((tool.name, tool.api, f"{tool.method} {tool.path}", ", ".join(hints) or "-", enabled))
    _table(rows, out)
    return 0
