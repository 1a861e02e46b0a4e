"""Customer.io's own Node libraries decide what valid means too: every body they send, our tools send.

``customerio-node`` (its ``TrackClient`` and ``PipelinesClient``) and ``@customerio/cdp-analytics-node``,
pinned by ``tests/node_libraries/package-lock.json`` and installed by ``npm ci`` here, are driven by
``tests/node_libraries/drive.cjs`` through every public method (``trackPush`` aside: it posts to the
deprecated ``/api/v1/push/events``, which the server does not wrap) against the fake Customer.io,
with varied arguments: nested, array, float and null attributes, unicode, ids holding ``/``, spaces,
``?`` and ``#``, a phone identifier, batches of mixed types. Every request they put on the wire is
replayed through the matching tool (``tests/library_replay.py``). The two calls the libraries send
but Customer.io's docs call invalid (a numeric ``userId``, numeric segment ``ids``) are refused by
the fake and by the tool, whose error names the field and says what is wrong.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import call
from tests.fake_customerio import FakeCustomerIO, Recorded
from tests.library_replay import arguments_for, replay_all, tool_for
from tests.oauth_server import node, npm_installed

LIBRARIES = Path(__file__).parent / "node_libraries"
ALL_ROUTES = 17 + 7
"""Every endpoint the 24 tools wrap: the libraries reach each one."""


@pytest.fixture(scope="module")
def libraries_prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The driver with the pinned libraries installed (``npm ci``), in a temporary prefix."""
    return npm_installed(LIBRARIES, "drive.cjs", tmp_path_factory.mktemp("node-libraries"))


@pytest.fixture(scope="module")
def driven(libraries_prefix: Path) -> tuple[list[dict[str, Any]], list[Recorded], list[str]]:
    """What each library call reported, every request the fake received, and what the fake refused."""
    node_binary, _ = node()
    with FakeCustomerIO() as fake:
        config = {"url": fake.url, "siteId": fake.site_id, "apiKey": fake.api_key, "writeKey": fake.pipelines_key}
        done = subprocess.run(
            [str(node_binary), "drive.cjs", json.dumps(config)],
            cwd=libraries_prefix,
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    outcomes = [json.loads(line) for line in done.stdout.decode().splitlines()]
    return outcomes, fake.requests, fake.rejections


def _valid(requests: list[Recorded]) -> list[Recorded]:
    return [request for request in requests if request.answered is not None and request.answered < 300]


def test_every_valid_call_of_the_node_libraries_succeeds_and_every_endpoint_is_reached(
    driven: tuple[list[dict[str, Any]], list[Recorded], list[str]],
) -> None:
    outcomes, requests, rejections = driven
    failed = [o for o in outcomes if not o["ok"] and not o["call"].startswith("invalid:")]
    assert failed == []
    invalid = [o for o in outcomes if o["call"].startswith("invalid:")]
    assert [o["status"] for o in invalid] == [400, 400], invalid
    assert len(rejections) == len(invalid)
    assert len({(r.method, r.route) for r in _valid(requests)}) == ALL_ROUTES
    batched = [item for r in requests if r.raw_path == "/v1/batch" for item in r.body["batch"]]
    assert {item["type"] for item in batched} == {"identify", "track", "page", "screen", "group", "alias"}


async def test_every_node_library_request_passes_through_its_tool(
    driven: tuple[list[dict[str, Any]], list[Recorded], list[str]],
) -> None:
    _, requests, _ = driven
    valid = _valid(requests)
    replayed = await replay_all(valid)
    assert replayed == len(valid) + sum(len(r.body["batch"]) for r in valid if r.raw_path == "/v1/batch")


def test_the_libraries_send_what_the_fixes_are_about(
    driven: tuple[list[dict[str, Any]], list[Recorded], list[str]],
) -> None:
    """The library bodies behind issue 18's findings are among those replayed, exactly as sent."""
    _, requests, _ = driven
    bodies = [r.body for r in _valid(requests)]
    assert {"name": "visited", "anonymous_id": 12345} in bodies  # trackAnonymous(12345, ...)
    assert {"device": {"id": "device-token-1", "platform": "ios", "attributes": {"primary": True}}} in bodies
    paths = {r.raw_path for r in _valid(requests)}
    assert "/api/v1/customers/%2B14155552671" in paths  # identify by phone, percent-encoded
    suppress = next(r for r in requests if r.raw_path.endswith("/suppress"))
    assert suppress.body == {}  # the library posts {}; the tool sends no body (library_replay.py)
    segment = next(r for r in requests if r.raw_path.endswith("/add_customers") and r.body["ids"][0] == "42")
    assert segment.query == {}  # no id_type from the library; the tool sends id_type=id (library_replay.py)


@pytest.mark.parametrize(
    ("path", "field", "words"),
    [
        ("/v1/identify", "request_body.userId", ["must be a string", "Customer.io's docs", "not an integer (42)"]),
        ("/api/v1/segments/7/add_customers", "request_body.ids[", ["must be a string", "docs", "not an integer"]),
    ],
)
async def test_what_the_libraries_send_but_customerio_calls_invalid_is_refused_saying_exactly_that(
    driven: tuple[list[dict[str, Any]], list[Recorded], list[str]], path: str, field: str, words: list[str]
) -> None:
    _, requests, _ = driven
    request = next(r for r in requests if r.raw_path == path and r.answered == 400)
    tool = tool_for(request)
    with FakeCustomerIO() as fake:
        result = await call(fake, tool.name, arguments_for(tool, request))
        assert fake.requests == []
    assert result.is_error
    text = result.content[0].text
    assert text.startswith(f"`{field}"), text
    for word in words:
        assert word in text, text
