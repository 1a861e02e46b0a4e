"""A fake Customer.io over real loopback HTTP: both APIs, Basic auth, body validation, faults.

It answers on ``http://127.0.0.1:<port>`` (or ``https://`` with ``tls=``, for clients that insist,
like Customer.io's ``customerio`` library) with the Track API at the root and the Pipelines API
under ``/v1``, checks the credentials each API expects, validates bodies against the same request
schemas the package ships (derived from Customer.io's OpenAPI descriptions), records every request
exactly as it arrived (raw percent-encoded path included) and can be told to misbehave at the
exact moment that matters: answer 429 with Retry-After or 5xx, answer slowly, drop the connection
before reading the body (nothing was applied), after reading it (it may have been applied), or
halfway through the answer (it was applied). ``Recorded.applied`` says which.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from customerio_mcp.tools.schemas import compiled

TRACK_ROUTES: list[tuple[str, str, str | None]] = [
    ("GET", "/api/v1/accounts/region", None),
    ("PUT", "/api/v1/customers/{identifier}", "PUT /api/v1/customers/{identifier}"),
    ("DELETE", "/api/v1/customers/{identifier}", None),
    ("PUT", "/api/v1/customers/{identifier}/devices", "PUT /api/v1/customers/{identifier}/devices"),
    ("DELETE", "/api/v1/customers/{identifier}/devices/{device_id}", None),
    ("POST", "/api/v1/customers/{identifier}/suppress", None),
    ("POST", "/api/v1/customers/{identifier}/unsuppress", None),
    ("POST", "/unsubscribe/{delivery_id}", "POST /unsubscribe/{delivery_id}"),
    ("POST", "/api/v1/customers/{identifier}/events", "POST /api/v1/customers/{identifier}/events"),
    ("POST", "/api/v1/events", "POST /api/v1/events"),
    ("POST", "/api/v1/forms/{form_id}/submit", "POST /api/v1/forms/{form_id}/submit"),
    ("POST", "/api/v1/merge_customers", "POST /api/v1/merge_customers"),
    ("POST", "/api/v1/metrics", "POST /api/v1/metrics"),
    ("POST", "/api/v1/segments/{segment_id}/add_customers", "POST /api/v1/segments/{segment_id}/add_customers"),
    (
        "POST",
        "/api/v1/segments/{segment_id}/remove_customers",
        "POST /api/v1/segments/{segment_id}/remove_customers",
    ),
    ("POST", "/api/v2/entity", "POST /api/v2/entity"),
    ("POST", "/api/v2/batch", "POST /api/v2/batch"),
]
PIPELINES_OPERATIONS = ("identify", "track", "page", "screen", "group", "alias", "batch")
SEGMENT_ID_TYPES = ("id", "email", "phone", "cio_id")
"""What a manual segment's ``id_type`` may say; absent means ``id``."""
BODILESS = {"/api/v1/customers/{identifier}/suppress", "/api/v1/customers/{identifier}/unsuppress"}
"""POSTs the description gives no body: Customer.io's curl examples send none, its libraries send ``{}``."""


def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[a-z_]+\}", "[^/]+", template) + "$")


_TRACK = [(method, _template_regex(path), path, key) for method, path, key in TRACK_ROUTES]


@dataclass
class Recorded:
    api: str
    method: str
    raw_path: str
    """The path exactly as it arrived, still percent-encoded."""
    route: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Lower-case names."""
    body: Any
    answered: int | None = None
    applied: bool = False
    """Whether the fake treated the request as processed (a real Customer.io would have applied it)."""
    at: float = field(default_factory=time.monotonic)
    """When it arrived (``time.monotonic``)."""


@dataclass(frozen=True)
class Account:
    """One workspace's credentials and region; a fake accepts any of its accounts."""

    site_id: str
    api_key: str
    pipelines_key: str
    region: str = "us"

    def track_auth(self) -> str:
        return "Basic " + base64.b64encode(f"{self.site_id}:{self.api_key}".encode()).decode()

    def pipelines_auth(self) -> str:
        return "Basic " + base64.b64encode(f"{self.pipelines_key}:".encode()).decode()


