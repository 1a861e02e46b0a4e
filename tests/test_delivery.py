"""Honest delivery: retries never duplicate, failures say what may have been applied and how to repeat safely.

Faults are injected by the fake Customer.io at the moment that decides the question: before it read
the body (nothing can have been applied), after it read the body (it may have been), or halfway
through its answer (it was).
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from customerio_mcp.customerio.delivery import RetryPolicy
from tests.conftest import FAST_RETRY, connect, settings_for
from tests.fake_customerio import FakeCustomerIO

METRIC = {
    "type": "delivery",
    "action": "event",
    "identifiers": {"id": "d1"},
    "name": "opened",
    "attributes": {"device_token": "t"},
}
PERSON_EVENT = {"type": "person", "action": "event", "identifiers": {"id": "42"}, "name": "signed_up"}
IDENTIFY = {"type": "person", "action": "identify", "identifiers": {"id": "42"}, "attributes": {"plan": "pro"}}


async def run(
    fake: FakeCustomerIO, tool: str, arguments: dict[str, Any], retry: RetryPolicy = FAST_RETRY, **settings: Any
):
    async with connect(settings_for(fake, **settings), retry=retry) as client:
        return await client.call_tool(tool, arguments)


@pytest.mark.parametrize(
    ("tool", "body"),
    [
        ("manage_entity", METRIC),
        ("batch_process_requests", {"batch": [IDENTIFY, PERSON_EVENT, METRIC]}),
        (
            "batch_process_requests",
            {
                "batch": [
                    IDENTIFY,
                    {"type": "person", "action": "merge", "primary": {"id": "1"}, "secondary": {"id": "2"}},
                ]
            },
        ),
    ],
)
async def test_a_body_holding_an_undeduplicated_operation_is_not_replayed_after_a_drop(
    fake: FakeCustomerIO, tool: str, body: dict[str, Any]
) -> None:
    fake.fail(1, drop=True)
    result = await run(fake, tool, {"request_body": body})
    assert result.is_error
    assert len(fake.requests) == 1, "replayed after Customer.io may have applied it"
    assert fake.requests[0].applied
    text = result.content[0].text
    assert "lost the connection to Customer.io after sending" in text
    assert "may or may not have applied it" in text
    assert "Before repeating it, check" in text
    error = result.structured_content["error"]
    assert error["maybe_applied"] is True
    assert error["attempts"] == 1


async def test_the_same_body_is_retried_after_a_429(fake: FakeCustomerIO) -> None:
    fake.fail(1, status=429, headers={"Retry-After": "0"})
    result = await run(fake, "batch_process_requests", {"request_body": {"batch": [IDENTIFY, METRIC]}})
    assert not result.is_error
    assert result.structured_content["attempts"] == 2


async def test_a_deduplicated_batch_is_replayed_with_the_same_ids(fake: FakeCustomerIO) -> None:
    fake.fail(1, drop=True)
    result = await run(fake, "batch_process_requests", {"request_body": {"batch": [IDENTIFY, PERSON_EVENT]}})
    assert not result.is_error
    assert result.structured_content["attempts"] == 2
    first, second = (request.body for request in fake.requests)
    assert first == second
    assert result.structured_content["sent_ids"]["batch"][1] == first["batch"][1]["id"]


async def test_an_answer_cut_halfway_is_retried_with_the_same_key(fake: FakeCustomerIO) -> None:
    fake.fail(1, cut_response=True)
    result = await run(fake, "send_customer_event", {"customer_identifier": "42", "request_body": {"name": "e"}})
    assert not result.is_error
    assert [r.applied for r in fake.requests] == [True, True]
    assert fake.requests[0].body["id"] == fake.requests[1].body["id"]  # Customer.io drops the second


async def test_a_drop_before_the_body_was_read_is_still_reported_honestly(fake: FakeCustomerIO) -> None:
    """The client cannot tell a drop before the body was read from one after: it says 'may or may not'."""
    fake.fail(1, drop_before_body=True)
    result = await run(fake, "report_custom_metrics", {"request_body": {"delivery_id": "d1", "metric": "opened"}})
    assert result.is_error
    assert not fake.requests[0].applied
    assert "may or may not have applied it" in result.content[0].text
    assert "check the delivery's metrics in Customer.io" in result.content[0].text
    assert len(fake.requests) == 1


async def test_a_deduplicated_failure_says_how_to_repeat_with_the_same_id(fake: FakeCustomerIO) -> None:
    fake.fail(10, status=503)
    result = await run(fake, "send_customer_event", {"customer_identifier": "42", "request_body": {"name": "e"}})
    assert result.is_error
    sent = fake.requests[0].body["id"]
    text = result.content[0].text
    assert "may or may not have applied it" in text
    assert f'It is safe to repeat with the same ids: pass `request_body.id` = "{sent}"' in text
    assert result.structured_content["error"]["sent_ids"] == {"id": sent}
    assert {request.body["id"] for request in fake.requests} == {sent}


async def test_a_batch_failure_lists_every_item_key(fake: FakeCustomerIO) -> None:
    fake.fail(10, status=500)
    calls = [{"type": "track", "userId": "1", "event": "a"}, {"type": "identify", "userId": "1", "messageId": "mine"}]
    result = await run(fake, "send_batch_requests", {"request_body": {"batch": calls}})
    assert result.is_error
    keys = result.structured_content["error"]["sent_ids"]["batch"]
    assert keys[1] == "mine"
    assert keys[0] == fake.requests[0].body["batch"][0]["messageId"]
    assert "as listed in `sent_ids.batch`" in result.content[0].text


async def test_a_refused_call_says_it_was_not_applied(fake: FakeCustomerIO) -> None:
    fake.fail(10, status=429, headers={"Retry-After": "0"})
    result = await run(fake, "send_customer_event", {"customer_identifier": "42", "request_body": {"name": "e"}})
    assert result.is_error
    error = result.structured_content["error"]
    assert error["maybe_applied"] is False
    assert "may or may not" not in result.content[0].text
    assert error["sent_ids"]["id"] == fake.requests[0].body["id"]


async def test_the_deadline_bounds_the_whole_call_last_attempt_included(fake: FakeCustomerIO) -> None:
    """Timeout 2 s, deadline 5 s, an upstream that never answers in time: about 5 s, not 7.3."""
    fake.fail(10, delay=3.0, status=200)
    policy = RetryPolicy(max_retries=5, deadline=5.0, wait_initial=0.01, wait_max=0.01, wait_jitter=0)
    started = time.monotonic()
    result = await run(
        fake, "send_customer_event", {"customer_identifier": "42", "request_body": {"name": "e"}}, policy, timeout=2.0
    )
    elapsed = time.monotonic() - started
    assert result.is_error
    assert 4.5 <= elapsed < 5.9, elapsed
    assert result.structured_content["error"]["attempts"] == 3  # 2 s + 2 s + the 1 s left
    assert "got no answer in time" in result.content[0].text


async def test_paced_calls_give_up_at_the_deadline_without_sending(fake: FakeCustomerIO) -> None:
    policy = RetryPolicy(max_retries=0, deadline=1.0)
    results: list[Any] = []
    async with connect(settings_for(fake, rate_limit=1), retry=policy) as client:

        async def one(number: int) -> None:
            results.append(
                await client.call_tool(
                    "send_customer_event", {"customer_identifier": str(number), "request_body": {"name": "e"}}
                )
            )

        started = time.monotonic()
        async with anyio.create_task_group() as tasks:
            for number in range(5):
                tasks.start_soon(one, number)
        elapsed = time.monotonic() - started
    assert elapsed < 2.5
    refused = [r for r in results if r.is_error]
    assert refused
    assert len(fake.requests) + len(refused) == 5
    for result in refused:
        assert "ran out of time (CUSTOMERIO_RETRY_DEADLINE) before it could send" in result.content[0].text
        assert "did not apply it" in result.content[0].text
        assert result.structured_content["error"]["maybe_applied"] is False


async def test_an_exhausted_local_pool_is_reported_as_local_overload(fake: FakeCustomerIO) -> None:
    fake.fail(1, delay=4.0, status=200)
    policy = RetryPolicy(max_retries=0, deadline=10)
    async with connect(settings_for(fake, max_connections=1, timeout=6), retry=policy) as client:
        results: list[Any] = []

        async def one(number: int) -> None:
            results.append(await client.call_tool("delete_customer", {"customer_identifier": str(number)}))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(one, 1)
            await anyio.sleep(0.3)
            tasks.start_soon(one, 2)
    overloaded = [r for r in results if r.is_error]
    assert len(overloaded) == 1
    text = overloaded[0].content[0].text
    assert "overloaded locally" in text
    assert "check the network" not in text.lower()
    assert overloaded[0].structured_content["error"]["reason"] == "overloaded"
    assert len(fake.requests) == 1


@pytest.mark.parametrize("status", [407, 502])
async def test_an_upstream_quoting_the_credentials_never_echoes_them(
    fake: FakeCustomerIO, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    header = fake.expected_track_auth()
    token = header.removeprefix("Basic ")
    quoted = f"Proxy refused {header}; header was Authorization: {header}; token {token} key {fake.api_key}"
    fake.fail(10, status=status, body={"message": quoted, "echo": {"authorization": header}})
    caplog.set_level("DEBUG")
    result = await run(fake, "delete_customer", {"customer_identifier": "42"})
    assert result.is_error
    everything = result.model_dump_json() + caplog.text
    assert header not in everything
    assert token not in everything
    assert fake.api_key not in everything
    assert "[redacted]" in result.content[0].text


def test_a_base_url_with_a_password_is_refused_at_start() -> None:
    from pydantic import ValidationError

    from customerio_mcp.settings import Settings

    with pytest.raises(ValidationError, match="must not contain a user name or password") as raised:
        Settings(track_url="https://user:hunter2-secret@proxy.example.com")
    assert "hunter2-secret" not in "".join(error["msg"] for error in raised.value.errors())
