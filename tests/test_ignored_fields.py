"""Top-level fields Customer.io accepts and drops are sent as given, and the result warns of each.

Before, ``track_anonymous_event {"name": "e", "propertiez": {...}}`` passed every check and answered
"Done", and the model believed its data had landed: Customer.io ignores the field.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import call
from tests.fake_customerio import FakeCustomerIO

PERSON = {"type": "person", "identifiers": {"id": "u1"}}


async def _sent(fake: FakeCustomerIO, tool: str, arguments: dict[str, Any], **settings: Any) -> tuple[Any, Any]:
    result = await call(fake, tool, arguments, **settings)
    assert not result.is_error, result.content[0].text
    return result, fake.only_request().body


async def test_a_misspelt_event_field_is_sent_and_flagged_with_where_it_belongs(fake: FakeCustomerIO) -> None:
    body = {"name": "signed_up", "propertiez": {"plan": "pro"}}
    result, sent = await _sent(fake, "track_anonymous_event", {"request_body": body})
    assert sent["propertiez"] == {"plan": "pro"}  # Customer.io accepts the call: it goes as given
    assert result.structured_content["warnings"] == [
        {
            "field": "request_body.propertiez",
            "problem": "is not a field Customer.io reads for an event of type `event`: it accepts the call and drops "
            "this field",
            "fix": "put it inside `data`",
        }
    ]
    assert result.content[0].text.startswith("Done: POST /api/v1/events -> 200")
    assert result.content[0].text.endswith(
        "\nWarning: Customer.io ignores `request_body.propertiez`: put it inside `data`."
    )


async def test_segment_style_properties_on_a_v1_event_are_flagged(fake: FakeCustomerIO) -> None:
    body = {"name": "viewed", "type": "page", "properties": {"url": "https://example.com"}}
    result, sent = await _sent(fake, "send_customer_event", {"customer_identifier": "42", "request_body": body})
    assert sent["properties"] == body["properties"]
    [warning] = result.structured_content["warnings"]
    assert warning["field"] == "request_body.properties"
    assert "for an event of type `page`" in warning["problem"]
    assert warning["fix"] == "put it inside `data`"


async def test_near_misses_of_pipelines_fields_name_the_field_meant(fake: FakeCustomerIO) -> None:
    body = {"userId": "42", "trait": {"plan": "pro"}, "anonymousID": "a-1", "user_id": "42", "email": "a@example.com"}
    result, sent = await _sent(fake, "identify_person_and_assign_traits", {"request_body": body})
    assert {name: sent[name] for name in body} == body
    fixes = {warning["field"]: warning["fix"] for warning in result.structured_content["warnings"]}
    assert fixes == {
        "request_body.trait": "rename it to `traits`",
        "request_body.anonymousID": "rename it to `anonymousId`",
        "request_body.user_id": "rename it to `userId`",
        "request_body.email": "put it inside `traits`",
    }
    assert result.content[0].text.endswith(
        "Warning: Customer.io ignores `request_body.trait`: rename it to `traits` (and 3 more fields: see `warnings`)."
    )


async def test_batch_items_are_judged_each_by_its_own_branch(fake: FakeCustomerIO) -> None:
    calls = [{"type": "track", "userId": str(i), "event": "e", "properties": {"n": i}} for i in range(5)]
    calls[3] = {**calls[3], "propertiez": {"n": 3}}
    calls.append({"type": "identify", "userId": "9", "properties": {"plan": "pro"}})  # identify reads traits
    result, sent = await _sent(fake, "send_batch_requests", {"request_body": {"batch": calls}})
    assert sent["batch"][3]["propertiez"] == {"n": 3}
    warnings = result.structured_content["warnings"]
    assert [(w["field"], w["fix"]) for w in warnings] == [
        ("request_body.batch[3].propertiez", "rename it to `properties`"),
        ("request_body.batch[5].properties", "put it inside `traits`"),
    ]
    assert "for a `identify` call" in warnings[1]["problem"]


async def test_a_v2_operation_is_judged_by_its_type_and_action(fake: FakeCustomerIO) -> None:
    batch = [
        {**PERSON, "action": "identify", "attributes": {"plan": "pro"}, "email": "a@example.com"},
        {**PERSON, "action": "event", "name": "e", "timestamp": 1_700_000_000, "attributes": {"n": 1}},
        {**PERSON, "action": "delete", "attributes": {"n": 1}},
    ]
    result, _ = await _sent(fake, "batch_process_requests", {"request_body": {"batch": batch}})
    assert [(w["field"], w["fix"]) for w in result.structured_content["warnings"]] == [
        ("request_body.batch[0].email", "put it inside `attributes`"),
        ("request_body.batch[2].attributes", "remove it: this call reads only `action`, `identifiers`, `type`"),
    ]


async def test_free_form_bodies_and_free_form_objects_never_warn(fake: FakeCustomerIO) -> None:
    person = {"email": "a@example.com", "plan": "pro", "propertiez": 1, "anything": {"at": "all"}}
    result, _ = await _sent(fake, "update_or_add_person", {"person_identifier": "42", "request_body": person})
    assert "warnings" not in result.structured_content
    assert "Warning" not in result.content[0].text
    fake.requests.clear()
    identify = {**PERSON, "action": "identify", "attributes": {"propertiez": 1, "anything": 2}}
    result, _ = await _sent(fake, "manage_entity", {"request_body": identify})
    assert "warnings" not in result.structured_content


async def test_the_key_the_server_adds_is_never_flagged(fake: FakeCustomerIO) -> None:
    """The vendored description names no ``messageId`` for a batch's track calls; this server sends one anyway."""
    calls = [{"type": "track", "userId": "1", "event": "e"}, {"type": "track", "userId": "2", "event": "e"}]
    calls[1]["messageId"] = "m-2"
    result, sent = await _sent(fake, "send_batch_requests", {"request_body": {"batch": calls}})
    assert all(item["messageId"] for item in sent["batch"])
    assert "warnings" not in result.structured_content


