"""Deduplication keys: the ``id`` on events and the ``messageId`` on Pipelines calls, added before sending.

Customer.io drops an event whose ``id`` (or a Pipelines call whose ``messageId``) it has already
seen, so a body that carries one is safe to send again: every retry sends the same bytes, and a
model that repeats a failed call with the same keys cannot create a duplicate. Keys a caller gave
are kept. Items are copied before a key is added, so the caller's object is never changed.

Keys are ULIDs (48-bit millisecond time, 80 random bits, Crockford base32), made here rather than
with ``python-ulid``, whose objects cost several microseconds each: a batch needs thousands at once,
and a single call's budget is tens of microseconds. The keys of one body form a monotonic sequence
(the ULID specification's own scheme for values made in the same millisecond): one random start,
incremented. The random part is exactly 16 base32 characters, so from one key to the next only the
last few change: each key's last 4 are two lookups in a table of character pairs, and the 22 before
them are written once for every run of keys that shares them (``base64.b32encode`` of every key,
pure Python in 3.11, cost 15 times as much for a batch). Tests check every key parses as a ULID
with ``python-ulid`` and carries the current time.
"""

from __future__ import annotations

import os
import time
from functools import cache
from typing import Any

_RANDOM_BITS = 80
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TAIL_BITS = 20
"""The random part's last 4 characters, written from two 10-bit pairs; the 12 before them change every 2**20 keys."""
_TAIL = (1 << _TAIL_BITS) - 1


@cache
def _pairs() -> tuple[str, ...]:
    """Every 10-bit value as two base32 characters (1,024 strings, made on first use)."""
    return tuple(first + second for first in _CROCKFORD for second in _CROCKFORD)


def _base32(value: int, pairs: int) -> str:
    """The last ``10 * pairs`` bits of ``value`` as ``2 * pairs`` base32 characters."""
    table = _pairs()
    return "".join([table[(value >> shift) & 1023] for shift in range(10 * (pairs - 1), -1, -10)])


def new_ids(count: int) -> list[str]:
    """``count`` distinct, increasing ULIDs."""
    if count <= 0:
        return []
    start = int.from_bytes(os.urandom(10), "big")
    start = min(start, (1 << _RANDOM_BITS) - count)  # never overflow the random part
    stamp = time.time_ns() // 1_000_000
    pairs = _pairs()
    ids: list[str] = []
    first, end = start, start + count
    while first < end:  # once, unless the sequence crosses a multiple of 2**20
        last = min(end, ((first >> _TAIL_BITS) + 1) << _TAIL_BITS)
        head = _base32((stamp << (_RANDOM_BITS - _TAIL_BITS)) | (first >> _TAIL_BITS), 11)  # 22 characters
        ids += [head + pairs[low >> 10] + pairs[low & 1023] for low in range(first & _TAIL, ((last - 1) & _TAIL) + 1)]
        first = last
    return ids


def with_keys(items: list[Any], name: str, indexes: list[int]) -> tuple[list[Any], list[str]]:
    """``items`` with a new key under ``name`` in each item at ``indexes``, and those keys, in order.

    The keyed items are copies, in a new list, so the caller's objects stay as they were; with nothing
    to key, ``items`` itself comes back.
    """
    if not indexes:
        return items, []
    keys = new_ids(len(indexes))
    keyed = list(items)
    for index, key in zip(indexes, keys, strict=True):
        keyed[index] = {**items[index], name: key}
    return keyed, keys


def sent_ids(body: Any) -> dict[str, Any]:
    """The deduplication keys a body carries, so a caller can correlate or resend with the same keys."""
    if not isinstance(body, dict):
        return {}
    for key in ("id", "messageId"):
        if isinstance(body.get(key), str):
            return {key: body[key]}
    batch = body.get("batch")
    if isinstance(batch, list):
        keys = [item.get("messageId", item.get("id")) if isinstance(item, dict) else None for item in batch]
        if any(keys):
            return {"batch": keys}
    return {}
