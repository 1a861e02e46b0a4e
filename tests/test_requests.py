"""Every tool's exact request, as the fake Customer.io received it over loopback HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from ulid import ULID

from customerio_mcp.customerio.http_client import USER_AGENT
from tests.conftest import call
from tests.fake_customerio import FakeCustomerIO

PERSON = "user 1/x?y#z"
PERSON_ENCODED = "user%201%2Fx%3Fy%23z"
PHONE = "+14155552671"

# tool, arguments, method, raw path, query, body sent (None: no body; "id"/"messageId" keys: generated)
CASES: list[tuple[str, dict[str, Any], str, str, dict[str, list[str]], Any]] = [
    ("get_track_api_region", {}, "GET", "/api/v1/accounts/region", {}, None),
    (
        "update_or_add_person",
        {"person_identifier": PERSON, "request_body": {"email": "a@example.com", "plan": "pro"}},
        "PUT",
        f"/api/v1/customers/{PERSON_ENCODED}",
        {},
        {"email": "a@example.com", "plan": "pro"},
    ),
    ("delete_customer", {"customer_identifier": PERSON}, "DELETE", f"/api/v1/customers/{PERSON_ENCODED}", {}, None),
    (
        "add_device_to_customer_profile",
        {"unique_person_identifier": "42", "request_body": {"device": {"id": "tok", "platform": "ios"}}},
        "PUT",
        "/api/v1/customers/42/devices",
        {},
        {"device": {"id": "tok", "platform": "ios"}},
    ),
    (
        "remove_customer_device",
        {"customer_identifier": "42", "device_unique_id": "tok/en?1"},
        "DELETE",
        "/api/v1/customers/42/devices/tok%2Fen%3F1",
        {},
        None,
    ),
    (
        "suppress_customer_profile",
        {"unique_person_identifier": "a@example.com"},
        "POST",
        "/api/v1/customers/a%40example.com/suppress",
        {},
        None,
    ),
    ("unsuppress_customer_profile", {"customer_identifier": "42"}, "POST", "/api/v1/customers/42/unsuppress", {}, None),
    (
        "global_unsubscribe_user",
        {"delivery_id_for_unsubscription": "RPILAgABcRhIBqSp7kiPekGBIeVh"},
        "POST",
        "/unsubscribe/RPILAgABcRhIBqSp7kiPekGBIeVh",
        {},
        {"unsubscribe": True},
    ),
    (
        "global_unsubscribe_user",
        {"delivery_id_for_unsubscription": "d1", "set_unsubscribed_attribute": "FALSE"},
        "POST",
        "/unsubscribe/d1",
        {},
        {"unsubscribe": False},
    ),
    (
        "send_customer_event",
        {"customer_identifier": PERSON, "request_body": {"name": "purchase", "data": {"price": 9}}},
        "POST",
        f"/api/v1/customers/{PERSON_ENCODED}/events",
        {},
        {"name": "purchase", "data": {"price": 9}, "id": ...},
    ),
    (
        "track_anonymous_event",
        {"request_body": '{"name": "visit", "anonymous_id": "anon-1"}'},
        "POST",
        "/api/v1/events",
        {},
        {"name": "visit", "anonymous_id": "anon-1", "id": ...},
    ),
    (
        "submit_form_response",
        {"form_identifier": "news/letter", "request_body": {"data": {"email": "a@example.com"}}},
        "POST",
        "/api/v1/forms/news%2Fletter/submit",
        {},
        {"data": {"email": "a@example.com"}},
    ),
    (
        "merge_customer_profiles",
        {"request_body": {"primary": {"id": "1"}, "secondary": {"email": "b@example.com"}}},
        "POST",
        "/api/v1/merge_customers",
        {},
        {"primary": {"id": "1"}, "secondary": {"email": "b@example.com"}},
    ),
    (
        "report_custom_metrics",
        {"request_body": {"delivery_id": "d1", "metric": "clicked", "href": "https://example.com"}},
        "POST",
        "/api/v1/metrics",
        {},
        {"delivery_id": "d1", "metric": "clicked", "href": "https://example.com"},
    ),
    (
        "add_people_to_segment",
        {"segment_identifier": 7, "request_body": {"ids": ["1", "2"]}},
        "POST",
        "/api/v1/segments/7/add_customers",
        {"id_type": ["id"]},
        {"ids": ["1", "2"]},
    ),
    (
        "remove_user_from_segment",
        {"segment_identifier": "8", "identification_type": "email", "request_body": {"ids": ["a@example.com"]}},
        "POST",
        "/api/v1/segments/8/remove_customers",
        {"id_type": ["email"]},
        {"ids": ["a@example.com"]},
    ),
    (
        "manage_entity",
        {
            "request_body": {
                "type": "person",
                "action": "event",
                "identifiers": {"id": "42"},
                "name": "signed_up",
                "attributes": {"plan": "pro"},
            }
        },
        "POST",
        "/api/v2/entity",
        {},
        {
            "type": "person",
            "action": "event",
            "identifiers": {"id": "42"},
            "name": "signed_up",
            "attributes": {"plan": "pro"},
            "id": ...,
        },
    ),
    (
        "batch_process_requests",
        {
            "request_body": {
                "batch": [
                    {"type": "person", "action": "identify", "identifiers": {"id": "42"}, "attributes": {"a": 1}},
                    {"type": "person", "action": "page", "identifiers": {"id": "42"}, "name": "/home"},
                ]
            }
        },
        "POST",
        "/api/v2/batch",
        {},
        {
            "batch": [
                {"type": "person", "action": "identify", "identifiers": {"id": "42"}, "attributes": {"a": 1}},
                {"type": "person", "action": "page", "identifiers": {"id": "42"}, "name": "/home", "id": ...},
            ]
        },
    ),
    (
        "identify_person_and_assign_traits",
        {"request_body": {"userId": "42", "traits": {"email": "a@example.com"}}},
        "POST",
        "/v1/identify",
        {},
        {"userId": "42", "traits": {"email": "a@example.com"}, "type": "identify", "messageId": ...},
    ),
    (
        "track_user_event",
        {"request_body": {"userId": "42", "event": "Order Completed", "properties": {"total": 5}}},
        "POST",
        "/v1/track",
        {},
        {"userId": "42", "event": "Order Completed", "properties": {"total": 5}, "type": "track", "messageId": ...},
    ),
    (
        "send_page_view_event",
        {"request_body": {"anonymousId": "anon", "name": "Home"}},
        "POST",
        "/v1/page",
        {},
        {"anonymousId": "anon", "name": "Home", "type": "page", "messageId": ...},
    ),
    (
        "send_screen_view_event",
        {"request_body": {"userId": "42", "name": "Settings"}},
        "POST",
        "/v1/screen",
        {},
        {"userId": "42", "name": "Settings", "type": "screen", "messageId": ...},
    ),
    (
        "add_to_group",
        {"request_body": {"userId": "42", "groupId": "acme"}},
        "POST",
        "/v1/group",
        {},
        {"userId": "42", "groupId": "acme", "type": "group", "messageId": ...},
    ),
    (
        "alias_user_identity",
        {"request_body": {"userId": "42", "previousId": "anon"}},
        "POST",
        "/v1/alias",
        {},
        {"userId": "42", "previousId": "anon", "type": "alias", "messageId": ...},
    ),
    (
        "send_batch_requests",
        {
            "request_body": {
                "batch": [
                    {"type": "identify", "userId": "42", "traits": {"plan": "pro"}},
                    {"type": "track", "userId": "42", "event": "Upgraded", "messageId": "given-1"},
                ]
            }
        },
        "POST",
        "/v1/batch",
        {},
        {
            "batch": [
                {"type": "identify", "userId": "42", "traits": {"plan": "pro"}, "messageId": ...},
                {"type": "track", "userId": "42", "event": "Upgraded", "messageId": "given-1"},
            ]
        },
    ),
    # The verify toolset's App API reads (the fake serves the App API under /app).
    (
        "get_person_attributes",
        {"person_identifier": PERSON},
        "GET",
        f"/app/v1/customers/{PERSON_ENCODED}/attributes",
        {"id_type": ["id"]},
        None,
    ),
    (
        "get_person_attributes",
        {"person_identifier": PHONE, "identifier_type": "phone"},
        "GET",
        "/app/v1/customers/%2B14155552671/attributes",  # Customer.io: URL-encode the leading + as %2B
        {"id_type": ["phone"]},
        None,
    ),
    (
        "get_person_segments",
        {"person_identifier": "a@example.com", "identifier_type": "email"},
        "GET",
        "/app/v1/customers/a%40example.com/segments",
        {"id_type": ["email"]},
        None,
    ),
    (
        "get_person_activities",
        {"person_identifier": PERSON, "activity_type": "event", "activity_name": "signed up", "limit": 5, "start": "0"},
        "GET",
        f"/app/v1/customers/{PERSON_ENCODED}/activities",
        {"id_type": ["id"], "type": ["event"], "name": ["signed up"], "limit": ["5"], "start": ["0"]},
        None,
    ),
    (
        "get_object_attributes",
        {"object_type_identifier": "1", "object_identifier": "acme/1"},
        "GET",
        "/app/v1/objects/1/acme%2F1/attributes",
        {"id_type": ["object_id"]},
        None,
    ),
]


def _matches(sent: Any, expected: Any) -> bool:
    """Equal, where ``...`` in ``expected`` stands for a freshly generated ULID."""
    if expected is ...:
        return isinstance(sent, str) and ULID.from_str(sent) is not None
    if isinstance(expected, dict):
        return (
            isinstance(sent, dict)
            and sent.keys() == expected.keys()
            and all(_matches(sent[k], v) for k, v in expected.items())
        )
    if isinstance(expected, list):
        return isinstance(sent, list) and len(sent) == len(expected) and all(map(_matches, sent, expected))
    return sent == expected


def test_every_tool_is_covered() -> None:
    from customerio_mcp.tools.table import TOOLS

    assert {case[0] for case in CASES} == {tool.name for tool in TOOLS}


@pytest.mark.parametrize(("tool", "arguments", "method", "raw_path", "query", "body"), CASES, ids=lambda v: "")
async def test_exact_request(
    fake: FakeCustomerIO,
    tool: str,
    arguments: dict[str, Any],
    method: str,
    raw_path: str,
    query: dict[str, list[str]],
    body: Any,
) -> None:
    fake.app.add_person(PERSON, email="a@example.com", phone=PHONE)  # what the verify tools read
    fake.app.add_object("1", "acme/1", name="Acme")
    result = await call(fake, tool, arguments, app_api_key=fake.app_key)

    assert not result.is_error, result.content[0].text
    sent = fake.only_request()
    assert (sent.method, sent.raw_path, sent.query) == (method, raw_path, query)
    assert _matches(sent.body, body), sent.body
    api = {"/v1/": "pipelines", "/app/": "app"}.get(raw_path[: raw_path.find("/", 1) + 1], "track")
    expected_auth = {
        "track": fake.expected_track_auth(),
        "pipelines": fake.expected_pipelines_auth(),
        "app": fake.expected_app_auth(),
    }[api]
    assert sent.headers["authorization"] == expected_auth
    assert sent.headers["user-agent"] == USER_AGENT
    if body is None:
        assert "content-type" not in sent.headers
    else:
        assert sent.headers["content-type"] == "application/json"
    if api == "pipelines":
        assert sent.headers["x-strict-mode"] == "1"
    else:
        assert "x-strict-mode" not in sent.headers
    assert fake.rejections == []
    structured = result.structured_content
    assert structured["ok"] is True
    path = raw_path.removeprefix("/v1") if api == "pipelines" else raw_path.removeprefix("/app")
    assert (structured["method"], structured["path"], structured["api"]) == (method, path, api)
    assert structured["attempts"] == 1
    # With explicit URLs the region is "custom"; the lookup reports the account's own region.
    assert structured["region"] == ("us" if tool == "get_track_api_region" else "custom")


async def test_region_lookup_result_carries_url_region_and_environment(fake: FakeCustomerIO) -> None:
    fake.region = "eu"
    result = await call(fake, "get_track_api_region", {})
    assert result.structured_content["response"] == {
        "url": "https://track-eu.customer.io",
        "region": "eu",
        "environment_id": 4242,
    }
    assert "eu" in result.content[0].text


@pytest.mark.parametrize(
    ("given", "header"),
    [(True, "1"), (False, "0"), ("TRUE", "1"), ("false", "0"), ("1", "1"), ("0", "0"), ("False", "0")],
)
async def test_strict_flag_sets_header(fake: FakeCustomerIO, given: Any, header: str) -> None:
    await call(
        fake, "track_user_event", {"enable_strict_validation": given, "request_body": {"userId": "1", "event": "e"}}
    )
    await call(fake, "send_page_view_event", {"enable_strict_mode": given, "request_body": {"userId": "1"}})
    assert [r.headers["x-strict-mode"] for r in fake.requests] == [header, header]


async def test_strict_default_follows_setting(fake: FakeCustomerIO) -> None:
    await call(fake, "track_user_event", {"request_body": {"userId": "1", "event": "e"}}, pipelines_strict=False)
    assert fake.only_request().headers["x-strict-mode"] == "0"


@pytest.mark.parametrize("segment", [".", ".."])
async def test_dot_segments_cannot_change_the_endpoint(fake: FakeCustomerIO, segment: str) -> None:
    await call(fake, "delete_customer", {"customer_identifier": segment})
    assert fake.only_request().raw_path == "/api/v1/customers/" + segment.replace(".", "%2E")


async def test_caller_ids_are_kept(fake: FakeCustomerIO) -> None:
    given = str(ULID())
    result = await call(
        fake, "send_customer_event", {"customer_identifier": "1", "request_body": {"name": "e", "id": given}}
    )
    assert fake.only_request().body["id"] == given
    assert result.structured_content["sent_ids"] == {"id": given}


async def test_form_204_is_success(fake: FakeCustomerIO) -> None:
    result = await call(
        fake, "submit_form_response", {"form_identifier": "f", "request_body": {"data": {"email": "x"}}}
    )
    assert not result.is_error
    assert result.structured_content["status"] == 204
    assert result.structured_content["response"] is None


async def test_v2_batch_partial_failure_is_reported_item_by_item(fake: FakeCustomerIO) -> None:
    fake.next_response["/api/v2/batch"] = (
        207,
        {
            "errors": [
                {"batch_index": 1, "reason": "invalid", "field": "identifiers", "message": "no such person"},
                {"batch_index": 3, "reason": "too large"},
            ]
        },
    )
    operation = {"type": "person", "action": "identify", "identifiers": {"id": "1"}}
    result = await call(fake, "batch_process_requests", {"request_body": {"batch": [operation] * 4}})
    assert result.is_error
    text = result.content[0].text
    assert "2 operations failed and every other operation was applied" in text
    assert "- batch[1] field `identifiers`: invalid: no such person" in text
    assert "- batch[3]: too large" in text
    assert "resending the whole batch would repeat the ones already applied" in text
    error = result.structured_content["error"]
    assert error["type"] == "partial_failure"
    assert error["failed_indexes"] == [1, 3]
    assert len(fake.requests) == 1  # a partial failure is not retried
