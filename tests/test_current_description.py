"""Customer.io's current API description (OpenAPI 3.1), applied to the vendored copies, and the drift check.

The vendored descriptions are MIT copies from 2025; Customer.io's current ones are published without
a licence that allows redistribution, so ``scripts/derive_schemas.py`` applies each difference as a
named update (``--updates-table``), and ``scripts/drift_check.py`` lists every difference between the
vendored copies and a newer copy given on the command line. Its test feeds it a hand-made "newer"
description: the vendored one with one change of every kind it must find (``_newer``).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from customerio_mcp.errors import InputError
from customerio_mcp.tools.body_checks import prepare_body
from customerio_mcp.tools.schemas import compiled, first_invalid_item
from customerio_mcp.tools.table import ID_TYPES, TOOLS_BY_NAME
from tests.conftest import call
from tests.fake_customerio import FakeCustomerIO
from tests.library_replay import ADDED, without

ROOT = Path(__file__).resolve().parent.parent
PHONE = "+14155552671"


def _refusal(tool: str, body: dict[str, Any]) -> str:
    with pytest.raises(InputError) as refused:
        prepare_body(TOOLS_BY_NAME[tool], body)
    return str(refused.value)


ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("manage_entity", {"type": "person", "action": "identify", "identifiers": {"phone": PHONE}}),
    ("manage_entity", {"type": "person", "action": "merge", "primary": {"id": "1"}, "secondary": {"phone": PHONE}}),
    ("manage_entity", {"type": "person", "action": "identify", "identifiers": {"id": "1"}, "timestamp": 1700000000}),
    ("batch_process_requests", {"batch": [{"type": "person", "action": "suppress", "identifiers": {"phone": PHONE}}]}),
    ("merge_customer_profiles", {"primary": {"phone": PHONE}, "secondary": {"email": "a@example.com"}}),
    ("track_anonymous_event", {"name": "visited", "anonymous_id": 12345}),
    ("add_device_to_customer_profile", {"device": {"id": "t", "platform": "ios", "attributes": {"primary": True}}}),
    (
        "add_device_to_customer_profile",
        {"device": {"id": "t", "platform": "ios", "attributes": {"battery": 0.5, "carrier": None}}},
    ),
    ("identify_person_and_assign_traits", {"userId": "1", "traits": {"unsubscribed": True}}),
    (
        "identify_person_and_assign_traits",
        {"userId": "1", "traits": {"cio_subscription_preferences": {"channels": {"email": True, "sms": False}}}},
    ),
    ("track_user_event", {"userId": "1", "event": "Order Completed"}),
    ("track_user_event", {"userId": "1", "event": "User Suppressed"}),
    ("track_user_event", {"userId": "1", "event": "Device Deleted", "context": {"device": {"token": "t"}}}),
    ("track_user_event", {"anonymousId": "a", "event": "Object Deleted", "properties": {"objectId": "acme"}}),
    # Reports are attributed by their properties: neither userId nor anonymousId.
    ("track_user_event", {"event": "Report Delivery Event", "properties": {"deliveryId": "d", "metric": "opened"}}),
    # The description requires `activityType` but defines `actionType`: either, or neither, passes.
    ("track_user_event", {"event": "Report Content Event", "properties": {"actionType": "viewed_content"}}),
    ("track_user_event", {"event": "Report Content Event", "properties": {"activityType": "viewed_content"}}),
    (
        "send_batch_requests",
        {
            "batch": [
                {"type": "track", "userId": "1", "event": "User Deleted"},
                {"type": "track", "userId": "1", "event": "Relationship Deleted", "properties": {"objectId": "o"}},
                {"type": "track", "event": "Report Delivery Event", "properties": {"metric": "delivered"}},
                {"type": "identify", "userId": "1", "event": "User Deleted"},  # not a track call: no variant
            ]
        },
    ),
]


@pytest.mark.parametrize(("tool", "body"), ACCEPTED)
def test_what_the_current_description_and_the_libraries_allow_is_accepted(tool: str, body: dict[str, Any]) -> None:
    sent = prepare_body(TOOLS_BY_NAME[tool], body)
    assert without(sent.body, ADDED) == without(body, ADDED)


REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    ("track_user_event", {"event": "User Suppressed", "anonymousId": "a"}, "request_body.userId", "User Suppressed"),
    (
        "send_batch_requests",
        {"batch": [{"type": "track", "userId": "1", "event": "e"}, {"type": "track", "event": "User Deleted"}]},
        "request_body.batch[1]",
        "",
    ),
    (
        "send_batch_requests",
        {"batch": [{"type": "track", "event": "User Suppressed", "anonymousId": "a"}]},
        "request_body.batch[0].userId",
        "User Suppressed",
    ),
    ("track_user_event", {"event": "Device Deleted", "userId": "1"}, "request_body.context", "Device Deleted"),
    (
        "track_user_event",
        {"event": "Device Created or Updated", "userId": "1", "context": {"device": {"type": "ios"}}},
        "request_body.context.device.token",
        "Device Created or Updated",
    ),
    (
        "send_batch_requests",
        {"batch": [{"type": "track", "event": "Device Deleted", "userId": "1", "context": {"device": {}}}]},
        "request_body.batch[0].context.device.token",
        "Device Deleted",
    ),
    (
        "track_user_event",
        {"event": "Relationship Deleted", "userId": "1", "properties": {}},
        "request_body.properties.objectId",
        "Relationship Deleted",
    ),
    ("track_user_event", {"event": "Report Content Event"}, "request_body.properties", "Report Content Event"),
]


@pytest.mark.parametrize(("tool", "body", "field", "event"), REFUSED)
def test_a_typed_event_without_its_own_fields_is_refused_naming_the_field_and_the_event(
    tool: str, body: dict[str, Any], field: str, event: str
) -> None:
    text = _refusal(tool, body)
    assert text.startswith(f"`{field}"), text
    if event:
        assert f"is required for a `{event}`" in text, text


@pytest.mark.parametrize("tool", ["track_user_event", "identify_person_and_assign_traits", "send_page_view_event"])
def test_a_numeric_user_id_is_refused_naming_it_and_saying_it_must_be_a_string(tool: str) -> None:
    body = {"userId": 42, "event": "e"} if tool == "track_user_event" else {"userId": 42}
    text = _refusal(tool, body)
    assert text.startswith("`request_body.userId` must be a string (Customer.io's docs"), text
    assert "not an integer (42)" in text
    batch = _refusal("send_batch_requests", {"batch": [{"type": "identify", "userId": 42}]})
    assert batch.startswith("`request_body.batch[0].userId` must be a string"), batch


def test_a_missing_identity_is_still_refused_as_before() -> None:
    for body in ({"event": "e"}, {"event": "e", "userId": "", "anonymousId": None}):
        assert "needs `userId` or `anonymousId`" in _refusal("track_user_event", body)


def test_batch_items_with_typed_events_are_judged_by_their_variant_exactly_as_by_the_whole_union() -> None:
    """A track item selects its typed variant as an item selects its branch: the verdict is the whole union's."""
    whole = compiled("pipelines", "POST /batch", item=True)
    items = [
        {"type": "track", "userId": "1", "event": event, **extra}
        for event in ("User Deleted", "Device Deleted", "Report Content Event", "Order Completed", "user deleted")
        for extra in ({}, {"context": {"device": {"token": "t"}}}, {"properties": {}}, {"userId": None})
    ]
    items += [{"type": "track", "event": {"nested": 1}}, {"type": "track", "event": ["User Deleted"]}]
    verdicts = set()
    for item in items:
        verdict = whole.is_valid(item)
        assert (first_invalid_item("pipelines", "POST /batch", [item]) is None) == verdict, item
        verdicts.add(verdict)
    assert verdicts == {True, False}


