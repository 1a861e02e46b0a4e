"""What an HTTP request's own headers ask for: its workspace's keys, and fewer tools.

Two families of headers, read on every ``tools/list`` and ``tools/call`` over HTTP:

- Workspace keys, with ``CUSTOMERIO_CREDENTIALS_FROM=request``: ``X-Customerio-Site-Id``,
  ``X-Customerio-Api-Key``, ``X-Customerio-Pipelines-Api-Key``, ``X-Customerio-App-Api-Key`` and
  optionally ``X-Customerio-Region`` (``us``/``eu``; without it, ``CUSTOMERIO_REGION``). A missing
  key is not an error here: the call that needs it says which header to set, exactly as a missing
  variable does; a request without an App API key is not served the verify toolset. A server that
  takes its keys from the environment refuses requests that carry keys, rather than silently
  writing their data to its own workspace.
- Narrowing, which can only take away from what the operator's settings allow (the names GitHub's
  MCP server uses for the same job): ``X-MCP-Toolsets: pipelines``, ``X-MCP-Tools: a,b``,
  ``X-MCP-No-Destructive: true``.

A header whose value cannot be understood (an unknown toolset or tool, a region other than us/eu,
a flag other than true/false) refuses the MCP request with a JSON-RPC error (-32600) naming the
header and its valid values: it is the client's configuration that needs fixing, not the model's
arguments, and guessing could widen what the client meant to allow. Key values are never logged
or quoted, in errors or anywhere else; only their hash names a workspace.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST
from pydantic import SecretStr

from customerio_mcp.customerio.workspace import HEADER_NAMES, RegionChoice, Workspace
from customerio_mcp.tools.runner import CallScope
from customerio_mcp.tools.selection import Narrowing
from customerio_mcp.tools.table import TOOLS_BY_NAME

if TYPE_CHECKING:
    from starlette.datastructures import Headers

    from customerio_mcp.customerio.workspace_clients import WorkspaceClients

TOOLSETS_HEADER = "X-MCP-Toolsets"
TOOLS_HEADER = "X-MCP-Tools"
NO_DESTRUCTIVE_HEADER = "X-MCP-No-Destructive"
CREDENTIAL_HEADERS = (
    HEADER_NAMES.site_id,
    HEADER_NAMES.api_key,
    HEADER_NAMES.pipelines_api_key,
    HEADER_NAMES.app_api_key,
    HEADER_NAMES.region,
)
VALID_TOOLSETS = ("track", "pipelines", "verify")
WITHOUT_APP_API_KEY = Narrowing(no_app_api_key=True)
MAX_SHOWN = 100
"""Longest piece of a header value quoted back in an error."""


def scope_from_headers(headers: Headers, workspaces: WorkspaceClients | None, scope: CallScope) -> CallScope:
    """``scope`` narrowed by the request's headers, with the client of the request's workspace.

    ``workspaces`` is None when the server uses its environment's keys.
    """
    narrowing = scope.narrowing.combined_with(narrowing_from_headers(headers))
    client = scope.client
    if workspaces is not None:
        workspace = workspace_from_headers(headers, workspaces.default_region)
        client = workspaces.client_for(workspace)
        if workspace.app_api_key is None:
            narrowing = narrowing.combined_with(WITHOUT_APP_API_KEY)
    elif any(name in headers for name in CREDENTIAL_HEADERS):
        raise _refuse(
            "This server uses the Customer.io keys of its own environment (CUSTOMERIO_CREDENTIALS_FROM=environment) "
            "and does not take keys from requests: remove the X-Customerio-* headers, or ask its operator to set "
            "CUSTOMERIO_CREDENTIALS_FROM=request"
        )
    if narrowing == scope.narrowing and client is scope.client:
        return scope
    return replace(scope, client=client, narrowing=narrowing)


def workspace_from_headers(headers: Headers, default_region: RegionChoice) -> Workspace:
    """The workspace whose keys the request carries; a missing key stays None (the call names the header)."""
    region_text = _value(headers, HEADER_NAMES.region).lower()
    if region_text and region_text not in ("us", "eu"):
        raise _refuse(f"{HEADER_NAMES.region} is {_shown(region_text)}; send us or eu, or leave it out")
    region: RegionChoice = region_text or default_region  # type: ignore[assignment]
    return Workspace(
        site_id=_value(headers, HEADER_NAMES.site_id) or None,
        api_key=_secret(_value(headers, HEADER_NAMES.api_key)),
        pipelines_api_key=_secret(_value(headers, HEADER_NAMES.pipelines_api_key)),
        region=region,
        names=HEADER_NAMES,
        app_api_key=_secret(_value(headers, HEADER_NAMES.app_api_key)),
    )


def narrowing_from_headers(headers: Headers) -> Narrowing:
    """The narrowing the request asks for (none when it sends no narrowing header)."""
    toolsets = _names(headers, TOOLSETS_HEADER, VALID_TOOLSETS, "valid toolsets: " + ", ".join(VALID_TOOLSETS))
    tools = _names(headers, TOOLS_HEADER, tuple(TOOLS_BY_NAME), "valid names are those of tools/list")
    no_destructive = False
    flag = _value(headers, NO_DESTRUCTIVE_HEADER).lower()
    if flag in ("true", "1"):
        no_destructive = True
    elif flag not in ("", "false", "0"):
        raise _refuse(f"{NO_DESTRUCTIVE_HEADER} is {_shown(flag)}; send true or false")
    return Narrowing(
        toolsets=toolsets,
        tools=tools,
        no_destructive=no_destructive,
        why_no_destructive=f"{NO_DESTRUCTIVE_HEADER}: true" if no_destructive else "",
    )


def _names(headers: Headers, header: str, valid: tuple[str, ...], hint: str) -> frozenset[str] | None:
    if header not in headers:
        return None
    given = [name.strip() for value in headers.getlist(header) for name in value.split(",") if name.strip()]
    if header == TOOLSETS_HEADER:
        given = [name.lower() for name in given]
    if not given:
        raise _refuse(f"{header} is empty; list at least one name ({hint}), or leave the header out")
    unknown = [name for name in given if name not in valid]
    if unknown:
        raise _refuse(f"{header} names unknown {_shown(', '.join(unknown))}; {hint}")
    return frozenset(given)


def _value(headers: Headers, name: str) -> str:
    """The header's value, stripped; several values of one credential header are refused, not picked from."""
    values = headers.getlist(name)
    if len(values) > 1:
        raise _refuse(f"{name} was sent {len(values)} times; send it once")
    return values[0].strip() if values else ""


def _secret(value: str) -> SecretStr | None:
    return SecretStr(value) if value else None


def _shown(value: str) -> str:
    """A client-supplied value fit to quote: cut short, control characters escaped by repr."""
    cut = value[:MAX_SHOWN] + ("…" if len(value) > MAX_SHOWN else "")
    return repr(cut)


def _refuse(problem: str) -> MCPError:
    return MCPError(
        code=INVALID_REQUEST, message=f"Invalid request header: {problem}. Nothing was sent to Customer.io."
    )
