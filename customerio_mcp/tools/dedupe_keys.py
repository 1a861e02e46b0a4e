"""Deduplication keys: the ``id`` on events and the ``messageId`` on Pipelines calls, added before sending.

Customer.io drops an event whose ``id`` (or a Pipelines call whose ``messageId``) it has already
seen, so a body that carries one is safe to send again: every retry sends the same bytes, and a
model that repeats a failed call with the same keys cannot create a duplicate. Keys a caller gave
are kept. Items are copied before a key is added, so the caller's object is never changed.

A batch needs thousands of keys at once, and one ``python-ulid`` value costs microseconds: the
keys of one body are a monotonic ULID sequence (the ULID specification's own scheme for values
made in the same millisecond), the first from ``python-ulid``, the rest by incrementing its random
part, encoded in one pass.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from ulid import ULID

_RANDOM_BITS = 80
_RFC4648 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_CROCKFORD = bytes.maketrans(_RFC4648, _CROCKFORD)


def new_ids(count: int) -> list[str]:
    """``count`` distinct, increasing ULIDs."""
    if count <= 0:
        return []
    first = ULID()
    if count == 1:
        return [str(first)]
    prefix = str(first)[:10]  # the 48-bit timestamp
    start = int.from_bytes(first.bytes[6:], "big")
    start = min(start, (1 << _RANDOM_BITS) - count)  # never overflow the random part
    # 10 random bytes are exactly 16 base32 characters, so one encode serves every key.
    raw = b"".join((start + offset).to_bytes(10, "big") for offset in range(count))
    text = base64.b32encode(raw).translate(_TO_CROCKFORD).decode("ascii")
    return [prefix + text[16 * i : 16 * i + 16] for i in range(count)]


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
