"""Text a client chose, made safe to put in a log line or an error message.

Anything a client sends (a Host header, a session id, a tool name, a field value) may be long,
may contain newlines that forge extra log lines, or terminal escape sequences that rewrite what
an operator sees. ``clip`` turns such text into one short, printable line: control characters
become visible escapes and the text is cut to a limit, saying how much was left out.

Secrets never come back out: ``redact`` replaces known secrets in anything echoed, and
``shown_url`` is how every URL-valued setting is shown (refusals, ``check``, the start line, dry
run, logs), its user name and password as ``<redacted>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

CLIP_LIMIT = 100
"""Characters of client text kept in a log line or an error message."""

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
"""C0 and C1 controls, DEL, Unicode line and paragraph separators, zero-width and bidi controls."""


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def neutralise(text: str) -> str:
    """``text`` with every control or invisible formatting character replaced by its escape."""
    return _UNSAFE.sub(_escape, text)


def clip(text: object, limit: int = CLIP_LIMIT) -> str:
    """One printable line of at most about ``limit`` characters, from any client-supplied value.

    Bytes are decoded as UTF-8 (invalid bytes replaced); anything else goes through ``str``.
    The cut is made before escaping, so the limit counts the client's characters, and a cut text
    ends with ``…(+N)`` giving how many characters were dropped.
    """
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", errors="replace")
    elif not isinstance(text, str):
        text = str(text)
    if len(text) <= limit:
        return neutralise(text)
    return f"{neutralise(text[:limit])}…(+{len(text) - limit})"


def shown(value: Any, limit: int = CLIP_LIMIT) -> str:
    """A JSON value as a short, safe excerpt for an error message (strings keep their quotes)."""
    if isinstance(value, str):
        return clip(json.dumps(value[: limit * 2], ensure_ascii=False), limit)
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (ValueError, RecursionError):
        text = repr(type(value).__name__)
    return clip(text, limit)


REDACTED = "[redacted]"
HIDDEN = "<redacted>"
"""What a URL shows in place of its user name and password (and of its query and fragment)."""
SECRET_MIN_CHARS = 8
"""Shorter values are not redacted: replacing every "a" would hide everything and protect nothing."""


def secret_texts(values: Iterable[str | None]) -> tuple[str, ...]:
    """The secrets worth redacting among ``values``: of at least ``SECRET_MIN_CHARS``, longest first."""
    return tuple(sorted({value for value in values if value and len(value) >= SECRET_MIN_CHARS}, key=len, reverse=True))


def shown_url(text: str, *, keep_query: bool = False) -> str:
    """A URL setting as it may be shown: ``scheme://<redacted>@host/path``, query and fragment ``<redacted>``.

    Everything between ``://`` (or the start, without one) and the last ``@`` is the user name and
    password, whatever characters the password holds (a ``/`` or ``#`` in it would make a URL
    parser see the host somewhere in the password); a setting's query may hold a token
    (``?password=``). ``keep_query`` keeps a request's own query (a dry-run preview). Text that is
    not a URL gets the same treatment, so a malformed value leaks nothing either.
    """
    scheme, separator, rest = text.partition("://")
    if not separator:
        scheme, rest = "", text
    if "@" in rest:
        rest = f"{HIDDEN}@{rest.rsplit('@', 1)[1]}"
    if separator and not keep_query:
        for mark in ("#", "?"):
            if mark in rest:
                rest = f"{rest.split(mark, 1)[0]}{mark}{HIDDEN}"
    return f"{scheme}{separator}{rest}"


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
