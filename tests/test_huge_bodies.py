"""Huge bodies of every shape are refused (or accepted) for the right reason, at the right field.

What refusing them costs is measured by ``benchmarks/bench_validation.py`` (at most 50 ms of CPU
each): here, that the checks which make them cheap still say the same thing. The explainer looks
at a bounded number of values whatever the size of the body (``test_the_explainer_walks_a_bounded_part``):
before, it walked every one of 100,000 segment ids in pure Python (1.1 s) to report their count.
"""

from __future__ import annotations

from typing import Any

import pytest

from customerio_mcp.errors import InputError
from customerio_mcp.tools import json_hygiene, schemas
from tests.conftest import connect, settings_for
from tests.fake_customerio import FakeCustomerIO

N = 100_000
MIB = 1024 * 1024
SEGMENT = {"segment_identifier": 7}
PERSON = {"person_identifier": "p1"}
RELATIONSHIP = {"identifiers": {"object_type_id": "1", "object_id": "acme"}}
MANY_ATTRIBUTES = {f"k{i}": i for i in range(60_000)}  # about 1 MB
MANY_LISTS = {f"k{i}": [i] for i in range(50_000)}  # about 1 MB; a device attribute must be a scalar


def nested(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


# tool, path arguments, body, the field named (a prefix when ending with "["), words the message holds
REFUSED: list[tuple[str, dict[str, Any], dict[str, Any], str, list[str]]] = [
    ("add_people_to_segment", SEGMENT, {"ids": list(range(N))}, "request_body.ids", ["has 100,000 items"]),
    ("add_people_to_segment", SEGMENT, {"ids": [str(i) for i in range(N)]}, "request_body.ids", ["at most 1,000"]),
    ("add_people_to_segment", SEGMENT, {"ids": [{}] * N}, "request_body.ids", ["has 100,000 items"]),
    ("add_people_to_segment", SEGMENT, {"ids": ["a"] * 999 + [1]}, "request_body.ids[999]", ["must be a string"]),
    (
        "update_or_add_person",
        PERSON,
        {"cio_relationships": {"action": "add_relationships", "relationships": [RELATIONSHIP] * 10_000 + [5]}},
        "request_body.cio_relationships.relationships[10000]",
        ["must be an object, not an integer"],
    ),
    (
        "update_or_add_person",
        PERSON,
        {**MANY_ATTRIBUTES, "cio_subscription_preferences": 5},
        "request_body.cio_subscription_preferences",
        ["must be an object"],
    ),
    (
        "add_device_to_customer_profile",
        {"unique_person_identifier": "p1"},
        {"device": {"id": "d", "platform": "ios", "attributes": MANY_LISTS}},
        "request_body.device.attributes.k0",
        ["not an array", "and at least 100 more fields fail the same way"],
    ),
    (
        "batch_process_requests",
        {},
        {
            "batch": [
                {"type": "person", "action": "page", "name": "/", "identifiers": {"id": "1"}, "attributes": {}},
                {
                    "type": "person",
                    "action": "page",
                    "name": "/",
                    "identifiers": {"id": "1"},
                    "attributes": {"keywords": [1] * N},
                },
            ]
        },
        "request_body.batch[1].attributes.keywords[",
        ["must be a string, not an integer"],
    ),
    ("submit_form_response", {"form_identifier": "f"}, {"data": MANY_ATTRIBUTES}, "request_body.data.email", []),
    ("report_custom_metrics", {}, {"delivery_id": list(range(N))}, "request_body.", []),
    (
        "track_user_event",
        {},
        {"userId": "u", "event": "e", "properties": {"n": list(range(N))}},
        "request_body",
        ["at most 32,768 bytes for one Pipelines call"],
    ),
    ("track_user_event", {}, {"userId": "u", "event": "x" * MIB}, "request_body", ["at most 32,768 bytes"]),
    (
        "track_anonymous_event",
        {},
        {"name": "e", "data": {"n": list(range(N))}},
        "request_body.data",
        ["at most 100,000 bytes for event data"],
    ),
    (
        "batch_process_requests",
        {},
        {"batch": [{"type": "person", "action": "identify", "identifiers": {"id": "1"}, "attributes": {"n": [0] * N}}]},
        "request_body.batch[0]",
        ["at most 32,768 bytes for one operation"],
    ),
    # What JSON cannot carry, after 100,000 values that are fine: found, and named, in document order.
    ("update_or_add_person", PERSON, {"a": [*range(N), 10**30]}, "request_body.a[100000]", ["of 31 digits"]),
    (
        "update_or_add_person",
        PERSON,
        {"a": [{"b": [1, 10**30]}, 10**25], "c": 10**40},
        "request_body.a[0].b[1]",
        ["of 31 digits"],
    ),
    (
        "update_or_add_person",
        PERSON,
        {"a": [[1]] * 50_000 + [nested(70)]},
        "request_body.a[50000]" + "[0]" * 62,
        ["more than 64 levels deep"],
    ),
]


@pytest.mark.parametrize(("tool", "paths", "body", "field", "words"), REFUSED, ids=[c[3] for c in REFUSED])
async def test_a_huge_body_is_refused_at_the_right_field(
    fake: FakeCustomerIO, tool: str, paths: dict[str, Any], body: dict[str, Any], field: str, words: list[str]
) -> None:
    async with connect(settings_for(fake)) as client:
        result = await client.call_tool(tool, {**paths, "request_body": body})
    text = result.content[0].text
    assert result.is_error, text
    named = result.structured_content["error"]["field"]
    assert named.startswith(field) if field.endswith((".", "[", ".k")) else named == field, text
    for word in words:
        assert word in text, text
    assert fake.requests == []


ACCEPTED: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("update_or_add_person", PERSON, {"a": [{"b": 1} for _ in range(N)]}),
    ("update_or_add_person", PERSON, {"a": [[[1]] for _ in range(80_000)]}),
    ("update_or_add_person", PERSON, {"a": ["123456789012345678901"] * 40_000}),  # looks like long integers
    ("update_or_add_person", PERSON, MANY_ATTRIBUTES),
]


