"""The answer to a stdio line the SDK could not read as a JSON-RPC message.

The SDK's stdio reader hands the server a pydantic ``ValidationError`` for such a line, and the
server drops it: a ``tools/call`` nested beyond the parser's ~200 levels, holding a lone surrogate
escape or a 5,000-digit number got no answer at all, and its client waited forever (HTTP answers
400 with a JSON-RPC error). Here every such line that could be a request gets a JSON-RPC error:

- ``-32700`` Parse error when the SDK's JSON parser refused the text (``json_invalid``);
- ``-32600`` Invalid Request when it is JSON but not a JSON-RPC message (an array, a string, a
  request without ``method``).

Either carries the line's ``id`` when one can be recovered: the top-level ``id`` member only, never
one nested in the arguments, read with the standard library's parser (which takes what the SDK's
refuses: deep nesting to ~1,000 levels, lone surrogates, long numbers) or, beyond that, by a scan
that tracks nesting outside strings (``_scanned_id``; an ``id`` written with escapes, such as
``"\u0069d"``, is not recognised there). Otherwise the id is ``null``, as JSON-RPC 2.0 says. A JSON
object that has no ``id`` but names a ``method`` is a notification, which is never answered; a
blank line is ignored.

A line that is the client's answer to one of the server's own requests (an ``id``, a ``result`` or
an ``error``, no ``method``: a confirmation's ``elicitation/create`` answered ``"result": "accept"``)
is not answered back: that request gets the error instead (``Refusal.for_server``), so it fails at
once, as an answer it cannot read, rather than waiting for one until its timeout.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from pydantic import ValidationError

from customerio_mcp.text_safety import clip

SCAN_LIMIT = 1 << 20
"""Characters of an unparseable line searched for its top-level ``id``; beyond them it stays unknown."""
LARGE_LINE = 1 << 16
"""A refused line longer than this is looked at on a worker thread (a megabyte of strings takes ~0.1 s)."""
_INTEGER_DIGITS_MAX = 100
"""Longer integers are not parsed while looking for the id (Python refuses more than 4,300 digits)."""
_SHOWN_MEMBERS_MAX = 100
"""A longer array or object is logged by its size, not encoded only to be cut."""


@dataclass(frozen=True)
class Refusal:
    """What a refused line gets: the error to write (None for a notification or a blank line), why, and what it said."""

    answer: types.JSONRPCError | None
    reason: str
    excerpt: str = ""
    """The start of the line, made safe for a log line."""
    for_server: types.JSONRPCError | None = None
    """A malformed answer to the server's own request: the error that request receives in its place."""


def refusal_for(error: Exception) -> Refusal:
    """The answer to the line whose parse raised ``error`` (what the SDK's reader put on the stream)."""
    if not isinstance(error, ValidationError):
        return Refusal(None, f"unreadable input ({type(error).__name__})")
    details = error.errors(include_url=False)
    first = details[0] if details else {}
    if first.get("type") == "json_invalid":
        text = first.get("input")
        text = text if isinstance(text, str) else ""
        if not text.strip():
            return Refusal(None, "a blank line")
        message = first.get("ctx", {}).get("error") or first.get("msg", "")
        top = _top_level(text)
        return _answer(types.PARSE_ERROR, f"Parse error: {message}", top, "not JSON the server can parse", text)
    value = _top_value(details)
    big = isinstance(value, list | dict) and len(value) > _SHOWN_MEMBERS_MAX
    # Valid JSON the SDK parsed: it nests at most ~200 deep, so encoding it cannot recurse too far.
    shown = f"({type(value).__name__} of {len(value):,})" if big else json.dumps(value, default=repr)[:200]
    return _answer(
        types.INVALID_REQUEST, "Invalid Request: not a JSON-RPC message", _of_object(value), "not JSON-RPC", shown
    )


def line_size(error: Exception) -> int:
    """How long the refused line is, when the error quotes it (a JSON parse error does)."""
    if isinstance(error, ValidationError):
        quoted = next(iter(error.errors(include_url=False)), {}).get("input")
        return len(quoted) if isinstance(quoted, str) else 0
    return 0


