"""What ``tools/list`` shows a client: names, annotations, schemas, descriptions and size."""

from __future__ import annotations

import json
import re

from customerio_mcp.settings import Settings
from customerio_mcp.tools.table import TOOLS
from tests.conftest import connect

TRACK = {
    "get_track_api_region",
    "update_or_add_person",
    "delete_customer",
    "add_device_to_customer_profile",
    "remove_customer_device",
    "suppress_customer_profile",
    "unsuppress_customer_profile",
    "global_unsubscribe_user",
    "send_customer_event",
    "track_anonymous_event",
    "submit_form_response",
    "merge_customer_profiles",
    "report_custom_metrics",
    "add_people_to_segment",
    "remove_user_from_segment",
    "manage_entity",
    "batch_process_requests",
}
PIPELINES = {
    "identify_person_and_assign_traits",
    "track_user_event",
    "send_page_view_event",
    "send_screen_view_event",
    "add_to_group",
    "alias_user_identity",
    "send_batch_requests",
}
DESTRUCTIVE = {
    "delete_customer",
    "remove_customer_device",
    "suppress_customer_profile",
    "merge_customer_profiles",
    "remove_user_from_segment",
    "manage_entity",
    "batch_process_requests",
    "alias_user_identity",  # merges two profiles irreversibly
    "track_user_event",  # semantic events such as "User Deleted"
    "send_batch_requests",  # alias items and those events
    "update_or_add_person",  # cio_relationships with delete_relationships
}
"""Every tool whose calls may delete, suppress or merge: MCP's destructiveHint (docs/tools.md's table agrees)."""
IDEMPOTENT = {
    "get_track_api_region",
    "update_or_add_person",
    "delete_customer",
    "add_device_to_customer_profile",
    "remove_customer_device",
    "suppress_customer_profile",
    "unsuppress_customer_profile",
    "add_people_to_segment",
    "remove_user_from_segment",
}
PARAMETERS = {
    "get_track_api_region": set(),
    "update_or_add_person": {"mode", "person_identifier", "request_body"},
    "delete_customer": {"customer_identifier"},
    "add_device_to_customer_profile": {"mode", "unique_person_identifier", "request_body"},
    "remove_customer_device": {"customer_identifier", "device_unique_id"},
    "suppress_customer_profile": {"unique_person_identifier"},
    "unsuppress_customer_profile": {"customer_identifier"},
    "global_unsubscribe_user": {"delivery_id_for_unsubscription", "set_unsubscribed_attribute"},
    "send_customer_event": {"mode", "customer_identifier", "request_body"},
    "track_anonymous_event": {"mode", "request_body"},
    "submit_form_response": {"mode", "form_identifier", "request_body"},
    "merge_customer_profiles": {"mode", "request_body"},
    "report_custom_metrics": {"mode", "request_body"},
    "add_people_to_segment": {"mode", "segment_identifier", "identifier_type", "request_body"},
    "remove_user_from_segment": {"mode", "segment_identifier", "identification_type", "request_body"},
    "manage_entity": {"mode", "request_body"},
    "batch_process_requests": {"mode", "request_body"},
    "identify_person_and_assign_traits": {"mode", "enable_strict_validation", "request_body"},
    "track_user_event": {"mode", "enable_strict_validation", "request_body"},
    "send_page_view_event": {"mode", "enable_strict_mode", "request_body"},
    "send_screen_view_event": {"mode", "enable_strict_validation", "request_body"},
    "add_to_group": {"mode", "enable_strict_validation", "request_body"},
    "alias_user_identity": {"mode", "enable_strict_validation", "request_body"},
    "send_batch_requests": {"mode", "enable_strict_mode", "request_body"},
}


async def test_tools_list_names_parameters_and_annotations() -> None:
    async with connect(Settings()) as client:
        listed = (await client.list_tools()).tools
    assert {tool.name for tool in listed} == TRACK | PIPELINES
    assert {t.name for t in TOOLS if t.api == "track"} == TRACK
    for tool in listed:
        assert re.fullmatch(r"[a-z0-9_]{1,40}", tool.name)
        assert tool.title
        assert len(tool.description) > 40
        assert set(tool.input_schema["properties"]) == PARAMETERS[tool.name], tool.name
        hints = tool.annotations
        assert bool(hints.read_only_hint) is (tool.name == "get_track_api_region")
        assert hints.destructive_hint is (tool.name in DESTRUCTIVE), tool.name  # always given: its default is true
        # Hints equal to their MCP defaults are omitted: idempotent false, open world true.
        assert hints.idempotent_hint is (True if tool.name in IDEMPOTENT else None), tool.name
        assert hints.open_world_hint is None
        if "request_body" in PARAMETERS[tool.name]:
            assert "Body:" in tool.description, tool.name


async def test_input_schemas_are_portable() -> None:
    async with connect(Settings()) as client:
        listed = (await client.list_tools()).tools
    for tool in listed:
        text = json.dumps(tool.input_schema)
        assert "$ref" not in text
        assert "$defs" not in text
        assert "anyOf" not in text
        for prop in tool.input_schema["properties"].values():
            assert isinstance(prop["type"], str)


async def test_tools_list_fits_in_16_kb() -> None:
    async with connect(Settings()) as client:
        result = await client.list_tools()
    size = len(json.dumps(result.model_dump(by_alias=True, mode="json", exclude_none=True), separators=(",", ":")))
    assert size <= 16 * 1024, size


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].split("/")[-1]]
    return node


async def test_v2_and_batch_descriptions_say_what_each_branch_needs() -> None:
    """A model can call the union tools right the first time: every type/action pair, the identifiers shape,
    and every field each action requires (nested required fields too) appear in the description."""
    from customerio_mcp.tools.schemas import body_schema, union_for
    from customerio_mcp.tools.table import TOOLS_BY_NAME

    async with connect(Settings()) as client:
        described = {tool.name: tool.description for tool in (await client.list_tools()).tools}
    for name in ("manage_entity", "batch_process_requests", "send_batch_requests"):
        tool = TOOLS_BY_NAME[name]
        schema, union = body_schema(tool), union_for(tool.api, tool.schema_key)
        text = described[name]
        for values in union.valid:
            for value in values:
                assert value in text, (name, value)
            branch = schema["$defs"][".".join(values) if len(values) == 2 else f"{union.definition}.{values[0]}"]
            for field in branch.get("required", []):
                assert field in text, (name, values, field)
                nested = _resolve(schema, branch["properties"].get(field, {}))
                for inner in nested.get("required", []):
                    assert inner in text, (name, values, field, inner)
    for name in ("manage_entity", "batch_process_requests"):
        assert '"id"|"email"|"phone"|"cio_id"' in described[name]
        assert '"object_type_id": "1" (a string)' in described[name]
