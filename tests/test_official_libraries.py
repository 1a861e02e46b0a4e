"""Customer.io's own Python libraries decide what valid means: every body they send, our tools send too.

``customerio`` (Track API) and ``customerio-cdp-analytics`` (Data Pipelines) are driven against the
fake Customer.io for every operation they support, over real loopback HTTP(S); every request they
put on the wire is captured and replayed through the matching tool. Each replay must pass local
validation and reach the fake unchanged, apart from the ``id`` / ``messageId`` / ``type`` keys the
server adds. (Both packages install a ``customerio`` package, one of them with an empty
``__init__``: the tests import the submodules, which work whichever ``__init__`` won.)
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from customerio_mcp.tools.body_checks import prepare_body
from customerio_mcp.tools.table import TOOLS, TOOLS_BY_NAME, ToolSpec
from tests.conftest import call
from tests.fake_customerio import FakeCustomerIO, Recorded
from tests.tls import make_certificate, server_context

ADDED = {"id", "messageId", "type"}
PIPELINES_TOOLS = {
    "identify": "identify_person_and_assign_traits",
    "track": "track_user_event",
    "page": "send_page_view_event",
    "screen": "send_screen_view_event",
    "group": "add_to_group",
    "alias": "alias_user_identity",
}
WHEN = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
DESCRIPTION_GAPS = {
    "send_batch_requests": {
        "request_body.sentAt",
        "request_body.batch[].anonymousId",  # of the alias call
        "request_body.batch[].category",  # of the page and screen calls
        "request_body.batch[].context",  # per call: Customer.io's docs say the batch's applies to every call
        "request_body.batch[].integrations",  # likewise
        "request_body.batch[].timestamp",
    },
    "send_page_view_event": {"request_body.category"},
    "send_screen_view_event": {"request_body.category"},
    "alias_user_identity": {
        "request_body.anonymousId",
        "request_body.context",
        "request_body.integrations",
        "request_body.timestamp",
    },
}
"""Fields the Pipelines library sends that the vendored description does not name, so warned as ignored.

