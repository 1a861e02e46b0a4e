"""A batch's bytes and measured sizes are exactly what the JSON encoder writes for it, however it was encoded.

``EncodedBatch`` encodes a batch once with markers between its items and cuts the text at them
(or, for a flood of tiny items, measures it with a plain encode first); keys are spliced into the
items' texts. Each of these must give the same bytes as encoding the final body whole.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from customerio_mcp.tools import json_hygiene
from customerio_mcp.tools.dedupe_keys import new_ids
from customerio_mcp.tools.json_hygiene import EncodedBatch


def _plain(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


SHARED = {"type": "track", "userId": "1", "event": "e"}
BATCHES: list[dict[str, Any]] = [
    {"batch": []},
    {"batch": [{}]},
    {"batch": [{}, {"a": 1}, {}]},
    {"batch": [SHARED, SHARED, SHARED]},
    {"context": {"ip": "1.2.3.4"}, "batch": [{"x": ["é", "日本", "\u2028", "\x00", '"', "\\"]}], "integrations": None},
    {"batch": [{"n": 12345678901234567890, "f": 1.5e300, "t": True, "z": None, "deep": [[[{"k": []}]]]}]},
]


@pytest.mark.parametrize("plain_first", [False, True])
@pytest.mark.parametrize("body", BATCHES, ids=lambda body: str(len(_plain(body))))
def test_sizes_and_bytes_are_the_encoders(body: dict[str, Any], plain_first: bool) -> None:
    encoded = EncodedBatch(body, plain_first=plain_first)
    assert encoded.size() == len(_plain(body))
    assert encoded.item_sizes() == [len(_plain(item)) for item in body["batch"]]
    assert encoded.content() == _plain(body)
    indexes = list(range(0, len(body["batch"]), 2))
    keys = new_ids(len(indexes))
    encoded.add_keys("messageId", indexes, keys)
    keyed = list(body["batch"])
    for index, key in zip(indexes, keys, strict=True):
        keyed[index] = {**keyed[index], "messageId": key}
    assert encoded.content() == _plain({**body, "batch": keyed})
    assert encoded.item_sizes() == [len(_plain(item)) for item in keyed]


def test_a_body_holding_the_marker_is_encoded_again_with_another(monkeypatch: pytest.MonkeyPatch) -> None:
    randoms = iter([b"\x00" * 6, b"\x11" * 6])
    monkeypatch.setattr(json_hygiene.os, "urandom", lambda size: next(randoms))
    first_marker = (b"\x00" * 6).hex().translate(json_hygiene._HEX_TO_LETTERS)
    body = {"batch": [{"a": first_marker}, first_marker, [first_marker, 1]]}
    encoded = EncodedBatch(body)
    assert encoded.size() == len(_plain(body))
    assert encoded.item_sizes() == [len(_plain(item)) for item in body["batch"]]
    assert encoded.content() == _plain(body)
    assert next(randoms, None) is None  # the second marker was used
