"""Retries: what is retried, how often, how long it waits, and that data is never duplicated."""

from __future__ import annotations

import socket
import time
from email.utils import formatdate
from typing import Any

import pytest

from customerio_mcp.customerio.delivery import RetryPolicy, parse_retry_after
from tests.conftest import FAST_RETRY, connect, settings_for
from tests.fake_customerio import FakeCustomerIO

EVENT = ("send_customer_event", {"customer_identifier": "42", "request_body": {"name": "purchase"}})
FORM = ("submit_form_response", {"form_identifier": "f1", "request_body": {"data": {"email": "a@example.com"}}})
PIPELINES = ("track_user_event", {"request_body": {"userId": "42", "event": "Upgraded"}})


async def run(fake: FakeCustomerIO, tool: tuple[str, dict[str, Any]], retry: RetryPolicy = FAST_RETRY, **settings: Any):
    async with connect(settings_for(fake, **settings), retry=retry) as client:
        return await client.call_tool(*tool)


def ids(fake: FakeCustomerIO, key: str = "id") -> list[str]:
    return [request.body[key] for request in fake.requests]


async def test_429_with_retry_after_twice_then_success(fake: FakeCustomerIO) -> None:
    fake.fail(2, status=429, headers={"Retry-After": "0"}, body={"meta": {"error": "slow down"}})
    result = await run(fake, EVENT)
    assert not result.is_error
    assert result.structured_content["attempts"] == 3
    assert [r.answered for r in fake.requests] == [429, 429, 200]
    assert len(set(ids(fake))) == 1


async def test_retry_after_seconds_are_honoured(fake: FakeCustomerIO) -> None:
    fake.fail(1, status=429, headers={"Retry-After": "1"})
    started = time.monotonic()
    result = await run(fake, EVENT)
    assert not result.is_error
    assert time.monotonic() - started >= 0.95


async def test_retry_after_http_date(fake: FakeCustomerIO) -> None:
    fake.fail(1, status=429, headers={"Retry-After": formatdate(time.time() - 5, usegmt=True)})
    result = await run(fake, EVENT)
    assert result.structured_content["attempts"] == 2


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


async def test_retry_after_beyond_the_deadline_is_not_waited_for(fake: FakeCustomerIO) -> None:
    fake.fail(1, status=429, headers={"Retry-After": "120"})
    started = time.monotonic()
    result = await run(fake, EVENT)
    assert time.monotonic() - started < 5
    assert result.is_error
    assert "rate limiting" in result.content[0].text
    assert len(fake.requests) == 1


async def test_503_twice_then_success(fake: FakeCustomerIO) -> None:
    fake.fail(2, status=503)
    result = await run(fake, EVENT)
    assert not result.is_error
    assert result.structured_content["attempts"] == 3
    assert len(set(ids(fake))) == 1


async def test_dropped_connection_then_success(fake: FakeCustomerIO) -> None:
    fake.fail(1, drop=True)
    result = await run(fake, EVENT)
    assert not result.is_error
    assert result.structured_content["attempts"] == 2
    assert len(fake.requests) == 2
    assert len(set(ids(fake))) == 1


async def test_slow_answer_times_out_and_is_retried(fake: FakeCustomerIO) -> None:
    fake.fail(1, delay=1.0, status=200)
    result = await run(fake, EVENT, timeout=0.3)
    assert not result.is_error
    assert result.structured_content["attempts"] == 2
    assert len(set(ids(fake))) == 1


async def test_5xx_that_never_ends(fake: FakeCustomerIO) -> None:
    fake.fail(10, status=500, body={"meta": {"error": "boom"}})
    result = await run(fake, EVENT)
    assert result.is_error
    text = result.content[0].text
    assert "failed POST /api/v1/customers/42/events with 500 after 4 attempts: boom" in text
    assert result.structured_content["error"]["type"] == "server_error"
    assert len(fake.requests) == 4


async def test_max_retries_setting_bounds_attempts(fake: FakeCustomerIO) -> None:
    fake.fail(10, status=502)
    policy = RetryPolicy(max_retries=1, deadline=10, wait_initial=0.01, wait_max=0.01, wait_jitter=0)
    result = await run(fake, EVENT, retry=policy)
    assert result.is_error
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (400, "bad_request", "rejected POST /api/v1/customers/42/events with 400: name is invalid"),
        (401, "authentication", "CUSTOMERIO_SITE_ID and CUSTOMERIO_API_KEY"),
        (403, "authentication", "CUSTOMERIO_SITE_ID and CUSTOMERIO_API_KEY"),
        (404, "not_found", "404 Not Found"),
    ],
)
async def test_client_errors_are_not_retried(fake: FakeCustomerIO, status: int, kind: str, words: str) -> None:
    fake.fail(1, status=status, body={"meta": {"error": "name is invalid"}})
    result = await run(fake, EVENT)
    assert result.is_error
    assert words in result.content[0].text
    assert result.structured_content["error"]["type"] == kind
    assert len(fake.requests) == 1


async def test_pipelines_message_id_is_the_same_on_every_attempt(fake: FakeCustomerIO) -> None:
    fake.fail(2, status=503)
    result = await run(fake, PIPELINES)
    assert result.structured_content["attempts"] == 3
    message_ids = ids(fake, "messageId")
    assert len(message_ids) == 3
    assert len(set(message_ids)) == 1
    assert result.structured_content["sent_ids"] == {"messageId": message_ids[0]}


async def test_v2_batch_ids_are_the_same_on_every_attempt(fake: FakeCustomerIO) -> None:
    fake.fail(1, status=502)
    operation = {"type": "person", "action": "event", "identifiers": {"id": "1"}, "name": "e"}
    result = await run(fake, ("batch_process_requests", {"request_body": {"batch": [operation, operation]}}))
    assert not result.is_error
    first, second = (request.body["batch"] for request in fake.requests)
    assert first == second
    assert first[0]["id"] != first[1]["id"]


async def test_unsafe_request_is_not_retried_after_it_may_have_been_processed(fake: FakeCustomerIO) -> None:
    fake.fail(1, status=503)
    result = await run(fake, FORM)
    assert result.is_error
    assert "may or may not have applied it" in result.content[0].text
    assert result.structured_content["error"]["maybe_applied"] is True
    assert len(fake.requests) == 1


async def test_unsafe_request_is_not_retried_after_a_dropped_connection(fake: FakeCustomerIO) -> None:
    fake.fail(1, drop=True)
    result = await run(fake, FORM)
    assert result.is_error
    assert "lost the connection" in result.content[0].text
    assert "may or may not have applied it" in result.content[0].text
    assert len(fake.requests) == 1


async def test_unsafe_request_is_retried_after_429(fake: FakeCustomerIO) -> None:
    fake.fail(1, status=429, headers={"Retry-After": "0"})
    result = await run(fake, FORM)
    assert not result.is_error
    assert result.structured_content["attempts"] == 2


async def test_connection_refused_is_retried_even_when_unsafe(fake: FakeCustomerIO) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    result = await run(fake, FORM, track_url=f"http://127.0.0.1:{closed_port}")
    assert result.is_error
    text = result.content[0].text
    assert f"could not connect to Customer.io: 127.0.0.1:{closed_port} refused the connection, after 4 attempts" in text
    assert "may or may not" not in text
    assert result.structured_content["error"]["attempts"] == 4


async def test_idempotent_request_is_retried(fake: FakeCustomerIO) -> None:
    fake.fail(1, status=500)
    result = await run(fake, ("delete_customer", {"customer_identifier": "42"}))
    assert not result.is_error
    assert len(fake.requests) == 2
