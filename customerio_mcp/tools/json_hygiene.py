"""Is a request body plain JSON that Customer.io can read, and what are its exact bytes?

A body arrives as a Python value (the MCP client's JSON, already parsed) or as a string we parse.
Either way it can hold what JSON cannot carry or what would crash a recursive walk: ``Infinity`` or
``NaN`` (``1e400`` parses as infinity), an integer of thousands of digits, a lone UTF-16 surrogate
escaped in a string, or nesting a thousand levels deep. Each is an input error naming the field,
found before anything is validated or sent.

The common case pays for one C-speed ``json.dumps``, whose bytes are the ones sent: the encoder
itself refuses non-finite numbers and lone surrogates, and a regular expression over its output
spots long digit runs. Only when one of those fires is the body walked, to name the field.
"""

from __future__ import annotations

import json
import math
import operator
import os
from bisect import bisect_right
from collections.abc import Callable, Iterator
from itertools import accumulate, compress, repeat
from typing import Any

from customerio_mcp.errors import InputError
from customerio_mcp.text_safety import shown
from customerio_mcp.tools.schema_errors import location

MAX_DEPTH = 64
"""Objects and arrays nested deeper than this are refused; real payloads use a handful of levels."""
MIN_BYTES_PER_LEVEL = 2
"""Each level of nesting costs at least its two brackets: a value of ``n`` encoded bytes nests at most n/2 deep."""
MAX_INTEGER_DIGITS = 20
"""An unsigned 64-bit integer has 20 digits; Customer.io cannot store a longer one as a number."""
_DIGITS = bytes.maketrans(b"0123456789", b"0000000000")
_DIGITS_ONLY = bytes(ch if ch == ord("0") else ord(" ") for ch in _DIGITS)
"""Every digit becomes ``0``, every other byte a space: a long integer is then a run of zeros."""
_LONG_RUN = b"0" * (MAX_INTEGER_DIGITS + 1)
_TOO_LONG = 10**MAX_INTEGER_DIGITS
"""The smallest magnitude with more than MAX_INTEGER_DIGITS digits."""


def _may_hold_a_long_integer(data: bytes) -> bool:
    """A fast (C-speed) test that can only err towards yes; a yes is confirmed by walking the body."""
    return _LONG_RUN in data.translate(_DIGITS_ONLY)


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False)
"""No cycle check: a body is parsed JSON, which cannot hold one, and the check cost a sixth of every encode."""


def encode(body: Any) -> bytes:
    """The exact bytes sent for ``body``: compact UTF-8 JSON."""
    return _ENCODER.encode(body).encode()


_HEX_TO_LETTERS = str.maketrans("0123456789", "ghijklmnop")


class EncodedBatch:
    """A body with a ``batch`` list, encoded once: its size at once, each item's UTF-8 text when first needed.

    A marker string goes between the items, so one C encode writes every item and ``bytes.split``
    finds where each ends (an encode per item, 5,000 of them, cost twice as much). The body's size
    is known from the encoded length without cutting, so a batch refused for its size or by its
    schema never pays for the cut. The marker is random letters: no digit to look like part of a
    long integer, and the text is cut only when the marker occurs exactly where it was put; a body
    that happens to hold it is encoded again with another.

    Encoding the markers costs about 0.1 µs an item: with ``plain_first``, for a flood of tiny items,
    a plain encode checks and measures the body, and the markers are written only if its items'
    texts are asked for (which the checks that refuse a flood make rare).
    """

    def __init__(self, body: dict[str, Any], where: str = "request_body", plain_first: bool = False) -> None:
        """Encode ``body``, refusing what ``check_and_encode`` refuses."""
        self._body, self._where, self._count = body, where, len(body["batch"])
        self._items: list[bytes] | None = None
        self._before = self._after = self._data = self._marker = b""
        if plain_first:
            self._size = len(_checked_bytes(body, body, where))
        else:
            self._encode()
            # Plain JSON has neither the n + 1 markers nor 2n commas around the items, but n - 1 between them.
            count = self._count
            self._size = len(self._data) - (count + 1) * len(self._marker) - 2 * count + max(0, count - 1)

    def _encode(self) -> None:
        marker = os.urandom(6).hex().translate(_HEX_TO_LETTERS)
        spaced = [marker] * (2 * self._count + 1)
        spaced[1::2] = self._body["batch"]
        self._marker = f'"{marker}"'.encode()
        self._data = _checked_bytes({**self._body, "batch": spaced}, self._body, self._where)

    def size(self) -> int:
        """The body's size as plain JSON."""
        return self._size

    @property
    def items(self) -> list[bytes]:
        """Each item's text, cut from the encoded body on first use."""
        if self._items is None:
            pieces = self._data.split(self._marker) if self._marker else []
            while len(pieces) != self._count + 2:  # not encoded with markers yet, or the body holds the marker
                self._encode()
                pieces = self._data.split(self._marker)
            # The body up to "[", then ",item," for each item, then the rest from "]".
            self._before, self._after = pieces[0], pieces[-1]
            self._items = [piece[1:-1] for piece in pieces[1:-1]]
        return self._items

    def item_sizes(self) -> list[int]:
        return list(map(len, self.items))

    def add_keys(self, name: str, indexes: list[int], keys: list[str]) -> None:
        """Items ``indexes`` with ``"name": key`` appended, as the encoder writes ``{**item, name: key}``.

        Keys are ASCII names and ULIDs, so the text can be spliced instead of encoding the item again.
        """
        items = self.items
        for index, key in zip(indexes, keys, strict=True):
            item, member = items[index], f'"{name}":"{key}"}}'.encode()
            items[index] = b"{" + member if item == b"{}" else item[:-1] + b"," + member

    def content(self) -> bytes:
        """The exact bytes to send.

        Nothing in them needs checking again: the body's text was checked when encoded, and keys are strings.
        """
        items = self.items
        return self._before + b",".join(items) + self._after


