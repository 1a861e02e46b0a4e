"""``customerio-mcp check`` and ``customerio-mcp tools``: what an operator runs before a model does.

``check`` prints the effective configuration (secrets only as set / not set) with where each
value came from, the tools that would be served, then verifies the Track credentials with one
region lookup, the Pipelines settings and, for the verify toolset, that an App API key is there.
It applies every rule ``serve`` applies, so exit 0 means the same command line serves and
everything the enabled tools need is in place; otherwise it exits 1 with one line per problem
saying what to set. Its verdict on Customer.io is one of valid, refused, unreachable, timeout or
wrong region, and it never retries. Pipelines tools left unserved for want of a key are said, and
are a problem only when a setting asked for them.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO
from urllib.parse import urlsplit

from pydantic import SecretStr

from customerio_mcp.cli.connection_diagnosis import diagnose
from customerio_mcp.cli.setting_sources import SettingSources, variable_name
from customerio_mcp.cli.startup_report import base_url_warnings, shared_state_problems
from customerio_mcp.errors import CustomerIOMCPError
from customerio_mcp.settings import URL_SETTINGS, VERIFY_TOOLSET, Settings
from customerio_mcp.text_safety import redact, secret_texts, shown_url
from customerio_mcp.tools.selection import enabled_tools, offered_tools, waiting_for_pipelines_key, why_disabled
from customerio_mcp.tools.table import TOOLS, TOOLS_BY_NAME


def shown_value(value: Any) -> str:
    """A setting's value for ``check`` and ``--help``: a secret only as "set"."""
    if isinstance(value, SecretStr):
        return "set"
    if value is None:
        return "not set"
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_table(rows: list[tuple[str, ...]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for number, row in enumerate(rows):
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")
        if number == 0:
            out.write("  ".join("-" * width for width in widths) + "\n")


@contextmanager
def _client_logs_quiet() -> Iterator[None]:
    """The client logs each failed attempt; check reports the outcome itself, once."""
    logger = logging.getLogger("customerio_mcp.customerio")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


async def _check_track(settings: Settings, out: TextIO, problems: list[str]) -> None:
    from customerio_mcp.customerio.client import CustomerIOClient, RetryPolicy
    from customerio_mcp.customerio.http_client import open_http_client

    async with open_http_client(settings) as http:
        client = CustomerIOClient(settings, http, RetryPolicy(max_retries=0))
        url = client.lookup_base()
        with _client_logs_quiet():
            try:
                answer = await client.lookup_region()
            except CustomerIOMCPError as error:
                verdict = diagnose(error, url, settings)
                shown = shown_without_secrets(settings, shown_url(url))
                out.write(f"  credentials: {verdict.label.upper()} ({shown})\n")
                problems.append(verdict.problem)
                return
    body = answer.body if isinstance(answer.body, dict) else {}
    out.write("  credentials: valid\n")
    out.write(f"  region: {answer.region}\n  url: {body.get('url')}\n")
    out.write(f"  environment id: {body.get('environment_id')}\n")
    if settings.region not in ("auto", answer.region):
        out.write("  region setting: WRONG REGION\n")
        problems.append(
            f"wrong region: CUSTOMERIO_REGION is {settings.region} but the account is in {answer.region}: set "
            f"CUSTOMERIO_REGION={answer.region} or auto"
        )


PIPELINES_KEY_WHERE = "Data Pipelines > your HTTP API source > API key"


def shown_setting(settings: Settings, field: str) -> str:
    """``field``'s value as ``check`` shows it: URLs without user name or password, no configured secret in it."""
    text = shown_value(getattr(settings, field))
    return shown_without_secrets(settings, shown_url(text) if field in URL_SETTINGS else text)


def shown_without_secrets(settings: Settings, text: str) -> str:
    return redact(text, secret_texts(settings.secret_values()))


def _check_pipelines(settings: Settings, out: TextIO, problems: list[str]) -> None:
    if settings.pipelines_url is not None and not urlsplit(settings.pipelines_url).path.endswith("/v1"):
        url = shown_setting(settings, "pipelines_url")
        problems.append(
            f"CUSTOMERIO_PIPELINES_URL {url} does not end in /v1: calls would go to {url}/identify; use the base "
            "URL with /v1, e.g. https://cdp.customer.io/v1"
        )
    key, track_key = settings.pipelines_api_key, settings.api_key
    if key is None:  # served without a key only in dry run
        out.write("  API key: not configured (dry run sends nothing; a real call needs one)\n")
        problems.append(f"set CUSTOMERIO_PIPELINES_API_KEY ({PIPELINES_KEY_WHERE})")
    elif track_key is not None and key.get_secret_value() == track_key.get_secret_value():
        out.write("  API key: the Track key (CUSTOMERIO_PIPELINES_API_KEY equals CUSTOMERIO_API_KEY)\n")
        problems.append(
            "CUSTOMERIO_PIPELINES_API_KEY is the Track API key (it equals CUSTOMERIO_API_KEY): Customer.io "
            f"issues a separate key for Data Pipelines ({PIPELINES_KEY_WHERE})"
        )
    else:
        out.write("  API key: present (CUSTOMERIO_PIPELINES_API_KEY; Customer.io checks it on the first call)\n")


def _pipelines_asked_for(settings: Settings, sources: SettingSources) -> str | None:
    """The setting that explicitly asks for Pipelines tools (a toolset or an allow-listed tool), if one does."""
    if sources.origin("toolsets") != "default" and "pipelines" in settings.toolsets:
        return sources.describe("toolsets")
    allowed = settings.tools or ()
    if sources.origin("tools") != "default" and any(TOOLS_BY_NAME[name].api == "pipelines" for name in allowed):
        return sources.describe("tools")
    return None


async def run_check(
    settings: Settings, sources: SettingSources, serve_refusals: list[str] | None = None, out: TextIO = sys.stdout
) -> int:
    """Print the report; 0 when this command line would serve and the enabled tools have what they need."""
    env_file = sources.env_file.resolve()
    out.write(f"Env file: {env_file} ({'read' if env_file.is_file() else 'not found'})\n\n")
    rows = [("setting", "value", "from")]
    for field in Settings.model_fields:
        rows.append((variable_name(field), shown_setting(settings, field), sources.origin(field)))
    out.write("Configuration\n")
    write_table(rows, out)

    served = enabled_tools(settings)
    offered = offered_tools(settings)
    out.write(f"\nTools served ({len(served)} of {len(offered)}): {', '.join(t.name for t in served) or 'none'}\n")

    problems: list[str] = []
    warnings = base_url_warnings(settings, sources)
    problems += [*(serve_refusals or []), *shared_state_problems(settings)]
    apis = {tool.api for tool in served}
    if not served and not waiting_for_pipelines_key(settings):  # else the Pipelines section says why
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
        await _check_track(settings, out, problems)
    out.write("\nPipelines API\n")
    if waiting_for_pipelines_key(settings):
        out.write(f"  not served: CUSTOMERIO_PIPELINES_API_KEY is not set ({PIPELINES_KEY_WHERE})\n")
        asked = _pipelines_asked_for(settings, sources)
        if asked is not None:
            problems.append(
                f"{asked} asks for Pipelines tools, but they are not served without a key: set "
                f"CUSTOMERIO_PIPELINES_API_KEY ({PIPELINES_KEY_WHERE})"
            )
    elif "pipelines" not in apis:
        out.write("  not used by the enabled tools\n")
    elif settings.credentials_from == "request":
        out.write("  " + from_requests)
    else:
        _check_pipelines(settings, out, problems)
    if any(tool.toolset == VERIFY_TOOLSET for tool in offered):
        out.write("\nApp API (verify toolset)\n")
        if settings.credentials_from == "request":
            out.write("  " + from_requests.replace("X-Customerio-*", "X-Customerio-App-Api-Key"))
        elif settings.app_api_key is not None:
            out.write("  API key: present (CUSTOMERIO_APP_API_KEY; Customer.io checks it on the first read)\n")
        elif "app" not in apis:
            out.write("  API key: not configured\n")
            problems.append(
                "CUSTOMERIO_TOOLSETS names verify but CUSTOMERIO_APP_API_KEY is not set: set it to an App API key "
                "(Customer.io > Settings > API Credentials > App API keys; a read-only service-account token works)"
            )

    if settings.redis_url is not None:
        await check_shared_pacing(settings.redis_url.get_secret_value(), out, warnings)
    await check_audit(settings, out, warnings)

    out.write("\n")
    for line in warnings:
        out.write(f"warning: {line}\n")
    for line in problems:
        out.write(f"problem: {line}\n")
    out.write("OK: everything the enabled tools need is in place.\n" if not problems else "")
    return 1 if problems else 0


async def check_shared_pacing(url: str, out: TextIO, warnings: list[str]) -> None:
    """Whether the Redis that shares the pacing budget answers; the server works without it, paced per process."""
    from customerio_mcp.customerio.shared_pacing import ping

    out.write("\nShared pacing (CUSTOMERIO_REDIS_URL)\n")
    problem = await ping(url)
    if problem is None:
        out.write(f"  Redis at {shown_url(url)}: answers\n")
        return
    out.write(f"  Redis at {shown_url(url)}: UNREACHABLE ({problem})\n")
    warnings.append(
        f"Redis at {shown_url(url)} cannot be reached: calls will go on, paced per process (each replica "
        "may send up to CUSTOMERIO_RATE_LIMIT per second)"
    )


async def check_audit(settings: Settings, out: TextIO, warnings: list[str]) -> None:
    """Where the audit trail goes, and whether it can be written there; calls go on either way."""
    from customerio_mcp.serving.audit_sinks import audit_sink

    out.write("\nAudit trail (CUSTOMERIO_AUDIT)\n")
    try:
        sink = audit_sink(settings)
    except RuntimeError as error:  # no home directory for the state directory
        out.write(f"  UNUSABLE ({error})\n")
        warnings.append(f"the audit trail cannot be written ({error}): set CUSTOMERIO_AUDIT=file:/absolute/path")
        return
    if sink is None:
        out.write("  off: no call is recorded\n")
        return
    try:
        problem = await sink.problem()
    finally:
        sink.close()
    bodies = " (with request bodies)" if settings.audit_bodies else ""
    if problem is None:
        out.write(f"  {sink.shown}{bodies}: writable\n")
        return
    out.write(f"  {sink.shown}: NOT WRITABLE ({problem})\n")
    warnings.append(
        f"the audit trail cannot be written to {sink.shown} ({problem}): calls will go on, unrecorded; fix it, "
        "point CUSTOMERIO_AUDIT elsewhere (file:/absolute/path, redis) or set it to off"
    )


def print_tools(settings: Settings, out: TextIO = sys.stdout) -> int:
    served = {tool.name for tool in enabled_tools(settings)}
    rows = [("tool", "api", "endpoint", "annotations", "enabled")]
    for tool in TOOLS:
        hints = [
            name
            for name, on in (
                ("read-only", tool.read_only),
                ("destructive", tool.destructive_hint),
                ("idempotent", tool.idempotent),
            )
            if on
        ]
        enabled = "yes" if tool.name in served else f"no: {why_disabled(tool, settings)}"
        rows.append((tool.name, tool.api, f"{tool.method} {tool.path}", ", ".join(hints) or "-", enabled))
    write_table(rows, out)
    return 0


def quiet_when_piped_to_head(command: Callable[[], int]) -> int:
    """Run a command that prints to stdout; a reader that stops early (``| head``) ends it quietly, status 0."""
    try:
        status = command()
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit and would complain there; point it at /dev/null instead.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return status
