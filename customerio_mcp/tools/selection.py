"""Which tools the model sees, and what the no-destructive mode refuses.

Operators choose with ``--toolsets`` / ``--tools`` and ``--no-destructive``; one request can only
narrow that choice further (a ``Narrowing``: an OAuth token without the destructive scope,
``X-MCP-*`` headers, a request without an App API key), never widen it. A tool that is not enabled
is neither listed nor callable. In no-destructive mode the tools whose only purpose is destructive
disappear, and the two v2 tools that can carry any operation refuse the destructive ones, naming the
operation, before anything is sent.

The ``verify`` toolset (App API reads) is served only where its key is: with
``CUSTOMERIO_APP_API_KEY`` set, or with ``CUSTOMERIO_CREDENTIALS_FROM=request`` to the requests that
carry ``X-Customerio-App-Api-Key``. It joins the default toolsets then; a ``--toolsets`` list that
names it serves it only with a key too, except in dry run, which previews its requests without one.
Without a key nothing of it shows: ``tools/list`` is exactly the 24 writing tools.

Without a Data Pipelines API key the seven Pipelines tools are not served: Customer.io issues that
API its own key, and there is no falling back to the Track key. Two exceptions: dry run, which
sends nothing and needs no key, and ``CUSTOMERIO_CREDENTIALS_FROM=request``, where each request
brings the key in ``X-Customerio-Pipelines-Api-Key`` (a call without it says to send that header).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from customerio_mcp.errors import InputError
from customerio_mcp.settings import VERIFY_TOOLSET, Settings
from customerio_mcp.tools.operations import destructive_operations
from customerio_mcp.tools.table import TOOLS, TOOLS_BY_NAME, ToolSpec

DESTRUCTIVE_ONLY = frozenset(tool.name for tool in TOOLS if tool.destructive == "always")
"""Tools whose only purpose is destructive: not served in no-destructive mode."""
NO_PIPELINES_KEY = "no Data Pipelines API key: set CUSTOMERIO_PIPELINES_API_KEY"


@dataclass(frozen=True)
class Narrowing:
    """What one request may use, within what the operator's settings allow; it can only take away."""

    toolsets: frozenset[str] | None = None
    """None: every toolset the settings enable."""
    tools: frozenset[str] | None = None
    """None: every tool the settings enable."""
    no_destructive: bool = False
    why_no_destructive: str = ""
    """Said in errors when ``no_destructive`` comes from the request, e.g. the token's missing scope."""
    no_app_api_key: bool = False
    """The request carries no App API key (``CUSTOMERIO_CREDENTIALS_FROM=request``): no verify toolset."""

    def combined_with(self, other: Narrowing) -> Narrowing:
        """What both narrowings allow: each source of narrowing (a token, headers) only takes away."""
        return Narrowing(
            toolsets=_both(self.toolsets, other.toolsets),
            tools=_both(self.tools, other.tools),
            no_destructive=self.no_destructive or other.no_destructive,
            why_no_destructive="; ".join(
                why
                for why, on in (
                    (self.why_no_destructive, self.no_destructive),
                    (other.why_no_destructive, other.no_destructive),
                )
                if on and why
            ),
            no_app_api_key=self.no_app_api_key or other.no_app_api_key,
        )


def _both(first: frozenset[str] | None, second: frozenset[str] | None) -> frozenset[str] | None:
    if first is None:
        return second
    return first if second is None else first & second


EVERYTHING = Narrowing()


def unknown_tool_names(settings: Settings) -> str | None:
    """Why the allow-list cannot be served (names that are no tool), or None."""
    unknown = [name for name in settings.tools or () if name not in TOOLS_BY_NAME]
    if not unknown:
        return None
    return f"unknown tool(s) {', '.join(unknown)}; valid tools: {', '.join(TOOLS_BY_NAME)}"


def pipelines_key_missing(settings: Settings) -> bool:
    """Whether the Pipelines tools go unserved for want of CUSTOMERIO_PIPELINES_API_KEY (see the module's rule)."""
    return settings.pipelines_api_key is None and not settings.dry_run and settings.credentials_from == "environment"


def waiting_for_pipelines_key(settings: Settings) -> tuple[ToolSpec, ...]:
    """The tools the operator's choices would serve but for the missing Pipelines key."""
    return tuple(tool for tool in TOOLS if why_disabled(tool, settings) == NO_PIPELINES_KEY)