@dataclass
class Fault:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    drop: bool = False
    """Close the connection after reading the body, without answering (it may have been applied)."""
    drop_before_body: bool = False
    """Close the connection before reading the body (nothing can have been applied)."""
    cut_response: bool = False
    """Process the request, send the status line, headers and half the body, then close."""
    delay: float = 0.0
    route: str | None = None
    """Only requests to this route template are affected (None: any)."""


class FakeCustomerIO:
    def __init__(
        self,
        *,
        site_id: str = "site-123",
        api_key: str = "track-key-secret-abc",
        pipelines_key: str = "cdp-key-secret-xyz",
        region: str = "us",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.site_id = site_id
        self.api_key = api_key
        self.pipelines_key = pipelines_key
        self.region = region
        self.environment_id = 4242
        self.requests: list[Recorded] = []
        self.rejections: list[str] = []
        self.first_request = threading.Event()
        self.rate_limit: tuple[int, float] | None = None
        """(requests, seconds): answer 429 to any request beyond that many in the trailing window."""
        self._arrivals: deque[float] = deque()
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self.next_response: dict[str, tuple[int, Any]] = {}
        """Route template -> (status, body) answered instead of the default success."""
        self.other_accounts: list[Account] = []
        """Workspaces accepted besides the one given to the constructor (``add_account``)."""
        self.answer_headers: dict[str, str] = {}
        """Headers added to every answer (e.g. a Set-Cookie)."""
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._scheme = "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self._scheme}://{host}:{port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def pipelines_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> FakeCustomerIO:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeCustomerIO:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults --------------------------------------------------------------------------------

    def fail(self, times: int = 1, **fault: Any) -> None:
        with self._lock:
            self._faults.extend(Fault(**fault) for _ in range(times))

    def over_rate_limit(self) -> bool:
        if self.rate_limit is None:
            return False
        limit, window = self.rate_limit
        now = time.monotonic()
        with self._lock:
            while self._arrivals and self._arrivals[0] <= now - window:
                self._arrivals.popleft()
            self._arrivals.append(now)
            return len(self._arrivals) > limit

    def take_fault(self, route: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.route in (None, route):
                    self._faults.remove(fault)
                    return fault
        return None

    def record(self, entry: Recorded) -> None:
        with self._lock:
            self.requests.append(entry)
        self.first_request.set()

    # -- several workspaces --------------------------------------------------------------------

    def add_account(self, account: Account) -> None:
        self.other_accounts.append(account)

    def accounts(self) -> list[Account]:
        return [Account(self.site_id, self.api_key, self.pipelines_key, self.region), *self.other_accounts]

    def account_of(self, entry: Recorded) -> Account | None:
        """The workspace whose credentials ``entry`` carried, or None."""
        given = entry.headers.get("authorization", "")
        for account in self.accounts():
            if given == (account.track_auth() if entry.api == "track" else account.pipelines_auth()):
                return account
        return None

    # -- helpers for tests ---------------------------------------------------------------------

    def only_request(self) -> Recorded:
        assert len(self.requests) == 1, f"expected exactly one request, got {len(self.requests)}"
        return self.requests[0]

    def requests_by_path(self) -> dict[str, Recorded]:
        """The last request to each raw path."""
        with self._lock:
            return {request.raw_path: request for request in self.requests}

    def expected_track_auth(self) -> str:
        return "Basic " + base64.b64encode(f"{self.site_id}:{self.api_key}".encode()).decode()

    def expected_pipelines_auth(self) -> str:
        return "Basic " + base64.b64encode(f"{self.pipelines_key}:".encode()).decode()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeCustomerIO
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes; do not wait 40 ms for an ACK

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.fake
        split = urlsplit(self.path)
        raw_path = split.path
        api, route, schema_key = self._route(raw_path)
        fault = fake.take_fault(route)
        if fault is not None and fault.drop_before_body:
            fake.record(self._entry(api, route, raw_path, split.query, None))
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw_body) if raw_body else None
        except json.JSONDecodeError:
            body = "<invalid json>"
        entry = self._entry(api, route, raw_path, split.query, body)
        fake.record(entry)
        if fake.over_rate_limit():
            self._answer(entry, 429, {"meta": {"error": "rate limited"}}, {"Retry-After": "1"})
            return
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                entry.applied = True
                self.close_connection = True
                return
            if fault.status is not None:
                self._answer(entry, fault.status, fault.body, fault.headers)
                return
        if route == "unknown":
            self._answer(entry, 404, {"meta": {"error": f"no route {self.command} {raw_path}"}})
            return
        if not self._authorised(api):
            self._answer(entry, 401, {"meta": {"error": "Unauthorized request"}})
            return
        problem = self._unexpected(route, split.query, body)
        if problem:
            fake.rejections.append(problem)
            self._answer(entry, 400, {"meta": {"error": problem}})
            return
        if schema_key is not None:
            if api == "pipelines" and schema_key != "POST /batch" and isinstance(body, dict) and "type" not in body:
                body = {"type": schema_key.removeprefix("POST /"), **body}  # the endpoint says which call it is
            problem = self._invalid(api, schema_key, body)
            strict = api == "track" or self.headers.get("X-Strict-Mode") == "1"
            if problem and strict:
                fake.rejections.append(problem)
                self._answer(entry, 400, {"meta": {"error": problem}})
                return
        if route in fake.next_response:
            status, answer = fake.next_response.pop(route)
            self._answer(entry, status, answer)
            return
        status, answer = self._success(api, route)
        if fault is not None and fault.cut_response:
            entry.applied = True
            payload = json.dumps({**(answer or {}), "padding": "x" * 64}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._answer(entry, status, answer)

    def _entry(self, api: str, route: str, raw_path: str, query: str, body: Any) -> Recorded:
        return Recorded(
            api=api,
            method=self.command,
            raw_path=raw_path,
            route=route,
            query=parse_qs(query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )

    def _route(self, raw_path: str) -> tuple[str, str, str | None]:
        if raw_path.startswith("/v1/"):
            operation = raw_path.removeprefix("/v1/")
            if operation in PIPELINES_OPERATIONS:
                return "pipelines", raw_path, f"POST /{operation}"
            return "pipelines", "unknown", None
        for method, pattern, template, key in _TRACK:
            if method == self.command and pattern.match(raw_path):
                return "track", template, key
        return "track", "unknown", None

    def _account(self, api: str) -> Account | None:
        given = self.headers.get("Authorization", "")
        for account in self.fake.accounts():
            if given == (account.track_auth() if api == "track" else account.pipelines_auth()):
                return account
        return None

    def _authorised(self, api: str) -> bool:
        return self._account(api) is not None

    def _unexpected(self, route: str, query: str, body: Any) -> str | None:
        """A segment ``id_type`` Customer.io does not know, or a body where the description has none."""
        id_types = parse_qs(query).get("id_type", [])
        if route.startswith("/api/v1/segments/") and any(value not in SEGMENT_ID_TYPES for value in id_types):
            return f"id_type must be one of {', '.join(SEGMENT_ID_TYPES)}"
        if route in BODILESS and body not in (None, {}):
            return "this endpoint takes no body"
        return None

    def _invalid(self, api: str, schema_key: str, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "request body must be a JSON object"
        error = next(iter(compiled(api, schema_key).iter_errors(body)), None)
        return error.message[:300] if error is not None else None

    def _success(self, api: str, route: str) -> tuple[int, Any]:
        fake = self.fake
        if route == "/api/v1/accounts/region":
            account = self._account("track")
            region = account.region if account is not None else fake.region
            url = "https://track-eu.customer.io" if region == "eu" else "https://track.customer.io"
            return 200, {"url": url, "region": region, "environment_id": fake.environment_id}
        if route == "/api/v1/forms/{form_id}/submit":
            return 204, None
        return 200, {} if api == "track" else {"success": True}

    def _answer(self, entry: Recorded, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        entry.answered = status
        entry.applied = entry.applied or 200 <= status < 300
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in {**self.fake.answer_headers, **(headers or {})}.items():
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
