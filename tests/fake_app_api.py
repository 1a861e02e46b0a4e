"""The fake Customer.io's App API: people, their segments and activities, and objects, read back over HTTP.

``FakeCustomerIO`` answers the App API under ``/app`` (its ``app_url``), with Bearer auth against each
account's App API key, the way ``api.customer.io`` answers under ``/v1``. What the fake's Track and
Pipelines APIs accept changes what the App API reads: an identify (Track ``PUT /api/v1/customers/{id}``,
Pipelines ``/identify``) sets the person's attributes, an event (Track ``.../events``, Pipelines
``/track``) appends an activity, so a test can write through one tool and read the result back
through a verify tool. Answers follow the shapes of Customer.io's App API reference.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

APP_PREFIX = "/app"
APP_ROUTES = (
    ("GET", "/v1/customers/{customer_id}/attributes"),
    ("GET", "/v1/customers/{customer_id}/segments"),
    ("GET", "/v1/customers/{customer_id}/activities"),
    ("GET", "/v1/objects/{object_type_id}/{object_id}/attributes"),
)
_PATTERNS = [
    (method, re.compile("^" + re.sub(r"\{[a-z_]+\}", "([^/]+)", template) + "$"), template)
    for method, template in APP_ROUTES
]
PERSON_ID_TYPES = ("id", "email", "phone", "cio_id")


@dataclass
class Person:
    id: str | None
    cio_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    segments: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    """Oldest first; answered newest first, as Customer.io does."""

    def identifier(self, id_type: str) -> Any:
        if id_type == "id":
            return self.id
        if id_type == "cio_id":
            return self.cio_id
        return self.attributes.get(id_type)


class AppData:
    """What the fake App API knows, shared by the fake's request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.people: list[Person] = []
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        """(object_type_id, object_id) -> attributes."""
        self._next_cio = 0x3000001

    # -- what tests set up ---------------------------------------------------------------------

    def add_person(self, person_id: str | None, **attributes: Any) -> Person:
        with self._lock:
            return self._new_person(person_id, attributes)

    def add_object(self, object_type_id: str, object_id: str, **attributes: Any) -> None:
        with self._lock:
            self.objects[(object_type_id, object_id)] = dict(attributes)

    def person(self, value: str, id_type: str = "id") -> Person | None:
        with self._lock:
            return self._find(value, id_type)

    # -- what the Track and Pipelines APIs change ----------------------------------------------

    def applied(self, api: str, route: str, raw_path: str, body: Any) -> None:
        """Apply a write the fake accepted (2xx) to the people the App API reads."""
        if not isinstance(body, dict):
            return
        with self._lock:
            if api == "track" and route == "/api/v1/customers/{identifier}":
                self._identify(_track_identifier(raw_path), body)
            elif api == "track" and route == "/api/v1/customers/{identifier}/events":
                person = self._find_or_create(_track_identifier(raw_path))
                self._activity(person, body.get("type") or "event", body.get("name"), body.get("data"), body.get("id"))
            elif api == "pipelines" and route == "/v1/identify" and body.get("userId") is not None:
                self._identify(("id", str(body["userId"])), body.get("traits") or {})
            elif api == "pipelines" and route == "/v1/track" and body.get("userId") is not None:
                person = self._find_or_create(("id", str(body["userId"])))
                self._activity(person, "event", body.get("event"), body.get("properties"), body.get("messageId"))

    def _identify(self, identifier: tuple[str, str], attributes: dict[str, Any]) -> None:
        person = self._find_or_create(identifier)
        if person is None:
            return
        changed = {k: v for k, v in attributes.items() if k not in ("_update", "cio_relationships")}
        person.attributes.update(changed)
        self._activity(person, "attribute_change", None, changed, None)

    def _activity(self, person: Person | None, kind: str, name: Any, data: Any, key: Any) -> None:
        if person is None:
            return
        number = len(person.activities) + 1
        person.activities.append(
            {
                "id": str(key) if key else f"act-{person.cio_id}-{number}",
                "customer_id": person.id,
                "customer_identifiers": {
                    "id": person.id,
                    "email": person.attributes.get("email"),
                    "cio_id": person.cio_id,
                },
                "delivery_id": None,
                "delivery_type": None,
                "type": kind,
                "name": name,
                "data": data if isinstance(data, dict) else {},
                "timestamp": int(time.time()),
            }
        )

    def _find_or_create(self, identifier: tuple[str, str]) -> Person | None:
        """The person a write names, made when new (Customer.io creates people by id or email, not cio_id)."""
        id_type, value = identifier
        found = self._find(value, id_type)
        if found is not None or id_type == "cio_id":
            return found
        return self._new_person(value if id_type == "id" else None, {"email": value} if id_type == "email" else {})

    def _new_person(self, person_id: str | None, attributes: dict[str, Any]) -> Person:
        person = Person(person_id, f"{self._next_cio:x}", dict(attributes))
        self._next_cio += 1
        self.people.append(person)
        return person

    def _find(self, value: str, id_type: str) -> Person | None:
        return next((p for p in self.people if p.identifier(id_type) == value), None)

    # -- answering the App API -------------------------------------------------------------------

    def answer(self, method: str, raw_path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        """The App API's answer to one authorised request."""
        for route_method, pattern, template in _PATTERNS:
            match = pattern.match(raw_path)
            if match and route_method == method:
                values = [unquote(part) for part in match.groups()]
                with self._lock:
                    return self._read(template, values, {k: v[-1] for k, v in query.items()})
        return 404, {"errors": [{"detail": f"no route {method} {raw_path}", "status": "404"}]}

    def _read(self, template: str, values: list[str], query: dict[str, str]) -> tuple[int, Any]:
        if template.startswith("/v1/objects/"):
            type_id, object_id = values
            if query.get("id_type", "object_id") != "object_id":
                return 400, {"errors": [{"detail": "only object_id lookups in the fake", "status": "400"}]}
            attributes = self.objects.get((type_id, object_id))
            if attributes is None:
                return 404, {"errors": [{"detail": "object not found", "status": "404"}]}
            return 200, {
                "object": {
                    "attributes": attributes,
                    "timestamps": {name: 1_700_000_000 for name in attributes},
                    "identifiers": {"object_id": object_id, "cio_object_id": f"o-{type_id}-{object_id}"},
                    "object_type_id": type_id,
                }
            }
        id_type = query.get("id_type", "id")
        if id_type not in PERSON_ID_TYPES:
            return 400, {"errors": [{"detail": f"invalid id_type {id_type}", "status": "400"}]}
        person = self._find(values[0], id_type)
        if person is None:
            return 404, {"errors": [{"detail": "customer not found", "status": "404"}]}
        if template.endswith("/segments"):
            return 200, {"segments": list(person.segments)}
        if template.endswith("/activities"):
            found = [
                activity
                for activity in reversed(person.activities)
                if query.get("type") in (None, activity["type"]) and query.get("name") in (None, activity["name"])
            ]
            limit = int(query.get("limit", "10"))
            start = int(query["start"]) if query.get("start", "").isdigit() else 0
            page = found[start : start + limit]
            return 200, {"activities": page, "next": str(start + limit) if len(found) > start + limit else ""}
        return 200, {
            "customer": {
                "id": person.id,
                "identifiers": {"id": person.id, "email": person.attributes.get("email"), "cio_id": person.cio_id},
                "attributes": {
                    **person.attributes,
                    "cio_id": person.cio_id,
                    **({"id": person.id} if person.id else {}),
                },
                "timestamps": {name: 1_700_000_000 for name in person.attributes},
                "unsubscribed": False,
                "devices": [],
            }
        }


def _track_identifier(raw_path: str) -> tuple[str, str]:
    """What a Track path's ``{identifier}`` names: a cio_id (``cio_…``), an email, or an id."""
    value = unquote(raw_path.split("/")[4])
    if value.startswith("cio_"):
        return "cio_id", value.removeprefix("cio_")
    return ("email", value) if "@" in value else ("id", value)
