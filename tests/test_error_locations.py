"""Errors point at the field to fix, in the branch the body's own ``type``/``action`` selects.

Before, ``manage_entity {"type":"person","action":"event","identifiers":{"id":"u1"}}`` answered
"`request_body.type`: 'person' is not one of ['delivery']", and a model changed the wrong field.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import connect, settings_for
from tests.fake_customerio import FakeCustomerIO

PERSON = {"type": "person", "identifiers": {"id": "u1"}}

# tool, body, the field named, words the message must hold
CASES: list[tuple[str, dict[str, Any], str, list[str]]] = [
    ("manage_entity", {**PERSON, "action": "event"}, "request_body.name", ["is required for a person `event`"]),
    (
        "manage_entity",
        {**PERSON, "action": "add_device", "device": {"id": "tok", "platform": "ios"}},  # the v1 device shape
        "request_body.device.token",
        ["is required for a person `add_device`"],
    ),
    (
        "manage_entity",
        {**PERSON, "action": "add_device", "device": {"token": "tok", "platform": "windows"}},
        "request_body.device.platform",
        ['must be one of "ios", "android"', '(got "windows")'],
    ),
    (
        "manage_entity",
        {**PERSON, "action": "fly"},
        "request_body.action",
        [
            "not a valid `type`/`action`",
            "person: identify, delete, event",
            "object: identify, identify_anonymous",
            "delivery: event",
        ],
    ),
    (
        "manage_entity",
        {"type": "robot", "action": "identify", "identifiers": {"id": "1"}},
        "request_body.type",
        ["not a valid `type`/`action`", "person: identify"],
    ),
    ("manage_entity", {"action": "identify", "identifiers": {"id": "1"}}, "request_body.type", ["is required"]),
    (
        "manage_entity",
        {"type": "object", "action": "identify", "identifiers": {"object_type_id": 1, "object_id": "acme"}},
        "request_body.identifiers.object_type_id",
        ["must be a string, not an integer (1)"],
    ),
    (
        "batch_process_requests",
        {"batch": [{**PERSON, "action": "identify"}] * 3 + [{**PERSON, "action": "event"}]},
        "request_body.batch[3].name",
        ["is required for a person `event`"],
    ),
    (
        "batch_process_requests",
        {"batch": [{**PERSON, "action": "event", "name": "e", "timestamp": 1_700_000_000_000}]},
        "request_body.batch[0].timestamp",
        ["unix time in whole seconds, e.g. 1700000000", "divide milliseconds by 1000"],
    ),
    ("batch_process_requests", {"batch": []}, "request_body.batch", ["has 0 items; at least 1 required"]),
    (
        "send_customer_event",
        {"name": "e", "type": "page", "timestamp": "2024-01-01T00:00:00Z"},
        "request_body.timestamp",
        ["unix time in whole seconds"],
    ),
    (
        "send_customer_event",
        {"name": "e", "type": "click"},
        "request_body.type",
        ["valid `type`", "event, page, screen"],
    ),
    (
        "send_batch_requests",
        {"batch": [{"type": "track", "userId": "1", "event": "e"}, {"type": "group", "userId": "1"}]},
        "request_body.batch[1].groupId",
        ["is required for a `group` call"],
    ),
    (
        "send_batch_requests",
        {"batch": [{"type": "track", "event": "e", "userId": None, "anonymousId": None}]},
        "request_body.batch[0]",
        ["needs `userId` or `anonymousId`"],
    ),
    ("identify_person_and_assign_traits", {"traits": {"a": 1}}, "request_body", ["needs `userId` or `anonymousId`"]),
    ("add_to_group", {"userId": "1"}, "request_body.groupId", ["is required"]),
    (
        "add_people_to_segment",
        {"ids": [str(i) for i in range(1001)]},
        "request_body.ids",
        ["has 1,001 items; at most 1,000 allowed"],
    ),
    (
        "merge_customer_profiles",
        {"primary": {"id": "1", "email": "a@example.com"}, "secondary": {"id": "2"}},
        "request_body.primary",
        ["has 2 properties; at most 1 allowed"],
    ),
]
PATHS = {
    "add_people_to_segment": {"segment_identifier": 7},
    "send_customer_event": {"customer_identifier": "1"},
    "submit_form_response": {"form_identifier": "f1"},
}


@pytest.mark.parametrize(("tool", "body", "field", "words"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
async def test_the_error_names_the_field_to_fix(
    fake: FakeCustomerIO, tool: str, body: dict[str, Any], field: str, words: list[str]
) -> None:
    async with connect(settings_for(fake)) as client:
        result = await client.call_tool(tool, {**PATHS.get(tool, {}), "request_body": body})
    assert result.is_error
    text = result.content[0].text
    assert result.structured_content["error"]["field"] == field, text
    assert text.startswith(f"`{field}` "), text
    for word in words:
        assert word in text, text
    assert fake.requests == []


async def test_echoed_values_are_cut_and_control_characters_neutralised(fake: FakeCustomerIO) -> None:
    long_name = "x" * 5_000
    async with connect(settings_for(fake)) as client:
        value = await client.call_tool(
            "manage_entity", {"request_body": {**PERSON, "action": "event", "name": 5, "attributes": []}}
        )
        action = await client.call_tool("manage_entity", {"request_body": {**PERSON, "action": long_name + "\nforged"}})
        tool = await client.call_tool("no\nsuch " + long_name, {})
    for result in (value, action, tool):
        text = result.content[0].text
        assert result.is_error
        assert "\n" not in text.split("Fix:")[0], text
    assert len(action.content[0].text) < 1_200
    assert "xxxxx…" in action.content[0].text
    assert "\\nforged" not in action.content[0].text  # cut before it
    assert "no\\nsuch" in tool.content[0].text
    assert len(tool.content[0].text.split("Fix:")[0]) < 200
    assert fake.requests == []


async def _refusal(fake: FakeCustomerIO, tool: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    async with connect(settings_for(fake)) as client:
        result = await client.call_tool(tool, {**PATHS.get(tool, {}), "request_body": body})
    assert result.is_error
    assert fake.requests == []
    return result.content[0].text, result.structured_content["error"]


async def test_of_several_wrong_items_the_first_is_named_and_the_others_counted(fake: FakeCustomerIO) -> None:
    # jsonschema's relevance prefers the last sibling: this named `ids[1]` and said nothing of `ids[0]`.
    text, error = await _refusal(fake, "add_people_to_segment", {"ids": [101, 102]})
    assert error["field"] == "request_body.ids[0]", text
    assert error["more_failing"] == 1
    assert "more_failing_at_least" not in error
    assert text.startswith(
        "`request_body.ids[0]` must be a string (Customer.io's docs define `ids` as strings, numeric ids too), not "
        "an integer (101), and 1 more item fails the same way."
    )


async def test_a_long_array_names_its_first_wrong_item_and_counts_the_rest_exactly(fake: FakeCustomerIO) -> None:
    ids: list[Any] = [str(i) if i % 7 != 3 else i for i in range(600)]
    wrong = [i for i, value in enumerate(ids) if isinstance(value, int)]
    text, error = await _refusal(fake, "add_people_to_segment", {"ids": ids})
    assert error["field"] == f"request_body.ids[{wrong[0]}]" == "request_body.ids[3]", text
    assert error["more_failing"] == len(wrong) - 1 == 85
    assert f"and {len(wrong) - 1} more items fail the same way" in text


async def test_wrong_members_are_named_in_the_bodys_order(fake: FakeCustomerIO) -> None:
    # Form fields are free-form members (additionalProperties): jsonschema walked them as a set.
    body = {"data": {"email": "a@example.com", "zip": 1, "age": 2, "city": "Paris"}}
    text, error = await _refusal(fake, "submit_form_response", body)
    assert error["field"] == "request_body.data.zip", text
    assert "and 1 more field fails the same way" in text


async def test_thousands_of_wrong_members_are_counted_up_to_a_bound(fake: FakeCustomerIO) -> None:
    """Explaining walks the body in pure Python: it stops counting after 100 more, and says so."""
    body = {"data": {"email": "a@example.com", **{f"k{i}": i for i in range(5_000)}}}
    text, error = await _refusal(fake, "submit_form_response", body)
    assert error["field"] == "request_body.data.k0", text
    assert error["more_failing"] == 100
    assert error["more_failing_at_least"] is True
    assert "and at least 100 more fields fail the same way" in text


async def test_different_rules_broken_in_one_place_are_not_counted_as_more(fake: FakeCustomerIO) -> None:
    no_identifiers_no_name = {"type": "person", "action": "event"}
    text, error = await _refusal(fake, "manage_entity", no_identifiers_no_name)
    assert "more_failing" not in error, text
    assert "same way" not in text


async def test_member_names_in_a_field_path_are_cut_and_neutralised(fake: FakeCustomerIO) -> None:
    """A member name is client text too: 8 KB of it with newlines once reached the error message whole."""
    hostile = "x\nforged" * 1_000
    text, error = await _refusal(fake, "submit_form_response", {"data": {"email": "a@example.com", hostile: 1}})
    assert "\n" not in text.split("Fix:")[0], text[:300]
    assert len(error["field"]) < 200
    assert error["field"].startswith("request_body.data.x\\nforgedx")
