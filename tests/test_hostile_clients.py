"""Hostile and careless clients, on both HTTP transports: exact Host/Origin checks and a clean log.

Client mistakes (a refused Host or Origin, a malformed message, an unknown session, a garbage
request, a client that leaves mid-call) are one WARNING line each, with no traceback, with the
client's text clipped and its control characters escaped; a flood of them is rate-limited. The
access log has no query strings, session ids or tokens, and believes X-Forwarded-For only from a
trusted proxy.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import anyio
import httpx2
import pytest

from tests.fake_customerio import FakeCustomerIO
from tests.processes import INITIALIZE, TOKEN, http_server
from tests.raw_clients import (
    MCP_HEADERS,
    initialize_sse,
    port_of,
    raw_connection,
    read_until_closed,
    sse_session,
    tool_call_bytes,
)

TRANSPORTS = ["sse", "streamable-http"]
ESCAPES = "%1b[31m%0aINFO forged line%0d"


def warnings(stderr: str) -> list[str]:
    """WARNING lines, without the start-up ones about the test's own loopback base URLs."""
    return [line for line in stderr.splitlines() if " WARNING " in line and "is not a Customer.io host" not in line]


def mcp_request(transport: str) -> tuple[str, str]:
    return ("GET", "/sse") if transport == "sse" else ("POST", "/mcp")


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("header", "value", "status"),
    [
        ("Host", "127.0.0.1:{port}.evil.example", 421),
        ("Host", "127.0.0.1:{port}@evil.example", 421),
        ("Host", "127.0.0.1.evil.example:{port}", 421),
        ("Host", "localhost:{port}/x", 421),
        ("Origin", "http://127.0.0.1:{port}.evil.example", 403),
        ("Origin", "http://localhost.evil.example:{port}", 403),
        ("Origin", "https://127.0.0.1:{port}", 403),
    ],
)
def test_host_and_origin_must_match_exactly(transport: str, header: str, value: str, status: int) -> None:
    with http_server(None, transport) as server:
        method, path = mcp_request(transport)
        headers = {**MCP_HEADERS, header: value.format(port=port_of(server.url))}
        with httpx2.stream(method, server.url + path, headers=headers, json=INITIALIZE, timeout=10) as answer:
            refused = answer.status_code
        allowed = {**MCP_HEADERS, "Origin": f"http://localhost:{port_of(server.url)}"}
        with httpx2.stream(method, server.url + path, headers=allowed, json=INITIALIZE, timeout=10) as answer:
            accepted = answer.status_code
    assert refused == status
    assert accepted == 200


def test_allowed_host_with_a_port_allows_that_port_only() -> None:
    allowed = "mcp.internal:8443,other.internal"
    with http_server(None, "streamable-http", CUSTOMERIO_MCP_ALLOWED_HOSTS=allowed) as server:

        def status(host: str) -> int:
            headers = {**MCP_HEADERS, "Host": host}
            return httpx2.post(server.url + "/mcp", headers=headers, json=INITIALIZE, timeout=10).status_code

        answers = {
            host: status(host)
            for host in (
                "mcp.internal:8443",
                "MCP.Internal:8443",
                "mcp.internal:8444",
                "mcp.internal:84431",
                "mcp.internal:8443.evil.example",
                "mcp.internal",
                "other.internal",
                "other.internal:80",
            )
        }
    assert answers == {
        "mcp.internal:8443": 200,
        "MCP.Internal:8443": 200,
        "mcp.internal:8444": 421,
        "mcp.internal:84431": 421,
        "mcp.internal:8443.evil.example": 421,
        "mcp.internal": 421,
        "other.internal": 200,
        "other.internal:80": 421,
    }


async def _drop_mid_call(transport: str, url: str, fake: FakeCustomerIO) -> None:
    """Send a tool call that waits on Customer.io, and go away before its answer."""
    if transport == "streamable-http":
        sock = raw_connection(port_of(url), tool_call_bytes(port_of(url)))
        await anyio.to_thread.run_sync(fake.first_request.wait, 10)
        sock.close()
        return
    async with httpx2.AsyncClient(timeout=10) as http, sse_session(url, http) as (endpoint, _):
        await initialize_sse(url, endpoint, http)
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": json.loads(json.dumps(_EVENT))}
        assert (await http.post(url + endpoint, json=call, headers=MCP_HEADERS)).status_code == 202
        await anyio.to_thread.run_sync(fake.first_request.wait, 10)
    # leaving the block closes the event stream while the call still waits on Customer.io


