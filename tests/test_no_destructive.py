"""No-destructive mode refuses everything that deletes, suppresses or merges, naming the item, and nothing else.

Destruction can hide inside content: a v2 operation, a Pipelines semantic event ("User Deleted"), an alias
call in a batch, a person update that deletes relationships. Each is refused before anything is sent,
with the field that holds it; calls without one go through untouched.
"""

from __future__ import annotations

from typing import Any

import pytest

from customerio_mcp.settings import Settings
from customerio_mcp.tools.operations import destructive_operations
from customerio_mcp.tools.selection import DESTRUCTIVE_ONLY
from customerio_mcp.tools.table import TOOLS_BY_NAME
from tests.conftest import connect, settings_for
from tests.fake_customerio import FakeCustomerIO

SAFE_V2 = {"type": "person", "action": "identify", "identifiers": {"id": "2"}, "attributes": {"plan": "pro"}}


async def listed(settings: Settings) -> set[str]:
    async with connect(settings) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


async def test_tools_whose_only_purpose_destroys_are_hidden() -> None:
    assert {
        "delete_customer",
        "remove_customer_device",
        "suppress_customer_profile",
        "merge_customer_profiles",
        "remove_user_from_segment",
        "alias_user_identity",
    } == DESTRUCTIVE_ONLY
    names = await listed(Settings(disable_destructive=True, pipelines_api_key="k"))
    assert not names & DESTRUCTIVE_ONLY
    assert len(names) == 24 - len(DESTRUCTIVE_ONLY)
    assert {"manage_entity", "batch_process_requests", "track_user_event", "send_batch_requests"} <= names


@pytest.mark.parametrize("action", ["delete", "delete_device", "delete_relationships", "suppress", "merge"])
async def test_destructive_v2_operations_are_refused_by_name(fake: FakeCustomerIO, action: str) -> None:
    operation = {"type": "person", "action": action, "identifiers": {"id": "1"}}
    async with connect(settings_for(fake, disable_destructive=True)) as client:
        single = await client.call_tool("manage_entity", {"request_body": operation})
        batch = await client.call_tool(
            "batch_process_requests", {"request_body": {"batch": [SAFE_V2, SAFE_V2, operation]}}
        )
        allowed = await client.call_tool("batch_process_requests", {"request_body": {"batch": [SAFE_V2]}})
    assert single.is_error
    text = single.content[0].text
    assert text.startswith("`request_body.action` is a destructive operation")
    assert f"person {action}" in text
    assert "CUSTOMERIO_DISABLE_DESTRUCTIVE" in text
    assert batch.is_error
    assert batch.content[0].text.startswith("`request_body.batch[2].action` is a destructive operation")
    assert not allowed.is_error
    assert [r.raw_path for r in fake.requests] == ["/api/v2/batch"]


DESTRUCTIVE_EVENT_SPELLINGS = [
    "User Deleted",
    "User Suppressed",
    "Object Deleted",
    "Relationship Deleted",
    "Device Deleted",
    "Group Deleted",  # in the Pipelines description's complete list of Customer.io semantic events
    "user  deleted",
    # Spellings a person reads as the same name, all sent before in no-destructive mode:
    "UserDeleted",
    "user_deleted",
    "User-Deleted",
    "USER.DELETED",
    "\uff35ser Deleted",  # full-width U
    "\uff35\uff53\uff45\uff52\u3000\uff24\uff45\uff4c\uff45\uff54\uff45\uff44",  # all full-width
    "User\u200bDeleted",  # zero-width space
    "User\u00adDeleted",  # soft hyphen
    "User Deleted\x00",
    "\tUser\nSuppressed ",
    "Relationship_Deleted",
    "device-deleted",
]


