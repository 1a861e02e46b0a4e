"""A person confirms a destructive call before anything is sent (MCP elicitation), in both protocol eras.

The SDK's own client drives the server: with ``mode="legacy"`` it speaks the 2025 handshake and is
asked with a server-to-client ``elicitation/create``; with ``mode="2026-07-28"`` it gets an
``input_required`` result and calls again with the answer and the sealed ``requestState``. Its
``elicitation_callback`` plays the person: accept, decline, or cancel. A client without the
capability is also tried, under every ``CUSTOMERIO_CONFIRM_DESTRUCTIVE`` mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
import pytest
from mcp import Client
from mcp.client.context import ClientRequestContext

from customerio_mcp.serving.mcp_server import create_server
from tests.conftest import FAST_RETRY, settings_for
from tests.fake_customerio import FakeCustomerIO

ERAS = ["legacy", "2026-07-28"]
DELETE = ("delete_customer", {"customer_identifier": "42"})
V2_BATCH = (
    "batch_process_requests",
    {
        "request_body": {
            "batch": [
                {"type": "person", "action": "identify", "identifiers": {"id": "1"}},
                {"type": "person", "action": "delete", "identifiers": {"id": "2"}},
                {"type": "person", "action": "delete", "identifiers": {"email": "c@example.com"}},
                {"type": "person", "action": "suppress", "identifiers": {"id": "4"}},
            ]
        }
    },
)


class Person:
    """Answers confirmation questions the way a test says, and remembers what it was asked."""

    def __init__(self, action: str, confirm: bool = True) -> None:
        self.action = action
        self.confirm = confirm
        self.asked: list[str] = []

    async def __call__(self, context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.asked.append(params.message)
        content = {"confirm": self.confirm} if self.action == "accept" else None
        return types.ElicitResult(action=self.action, content=content)


@asynccontextmanager
async def client(fake: FakeCustomerIO, era: str, person: Person | None, **settings: Any) -> AsyncIterator[Client]:
    server = create_server(settings_for(fake, **settings), retry=FAST_RETRY)
    async with Client(server, mode=era, elicitation_callback=person) as connected:
        yield connected


@pytest.mark.parametrize("era", ERAS)
async def test_an_accepted_question_sends_the_call(fake: FakeCustomerIO, era: str) -> None:
    person = Person("accept")
    async with client(fake, era, person) as connected:
        result = await connected.call_tool(*DELETE)
    assert not result.is_error, result.content[0].text
    assert [r.raw_path for r in fake.requests] == ["/api/v1/customers/42"]
    (question,) = person.asked
    assert "delete_customer" in question
    assert "customer_identifier=42" in question
    assert "cannot be undone" in question


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize(("action", "word"), [("decline", "declined"), ("cancel", "cancelled")])
async def test_a_declined_or_cancelled_question_sends_nothing(
    fake: FakeCustomerIO, era: str, action: str, word: str
) -> None:
    person = Person(action)
    async with client(fake, era, person) as connected:
        result = await connected.call_tool(*DELETE)
    assert result.is_error
    assert f"The user {word} the confirmation for delete_customer. Nothing was sent" in result.content[0].text
    assert result.structured_content["error"]["type"] == "not_confirmed"
    assert fake.requests == []


@pytest.mark.parametrize("era", ERAS)
async def test_accepting_without_ticking_the_box_is_a_no(fake: FakeCustomerIO, era: str) -> None:
    async with client(fake, era, Person("accept", confirm=False)) as connected:
        result = await connected.call_tool(*DELETE)
    assert result.is_error
    assert fake.requests == []


@pytest.mark.parametrize("era", ERAS)
async def test_the_question_for_a_batch_names_each_destructive_operation_with_counts(
    fake: FakeCustomerIO, era: str
) -> None:
    person = Person("accept")
    async with client(fake, era, person) as connected:
        result = await connected.call_tool(*V2_BATCH)
    assert not result.is_error
    (question,) = person.asked
    assert "person delete ×2 (id=2, email=c@example.com)" in question
    assert "person suppress (id=4)" in question
    assert "identify" not in question
    assert len(fake.requests) == 1


@pytest.mark.parametrize("era", ERAS)
async def test_calls_that_destroy_nothing_are_not_asked_about(fake: FakeCustomerIO, era: str) -> None:
    person = Person("decline")
    async with client(fake, era, person) as connected:
        event = await connected.call_tool(
            "send_customer_event", {"customer_identifier": "1", "request_body": {"name": "e"}}
        )
        track = await connected.call_tool("track_user_event", {"request_body": {"userId": "1", "event": "Deleted"}})
        deleted = await connected.call_tool(
            "track_user_event", {"request_body": {"userId": "1", "event": "User Deleted"}}
        )
    assert not event.is_error
    assert not track.is_error
    assert deleted.is_error  # the semantic event is destructive: asked, and declined
    assert len(person.asked) == 1
    assert len(fake.requests) == 2


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize(("mode", "sent"), [("auto", True), ("required", False), ("off", True)])
async def test_a_client_without_elicitation_under_each_mode(
    fake: FakeCustomerIO, era: str, mode: str, sent: bool
) -> None:
    async with client(fake, era, None, confirm_destructive=mode) as connected:
        result = await connected.call_tool(*DELETE)
    assert result.is_error is (not sent)
    assert bool(fake.requests) is sent
    if not sent:
        text = result.content[0].text
        assert "CUSTOMERIO_CONFIRM_DESTRUCTIVE=required" in text
        assert "this client cannot ask" in text
        assert "Nothing was sent" in text


@pytest.mark.parametrize("era", ERAS)
async def test_off_never_asks_and_dry_run_never_asks(fake: FakeCustomerIO, era: str) -> None:
    person = Person("decline")
    async with client(fake, era, person, confirm_destructive="off") as connected:
        assert not (await connected.call_tool(*DELETE)).is_error
    async with client(fake, era, person, dry_run=True, confirm_destructive="required") as connected:
        dry = await connected.call_tool(*DELETE)
    assert not dry.is_error
    assert dry.structured_content["dry_run"] is True
    assert person.asked == []
    assert len(fake.requests) == 1


async def test_no_tool_argument_skips_the_question(fake: FakeCustomerIO) -> None:
    person = Person("decline")
    async with client(fake, "2026-07-28", person) as connected:
        smuggled = await connected.call_tool("delete_customer", {"customer_identifier": "42", "confirmed": True})
        body = await connected.call_tool(
            "manage_entity",
            {"request_body": {"type": "person", "action": "delete", "identifiers": {"id": "2"}, "confirm": True}},
        )
    assert smuggled.is_error
    assert smuggled.structured_content["error"]["field"] == "confirmed"  # not a parameter at all
    assert body.is_error
    assert body.structured_content["error"]["type"] == "not_confirmed"
    assert fake.requests == []


async def test_a_forged_or_replayed_request_state_is_refused(fake: FakeCustomerIO) -> None:
    """The second round's state is sealed: a client cannot invent one, nor reuse one for other arguments."""
    async with client(fake, "2026-07-28", None) as connected:
        session = connected.session
        yes = {"confirm_destructive": types.ElicitResult(action="accept", content={"confirm": True})}
        forged = None
        with pytest.raises(Exception, match="Invalid or expired requestState"):
            forged = await session.call_tool(
                "delete_customer",
                {"customer_identifier": "42"},
                input_responses=yes,
                request_state='{"question": "0000"}',
                allow_input_required=True,
            )
        assert forged is None
    async with client(fake, "2026-07-28", Person("accept")) as connected:
        session = connected.session
        first = await session.call_tool("delete_customer", {"customer_identifier": "42"}, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult)
        with pytest.raises(Exception, match="Invalid or expired requestState"):
            await session.call_tool(
                "delete_customer",
                {"customer_identifier": "999"},  # another person, with the state minted for 42
                input_responses=yes,
                request_state=first.request_state,
                allow_input_required=True,
            )
    assert fake.requests == []


