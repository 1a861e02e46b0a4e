"""``CUSTOMERIO_MCP_HEALTH_PORT``: health checks answered by a thread, truthful about a stuck event loop.

The listener runs on real loopback sockets here; the stall test blocks a real event loop (a
``time.sleep`` inside it) while another thread asks for ``/healthz``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import anyio
import httpx2
import pytest

from customerio_mcp.serving import health_listener
from customerio_mcp.serving.health_listener import HealthListener, LoopHeartbeat, health_answer
from customerio_mcp.serving.startup_rules import startup_refusals
from customerio_mcp.settings import Settings
from tests.processes import command, free_port, http_server, server_env


@pytest.fixture
def listener() -> Iterator[HealthListener]:
    running = HealthListener("127.0.0.1", 0).start()
    try:
        yield running
    finally:
        running.close()


def get(port: int, path: str = "/healthz", method: str = "GET") -> httpx2.Response:
    return httpx2.request(method, f"http://127.0.0.1:{port}{path}", timeout=5)


def test_answers_healthz_and_nothing_else(listener: HealthListener) -> None:
    answer = get(listener.port)
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    assert answer.headers["cache-control"] == "no-store"
    assert get(listener.port, "/healthz?verbose=1").status_code == 200
    head = get(listener.port, method="HEAD")
    assert (head.status_code, head.content) == (200, b"")
    assert get(listener.port, "/mcp").status_code == 404
    assert get(listener.port, method="POST").status_code == 404


def test_a_silent_or_oversized_client_delays_no_one_and_is_cut(listener: HealthListener) -> None:
    silent = socket.create_connection(("127.0.0.1", listener.port))
    oversized = socket.create_connection(("127.0.0.1", listener.port))
    oversized.sendall(b"GET /healthz HTTP/1.1\r\nX: " + b"a" * (health_listener.MAX_HEAD_BYTES + 10))
    started = time.monotonic()
    assert get(listener.port).status_code == 200
    assert time.monotonic() - started < 1
    silent.settimeout(health_listener.CLIENT_SECONDS * 3)
    assert silent.recv(100) == b""  # closed without an answer
    assert time.monotonic() - started >= health_listener.CLIENT_SECONDS * 0.9
    oversized.settimeout(5)
    assert oversized.recv(100) == b""
    silent.close()
    oversized.close()


def test_more_silent_clients_than_allowed_evict_the_oldest(listener: HealthListener) -> None:
    crowd = [socket.create_connection(("127.0.0.1", listener.port)) for _ in range(health_listener.MAX_CONNECTIONS)]
    assert get(listener.port).status_code == 200  # its connection pushed out the oldest silent one
    crowd[0].settimeout(5)
    assert crowd[0].recv(100) == b""
    for sock in crowd:
        sock.close()


EXHAUSTED = """
import json, os, resource, socket, time
from customerio_mcp.serving.health_listener import HealthListener
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
listener = HealthListener("127.0.0.1", 0).start()
hog = []
try:
    while True:
        hog.append(open(os.devnull))
except OSError:
    pass
hog.pop().close()  # one descriptor for the client; none left for the listener to accept it with
client = socket.create_connection(("127.0.0.1", listener.port))
client.sendall(b"GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
cpu = time.process_time()
time.sleep(1.5)
cpu = time.process_time() - cpu
for f in hog[:8]:
    f.close()
client.settimeout(10)
answer = client.recv(200).decode()
print(json.dumps({"cpu": cpu, "answer": answer}))
"""


def test_out_of_descriptors_at_accept_pauses_accepting_instead_of_spinning() -> None:
    done = subprocess.run([sys.executable, "-c", EXHAUSTED], capture_output=True, text=True, timeout=60, check=True)
    outcome = json.loads(done.stdout)
    assert outcome["cpu"] < 0.5  # a listener retrying accept in a loop would burn the whole 1.5 s
    assert outcome["answer"].startswith("HTTP/1.1 200 OK")  # and it answers once descriptors free up


def test_a_stuck_event_loop_answers_503_with_how_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health_listener, "STALL_SECONDS", 0.5)
    listener = HealthListener("127.0.0.1", 0).start()
    heartbeat = listener.heartbeat
    answers: dict[str, httpx2.Response] = {}

    def ask(when: str, after: float) -> None:
        time.sleep(after)
        answers[when] = get(listener.port)

    async def loop() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(heartbeat.beat_forever)
            await anyio.to_thread.run_sync(ask, "beating", 0.3)
            asker = threading.Thread(target=ask, args=("stuck", 1.0))
            asker.start()
            time.sleep(1.6)  # noqa: ASYNC251 - the point: the loop blocked, no beat for 1.6 s; asked at 1.0 s
            await anyio.to_thread.run_sync(asker.join)
            await anyio.sleep(0.3)
            await anyio.to_thread.run_sync(ask, "recovered", 0)
            tasks.cancel_scope.cancel()

    try:
        anyio.run(loop)
    finally:
        listener.close()
    assert answers["beating"].status_code == 200
    assert answers["stuck"].status_code == 503
    stuck = answers["stuck"].json()
    assert stuck["status"] == "stalled"
    assert stuck["event_loop_silent_seconds"] >= 0.5
    assert answers["recovered"].status_code == 200


def test_health_answer_reads_only_the_request_line() -> None:
    heartbeat = LoopHeartbeat()
    assert health_answer(b"GET /healthz HTTP/1.1\r\n\r\n", heartbeat).startswith(b"HTTP/1.1 200 OK\r\n")
    assert health_answer(b"GET /healthzz HTTP/1.1\r\n\r\n", heartbeat).startswith(b"HTTP/1.1 404")
    assert health_answer(b"\r\n\r\n", heartbeat).startswith(b"HTTP/1.1 404")


@pytest.mark.parametrize("transport", ["sse", "streamable-http"])
def test_the_server_answers_health_on_its_health_port_too(transport: str) -> None:
    port = free_port()
    with http_server(None, transport, CUSTOMERIO_MCP_HEALTH_PORT=str(port)) as server:
        on_health_port = get(port)
        on_main_port = httpx2.get(server.url + "/healthz", timeout=5)
        _, stderr = server.stop()
    assert on_health_port.json() == on_main_port.json() == {"status": "ok"}
    assert f"health checks also on port {port}" in stderr


def test_a_taken_health_port_stops_the_server_with_one_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = server_env(
            None,
            CUSTOMERIO_MCP_TRANSPORT="streamable-http",
            CUSTOMERIO_MCP_PORT=str(free_port()),
            CUSTOMERIO_MCP_HEALTH_PORT=str(port),
        )
        done = subprocess.run([command()], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert f"cannot answer health checks on 127.0.0.1:{port} (CUSTOMERIO_MCP_HEALTH_PORT)" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_the_health_port_must_differ_from_the_main_port() -> None:
    (refusal,) = startup_refusals(
        Settings(mcp_transport="streamable-http", mcp_port=8000, mcp_health_port=8000), allow_unauthenticated=False
    )
    assert "CUSTOMERIO_MCP_HEALTH_PORT and CUSTOMERIO_MCP_PORT are both 8000" in refusal
    assert "8001" in refusal
    assert startup_refusals(Settings(mcp_transport="streamable-http", mcp_health_port=8001), False) == []
