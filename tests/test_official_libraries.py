"""Customer.io's own Python libraries decide what valid means: every body they send, our tools send too.

``customerio`` (Track API) and ``customerio-cdp-analytics`` (Data Pipelines) are driven against the
fake Customer.io for every operation they support, over real loopback HTTP(S); every request they
put on the wire is captured and replayed through the matching tool (``tests/library_replay.py``). Each
replay must pass local validation and reach the fake unchanged, apart from the ``id`` / ``messageId`` /
``type`` keys the server adds. (Both packages install a ``customerio`` package, one of them with an empty
``__init__``: the tests import the submodules, which work whichever ``__init__`` won.)
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path

import pytest

from tests.fake_customerio import FakeCustomerIO, Recorded
from tests.library_replay import PIPELINES_TOOLS, replay_all
from tests.tls import make_certificate, server_context

WHEN = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


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


def test_the_libraries_exercised_every_operation_they_support(captured: list[Recorded]) -> None:
    track_routes = {(r.method, r.route) for r in captured if r.api == "track"}
    assert len(track_routes) == 10  # identify, event, anonymous event, devices x2, suppress x2, merge, delete, batch
    pipelines_types = {item["type"] for r in captured if r.api == "pipelines" for item in r.body["batch"]}
    assert pipelines_types == set(PIPELINES_TOOLS)
    assert {r.raw_path for r in captured if r.api == "pipelines"} == {"/v1/batch"}


async def test_every_library_body_passes_through_its_tool_unchanged(captured: list[Recorded]) -> None:
    replayed = await replay_all(captured)
    assert replayed == len(captured) + sum(len(r.body["batch"]) for r in captured if r.api == "pipelines")