When the schemas name them, ``test_library_bodies_are_warned_only_of_fields_the_description_omits`` fails:
take them off this list.
"""


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def _track_library_calls(fake: FakeCustomerIO, certificate: Path) -> None:
    from customerio.track import CustomerIO

    client = CustomerIO(site_id=fake.site_id, api_key=fake.api_key, host="127.0.0.1", port=fake.port, retries=0)
    client.http.verify = str(certificate)
    client.http.trust_env = False  # else REQUESTS_CA_BUNDLE, when set, overrides the session's verify
    client.identify(
        "user 1/x",
        email="a@example.com",
        created_at=WHEN,
        plan="pro",
        score=99.5,
        tags=["a", "b"],
        address={"city": "Paris"},
        gone=math.nan,
        active=True,
    )
    client.identify("42", _update=True, cio_subscription_preferences={"topics": {"topic_1": True}})
    client.track("42", "purchase", {"price": 23.45, "when": WHEN}, id="01HZY7V3C9W3ZJ4K8XQJ1N5T2M", timestamp=WHEN)
    client.track("42", "signed_up")
    client.track_anonymous("anon-1", "watched_video", {"video": "intro"}, timestamp=WHEN)
    client.track_anonymous(None, "visited")
    client.pageview("42", "https://example.com/pricing", referer="https://example.com/")
    client.backfill("42", "old_purchase", WHEN, price=5)
    client.add_device("42", "device-token-1", "ios", last_used=WHEN, attributes={"app_version": "1.0"})
    client.delete_device("42", "device-token-1")
    client.suppress("42")
    client.unsuppress("42")
    client.merge_customers("id", "42", "email", "old@example.com")
    client.delete("42")
    client.batch(
        [
            {"type": "person", "action": "identify", "identifiers": {"id": "42"}, "attributes": {"plan": "pro"}},
            {"type": "person", "action": "event", "identifiers": {"email": "a@example.com"}, "name": "purchase"},
            {
                "type": "object",
                "action": "identify",
                "identifiers": {"object_type_id": "1", "object_id": "acme"},
                "attributes": {"name": "Acme"},
                "cio_relationships": [{"identifiers": {"id": "42"}}],
            },
        ]
    )
    client.close()


def _pipelines_library_calls(fake: FakeCustomerIO) -> None:
    from customerio.analytics.client import Client

    client = Client(write_key=fake.pipelines_key, host=fake.url, sync_mode=True, max_retries=0)
    client.identify("42", {"email": "a@example.com", "score": 99.5, "tags": ["a"], "nested": {"x": 1}})
    client.identify(anonymous_id="anon-1", traits={"plan": "trial"})
    client.track("42", "Order Completed", {"total": 5}, context={"ip": "8.8.8.8"}, timestamp=WHEN)
    client.track(anonymous_id="anon-1", event="Viewed", integrations={"All": True})
    client.page("42", "Docs", "Intro", {"url": "https://example.com/docs"})
    client.screen("42", "Settings", "Main", {"from": "push"})
    client.group("42", "acme", {"name": "Acme", "employees": 12})
    client.alias("anon-1", "42")


@pytest.fixture(scope="module")
def captured(certificate: tuple[Path, Path]) -> list[Recorded]:
    with FakeCustomerIO(tls=server_context(*certificate)) as track_fake, FakeCustomerIO() as pipelines_fake:
        _track_library_calls(track_fake, certificate[0])
        _pipelines_library_calls(pipelines_fake)
    requests = [*track_fake.requests, *pipelines_fake.requests]
    assert track_fake.rejections == pipelines_fake.rejections == []
    assert all(request.answered is not None and request.answered < 300 for request in requests)
    return requests


def _tool_for(request: Recorded) -> ToolSpec:
    if request.api == "pipelines":
        return next(tool for tool in TOOLS if tool.api == "pipelines" and request.raw_path == "/v1" + tool.path)
    return next(
        tool for tool in TOOLS if tool.api == "track" and (tool.method, tool.path) == (request.method, request.route)
    )


def _arguments(tool: ToolSpec, request: Recorded) -> dict[str, Any]:
    """The tool arguments that make ``request``: path parameters read back from the path, and the body."""
    arguments: dict[str, Any] = {}
    template, actual = (
        tool.path.split("/"),
        request.raw_path.removeprefix("/v1" if tool.api == "pipelines" else "").split("/"),
    )
    for part, value in zip(template, actual, strict=True):
        for param in tool.path_params:
            if part == "{" + param.segment + "}":
                arguments[param.name] = unquote(value)
    if tool.body is not None:
        arguments["request_body"] = request.body
    return arguments


def _replays(requests: list[Recorded]) -> Iterator[tuple[str, dict[str, Any], Recorded]]:
    for request in requests:
        tool = _tool_for(request)
        yield tool.name, _arguments(tool, request), request
        if tool.name == "send_batch_requests":  # each call in the batch is also a single call
            for item in request.body["batch"]:
                yield PIPELINES_TOOLS[item["type"]], {"request_body": item}, request


def _without(value: Any, keys: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


def test_the_libraries_exercised_every_operation_they_support(captured: list[Recorded]) -> None:
    track_routes = {(r.method, r.route) for r in captured if r.api == "track"}
    assert len(track_routes) == 10  # identify, event, anonymous event, devices x2, suppress x2, merge, delete, batch
    pipelines_types = {item["type"] for r in captured if r.api == "pipelines" for item in r.body["batch"]}
    assert pipelines_types == set(PIPELINES_TOOLS)
    assert {r.raw_path for r in captured if r.api == "pipelines"} == {"/v1/batch"}


async def test_every_library_body_passes_through_its_tool_unchanged(captured: list[Recorded]) -> None:
    replayed = 0
    for tool_name, arguments, original in _replays(captured):
        with FakeCustomerIO() as fake:
            result = await call(fake, tool_name, arguments)
            assert not result.is_error, f"{tool_name}: {result.content[0].text}"
            sent = fake.only_request()
        if tool_name == PIPELINES_TOOLS.get(str(arguments.get("request_body", {}).get("type"))):
            assert _without(sent.body, ADDED) == _without(arguments["request_body"], ADDED)
            assert sent.raw_path == "/v1/" + arguments["request_body"]["type"]
        else:
            assert (sent.method, sent.raw_path) == (original.method, original.raw_path)
            # Bodiless endpoints: the library sends {}; the tool sends no body, which Customer.io treats alike.
            expected = original.body if _tool_for(original).body is not None else None
            assert _without(sent.body, ADDED) == _without(expected, ADDED), tool_name
        assert fake.rejections == []
        replayed += 1
    assert replayed == len(captured) + sum(len(r.body["batch"]) for r in captured if r.api == "pipelines")


def test_library_bodies_are_warned_only_of_fields_the_description_omits(captured: list[Recorded]) -> None:
    """A warning that Customer.io ignores a field its own library sends is the schema's gap, never a surprise."""
    warned: dict[str, set[str]] = {}
    for tool_name, arguments, _ in _replays(captured):
        if "request_body" in arguments:
            prepared = prepare_body(TOOLS_BY_NAME[tool_name], arguments["request_body"])
            fields = {re.sub(r"\[\d+\]", "[]", warning["field"]) for warning in prepared.warnings.as_list()}
            if fields:
                warned.setdefault(tool_name, set()).update(fields)
    assert warned == DESCRIPTION_GAPS
