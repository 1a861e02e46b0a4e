"""Deduplication keys: the ``id`` on events and the ``messageId`` on Pipelines calls, added before sending.

Customer.io drops an event whose ``id`` (or a Pipelines call whose ``messageId``) it has already
seen, so a body that carries one is safe to send again: every retry sends the same bytes, and a
model that repeats a failed call with the same keys cannot create a duplicate. Keys a caller gave
are kept. Items are copied before a key is added, so the caller's object is never changed.

Keys are ULIDs (48-bit millisecond time, 80 random bits, Crockford base32), made here rather than
with ``python-ulid``, whose objects cost several microseconds each: a batch needs thousands at once,
and a single call's budget is tens of microseconds. The keys of one body form a monotonic sequence
(the ULID specification's own scheme for values made in the same millisecond): one random start,
incremented, all encoded in one ``base64.b32encode`` call. Tests check every key parses as a ULID
with ``python-ulid`` and carries the current time.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from typing import Any

_RANDOM_BITS = 80
_RFC4648 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_CROCKFORD = bytes.maketrans(_RFC4648, _CROCKFORD)
_PADDING = 6
"""A ULID is 128 bits written as 26 base32 characters (130 bits); left-padded to 160 bits (20 bytes),
it encodes as 32 characters whose first 6 are zeros."""


def new_ids(count: int) -> list[str]:
    """``count`` distinct, increasing ULIDs."""
    if count <= 0:
        return []
    start = int.from_bytes(os.urandom(10), "big")
    start = min(start, (1 << _RANDOM_BITS) - count)  # never overflow the random part
    stamp = (time.time_ns() // 1_000_000) << _RANDOM_BITS
    raw = b"".join((stamp | (start + offset)).to_bytes(20, "big") for offset in range(count))
    text = base64.b32encode(raw).translate(_TO_CROCKFORD).decode("ascii")
    return [text[32 * i + _PADDING : 32 * i + 32] for i in range(count)]


class KeySource:
    """Hands out the keys of one body, made in one batch when first needed."""

    def __init__(self, expected: int) -> None:
        self._expected = max(1, expected)
        self._keys: Iterator[str] = iter(())

    def __call__(self) -> str:
        key = next(self._keys, None)
        if key is None:
            self._keys = iter(new_ids(self._expected))
            key = next(self._keys)
        return key


def with_key(item: dict[str, Any], name: str, keys: KeySource) -> dict[str, Any]:
    """``item`` itself if it has ``name``, else a shallow copy with a new key under ``name``."""
    if name in item:
        return item
    return {**item, name: keys()}


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
