"""The shipped request schemas: reproducible, self-contained, and lenient where Customer.io is."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from customerio_mcp.settings import Settings
from customerio_mcp.tools.body_checks import prepare_body
from customerio_mcp.tools.schemas import body_schema
from customerio_mcp.tools.table import TOOLS, TOOLS_BY_NAME
from tests.conftest import connect
from tests.fake_customerio import FakeCustomerIO

ROOT = Path(__file__).resolve().parent.parent
OPENAPI = ROOT / "openapi"
BODY_TOOLS = [tool for tool in TOOLS if tool.body is not None]


def _derive_module() -> Any:
    spec = importlib.util.spec_from_file_location("derive_schemas", ROOT / "scripts" / "derive_schemas.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_schemas_are_exactly_what_the_script_derives() -> None:
    shipped = (ROOT / "customerio_mcp" / "tools" / "request_schemas.json").read_text(encoding="utf-8")
    assert _derive_module().render(OPENAPI) == shipped


def test_examples_in_the_descriptions_are_accepted() -> None:
    checked = 0
    for tool in BODY_TOOLS:
        document = json.loads((OPENAPI / f"{tool.api}.json").read_text(encoding="utf-8"))
        media = document["paths"][tool.path][tool.method.lower()]["requestBody"]["content"]["application/json"]
        for example in (media.get("example"), media.get("schema", {}).get("example")):
            if isinstance(example, dict):
                prepare_body(tool, example)
                checked += 1
    assert checked >= 8


@pytest.mark.parametrize("tool", BODY_TOOLS, ids=lambda t: t.name)
async def test_get_request_schema_returns_the_full_schema_and_sends_nothing(fake: FakeCustomerIO, tool: Any) -> None:
    async with connect(Settings(track_url=fake.url, pipelines_url=fake.pipelines_url)) as client:  # no credentials
        result = await client.call_tool(tool.name, {"mode": "get_request_schema"})
    assert not result.is_error
    schema = result.structured_content["schema"]
    assert schema == body_schema(tool)
    assert "$ref" not in json.dumps(schema)
    assert "nothing was sent" in result.content[0].text
    assert json.loads(result.content[0].text.split("\n", 1)[1]) == schema
    assert fake.requests == []


# Valid calls that a strict reading of the descriptions would refuse (see the descriptions' README).
LENIENT: list[tuple[str, dict[str, Any]]] = [
    ("merge_customer_profiles", {"primary": {"id": "1"}, "secondary": {"id": "2"}}),
    ("merge_customer_profiles", {"primary": {"email": "a@example.com"}, "secondary": {"cio_id": "cio_1"}}),
    ("identify_person_and_assign_traits", {"userId": "1", "anonymousId": "a", "traits": {"x": None}}),
    ("identify_person_and_assign_traits", {"userId": "1", "context": {"ip": "1.2.3.4"}}),
    ("track_user_event", {"userId": "1", "anonymousId": "a", "event": "e"}),
    ("send_page_view_event", {"userId": "1"}),
    ("manage_entity", {"type": "person", "action": "page", "identifiers": {"id": "1"}, "name": "/pricing"}),
    ("manage_entity", {"type": "person", "action": "identify", "identifiers": {"email": "a@example.com"}}),
    (
        "batch_process_requests",
        {"batch": [{"type": "person", "action": "page", "identifiers": {"id": "1"}, "name": "/"}]},
    ),
    ("update_or_add_person", {}),
    (
        "send_batch_requests",
        {"batch": [{"type": "page", "anonymousId": "a"}, {"type": "group", "userId": "1", "groupId": "g"}]},
    ),
]


@pytest.mark.parametrize(("tool", "body"), LENIENT)
def test_valid_calls_pass_local_validation(tool: str, body: dict[str, Any]) -> None:
    sent = prepare_body(TOOLS_BY_NAME[tool], body)
    added = {"id", "messageId", "type"}
    assert _without(sent, added) == _without(body, added)


def _without(value: Any, keys: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


def test_prepare_body_never_changes_the_callers_object() -> None:
    body = {"name": "e"}
    sent = prepare_body(TOOLS_BY_NAME["track_anonymous_event"], body)
    assert body == {"name": "e"}
    assert "id" in sent


def test_vendored_descriptions_are_the_ones_the_readme_names() -> None:
    """The vendored files are byte for byte what ``openapi/README.md`` says they are, with their licence."""
    import hashlib

    readme = (OPENAPI / "README.md").read_text(encoding="utf-8")
    for name in ("track.json", "pipelines.json"):
        digest = hashlib.sha256((OPENAPI / name).read_bytes()).hexdigest()
        assert f"`{digest}`" in readme, f"{name} changed without its hash in openapi/README.md"
    assert (OPENAPI / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
