"""Every class of bad input: an isError result naming the field and the fix, and nothing sent."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import connect, settings_for
from tests.fake_customerio import FakeCustomerIO

BIG = "x" * 40_000


def _event(size: int) -> dict[str, Any]:
    """A v2 person event of exactly ``size`` bytes as compact JSON (at least 92), before its ``id`` is added."""
    event = {"type": "person", "action": "event", "identifiers": {"id": "1"}, "name": "e", "attributes": {"a": ""}}
    event["attributes"]["a"] = "x" * (size - 92)
    return event


# tool, arguments, field named in the error, words the explanation must contain
BAD_INPUTS: list[tuple[str, dict[str, Any], str, str]] = [
    ("no_such_tool", {}, "name", "which is no tool of this server"),
    (
        "send_customer_event",
        {"customer_identifier": "1", "request_body": '{"name": "e",}'},
        "request_body",
        "not valid JSON",
    ),
    ("send_customer_event", {"customer_identifier": "1", "request_body": "[1, 2]"}, "request_body", "not an array"),
    ("send_customer_event", {"customer_identifier": "1", "request_body": ["name"]}, "request_body", "not an array"),
    ("send_customer_event", {"customer_identifier": "1", "request_body": 5}, "request_body", "not an integer"),
    ("send_customer_event", {"customer_identifier": "1"}, "request_body", "is required when mode is 'execute'"),
    ("send_customer_event", {"customer_identifier": "1", "request_body": {}}, "request_body.name", "is required"),
    (
        "send_customer_event",
        {"customer_identifier": "1", "request_body": {"name": 5}},
        "request_body.name",
        "must be a string, not an integer (5)",
    ),
    (
        "send_customer_event",
        {"customer_identifier": "1", "request_body": {"name": "e", "timestamp": "yesterday"}},
        "request_body.timestamp",
        "must be unix time in whole seconds, e.g. 1700000000",
    ),
    (
        "merge_customer_profiles",
        {"request_body": {"primary": {"id": "1"}}},
        "request_body.secondary",
        "is required",
    ),
    (
        "add_device_to_customer_profile",
        {"unique_person_identifier": "1", "request_body": {"device": {}}},
        "request_body.device.id",
        "is required",
    ),
    (
        "send_customer_event",
        {"customer_identifier": "1", "mode": "run", "request_body": {"name": "e"}},
        "mode",
        "execute, get_request_schema",
    ),
    ("send_customer_event", {"request_body": {"name": "e"}}, "customer_identifier", "is missing"),
    (
        "send_customer_event",
        {"customer_identifier": "", "request_body": {"name": "e"}},
        "customer_identifier",
        "is empty",
    ),
    ("delete_customer", {"customer_identifier": "   "}, "customer_identifier", "is empty"),
    ("delete_customer", {"customer_identifier": {"id": 1}}, "customer_identifier", "must be a string"),
    ("delete_customer", {"customer_identifier": "é" * 76}, "customer_identifier", "152 bytes"),
    ("delete_customer", {"customer_identifier": "1", "force": True}, "force", "takes customer_identifier"),
    ("remove_customer_device", {"customer_identifier": "1"}, "device_unique_id", "is missing"),
    (
        "add_people_to_segment",
        {"segment_identifier": "abc", "request_body": {"ids": ["1"]}},
        "segment_identifier",
        "positive whole number",
    ),
    (
        "add_people_to_segment",
        {"segment_identifier": 0, "request_body": {"ids": ["1"]}},
        "segment_identifier",
        "positive whole number",
    ),
    (
        "add_people_to_segment",
        {"segment_identifier": True, "request_body": {"ids": ["1"]}},
        "segment_identifier",
        "positive whole number",
    ),
    (
        "add_people_to_segment",
        {"segment_identifier": 1, "identifier_type": "sms", "request_body": {"ids": ["1"]}},
        "identifier_type",
        "id, email, phone, cio_id",
    ),
    (
        "add_people_to_segment",
        {"segment_identifier": 1, "request_body": {"ids": "1"}},
        "request_body.ids",
        "must be an array, not a string",
    ),
    (
        "global_unsubscribe_user",
        {"delivery_id_for_unsubscription": "d", "set_unsubscribed_attribute": "maybe"},
        "set_unsubscribed_attribute",
        "must be a boolean",
    ),
    (
        "track_user_event",
        {"enable_strict_validation": "yes", "request_body": {"userId": "1", "event": "e"}},
        "enable_strict_validation",
        "must be a boolean",
    ),
    (
        "track_user_event",
        {"request_body": {"userId": "1", "event": "e", "type": "page"}},
        "request_body.type",
        "this tool sends 'track'",
    ),
    ("track_user_event", {"request_body": {"userId": "1"}}, "request_body.event", "is required"),
    ("alias_user_identity", {"request_body": {"userId": "1"}}, "request_body.previousId", "is required"),
    (
        "send_batch_requests",
        {"request_body": {"batch": [{"userId": "1"}]}},
        "request_body.batch[0].type",
        "is required",
    ),
    ("send_batch_requests", {"request_body": {"batch": "all"}}, "request_body.batch", "must be an array"),
    (
        "manage_entity",
        {"request_body": {"type": "person", "action": "event", "identifiers": {"id": "1"}, "name": "n" * 101}},
        "request_body.name",
        "101 bytes",
    ),
    (
        "send_customer_event",
        {"customer_identifier": "1", "request_body": {"name": "n" * 101}},
        "request_body.name",
        "at most 100 bytes",
    ),
    (
        "send_customer_event",
        {"customer_identifier": "1", "request_body": {"name": "e", "data": {"blob": "x" * 100_000}}},
        "request_body.data",
        "at most 100,000 bytes for event data",
    ),
    (
        "manage_entity",
        {
            "request_body": {
                "type": "person",
                "action": "identify",
                "identifiers": {"id": "1"},
                "attributes": {"a": BIG},
            }
        },
        "request_body",
        "at most 32,768 bytes for one v2 operation",
    ),
    (
        "batch_process_requests",
        {
            "request_body": {
                "batch": [
                    {"type": "person", "action": "identify", "identifiers": {"id": "1"}, "attributes": {"a": BIG}}
                ]
            }
        },
        "request_body.batch[0]",
        "at most 32,768 bytes for one operation",
    ),
    (
        "batch_process_requests",
        {
            "request_body": {
                "batch": [
                    {
                        "type": "person",
                        "action": "identify",
                        "identifiers": {"id": str(i)},
                        "attributes": {"a": "x" * 30_000},
                    }
                    for i in range(18)
                ]
            }
        },
        "request_body",
        "at most 512,000 bytes for a v2 batch",
    ),
    # A batch without its list, or with a scalar for an item: each was once an internal error.
    ("batch_process_requests", {"request_body": {}}, "request_body.batch", "is required"),
    ("batch_process_requests", {"request_body": {"batch": "x"}}, "request_body.batch", "must be an array"),
    ("batch_process_requests", {"request_body": {"batch": {"a": 1}}}, "request_body.batch", "must be an array"),
    ("batch_process_requests", {"request_body": {"batch": [_event(100), 5]}}, "request_body.batch[1]", "an object"),
    ("send_batch_requests", {"request_body": {"batch": [None]}}, "request_body.batch[0]", "must be an object"),
    (  # fits until its deduplication key is added: 32,767 bytes as given, 32,801 as sent
        "batch_process_requests",
        {"request_body": {"batch": [_event(100), _event(32_767)]}},
        "request_body.batch[1]",
        "is 32,801 bytes; Customer.io accepts at most 32,768 bytes for one operation",
    ),
    (  # a flood of tiny items, measured by a plain encode first
        "batch_process_requests",
        {"request_body": {"batch": [{}] * 200_000}},
        "request_body",
        "is 600,011 bytes; Customer.io accepts at most 512,000 bytes for a v2 batch",
    ),
    (
        "identify_person_and_assign_traits",
        {"request_body": {"userId": "1", "traits": {"a": BIG}}},
        "request_body",
        "one Pipelines call",
    ),
    (
        "send_batch_requests",
        {"request_body": {"batch": [{"type": "identify", "userId": "1", "traits": {"a": BIG}}]}},
        "request_body.batch[0]",
        "at most 32,768 bytes for one call",
    ),
    (
        "send_batch_requests",
        {
            "request_body": {
                "batch": [{"type": "identify", "userId": str(i), "traits": {"a": "x" * 30_000}} for i in range(18)]
            }
        },
        "request_body",
        "at most 512,000 bytes for a Pipelines batch",
    ),
]


@pytest.mark.parametrize(("tool", "arguments", "field", "explanation"), BAD_INPUTS, ids=lambda v: "")
async def test_bad_input_is_explained_and_nothing_is_sent(
    fake: FakeCustomerIO, tool: str, arguments: dict[str, Any], field: str, explanation: str
) -> None:
    async with connect(settings_for(fake)) as client:
        result = await client.call_tool(tool, arguments)
        text = result.content[0].text
        assert result.is_error
        assert text.startswith(f"`{field}` "), text
        assert explanation in text, text
        assert "Fix:" in text
        assert "Nothing was sent to Customer.io." in text
        assert result.structured_content["error"]["field"] == field
        assert "Traceback" not in text
        assert fake.requests == []
        # The server keeps serving after refusing a call.
        follow_up = await client.call_tool("delete_customer", {"customer_identifier": "still-serving"})
        assert not follow_up.is_error
        assert fake.only_request().raw_path == "/api/v1/customers/still-serving"


async def test_schema_errors_point_at_the_schema(fake: FakeCustomerIO) -> None:
    async with connect(settings_for(fake)) as client:
        result = await client.call_tool("track_anonymous_event", {"request_body": {"name": "e", "type": "page"}})
    assert not result.is_error  # a page view needs only name and type
    async with connect(settings_for(fake)) as client:
        result = await client.call_tool("track_anonymous_event", {"request_body": {"type": "page"}})
    assert result.is_error
    assert "mode='get_request_schema'" in result.content[0].text
    assert len(fake.requests) == 1