def destructive_allowed(settings: Settings, narrowing: Narrowing = EVERYTHING) -> bool:
    return not (settings.disable_destructive or narrowing.no_destructive)


def enabled_tools(settings: Settings, narrowing: Narrowing = EVERYTHING) -> tuple[ToolSpec, ...]:
    return tuple(tool for tool in TOOLS if why_disabled(tool, settings, narrowing) is None)


def offered_tools(settings: Settings) -> tuple[ToolSpec, ...]:
    """The tools this configuration could serve at all: the verify toolset only where its key can come from.

    What a start line or ``check`` counts against ("24 of 24 tools"), so that a server without an App API
    key does not seem to be missing four tools.
    """
    return tuple(tool for tool in TOOLS if tool.toolset != VERIFY_TOOLSET or _verify_offered(settings))


def _toolset_chosen(toolset: str, settings: Settings) -> bool:
    """Whether the settings' toolsets include ``toolset``: by default the verify toolset joins track and pipelines."""
    return toolset in settings.toolsets or (toolset == VERIFY_TOOLSET and not settings.toolsets_chosen)


def _verify_offered(settings: Settings) -> bool:
    return _toolset_chosen(VERIFY_TOOLSET, settings) and (
        settings.toolsets_chosen or settings.app_api_key is not None or settings.credentials_from == "request"
    )


def _verify_needs_key(settings: Settings) -> bool:
    """A dry run of a toolset list naming verify previews its requests without a key; anything else needs one."""
    return not (settings.dry_run and settings.toolsets_chosen)


def why_disabled(tool: ToolSpec, settings: Settings, narrowing: Narrowing = EVERYTHING) -> str | None:
    """Why ``tool`` is not served to this request, or None when it is."""
    if not _toolset_chosen(tool.toolset, settings):
        return f"the {tool.toolset} toolset is not enabled (CUSTOMERIO_TOOLSETS / --toolsets)"
    if (
        tool.toolset == VERIFY_TOOLSET
        and settings.credentials_from == "environment"
        and settings.app_api_key is None
        and _verify_needs_key(settings)
    ):
        return "CUSTOMERIO_APP_API_KEY is not set (the verify toolset reads through the App API)"
    if settings.tools is not None and tool.name not in settings.tools:
        return "it is not in the allow-list (CUSTOMERIO_TOOLS / --tools)"
    if settings.disable_destructive and tool.name in DESTRUCTIVE_ONLY:
        return "destructive tools are disabled (CUSTOMERIO_DISABLE_DESTRUCTIVE / --no-destructive)"
    if tool.api == "pipelines" and pipelines_key_missing(settings):
        return NO_PIPELINES_KEY
    if narrowing.toolsets is not None and tool.toolset not in narrowing.toolsets:
        return f"this request narrowed the toolsets to {', '.join(sorted(narrowing.toolsets))}"
    if tool.toolset == VERIFY_TOOLSET and narrowing.no_app_api_key and _verify_needs_key(settings):
        return "this request carries no X-Customerio-App-Api-Key header (the verify toolset reads through the App API)"
    if narrowing.tools is not None and tool.name not in narrowing.tools:
        return "this request narrowed the tools to an allow-list without it"
    if narrowing.no_destructive and tool.name in DESTRUCTIVE_ONLY:
        return f"destructive tools are disabled for this request ({narrowing.why_no_destructive or 'no-destructive'})"
    return None


def refuse_destructive_operations(tool: ToolSpec, body: dict[str, Any], why: str) -> None:
    """In no-destructive mode, refuse the first operation in ``body`` that deletes, suppresses or merges."""
    for operation in destructive_operations(tool, body):
        raise InputError(
            f"{operation.field}{operation.key}",
            f"is a destructive operation ({operation.what} of {operation.target}), and {why}",
            "remove this operation; everything else may be sent",
        )


def why_no_destructive(settings: Settings, narrowing: Narrowing) -> str:
    if settings.disable_destructive:
        return "this server runs with destructive operations disabled (CUSTOMERIO_DISABLE_DESTRUCTIVE)"
    return f"destructive operations are disabled for this request ({narrowing.why_no_destructive or 'no-destructive'})"