async def test_a_dry_run_shows_the_warnings(fake: FakeCustomerIO) -> None:
    body = {"name": "signed_up", "propertiez": {"plan": "pro"}}
    result = await call(fake, "track_anonymous_event", {"request_body": body}, dry_run=True)
    assert not result.is_error
    assert fake.requests == []
    assert result.structured_content["dry_run"] is True
    assert [w["field"] for w in result.structured_content["warnings"]] == ["request_body.propertiez"]
    assert result.content[0].text.startswith("DRY RUN: nothing was sent")
    assert result.content[0].text.endswith(
        "Warning: Customer.io ignores `request_body.propertiez`: put it inside `data`."
    )


async def test_many_ignored_fields_are_listed_up_to_twenty_and_counted(fake: FakeCustomerIO) -> None:
    calls = [{"type": "track", "userId": str(i), "event": "e", "propertiez": {}} for i in range(30)]
    result, _ = await _sent(fake, "send_batch_requests", {"request_body": {"batch": calls}})
    warnings = result.structured_content["warnings"]
    assert [w["field"] for w in warnings[:20]] == [f"request_body.batch[{i}].propertiez" for i in range(20)]
    assert warnings[20]["field"] == "request_body"
    assert warnings[20]["problem"].startswith("has 10 more fields Customer.io ignores")
    assert len(warnings) == 21
    assert result.content[0].text.endswith("(and 29 more fields: see `warnings`).")


async def test_a_body_with_nothing_ignored_has_no_warnings_key(fake: FakeCustomerIO) -> None:
    body = {"name": "signed_up", "data": {"plan": "pro"}, "timestamp": 1_700_000_000}
    result, _ = await _sent(fake, "track_anonymous_event", {"request_body": body})
    assert "warnings" not in result.structured_content
    assert "\n" not in result.content[0].text


async def test_ignored_field_names_are_cut_and_neutralised(fake: FakeCustomerIO) -> None:
    hostile = "x\nforged" * 10_000
    result, sent = await _sent(fake, "track_anonymous_event", {"request_body": {"name": "e", hostile: 1}})
    assert sent[hostile] == 1
    [warning] = result.structured_content["warnings"]
    assert len(warning["field"]) < 200
    assert "\n" not in warning["field"]
    assert result.content[0].text.count("\n") == 1  # the one before "Warning:"