def _answer(code: int, message: str, top: _Top, reason: str, text: str) -> Refusal:
    excerpt = clip(text)
    if top.is_notification:
        return Refusal(None, f"{reason} (a notification: not answered)", excerpt)
    error = types.ErrorData(code=code, message=message)
    if top.is_response:
        if top.request_id is None:
            return Refusal(None, f"{reason} (an answer, to no request the server can tell)", excerpt)
        answered = types.JSONRPCError(jsonrpc="2.0", id=top.request_id, error=error)
        return Refusal(None, f"{reason} (the answer to the server's request {top.request_id!r})", excerpt, answered)
    return Refusal(types.JSONRPCError(jsonrpc="2.0", id=top.request_id, error=error), reason, excerpt)


@dataclass(frozen=True)
class _Top:
    """What the line's top level says: its id (None when unknown or invalid), and whether it is a notification."""

    request_id: int | str | None = None
    is_notification: bool = False
    is_response: bool = False
    """An answer to one of the server's own requests: an ``id``, a ``result`` or an ``error``, no ``method``."""


def _of_object(value: Any) -> _Top:
    if not isinstance(value, dict):
        return _Top()
    if "id" not in value:
        return _Top(is_notification=isinstance(value.get("method"), str))
    answers = "method" not in value and ("result" in value or "error" in value)
    return _Top(_valid_id(value["id"]), is_response=answers)


def _valid_id(value: Any) -> int | str | None:
    """``value`` when it can be echoed as a JSON-RPC id (an integer or text that can be encoded), else None."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return None
    return value


def _top_value(details: list[Any]) -> Any:
    """The whole of a line that is JSON but no message: pydantic quotes it in an error about the whole value
    (``model_type``) or about a member it lacks (``missing``, whose input is the object itself); else None."""
    for detail in details:
        location = detail.get("loc", ())
        if len(location) == 1 or (len(location) == 2 and detail.get("type") == "missing"):
            return detail.get("input")
    return None


def _small_int(digits: str) -> int | None:
    return int(digits) if len(digits.lstrip("-")) <= _INTEGER_DIGITS_MAX else None


def _top_level(text: str) -> _Top:
    """The top level of text the SDK's parser refused, by the standard parser or else by a scan."""
    try:
        return _of_object(json.loads(text, parse_int=_small_int))
    except (ValueError, RecursionError):
        return _Top(_scanned_id(text[:SCAN_LIMIT]))


def _scanned_id(text: str) -> int | str | None:
    """The top-level ``id`` member of text that is not JSON (or nests too deep to parse).

    At C speed, every string is removed except a string ``"id"`` and, after ``"id":``, its value
    (``_STRINGS``), so the brackets left are the structure's; then only the ``"id":`` members are
    looked at, each one's depth counted from the last one's, and the first at depth 1 is read.
    """
    if not text.lstrip().startswith("{"):
        return None
    structure = "".join(filter(None, _STRINGS.split(text)))  # the kept strings, and what lies between strings
    depth, position = 0, 0
    for _, member in zip(range(_MEMBERS_MAX), _ID_MEMBER.finditer(structure), strict=False):
        between = structure[position : member.start()]
        depth += between.count("{") + between.count("[") - between.count("}") - between.count("]")
        position = member.end()  # past a string value too: its brackets are no structure
        if depth == 1:
            try:
                value = (
                    json.loads(member["value"]) if member["value"] else _ID_DECODER.raw_decode(structure, position)[0]
                )
            except (ValueError, RecursionError):
                return None
            return _valid_id(value)
    return None


_STRINGS = re.compile(r'(?P<kept>"id"\s*:\s*"(?:[^"\\]|\\.)*"|"id")|"(?:[^"\\]|\\.)*"', re.DOTALL)
"""A string: kept (group ``kept``) when it is ``"id"``, with the string value that follows ``"id":``."""
_ID_MEMBER = re.compile(r'"id"\s*:\s*(?P<value>"(?:[^"\\]|\\.)*")?', re.DOTALL)
_MEMBERS_MAX = 10_000
"""``"id"`` members looked at, at any depth, before the id is given up as unknown."""
_ID_DECODER = json.JSONDecoder(parse_int=_small_int)
