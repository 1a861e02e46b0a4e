"""Which tools the model sees, and what the no-destructive mode refuses.

Operators choose with ``--toolsets`` / ``--tools`` and ``--no-destructive``. A tool that is not
enabled is neither listed nor callable. In no-destructive mode the tools whose only purpose is
destructive disappear, and the two v2 tools that can carry any operation refuse the destructive
ones, naming the operation, before anything is sent.
"""

from __future__ import annotations

from typing import Any

from customerio_mcp.errors import InputError
from customerio_mcp.settings import Settings
from customerio_mcp.tools.table import TOOLS, TOOLS_BY_NAME, ToolSpec

DESTRUCTIVE_ONLY = frozenset(
    {
        "delete_customer",
        "remove_customer_device",
        "suppress_customer_profile",
        "merge_customer_profiles",
        "remove_user_from_segment",
    }
)
DESTRUCTIVE_ACTIONS = frozenset({"delete", "delete_device", "delete_relationships", "suppress", "merge"})


def unknown_tool_names(settings: Settings) -> str | None:
    """Why the allow-list cannot be served (names that are no tool), or None."""
    unknown = [name for name in settings.tools or () if name not in TOOLS_BY_NAME]
    if not unknown:
        return None
    return f"unknown tool(s) {', '.join(unknown)}; valid tools: {', '.join(TOOLS_BY_NAME)}"


def enabled_tools(settings: Settings) -> tuple[ToolSpec, ...]:
    allowed = set(settings.tools) if settings.tools is not None else None
    return tuple(
        tool
        for tool in TOOLS
        if tool.api in settings.toolsets
        and (allowed is None or tool.name in allowed)
        and not (settings.disable_destructive and tool.name in DESTRUCTIVE_ONLY)
    )


def why_disabled(tool: ToolSpec, settings: Settings) -> str:
    if tool.api not in settings.toolsets:
        return f"the {tool.api} toolset is not enabled (CUSTOMERIO_TOOLSETS / --toolsets)"
    if settings.tools is not None and tool.name not in settings.tools:
        return "it is not in the allow-list (CUSTOMERIO_TOOLS / --tools)"
    return "destructive tools are disabled (CUSTOMERIO_DISABLE_DESTRUCTIVE / --no-destructive)"


def refuse_destructive_operations(tool: ToolSpec, body: dict[str, Any]) -> None:
    """In no-destructive mode, refuse v2 operations that delete, suppress, merge or remove."""
    if tool.body == "v2_entity":
        _check_operation(body, "request_body")
    elif tool.body == "v2_batch" and isinstance(body.get("batch"), list):
        for index, operation in enumerate(body["batch"]):
            _check_operation(operation, f"request_body.batch[{index}]")


def _check_operation(operation: Any, where: str) -> None:
    if isinstance(operation, dict) and operation.get("action") in DESTRUCTIVE_ACTIONS:
        raise InputError(
            f"{where}.action",
            f"is {operation['action']!r}, a destructive operation, and this server runs with destructive "
            "operations disabled",
            "remove this operation (an operator can allow it by unsetting CUSTOMERIO_DISABLE_DESTRUCTIVE)",
        )