async def test_segment_tools_take_phone_ids_and_a_phone_path_identifier_is_percent_encoded() -> None:
    assert ID_TYPES == ("id", "email", "phone", "cio_id")
    with FakeCustomerIO() as fake:
        result = await call(
            fake,
            "add_people_to_segment",
            {"segment_identifier": 7, "identifier_type": "phone", "request_body": {"ids": [PHONE]}},
        )
        assert not result.is_error, result.content[0].text
        result = await call(fake, "delete_customer", {"customer_identifier": PHONE})
        assert not result.is_error, result.content[0].text
        added, deleted = fake.requests
    assert added.query == {"id_type": ["phone"]}
    assert deleted.raw_path == "/api/v1/customers/%2B14155552671"
    assert fake.rejections == []


async def test_the_fake_refuses_a_segment_id_type_customerio_does_not_know_and_a_body_on_suppress() -> None:
    import httpx2

    with FakeCustomerIO() as fake:
        auth = {"Authorization": fake.expected_track_auth()}
        unknown = httpx2.post(
            f"{fake.url}/api/v1/segments/7/add_customers?id_type=sms", json={"ids": ["1"]}, headers=auth
        )
        bodied = httpx2.post(f"{fake.url}/api/v1/customers/1/suppress", json={"x": 1}, headers=auth)
        empty = httpx2.post(f"{fake.url}/api/v1/customers/1/suppress", json={}, headers=auth)
        none = httpx2.post(f"{fake.url}/api/v1/customers/1/unsuppress", headers=auth)
    assert (unknown.status_code, bodied.status_code, empty.status_code, none.status_code) == (400, 400, 200, 200)