@pytest.mark.parametrize("event", DESTRUCTIVE_EVENT_SPELLINGS)
async def test_semantic_events_that_delete_are_refused(fake: FakeCustomerIO, event: str) -> None:
    call = {"userId": "42", "event": event}
    async with connect(settings_for(fake, disable_destructive=True)) as client:
        single = await client.call_tool("track_user_event", {"request_body": call})
        batch = await client.call_tool(
            "send_batch_requests",
            {"request_body": {"batch": [{"type": "identify", "userId": "1"}, {"type": "track", **call}]}},
        )
        ordinary = await client.call_tool("track_user_event", {"request_body": {"userId": "42", "event": "Deleted"}})
    assert single.is_error
    assert single.content[0].text.startswith("`request_body.event` is a destructive operation")
    assert batch.is_error
    assert batch.content[0].text.startswith("`request_body.batch[1].event` is a destructive operation")
    assert "userId=42" in batch.content[0].text
    assert not ordinary.is_error
    assert len(fake.requests) == 1


@pytest.mark.parametrize("event", ["User Unsuppressed", "Device Created or Updated", "User Deleted Account", "Deleted"])
async def test_names_that_only_look_alike_are_sent(fake: FakeCustomerIO, event: str) -> None:
    body = {"userId": "42", "event": event, "context": {"device": {"token": "t-1", "type": "ios"}}}
    async with connect(settings_for(fake, disable_destructive=True)) as client:
        result = await client.call_tool("track_user_event", {"request_body": body})
    assert not result.is_error, result.content[0].text
    assert len(fake.requests) == 1


@pytest.mark.parametrize("event", DESTRUCTIVE_EVENT_SPELLINGS)
def test_confirmation_finds_the_same_destructive_events(event: str) -> None:
    """Confirmation asks about what ``destructive_operations`` finds: the same spellings, single or in a batch."""
    single = destructive_operations(TOOLS_BY_NAME["track_user_event"], {"userId": "42", "event": event})
    batch = destructive_operations(
        TOOLS_BY_NAME["send_batch_requests"], {"batch": [{"type": "track", "userId": "7", "event": event}]}
    )
    assert [(found.field, found.key) for found in single] == [("request_body", ".event")]
    assert [(found.field, found.target) for found in batch] == [("request_body.batch[0]", "userId=7")]


async def test_alias_items_in_a_batch_are_refused(fake: FakeCustomerIO) -> None:
    alias = {"type": "alias", "userId": "42", "previousId": "anon-1"}
    async with connect(settings_for(fake, disable_destructive=True)) as client:
        result = await client.call_tool("send_batch_requests", {"request_body": {"batch": [alias]}})
    assert result.is_error
    assert result.content[0].text.startswith("`request_body.batch[0].type` is a destructive operation (alias")
    assert fake.requests == []


async def test_a_person_update_that_deletes_relationships_is_refused(fake: FakeCustomerIO) -> None:
    body = {
        "email": "a@example.com",
        "cio_relationships": {
            "action": "delete_relationships",
            "relationships": [{"identifiers": {"object_type_id": "1", "object_id": "acme"}}],
        },
    }
    async with connect(settings_for(fake, disable_destructive=True)) as client:
        refused = await client.call_tool("update_or_add_person", {"person_identifier": "42", "request_body": body})
        body["cio_relationships"]["action"] = "add_relationships"
        allowed = await client.call_tool("update_or_add_person", {"person_identifier": "42", "request_body": body})
    assert refused.is_error
    assert refused.content[0].text.startswith("`request_body.cio_relationships.action` is a destructive operation")
    assert not allowed.is_error
    assert len(fake.requests) == 1


@pytest.mark.parametrize("action", [["delete"], {"delete": True}, 5, None])
async def test_odd_action_values_are_input_errors_not_crashes(fake: FakeCustomerIO, action: Any) -> None:
    operation = {"type": "person", "action": action, "identifiers": {"id": "1"}}
    async with connect(settings_for(fake, disable_destructive=True)) as client:
        result = await client.call_tool("batch_process_requests", {"request_body": {"batch": [operation]}})
    assert result.is_error
    assert result.structured_content["error"]["type"] == "invalid_input"
    assert result.structured_content["error"]["field"] == "request_body.batch[0].action"
    assert "internal error" not in result.content[0].text
    assert fake.requests == []
