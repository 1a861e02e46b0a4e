"""Client-supplied text made safe to echo: cut short, control characters made visible.

Anything a client sent (a tool name, a field value, an identifier) can end up in an error a model
reads or in a log line an operator reads. Echoed whole, a 200 KB value floods both, and a newline
in it forges a log line. ``clip`` is the one way such text is echoed.
"""

from __future__ import annotations

import json
from typing import Any

ECHO_LIMIT = 100
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)} | {
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
}
_CONTROL.update({code: f"\\u{code:04x}" for code in range(0x80, 0xA0)})
_CONTROL.update({code: f"\\u{code:04x}" for code in (0x2028, 0x2029)})


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` with control characters escaped and cut to about ``limit`` characters (marked with …)."""
    safe = text[: limit * 2].translate(_CONTROL)
    if len(safe) > limit or len(text) > limit * 2:
        return safe[:limit] + "…"
    return safe


def shown(value: Any, limit: int = ECHO_LIMIT) -> str:
    """A JSON value as a short, safe excerpt for an error message."""
    if isinstance(value, str):
        return clip(json.dumps(value[: limit * 2], ensure_ascii=False), limit)
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (ValueError, RecursionError):
        text = repr(type(value).__name__)
    return clip(text, limit)


REDACTED = "[redacted]"


def redact(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` (a string or decoded JSON) with every occurrence of every secret replaced by ``[redacted]``.

    An upstream or a proxy may quote the request's ``Authorization`` header in its error body; whatever
    comes back from the network passes through here before it reaches a result or a log.
    """
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            if secret and secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {redact(key, secrets): redact(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item, secrets) for item in value]
    return value