_EVENT = {"name": "track_anonymous_event", "arguments": {"request_body": {"name": "x", "anonymous_id": "a"}}}


async def _malformed_message(transport: str, url: str) -> int:
    async with httpx2.AsyncClient(timeout=10) as http:
        if transport == "streamable-http":
            return (await http.post(url + "/mcp", headers=MCP_HEADERS, content=b'{"jsonrpc": "2.0", oops')).status_code
        async with sse_session(url, http) as (endpoint, _):
            answer = await http.post(url + endpoint, headers=MCP_HEADERS, content=b'{"jsonrpc": "2.0", oops')
            return answer.status_code


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_client_mistakes_are_one_clean_warning_line_each(fake: FakeCustomerIO, transport: str) -> None:
    fake.fail(1, delay=1.0)
    statuses: dict[str, int] = {}
    with http_server(fake, transport, CUSTOMERIO_LOG_LEVEL="INFO") as server:
        port = port_of(server.url)
        method, path = mcp_request(transport)
        bad_host = {**MCP_HEADERS, "Host": f"127.0.0.1:{port}.evil.example"}
        statuses["host"] = httpx2.request(method, server.url + path, headers=bad_host, timeout=10).status_code
        bad_origin = {**MCP_HEADERS, "Origin": "http://evil.example"}
        statuses["origin"] = httpx2.request(method, server.url + path, headers=bad_origin, timeout=10).status_code
        statuses["malformed"] = await _malformed_message(transport, server.url)
        hostile_query = f"/messages/?session_id={ESCAPES}&token=query-secret-123"
        statuses["session"] = httpx2.post(
            server.url + (hostile_query if transport == "sse" else f"/mcp/{ESCAPES}?token=query-secret-123"),
            headers=MCP_HEADERS,
            json=INITIALIZE,
            timeout=10,
        ).status_code
        garbage = read_until_closed(raw_connection(port, b"\x16\x03\x01 garbage \x1b[2J\r\n\r\n"), timeout=10)
        await _drop_mid_call(transport, server.url, fake)
        await anyio.sleep(1.5)  # the dropped call's answer, had anyone listened
        code, stderr = server.stop()
    assert statuses == {
        "host": 421,
        "origin": 403,
        "malformed": 400,
        "session": 400 if transport == "sse" else 404,
    }
    assert garbage.startswith(b"HTTP/1.1 400")
    assert code == 0
    assert "Traceback" not in stderr
    assert "\x1b" not in stderr
    assert "\r" not in stderr
    assert not any(line.startswith("INFO forged") for line in stderr.splitlines())
    for secret in (TOKEN, "query-secret-123", "session_id="):
        assert secret not in stderr
    lines = warnings(stderr)
    for marker in (
        f"127.0.0.1:{port}.evil.example' is not allowed",
        "'http://evil.example' is not allowed",
        "Could not parse message" if transport == "sse" else "Parse error",
        "Invalid session ID" if transport == "sse" else "Not Found",
        "Invalid HTTP request",
        "went away",
    ):
        assert sum(marker in line for line in lines) == 1, (marker, "\n".join(lines))
    assert len(lines) == 6, lines
    assert all(len(line) < 400 for line in lines), lines


def test_a_flood_of_mistakes_is_rate_limited() -> None:
    with http_server(None, "streamable-http", CUSTOMERIO_LOG_LEVEL="INFO") as server:
        with httpx2.Client(timeout=10) as http:
            for _ in range(60):
                http.post(server.url + "/mcp", headers={**MCP_HEADERS, "Host": "evil.example"}, json=INITIALIZE)
        code, stderr = server.stop()
    refused = [line for line in warnings(stderr) if "evil.example" in line]
    assert 5 <= len(refused) <= 12, refused
    assert code == 0


