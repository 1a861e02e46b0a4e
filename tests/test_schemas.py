"""The shipped request schemas: reproducible, compact, self-contained, and as lenient as Customer.io.

The evidence that nothing valid is refused comes from outside this project: every request example in
Customer.io's two OpenAPI descriptions (``tests/openapi_examples.py``) is sent through its tool to
the fake Customer.io and must arrive unchanged (apart from the ``id`` / ``messageId`` / ``type`` the
server adds). ``tests/test_official_libraries.py`` does the same with Customer.io's own libraries.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import pytest

from customerio_mcp.tools.body_checks import prepare_body
from customerio_mcp.tools.schemas import body_schema, compiled, first_invalid_item, union_for
from customerio_mcp.tools.table import TOOLS, TOOLS_BY_NAME, ToolSpec
from tests.conftest import call, connect
from tests.documents import section
from tests.fake_customerio import FakeCustomerIO
from tests.library_replay import ADDED, without
from tests.openapi_examples import request_examples

ROOT = Path(__file__).resolve().parent.parent
OPENAPI = ROOT / "openapi"
BODY_TOOLS = [tool for tool in TOOLS if tool.body is not None]


def _derive_module() -> Any:
    spec = importlib.util.spec_from_file_location("derive_schemas", ROOT / "scripts" / "derive_schemas.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("derive_schemas", module)  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def test_shipped_schemas_are_exactly_what_the_script_derives() -> None:
    shipped = (ROOT / "customerio_mcp" / "tools" / "request_schemas.json").read_text(encoding="utf-8")
    assert _derive_module().render(OPENAPI) == shipped


def test_vendored_descriptions_are_the_ones_the_readme_names() -> None:
    """The vendored files are byte for byte what ``openapi/README.md`` says they are, with their licence."""
    readme = (OPENAPI / "README.md").read_text(encoding="utf-8")
    for name in ("track.json", "pipelines.json"):
        digest = hashlib.sha256((OPENAPI / name).read_bytes()).hexdigest()
        assert f"`{digest}`" in readme, f"{name} changed without its hash in openapi/README.md"
    assert (OPENAPI / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


def test_the_docs_list_every_relaxation_and_rule_the_script_applies() -> None:
    validation = section(ROOT / "docs" / "tools.md", "validation-exactly-as-strict-as-customerio")
    module = _derive_module()
    assert module.updates_table(OPENAPI) in validation
    assert module.relaxations_table(OPENAPI) in validation
    assert module.rules_table(OPENAPI) in validation


def _local_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [ref for value in node.values() for ref in _local_refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _local_refs(item)]
    return []


@pytest.mark.parametrize("tool", BODY_TOOLS, ids=lambda t: t.name)
def test_every_schema_is_compact_valid_and_self_contained(tool: ToolSpec) -> None:
    schema = body_schema(tool)
    assert len(json.dumps(schema, separators=(",", ":")).encode()) <= 16 * 1024
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema_rs.validator_for(schema)
    for ref in _local_refs(schema):
        assert ref.startswith("#/$defs/"), ref
        assert ref.removeprefix("#/$defs/") in schema["$defs"], ref
    assert "examples" not in json.dumps(schema)


@pytest.mark.parametrize("tool", BODY_TOOLS, ids=lambda t: t.name)
async def test_get_request_schema_returns_the_schema_validation_uses_and_sends_nothing(
    fake: FakeCustomerIO, tool: ToolSpec
) -> None:
    from customerio_mcp.settings import Settings

    async with connect(Settings(track_url=fake.url, pipelines_url=fake.pipelines_url)) as client:  # no credentials
        result = await client.call_tool(tool.name, {"mode": "get_request_schema"})
    assert not result.is_error
    note, _, text = result.content[0].text.partition("\n")
    assert "nothing was sent" in note
    assert json.loads(text) == body_schema(tool)
    assert len(text.encode()) <= 16 * 1024
    assert "schema" not in result.structured_content  # sent once, not twice
    # The validator local validation runs is compiled from exactly this schema.
    assert compiled(tool.api, tool.schema_key).is_valid({}) == jsonschema_rs.validator_for(json.loads(text)).is_valid(
        {}
    )
    assert fake.requests == []


def _tool_for(api: str, method: str, path: str) -> ToolSpec:
    return next(tool for tool in TOOLS if (tool.api, tool.method, tool.path) == (api, method, path))


EXAMPLES = [
    (api, method, path, where, body)
    for api in ("track", "pipelines")
    for method, path, where, body in request_examples(api)
    if (api, f"{method} {path}") != ("track", "POST /api/v1/push/events")
]


def test_the_descriptions_hold_enough_examples_to_mean_something() -> None:
    assert len(EXAMPLES) >= 18
    assert {_tool_for(api, method, path).name for api, method, path, _, _ in EXAMPLES} >= {
        "send_customer_event",
        "track_anonymous_event",
        "submit_form_response",
        "send_batch_requests",
        "identify_person_and_assign_traits",
    }


PATH_ARGUMENTS = {
    "person": "42",
    "integer": 7,
    "text": "form-1",
}


@pytest.mark.parametrize(("api", "method", "path", "where", "body"), EXAMPLES, ids=lambda v: "")
async def test_every_request_example_of_the_descriptions_is_sent_unchanged(
    fake: FakeCustomerIO, api: str, method: str, path: str, where: str, body: Any
) -> None:
    tool = _tool_for(api, method, path)
    arguments: dict[str, Any] = {param.name: PATH_ARGUMENTS[param.kind] for param in tool.path_params}
    arguments["request_body"] = body
    result = await call(fake, tool.name, arguments)
    assert not result.is_error, f"{tool.name} {where}: {result.content[0].text}"
    sent = fake.only_request()
    assert without(sent.body, ADDED) == without(body, ADDED), where
    assert fake.rejections == []


# Valid calls that a strict reading of the descriptions would refuse.
LENIENT: list[tuple[str, dict[str, Any]]] = [
    ("merge_customer_profiles", {"primary": {"id": "1"}, "secondary": {"id": "2"}}),
    ("merge_customer_profiles", {"primary": {"email": "a@example.com"}, "secondary": {"cio_id": "cio_1"}}),
    ("identify_person_and_assign_traits", {"userId": "1", "anonymousId": "a", "traits": {"x": None}}),
    ("identify_person_and_assign_traits", {"userId": "1", "context": {"ip": "1.2.3.4"}}),
    ("identify_person_and_assign_traits", {"userId": None, "anonymousId": "a"}),
    ("identify_person_and_assign_traits", {"userId": "1", "anonymousId": None, "integrations": None}),
    ("track_user_event", {"userId": "1", "anonymousId": "a", "event": "e"}),
    ("send_page_view_event", {"userId": "1"}),
    ("manage_entity", {"type": "person", "action": "page", "identifiers": {"id": "1"}, "name": "/pricing"}),
    ("manage_entity", {"type": "person", "action": "identify", "identifiers": {"email": "a@example.com"}}),
    (
        "batch_process_requests",
        {"batch": [{"type": "person", "action": "page", "identifiers": {"id": "1"}, "name": "/"}]},
    ),
    ("update_or_add_person", {}),
    ("update_or_add_person", {"score": 99.5, "tags": ["a", "b"], "address": {"city": "Paris"}, "gone": None}),
    ("send_customer_event", {"name": "homepage", "type": "screen"}),
    ("submit_form_response", {"data": {"id": 12345, "first_name": "cool"}}),
    (
        "send_batch_requests",
        {"batch": [{"type": "page", "anonymousId": "a"}, {"type": "group", "userId": "1", "groupId": "g"}]},
    ),
    ("send_batch_requests", {"batch": [{"type": "alias", "userId": "1", "previousId": "anon", "anonymousId": None}]}),
    ("send_customer_event", {"name": "e", "timestamp": 99_999_999_999}),
]


@pytest.mark.parametrize(("tool", "body"), LENIENT)
def test_valid_calls_pass_local_validation_unchanged(tool: str, body: dict[str, Any]) -> None:
    sent = prepare_body(TOOLS_BY_NAME[tool], body)
    assert without(sent.body, ADDED) == without(body, ADDED)
    assert json.loads(sent.content) == sent.body


def test_prepare_body_never_changes_the_callers_object() -> None:
    body = {"name": "e"}
    batch = {"batch": [{"type": "track", "userId": "1", "event": "e"}]}
    sent = prepare_body(TOOLS_BY_NAME["track_anonymous_event"], body)
    sent_batch = prepare_body(TOOLS_BY_NAME["send_batch_requests"], batch)
    assert body == {"name": "e"}
    assert batch == {"batch": [{"type": "track", "userId": "1", "event": "e"}]}
    assert "id" in sent.body
    assert "messageId" in sent_batch.body["batch"][0]


BATCH_TOOLS = [tool for tool in BODY_TOOLS if tool.body in ("v2_batch", "pipelines_batch")]


def _variants(item: dict[str, Any], pairs: tuple[tuple[str, ...], ...], keys: tuple[str, ...]) -> list[Any]:
    """``item``, each property dropped or of another type, and the item under every other type/action."""
    found: list[Any] = [item, [item], "item", None]
    for name in item:
        found.append({key: value for key, value in item.items() if key != name})
        found += [{**item, name: other} for other in ([], {}, "x", 1, None)]
    found += [{**item, **dict(zip(keys, pair, strict=True))} for pair in pairs]
    return found


@pytest.mark.parametrize("tool", BATCH_TOOLS, ids=lambda tool: tool.name)
def test_batch_items_are_judged_by_their_branch_exactly_as_by_the_whole_union(tool: ToolSpec) -> None:
    """Each batch item is validated against the branch its type/action select: the verdict must be the union's."""
    union = union_for(tool.api, tool.schema_key)
    assert union is not None
    items = [
        item
        for api, method, path, _, body in EXAMPLES
        if _tool_for(api, method, path) is tool
        for item in body["batch"]
    ] + [item for name, body in LENIENT if name == tool.name for item in body["batch"]]
    assert items
    whole = compiled(tool.api, tool.schema_key, item=True)
    verdicts = set()
    for item in items:
        for variant in _variants(item, union.valid, union.keys):
            verdict = whole.is_valid(variant)
            assert (first_invalid_item(tool.api, tool.schema_key, [variant]) is None) == verdict, variant
            verdicts.add(verdict)
    assert verdicts == {True, False}
