"""Deduplication keys are real ULIDs: the current time, distinct, increasing, and kept when the caller gave one."""

from __future__ import annotations

import time

from ulid import ULID

from customerio_mcp.tools.body_checks import prepare_body
from customerio_mcp.tools.dedupe_keys import new_ids, sent_ids
from customerio_mcp.tools.table import TOOLS_BY_NAME


def test_keys_are_ulids_of_now_distinct_and_increasing() -> None:
    before = time.time()
    keys = new_ids(5_000)
    after = time.time()
    assert len(set(keys)) == len(keys) == 5_000
    assert keys == sorted(keys)
    for key in keys[:50] + keys[-50:]:
        parsed = ULID.from_str(key)  # python-ulid, the reference implementation, reads each one back
        assert str(parsed) == key
        assert before - 0.002 <= parsed.timestamp <= after + 0.002
    assert new_ids(1)[0] != new_ids(1)[0]
    assert new_ids(0) == []


def test_a_batch_gets_one_key_per_item_and_keeps_the_callers() -> None:
    batch = {
        "batch": [{"type": "track", "userId": "1", "event": "e"}] * 3
        + [{"type": "identify", "userId": "1", "messageId": "mine"}]
    }
    sent = prepare_body(TOOLS_BY_NAME["send_batch_requests"], batch).body
    keys = sent_ids(sent)["batch"]
    assert keys[3] == "mine"
    assert len(set(keys[:3])) == 3
    assert all(ULID.from_str(key) for key in keys[:3])


def test_v2_keys_go_only_on_person_events() -> None:
    operations = [
        {"type": "person", "action": "event", "identifiers": {"id": "1"}, "name": "e"},
        {"type": "person", "action": "identify", "identifiers": {"id": "1"}},
        {"type": "person", "action": "page", "identifiers": {"id": "1"}, "name": "/"},
    ]
    sent = prepare_body(TOOLS_BY_NAME["batch_process_requests"], {"batch": operations}).body
    keys = sent_ids(sent)["batch"]
    assert keys[1] is None
    assert keys[0]
    assert keys[2]