@pytest.mark.parametrize(("tool", "paths", "body"), ACCEPTED, ids=["objects", "arrays", "digit strings", "keys"])
async def test_a_huge_valid_body_is_sent(
    fake: FakeCustomerIO, tool: str, paths: dict[str, Any], body: dict[str, Any]
) -> None:
    async with connect(settings_for(fake)) as client:
        result = await client.call_tool(tool, {**paths, "request_body": body})
    assert not result.is_error, result.content[0].text
    assert len(fake.requests) == 1


async def test_the_explainer_walks_a_bounded_part_of_a_huge_body(
    fake: FakeCustomerIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However many items there are, the pure-Python explainer descends only into failing ones, and a bounded number."""
    descended = 0
    validator = schemas.explainer("track", "POST /api/v1/segments/{segment_id}/add_customers")
    plain = type(validator).descend

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal descended
        descended += 1
        return plain(self, *args, **kwargs)

    monkeypatch.setattr(type(validator), "descend", counting)
    async with connect(settings_for(fake)) as client:
        for ids in (list(range(N)), [str(i) for i in range(N)], [None] * 500 + ["ok"] * 500):
            result = await client.call_tool("add_people_to_segment", {**SEGMENT, "request_body": {"ids": ids}})
            assert result.is_error
    # At most the failures an explanation counts, per body; before: 200,500 (every item of each, valid or not).
    assert 0 < descended <= 3 * (schemas.EXPLAINED_FAILURES_MAX + 10), descended


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"a": [*range(N), float("nan")]}, "request_body.a[100000]", "is nan"),  # the SDK client sends null
        ({"a": [{"b": [1, float("inf")]}, float("nan")], "c": float("nan")}, "request_body.a[0].b[1]", "is inf"),
        ({"a": [1.5, 10**30, float("nan")]}, "request_body.a[1]", "of 31 digits"),  # the first, whatever its kind
        ({"a": [1, float("-inf"), 10**30]}, "request_body.a[1]", "is -inf"),
        ({"a": [*range(N), {1}]}, "request_body.a[100000]", "is set, not a JSON value"),
        ({"a": ["x"] * N + ["\ud800"]}, "request_body.a[100000]", "lone UTF-16 surrogate"),
        ({"a": ["\ud83d", "\ude00"]}, "request_body.a[0]", "lone UTF-16 surrogate"),  # two halves are no pair
        ({"a": {"ok": 1, "\ud800": 1}, "b": float("nan")}, "request_body.a", "a key that is not valid text"),
    ],
)
def test_what_json_cannot_carry_is_found_after_many_values(body: dict[str, Any], field: str, words: str) -> None:
    """The SDK's client cannot send these (it refuses lone surrogates and sends NaN as null): checked where found."""
    with pytest.raises(InputError) as refused:
        json_hygiene.check_and_encode(body)
    assert refused.value.field == field
    assert words in str(refused.value)


async def test_large_bodies_are_checked_one_at_a_time(fake: FakeCustomerIO, monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread checking a body holds the interpreter lock through each C call, and the event loop answers every
    other call: four 100,000-identifier bodies checked at once left it a fifth of the lock (others waited 120 ms)."""
    import threading

    import anyio

    from customerio_mcp.tools.runner import ToolRunner

    real, lock = ToolRunner.build_request, threading.Lock()
    running, most = 0, 0

    def counted(self: ToolRunner, *args: Any, **kwargs: Any) -> Any:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            return real(self, *args, **kwargs)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(ToolRunner, "build_request", counted)
    results: list[Any] = []
    async with connect(settings_for(fake)) as client:

        async def refuse() -> None:
            results.append(
                await client.call_tool("add_people_to_segment", {**SEGMENT, "request_body": {"ids": list(range(N))}})
            )

        async with anyio.create_task_group() as together:
            for _ in range(4):
                together.start_soon(refuse)
    assert len(results) == 4
    assert all(result.is_error for result in results)
    assert most == 1
    assert fake.requests == []