# -- the drift check ------------------------------------------------------------------------------


def _drift(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "drift_check.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_the_drift_check_finds_nothing_between_the_vendored_copies_and_themselves() -> None:
    done = _drift("--track", "openapi/track.json", "--pipelines", "openapi/pipelines.json")
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
    assert "0 changes" in done.stderr


def _newer(vendored: dict[str, Any]) -> dict[str, Any]:
    """The vendored Pipelines description with one change of every kind the drift check must find."""
    newer = copy.deepcopy(vendored)
    paths = newer["paths"]
    paths["/merge"] = copy.deepcopy(paths["/alias"])  # operation added
    del paths["/screen"]  # operation removed
    paths["/alias"]["post"].setdefault("parameters", []).append(
        {"name": "dry_run", "in": "query", "schema": {"type": "boolean"}}  # parameter added
    )
    alias = paths["/alias"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    alias["properties"]["type"]["enum"] = ["alias", "merge"]  # enum changed
    alias["properties"]["previousId"]["type"] = ["string", "number"]  # type changed (OpenAPI 3.1 spelling)
    alias["required"] = ["userId"]  # requirement changed: previousId no longer required
    alias["properties"]["reason"] = {"type": "integer", "maximum": 10}  # field added
    del alias["properties"]["userId"]  # field removed (still required: a requirement on nothing)
    alias["properties"]["previousId"]["description"] = "Reworded prose is not a change."
    return newer


EXPECTED_DRIFT = [
    "pipelines POST /merge: operation added",
    "pipelines POST /screen: operation removed",
    "pipelines POST /alias: field added: query.dry_run (boolean)",
    "pipelines POST /alias: field added: body.reason (integer)",
    "pipelines POST /alias: field removed: body.userId",
    'pipelines POST /alias: body.type: enum changed: added ["merge"]',
    "pipelines POST /alias: body.previousId: type changed: string -> number or string",
    "pipelines POST /alias: body.previousId: requirement changed: no longer required",
]


def test_the_drift_check_lists_every_kind_of_change_in_a_newer_description(tmp_path: Path) -> None:
    vendored = json.loads((ROOT / "openapi" / "pipelines.json").read_text(encoding="utf-8"))
    (tmp_path / "pipelines.json").write_text(json.dumps(_newer(vendored)), encoding="utf-8")
    done = _drift("--pipelines", str(tmp_path / "pipelines.json"))
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == EXPECTED_DRIFT
    assert f"{len(EXPECTED_DRIFT)} changes" in done.stderr
