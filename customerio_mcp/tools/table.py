"""The 24 tools, one row per Customer.io endpoint.

A row says everything the generic runner needs: which API and endpoint, which tool parameter
fills which path segment or query parameter, what kind of body the endpoint takes (which decides
deduplication and size limits), and the MCP annotations. Tool and parameter names are part of the
public contract and must not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from customerio_mcp.customerio.api import Api

ParamKind = Literal["person", "text", "integer"]
Destructive = Literal["never", "always", "by_content"]
"""``always``: the tool's only purpose destroys (hidden in no-destructive mode); ``by_content``: some bodies
hold destructive operations (refused one by one in no-destructive mode); ``never``."""
BodyKind = Literal["plain", "v1_event", "v2_entity", "v2_batch", "pipelines_call", "pipelines_batch"]

REPLAY_SAFE_BODIES: frozenset[BodyKind] = frozenset(
    {"v1_event", "v2_entity", "v2_batch", "pipelines_call", "pipelines_batch"}
)
ID_TYPES = ("id", "email", "phone", "cio_id")


@dataclass(frozen=True)
class PathParam:
    name: str
    """The tool parameter."""
    segment: str
    """The ``{placeholder}`` in the path template."""
    description: str
    kind: ParamKind = "text"


@dataclass(frozen=True)
class QueryParam:
    name: str
    key: str
    description: str
    choices: tuple[str, ...]
    default: str


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    api: Api
    method: Literal["GET", "PUT", "POST", "DELETE"]
    path: str
    path_params: tuple[PathParam, ...] = ()
    query_params: tuple[QueryParam, ...] = ()
    body: BodyKind | None = None
    """None: no body. Otherwise the tool takes ``mode`` and ``request_body``."""
    strict_param: str | None = None
    """Pipelines only: the parameter that sets ``X-Strict-Mode``."""
    call_type: str | None = None
    """Pipelines single calls: the ``type`` the endpoint implies."""
    read_only: bool = False
    destructive: Destructive = "never"
    idempotent: bool = False
    check_before_repeat: str = ""
    """For a call that is neither idempotent nor deduplicated: what to look at in Customer.io before repeating
    it after a failure that may have been applied."""

    @property
    def schema_key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def destructive_hint(self) -> bool:
        """MCP's ``destructiveHint``: true when any call of the tool may delete, suppress or merge."""
        return self.destructive != "never"

    @property
    def replay_safe(self) -> bool:
        """Whether sending the same request twice changes nothing more than sending it once."""
        return self.idempotent or self.body in REPLAY_SAFE_BODIES


def _person(name: str) -> PathParam:
    return PathParam(name, "identifier", "Person id, email, phone or cio_id.", "person")


def _id_type(name: str) -> QueryParam:
    return QueryParam(name, "id_type", "What `ids` hold.", ID_TYPES, "id")


_SEGMENT = PathParam("segment_identifier", "segment_id", "The manual segment's numeric ID.", "integer")

_V2_OPERATION = (
    'identifiers: person {"id"|"email"|"phone"|"cio_id": "..."} (one key; phone in E.164: "+14155552671"); '
    'object {"object_type_id": "1" (a string), "object_id": "..."} or {"cio_object_id": "..."}. '
    "person actions: identify (attributes), delete, "
    "event/page/screen (name; attributes, timestamp: unix s), add_relationships/delete_relationships "
    '(cio_relationships: [{"identifiers": object}]), add_device (device: {token, platform}), delete_device '
    "(device: {token}), suppress, unsuppress, merge (primary, secondary: person identifiers, no identifiers). "
    "object actions: identify, identify_anonymous (attributes, cio_relationships), delete, "
    'add_relationships/delete_relationships (cio_relationships: [{"identifiers": person}]). delivery action: event '
    '(identifiers: {"id": delivery_id}, name: opened|converted|delivered, attributes: {device_token}).'
)
"""What each v2 type/action needs; tests/test_definitions.py checks it against the schemas."""
_WHO = "userId or anonymousId (one required)"
_OPTIONAL = "Optional: context, integrations, timestamp (ISO 8601)."