def test_suppressed_lines_are_counted_when_logging_resumes() -> None:
    """The filter itself, on a fake clock: after a burst, the next line that passes says how many were held back."""
    code = textwrap.dedent(
        """
        import logging, sys, time
        from customerio_mcp.serving import log_hygiene
        clock = [1000.0]
        time.monotonic = lambda: clock[0]
        handler = logging.StreamHandler(sys.stdout)
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel("INFO")
        log_hygiene.install(handler)
        log = logging.getLogger("customerio_mcp.clients")
        for n in range(25):
            log.warning("refused %d", n, extra={"rate_key": 421})
        clock[0] += log_hygiene.REFILL_SECONDS
        log.warning("refused again", extra={"rate_key": 421})
        log.warning("another kind", extra={"rate_key": 403})
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    lines = done.stdout.splitlines()
    assert lines[:10] == [f"refused {n}" for n in range(10)]
    assert lines[10:] == ["refused again (15 similar lines suppressed)", "another kind"]


def test_every_line_a_client_can_cause_is_rate_limited_whatever_its_level() -> None:
    """INFO lines on the clients logger, and lines with a rate key on any logger, are held back like warnings;
    other INFO lines (the access log's one line per request) are not."""
    code = textwrap.dedent(
        """
        import logging, sys
        from customerio_mcp.serving import log_hygiene
        handler = logging.StreamHandler(sys.stdout)
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel("INFO")
        log_hygiene.install(handler)
        for n in range(25):
            logging.getLogger("customerio_mcp.clients").info("token refused %d", n)
            logging.getLogger("customerio_mcp.serving.oauth").warning("issuer down %d", n, extra={"rate_key": "x"})
            logging.getLogger("customerio_mcp.access").info("request %d", n)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    lines = done.stdout.splitlines()
    assert [line for line in lines if line.startswith("token refused")] == [f"token refused {n}" for n in range(10)]
    assert [line for line in lines if line.startswith("issuer down")] == [f"issuer down {n}" for n in range(10)]
    assert len([line for line in lines if line.startswith("request")]) == 25


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("trusted", "shown"), [(None, "127.0.0.1:"), ("127.0.0.1", "203.0.113.9 ")])
def test_access_log_believes_x_forwarded_for_only_from_a_trusted_proxy(
    transport: str, trusted: str | None, shown: str
) -> None:
    env = {"CUSTOMERIO_LOG_LEVEL": "INFO"}
    if trusted:
        env["CUSTOMERIO_MCP_TRUSTED_PROXIES"] = trusted
    path = "/mcp" if transport == "streamable-http" else "/messages/"
    with http_server(None, transport, **env) as server:
        headers = {**MCP_HEADERS, "X-Forwarded-For": "203.0.113.9"}
        answer = httpx2.post(
            server.url + path + "?token=query-secret-123", headers=headers, json=INITIALIZE, timeout=10
        )
        _, stderr = server.stop()
    (line,) = [line for line in stderr.splitlines() if f'"POST {path}"' in line]
    assert shown in line
    if transport == "streamable-http":  # a request that went well: INFO on the access log
        assert answer.status_code == 200
        assert re.search(r'customerio_mcp.access: \S+ "POST /mcp" 200 \d+ ms$', line), line
    else:  # no session_id: a client mistake, one WARNING with the reason
        assert answer.status_code == 400
        assert re.search(r'customerio_mcp.clients: \S+ "POST /messages/" 400 \d+ ms: session_id is required$', line)
    assert "query-secret-123" not in stderr
    if trusted is None:
        assert "203.0.113.9" not in stderr


def test_running_out_of_descriptors_at_accept_is_one_line_not_a_traceback_a_second() -> None:
    """A real event loop whose process has no descriptor left for ``accept``, for three seconds."""
    code = textwrap.dedent(
        """
        import asyncio, logging, os, resource, socket, sys
        from customerio_mcp.serving import connections, log_hygiene
        handler = logging.StreamHandler(sys.stderr)
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel("INFO")
        log_hygiene.install(handler)

        async def main():
            loop = asyncio.get_running_loop()
            connections.quiet_accept_errors(loop)
            server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            clients = [socket.socket() for _ in range(3)]
            for c in clients:
                c.setblocking(False)
            hold = []
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
            try:
                while True:
                    hold.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                pass
            for c in clients:
                try:
                    c.connect(("127.0.0.1", port))
                except BlockingIOError:
                    pass
            await asyncio.sleep(3.5)
            print("still serving", flush=True)

        asyncio.run(main())
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert "still serving" in done.stdout, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "cannot accept connections (Too many open files; 1 time(s) since the last line)" in lines[0]


def test_trusted_proxies_must_be_addresses_networks_or_a_star() -> None:
    from pydantic import ValidationError

    from customerio_mcp.settings import Settings

    assert Settings(mcp_trusted_proxies="10.0.0.0/8, 127.0.0.1,::1").mcp_trusted_proxies == [
        "10.0.0.0/8",
        "127.0.0.1",
        "::1",
    ]
    assert Settings(mcp_trusted_proxies="*").mcp_trusted_proxies == ["*"]
    with pytest.raises(ValidationError, match=r"'proxy\.internal' is not an IP address"):
        Settings(mcp_trusted_proxies="10.0.0.1,proxy.internal")
