"""A failed connection reads the same in a tool call as in ``check``: DNS, TLS, refused, with the host.

Real failures, no mocks: a name under ``.invalid`` (RFC 6761) resolves nowhere; the fake speaks
plain HTTP, so ``https://`` to it fails the TLS handshake; a closed port refuses.
"""

from __future__ import annotations

import logging
import socket
import subprocess
from typing import Any

import httpx2
import pytest

from customerio_mcp.customerio.delivery import RetryPolicy
from customerio_mcp.customerio.network_failures import connect_failure
from tests.conftest import connect, settings_for
from tests.fake_customerio import FakeCustomerIO
from tests.processes import command, server_env

NOWHERE = "track.customerio-mcp-test.invalid"
EVENT = ("track_anonymous_event", {"request_body": {"name": "signed_up"}})
IDENTIFY = ("identify_person_and_assign_traits", {"request_body": {"userId": "7"}})
TWO_ATTEMPTS = RetryPolicy(max_retries=1, deadline=30.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unreachable_urls(fake: FakeCustomerIO) -> dict[str, tuple[str, str]]:
    """reason -> (Track URL, the words both a tool call and check say about it)."""
    port = closed_port()
    return {
        "dns": (f"http://{NOWHERE}", f"the name {NOWHERE} could not be resolved (DNS)"),
        "tls": (fake.url.replace("http://", "https://"), f"the TLS handshake with {fake.url[7:]} failed ("),
        "refused": (f"http://127.0.0.1:{port}", f"127.0.0.1:{port} refused the connection"),
    }


def check_problem(track_url: str) -> str:
    done = subprocess.run(
        [command(), "check", "--toolsets", "track"],
        env=server_env(None, CUSTOMERIO_SITE_ID="s", CUSTOMERIO_API_KEY="k", CUSTOMERIO_TRACK_URL=track_url),
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    (problem,) = [line for line in done.stdout.splitlines() if line.startswith("problem: ")]
    return problem


@pytest.mark.parametrize("reason", ["dns", "tls", "refused"])
async def test_a_tool_call_classifies_as_check_does(fake: FakeCustomerIO, reason: str) -> None:
    url, words = unreachable_urls(fake)[reason]
    async with connect(settings_for(fake, track_url=url), retry=TWO_ATTEMPTS) as client:
        result = await client.call_tool(*EVENT)
    error = result.structured_content["error"]
    assert result.is_error
    assert error["reason"] == reason
    assert error["maybe_applied"] is False
    text = result.content[0].text
    assert text.startswith(f"The server could not connect to Customer.io: {words}")
    assert "after 2 attempts: POST /api/v1/events. Customer.io did not apply it." in text
    assert "(ConnectError)" not in text
    assert words in check_problem(url)


async def test_a_pipelines_call_is_not_blamed_on_the_region_lookup_endpoint(fake: FakeCustomerIO) -> None:
    settings = settings_for(fake, track_url=f"http://{NOWHERE}", pipelines_url=None)  # region auto: a lookup first
    async with connect(settings, retry=TWO_ATTEMPTS) as client:
        result = await client.call_tool(*IDENTIFY)
    text = result.content[0].text
    assert text.startswith(
        "The Data Pipelines API call POST /identify was not sent: its base URL depends on the account's region, "
        f"and looking that up at the Track API failed: the name {NOWHERE} could not be resolved (DNS), after 2 "
        "attempts."
    )
    assert text.endswith("or set CUSTOMERIO_REGION=us or eu to skip the region lookup.")
    assert "/api/v1/accounts/region" not in text
    assert result.structured_content["error"]["reason"] == "dns"
    assert result.structured_content["error"]["maybe_applied"] is False
    assert fake.requests == []


async def test_a_refused_region_lookup_names_the_call_that_waited(fake: FakeCustomerIO) -> None:
    fake.fail(1, status=401, route="/api/v1/accounts/region", body={"meta": {"error": "Unauthorized request"}})
    async with connect(settings_for(fake, pipelines_url=None)) as client:
        result = await client.call_tool(*IDENTIFY)
    text = result.content[0].text
    assert text.startswith(
        "Customer.io refused the Track API credentials (401) for the region lookup at the Track API."
    )
    assert text.endswith(
        "The Data Pipelines API call POST /identify was not sent; to skip the region lookup, set CUSTOMERIO_REGION=us "
        "or eu."
    )
    assert result.structured_content["error"]["maybe_applied"] is False


async def test_one_warning_per_failed_call(fake: FakeCustomerIO, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    port = closed_port()
    async with connect(settings_for(fake, track_url=f"http://127.0.0.1:{port}"), retry=TWO_ATTEMPTS) as client:
        await client.call_tool(*EVENT)
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [record.getMessage() for record in warnings] == [
        f"POST http://127.0.0.1:{port}/api/v1/events failed after 2 attempt(s): 127.0.0.1:{port} refused the connection"
    ]
    attempts = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG and "attempt " in r.getMessage()]
    assert len(attempts) == 2  # each attempt keeps its DEBUG line


async def test_a_retry_that_succeeds_warns_of_nothing(fake: FakeCustomerIO, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    fake.fail(1, status=503)
    async with connect(settings_for(fake), retry=TWO_ATTEMPTS) as client:
        result: Any = await client.call_tool(*EVENT)
    assert not result.is_error
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []


def test_a_connect_timeout_is_a_timeout_with_the_host() -> None:
    failure = connect_failure(httpx2.ConnectTimeout("timed out"), "https://track.customer.io")
    assert (failure.reason, failure.explained()) == ("timeout", "track.customer.io did not accept a connection in time")