def _pipelines(
    name: str,
    title: str,
    path: str,
    call_type: str | None,
    strict: str,
    what: str,
    destructive: Destructive = "never",
) -> ToolSpec:
    return ToolSpec(
        name=name,
        title=title,
        description=what,
        api="pipelines",
        method="POST",
        path=path,
        body="pipelines_batch" if call_type is None else "pipelines_call",
        strict_param=strict,
        call_type=call_type,
        destructive=destructive,
    )


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "get_track_api_region",
        "Look up the Track API region",
        "Ask Customer.io which region (us/eu) the Track credentials belong to: url, region, environment_id.",
        "track",
        "GET",
        "/api/v1/accounts/region",
        read_only=True,
        idempotent=True,
    ),
    ToolSpec(
        "update_or_add_person",
        "Add or update a person",
        "Create or update a person. Body: attributes as top-level keys, any JSON values (email, created_at in unix "
        "seconds...); optional _update (update only), cio_relationships. {} is valid.",
        "track",
        "PUT",
        "/api/v1/customers/{identifier}",
        (_person("person_identifier"),),
        body="plain",
        destructive="by_content",  # cio_relationships with action delete_relationships
        idempotent=True,
    ),
    ToolSpec(
        "delete_customer",
        "Delete a person",
        "Delete a person and all their data from Customer.io. Irreversible.",
        "track",
        "DELETE",
        "/api/v1/customers/{identifier}",
        (_person("customer_identifier"),),
        destructive="always",
        idempotent=True,
    ),
    ToolSpec(
        "add_device_to_customer_profile",
        "Add or update a person's device",
        'Add or update a push device for a person. Body: {"device": {"id": token (required), "platform": '
        '"ios"|"android" (required), "last_used", "attributes"}}.',
        "track",
        "PUT",
        "/api/v1/customers/{identifier}/devices",
        (_person("unique_person_identifier"),),
        body="plain",
        idempotent=True,
    ),
    ToolSpec(
        "remove_customer_device",
        "Remove a person's device",
        "Delete a push device (by its token/ID) from a person.",
        "track",
        "DELETE",
        "/api/v1/customers/{identifier}/devices/{device_id}",
        (
            _person("customer_identifier"),
            PathParam("device_unique_id", "device_id", "The device token or ID to remove."),
        ),
        destructive="always",
        idempotent=True,
    ),
    ToolSpec(
        "suppress_customer_profile",
        "Suppress a person",
        "Suppress a person: delete their data and ignore future data sent for this identifier.",
        "track",
        "POST",
        "/api/v1/customers/{identifier}/suppress",
        (_person("unique_person_identifier"),),
        destructive="always",
        idempotent=True,
    ),
    ToolSpec(
        "unsuppress_customer_profile",
        "Unsuppress a person",
        "Stop suppressing an identifier so Customer.io accepts data for it again (deleted data is not restored).",
        "track",
        "POST",
        "/api/v1/customers/{identifier}/unsuppress",
        (_person("customer_identifier"),),
        idempotent=True,
    ),
    ToolSpec(
        "global_unsubscribe_user",
        "Unsubscribe the person behind a delivery",
        "Globally unsubscribe the person who received a delivery (for custom unsubscribe pages).",
        "track",
        "POST",
        "/unsubscribe/{delivery_id}",
        (PathParam("delivery_id_for_unsubscription", "delivery_id", "The delivery ID from the message."),),
        check_before_repeat="the person's `unsubscribed` attribute in Customer.io",
    ),
    ToolSpec(
        "send_customer_event",
        "Send an event for a person",
        "Record a person's event. Body: name (required, ≤100 bytes), data (object ≤100 KB), timestamp (unix s), "
        "type (event|page|screen), id (ULID, added if missing).",
        "track",
        "POST",
        "/api/v1/customers/{identifier}/events",
        (_person("customer_identifier"),),
        body="v1_event",
    ),
    ToolSpec(
        "track_anonymous_event",
        "Send an anonymous event",
        "Record an event for an unidentified visitor. Body: name (required), anonymous_id, data, timestamp, "
        "type (event|page|screen), id (ULID, added if missing).",
        "track",
        "POST",
        "/api/v1/events",
        body="v1_event",
    ),
    ToolSpec(
        "submit_form_response",
        "Submit a form response",
        'Submit a form response (a new form ID creates the form). Body: {"data": {field: value}} (required; '
        "include email or id).",
        "track",
        "POST",
        "/api/v1/forms/{form_id}/submit",
        (PathParam("form_identifier", "form_id", "Your form's ID (any string)."),),
        body="plain",
        check_before_repeat="the form's latest responses in Customer.io",
    ),
    ToolSpec(
        "merge_customer_profiles",
        "Merge two people",
        "Merge the secondary person into the primary, deleting the secondary (irreversible). Body: primary and "
        'secondary (required), each {"id"|"email"|"phone"|"cio_id": value}.',
        "track",
        "POST",
        "/api/v1/merge_customers",
        body="plain",
        destructive="always",
        check_before_repeat="whether the secondary person still exists",
    ),
    ToolSpec(
        "report_custom_metrics",
        "Report a message metric",
        "Report a delivery metric (opened, clicked, converted...). Body: delivery_id and metric (required), "
        "timestamp, recipient, reason, href.",
        "track",
        "POST",
        "/api/v1/metrics",
        body="plain",
        check_before_repeat="the delivery's metrics in Customer.io",
    ),
    ToolSpec(
        "add_people_to_segment",
        "Add people to a manual segment",
        'Add up to 1000 people to a manual segment. Body: {"ids": [...]} (required); identifier_type says what '
        "the ids are.",
        "track",
        "POST",
        "/api/v1/segments/{segment_id}/add_customers",
        (_SEGMENT,),
        (_id_type("identifier_type"),),
        body="plain",
        idempotent=True,
    ),
    ToolSpec(
        "remove_user_from_segment",
        "Remove people from a manual segment",
        'Remove people from a manual segment. Body: {"ids": [...]} (required); identification_type says what the '
        "ids are.",
        "track",
        "POST",
        "/api/v1/segments/{segment_id}/remove_customers",
        (_SEGMENT,),
        (_id_type("identification_type"),),
        body="plain",
        destructive="always",
        idempotent=True,
    ),
    ToolSpec(
        "manage_entity",
        "Change one person or object (v2)",
        f"One v2 operation (≤32 KB). Body: type (person|object|delivery), action, identifiers, then the action's "
        f"fields. {_V2_OPERATION}",
        "track",
        "POST",
        "/api/v2/entity",
        body="v2_entity",
        destructive="by_content",
        check_before_repeat="the delivery's metrics, or whether the secondary person of a merge still exists",
    ),
    ToolSpec(
        "batch_process_requests",
        "Send many v2 operations",
        'Several v2 operations (≤32 KB each, ≤500 KB in all). Body: {"batch": [operation, ...]}; each operation: '
        f"type (person|object|delivery), action, identifiers, then the action's fields. {_V2_OPERATION} "
        "Failures are listed by index.",
        "track",
        "POST",
        "/api/v2/batch",
        body="v2_batch",
        destructive="by_content",
        check_before_repeat="the delivery metrics and merges in the batch (every other operation is safe to repeat)",
    ),
    _pipelines(
        "identify_person_and_assign_traits",
        "Identify a person (Pipelines)",
        "/identify",
        "identify",
        "enable_strict_validation",
        f"Identify a person and set traits. Body: {_WHO}, traits (object). {_OPTIONAL}",
    ),
    _pipelines(
        "track_user_event",
        "Track an event (Pipelines)",
        "/track",
        "track",
        "enable_strict_validation",
        f"Record an event. Body: event (name, required), {_WHO}, properties. {_OPTIONAL} Semantic events "
        '"User Deleted" and the like delete or suppress; each needs its own fields (see get_request_schema).',
        destructive="by_content",
    ),
    _pipelines(
        "send_page_view_event",
        "Record a page view (Pipelines)",
        "/page",
        "page",
        "enable_strict_mode",
        f"Record a web page view. Body: {_WHO}, name, properties (url, title...). {_OPTIONAL}",
    ),
    _pipelines(
        "send_screen_view_event",
        "Record a screen view (Pipelines)",
        "/screen",
        "screen",
        "enable_strict_validation",
        f"Record a mobile screen view. Body: {_WHO}, name, properties. {_OPTIONAL}",
    ),
    _pipelines(
        "add_to_group",
        "Add a person to a group (Pipelines)",
        "/group",
        "group",
        "enable_strict_validation",
        f"Associate a person with a group (object). Body: groupId (required), {_WHO}, traits. {_OPTIONAL}",
    ),
    _pipelines(
        "alias_user_identity",
        "Alias an identity (Pipelines)",
        "/alias",
        "alias",
        "enable_strict_validation",
        "Merge a previous identity into a user, irreversibly. Body: userId and previousId (both required). "
        f"{_OPTIONAL}",
        destructive="always",
    ),
    _pipelines(
        "send_batch_requests",
        "Send many calls (Pipelines)",
        "/batch",
        None,
        "enable_strict_mode",
        'Several calls (≤32 KB each, ≤500 KB in all). Body: {"batch": [call, ...]}; each call: type '
        f"(identify|track|page|screen|group|alias), {_WHO}; track: event; group: groupId; alias: userId and "
        "previousId; traits/properties objects. messageIds are added if missing.",
        destructive="by_content",
    ),
)

TOOLS_BY_NAME: dict[str, ToolSpec] = {tool.name: tool for tool in TOOLS}