def parse(text: str, where: str) -> Any:
    """Parse a body given as a string, turning every way it can fail into an InputError."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InputError(
            where,
            f"is a string but not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
            "send a JSON object (preferably as an object, not a string), with double-quoted keys and no "
            "trailing commas",
        ) from exc
    except RecursionError as exc:
        raise _too_deep(where) from exc
    except _NonFinite as exc:
        raise _non_finite(where, exc.args[0]) from exc
    except ValueError as exc:  # Python refuses integers of more than 4,300 digits
        raise InputError(
            where,
            "holds an integer too long to be a number",
            f"send numbers of at most {MAX_INTEGER_DIGITS} digits (longer identifiers as strings)",
        ) from exc


def check_and_encode(body: Any, where: str = "request_body") -> bytes:
    """Refuse what JSON or Customer.io cannot carry; return the exact bytes to send.

    Depth is the caller's to check (``check_depth``), where it is cheapest: the C encoder itself copes
    with any nesting the SDK's parser or ``parse`` let through.
    """
    return _checked_bytes(body, body, where)


def _checked_bytes(value: Any, body: Any, where: str) -> bytes:
    """``value``'s bytes, or the InputError for what JSON cannot carry in ``body``, which ``value`` encodes.

    ``value`` may be ``body`` rearranged (``EncodedBatch`` puts markers between its items), so what
    is wrong is looked for in ``body``, where the error's location means something to the caller.
    The UTF-8 encode stays inside the ``try``: a lone surrogate passes the JSON encoder and fails there.
    """
    try:
        data = _ENCODER.encode(value).encode()
    except (ValueError, UnicodeEncodeError, RecursionError, TypeError):
        raise _locate(body, where) or InputError(where, "is not plain JSON", "send a JSON object") from None
    if _may_hold_a_long_integer(data):
        problem = _locate(body, where)
        if problem is not None:
            raise problem
    return data


def can_nest(size: int, levels: int) -> bool:
    """Whether ``levels`` of nesting fit in ``size`` encoded bytes (when not, no walk is needed)."""
    return size >= MIN_BYTES_PER_LEVEL * levels


def check_depth(body: Any, where: str, limit: int = MAX_DEPTH) -> None:
    """Refuse nesting deeper than MAX_DEPTH, level by level, with the path traced only on failure.

    Each level is the containers one deeper than the last: their children are gathered by one
    ``extend`` per container, typed at C speed, and sorted out by one comprehension only when some
    are containers, so 300,000 numbers in a list or 100,000 small objects cost a few milliseconds
    (a walk that pushed and popped each container took 120 ms). A scalar nests nothing (a batch
    item can be one).
    """
    level = [body] if type(body) is dict or type(body) is list else []
    levels: list[list[Any]] = []
    while level:
        levels.append(level)
        if len(levels) > limit:
            raise _too_deep(location(where, _path_down_to(levels)))
        children = _children(level)
        kinds = set(map(type, children))
        nested = dict in kinds or list in kinds
        level = [child for child in children if type(child) is dict or type(child) is list] if nested else []


def _children(level: list[Any]) -> list[Any]:
    """Every member value and item of the containers of ``level``, in order."""
    children: list[Any] = []
    extend = children.extend
    for value in level:
        extend(value.values() if type(value) is dict else value)
    return children


def _path_down_to(levels: list[list[Any]]) -> tuple[Any, ...]:
    """The path from the body to the first container of the last level.

    Each container's parent is found, level by level upwards, by its identity among the level
    above's children and the running count of their children (C-speed passes, on failure only).
    """
    child = levels[-1][0]
    path: list[Any] = []
    for level in reversed(levels[:-1]):
        index = list(map(id, _children(level))).index(id(child))
        ends = list(accumulate(map(len, level)))
        position = bisect_right(ends, index)
        parent = level[position]
        offset = index - (ends[position - 1] if position else 0)
        path.append(list(parent)[offset] if type(parent) is dict else offset)
        child = parent
    return tuple(reversed(path))


_CONTAINER_TYPES = frozenset({dict, list})
_JSON_TYPES = frozenset({dict, list, str, int, float, bool, type(None)})


def _locate(body: Any, where: str) -> InputError | None:
    """The first value JSON cannot carry in ``body``, in document order, or None.

    Containers are walked, each one's scalars searched at C speed (``_first_bad_scalar``), never
    value by value in Python: a megabyte of numbers whose last is NaN, or of 21-digit strings
    (which the long-integer test flags), took 0.2 s that way.
    """
    stack: list[tuple[Any, tuple[Any, ...]]] = [(body, ())]
    while stack:
        value, path = stack.pop()
        if type(value) is not dict and type(value) is not list:
            return _problem(value, location(where, path))
        keys = list(value) if type(value) is dict else range(len(value))
        values = list(value.values()) if type(value) is dict else value
        if type(value) is dict and _holds_bad_keys(keys):
            key = next(key for key in keys if not isinstance(key, str) or _bad_text(key))
            return InputError(
                location(where, path), f"has a key that is not valid text ({shown(key)})", "use plain text keys"
            )
        # Children in document order: containers to walk, and the first bad scalar (nothing after it matters).
        bad = _first_bad_scalar(values)
        upto = len(values) if bad is None else bad + 1
        wanted = [
            (values[index], (*path, keys[index]))
            for index in compress(range(upto), map(_CONTAINER_TYPES.__contains__, map(type, values[:upto])))
        ]
        if bad is not None:
            wanted.append((values[bad], (*path, keys[bad])))
        stack.extend(reversed(wanted))
    return None


def _holds_bad_keys(keys: list[Any]) -> bool:
    if set(map(type, keys)) - {str}:
        return True
    return _bad_text("".join(keys))


def _first_bad_scalar(values: list[Any]) -> int | None:
    """The index of the first scalar in ``values`` JSON cannot carry, or None; each kind searched at C speed.

    Floats for non-finite ones, integers for more than MAX_INTEGER_DIGITS digits, strings (only when
    their concatenation does not encode) for lone surrogates, and anything of another type.
    """
    kinds = list(map(type, values))
    present = set(kinds)
    found: list[int | None] = []
    if float in present:
        found.append(_first_of(values, kinds, float, lambda floats: map(operator.not_, map(math.isfinite, floats))))
    if int in present:
        found.append(_first_of(values, kinds, int, lambda ints: map(operator.ge, map(abs, ints), repeat(_TOO_LONG))))
    if str in present and _bad_text("".join(compress(values, map(operator.is_, kinds, repeat(str))))):
        found.append(_first_of(values, kinds, str, lambda texts: map(_bad_text, texts)))
    if present - _JSON_TYPES:
        others = compress(range(len(values)), map(operator.not_, map(_JSON_TYPES.__contains__, kinds)))
        found.append(next((index for index in others if _problem(values[index], "") is not None), None))
    return min((index for index in found if index is not None), default=None)


def _first_of(values: list[Any], kinds: list[type], kind: type, failing: Callable[[Iterator[Any]], Any]) -> int | None:
    """The index of the first value of type ``kind`` for which ``failing`` (mapped over them) is true."""
    indexes = list(compress(range(len(values)), map(operator.is_, kinds, repeat(kind))))
    return next(compress(indexes, failing(map(values.__getitem__, indexes))), None)


def _problem(value: Any, field: str) -> InputError | None:
    """Why the scalar ``value`` (at ``field``) cannot be sent, or None; by exact type first, as that is cheapest."""
    kind = type(value)
    if kind is str or kind is bool or value is None or (kind is float and math.isfinite(value)):
        return _lone_surrogate(field) if kind is str and _bad_text(value) else None
    if kind is int:
        if abs(value) < _TOO_LONG:
            return None
        return InputError(
            field,
            f"is an integer of {len(str(abs(value))):,} digits; at most {MAX_INTEGER_DIGITS} fit in a number",
            "send a shorter number, or the value as a string",
        )
    if kind is float:
        return _non_finite(field, repr(value))
    if isinstance(value, dict | list | str | int | float):  # a subclass: the encoder took it, so can Customer.io
        return None
    return InputError(field, f"is {type(value).__name__}, not a JSON value", "send plain JSON values")


def _lone_surrogate(field: str) -> InputError:
    return InputError(
        field,
        "holds a lone UTF-16 surrogate (an escape such as \\ud800 without its pair), which is not text",
        "remove the escape or send the complete character",
    )


def _bad_text(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


class _NonFinite(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NonFinite(name)


def _non_finite(field: str, value: str) -> InputError:
    return InputError(
        field,
        f"is {value}, which JSON cannot carry (numbers must be finite)",
        "send a finite number, or null",
    )


def _too_deep(field: str) -> InputError:
    return InputError(
        field,
        f"nests objects or arrays more than {MAX_DEPTH} levels deep",
        "flatten the data; real payloads need only a few levels",
    )
