"""The arguments of a tool call other than its body: names, ``mode``, flags, choices, path parameters.

Every value here comes from a model and may be anything JSON can hold (a list where a string was
expected, ``"²"`` where digits were, 200,000 characters where an id was): each is refused as an
input error naming the parameter, never as an internal error. Path parameters are percent-encoded
as exactly one segment, so no identifier can reach another endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from customerio_mcp.errors import InputError
from customerio_mcp.text_safety import shown
from customerio_mcp.tools.body_checks import PATH_PARAMETER_MAX, PERSON_ID_MAX, check_path_parameter
from customerio_mcp.tools.definitions import MODES
from customerio_mcp.tools.schema_errors import json_type
from customerio_mcp.tools.table import PathParam, QueryParam, ToolSpec

_TRUE = {"true", "1"}
_FALSE = {"false", "0"}
MAX_SEGMENT_ID = 2**63 - 1


def allowed_arguments(tool: ToolSpec) -> list[str]:
    names = [p.name for p in tool.path_params] + [q.name for q in tool.query_params]
    if tool.strict_param:
        names.append(tool.strict_param)
    if tool.name == "global_unsubscribe_user":
        names.append("set_unsubscribed_attribute")
    if tool.body is not None:
        names += ["mode", "request_body"]
    return names


def check_arguments(tool: ToolSpec, args: Mapping[str, Any]) -> None:
    """Refuse parameters the tool does not take (a misplaced body field, a typo), naming the valid ones."""
    allowed = allowed_arguments(tool)
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) if allowed else "no parameters"
        raise InputError(
            unknown[0],
            f"is not a parameter of {tool.name}",
            f"remove it; {tool.name} takes {takes}"
            + ("; body fields go inside request_body" if tool.body is not None else ""),
        )


def mode_of(args: Mapping[str, Any]) -> str:
    mode = args.get("mode", "execute")
    return choice("mode", "execute" if mode is None else mode, MODES)


def choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InputError(field, f"is {shown(value)}", f"use one of: {', '.join(choices)}")
    return value


def parse_flag(field: str, value: Any) -> bool:
    """A boolean given as a JSON boolean, 0/1, or the strings true/false/1/0 in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InputError(field, f"must be a boolean, got {shown(value)}", "pass true or false")


def query_value(param: QueryParam, value: Any) -> str | None:
    """The text of one query parameter, checked, or None when it is left out; raises InputError naming it."""
    if value is None:
        value = param.default
        if value is None:
            return None
    if param.kind == "choice":
        return choice(param.name, value, param.choices)
    if param.kind == "integer":
        number = _positive_integer(param.name, value)
        if param.maximum is not None and int(number) > param.maximum:
            raise InputError(param.name, f"is {number}, above {param.maximum}", f"pass at most {param.maximum}")
        return number
    return path_value(PathParam(param.name, param.key, param.description), value)


def encode_segment(value: str) -> str:
    """Percent-encode ``value`` as exactly one path segment (``/``, ``?``, ``#`` and dot segments too)."""
    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if encoded in {".", ".."} else encoded


def path_value(param: PathParam, value: Any) -> str:
    """The text of one path parameter, checked; raises InputError naming the parameter."""
    if value is None:
        raise InputError(param.name, "is missing", f"pass {param.description[0].lower()}{param.description[1:]}")
    if param.kind == "integer":
        return _positive_integer(param.name, value)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(param.name, f"must be a string, not {json_type(value)}", "pass the identifier as text")
    if isinstance(value, int) and abs(value) > MAX_SEGMENT_ID:
        raise InputError(param.name, f"is a number of {len(str(abs(value)))} digits", "pass the identifier as text")
    text = str(value)
    if not text.strip():
        raise InputError(param.name, "is empty", "pass a non-empty identifier")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise InputError(
            param.name, "holds a lone UTF-16 surrogate, which is not text", "pass the identifier as plain text"
        ) from None
    check_path_parameter(param.name, text, PERSON_ID_MAX if param.kind == "person" else PATH_PARAMETER_MAX)
    return text


def _positive_integer(field: str, value: Any) -> str:
    """Digits 0-9 only (``"²"`` and ``"٣"`` are digits to Python, not to Customer.io), within 64 bits."""
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdecimal() and len(text) <= 19:
            value = int(text)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SEGMENT_ID:
        raise InputError(
            field,
            f"must be a positive whole number (digits 0-9, at most 19 of them), got {shown(value)}",
            "pass the numeric ID",
        )
    return str(value)