@pytest.mark.parametrize("shared", [True, False])
async def test_the_second_round_may_land_on_another_replica_that_shares_the_keys(
    fake: FakeCustomerIO, shared: bool
) -> None:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    from tests.processes import TOKEN, http_server

    key_a, key_b = "a" * 64, ("a" * 64 if shared else "b" * 64)
    yes = {"confirm_destructive": types.ElicitResult(action="accept", content={"confirm": True})}
    arguments = {"customer_identifier": "42"}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        http_server(fake, "streamable-http", CUSTOMERIO_MCP_STATE_KEYS=key_a) as replica_a,
        http_server(fake, "streamable-http", CUSTOMERIO_MCP_STATE_KEYS=key_b) as replica_b,
    ):
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(replica_a.url + "/mcp", http_client=http), mode="2026-07-28",
                   elicitation_callback=Person("accept")) as on_a,
            Client(streamable_http_client(replica_b.url + "/mcp", http_client=http), mode="2026-07-28",
                   elicitation_callback=Person("accept")) as on_b,
        ):  # fmt: skip
            first = await on_a.session.call_tool("delete_customer", arguments, allow_input_required=True)
            assert isinstance(first, types.InputRequiredResult)
            assert "confirm_destructive" in (first.input_requests or {})
            if shared:
                second = await on_b.session.call_tool(
                    "delete_customer",
                    arguments,
                    input_responses=yes,
                    request_state=first.request_state,
                    allow_input_required=True,
                )
                assert isinstance(second, types.CallToolResult)
                assert not second.is_error, second.content[0].text
            else:
                with pytest.raises(Exception, match="Invalid or expired requestState"):
                    await on_b.session.call_tool(
                        "delete_customer",
                        arguments,
                        input_responses=yes,
                        request_state=first.request_state,
                        allow_input_required=True,
                    )
    assert [r.raw_path for r in fake.requests] == (["/api/v1/customers/42"] if shared else [])


def test_state_keys_must_be_long_enough() -> None:
    from pydantic import ValidationError

    from customerio_mcp.settings import Settings

    with pytest.raises(ValidationError, match="shorter than 32 bytes"):
        Settings(mcp_state_keys="short")
    assert len(Settings(mcp_state_keys="x" * 32 + ", " + "y" * 40).mcp_state_keys or []) == 2
