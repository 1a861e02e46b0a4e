"""Shared pieces of the soak benchmarks: a slow fake Customer.io process, the server process, RSS."""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.processes import free_port, wait_healthy  # noqa: E402

TOKEN = "soak-token-0123456789abcdefghijklmnopqrstuvwxyz"
SITE_ID, API_KEY = "site-123", "track-key"
CALL = {"name": "track_anonymous_event", "arguments": {"request_body": {"name": "soak", "anonymous_id": "anon-1"}}}

_FAKE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from http.server import ThreadingHTTPServer
ThreadingHTTPServer.request_queue_size = 1024  # our connection pool opens up to 100 at once
from tests.fake_customerio import FakeCustomerIO
with FakeCustomerIO(site_id=sys.argv[2], api_key=sys.argv[3]) as fake:
    if float(sys.argv[4]):
        fake.fail(10**7, delay=float(sys.argv[4]))
    print(json.dumps({"url": fake.url}), flush=True)
    sys.stdin.read()
    print(json.dumps({"requests": len(fake.requests)}), flush=True)
"""


class SlowFake:
    """The fake Customer.io in its own process, answering every request after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _FAKE, str(ROOT), SITE_ID, API_KEY, str(delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = json.loads(self.proc.stdout.readline())["url"]

    def close(self) -> int:
        """Stop it and return how many requests it received."""
        out, _ = self.proc.communicate(timeout=60)
        return json.loads(out.strip().splitlines()[-1])["requests"]


class Server:
    """``customerio-mcp`` over HTTP as a separate process, its stderr in a file."""

    def __init__(self, transport: str, fake: SlowFake, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.health_port = int(env.get("CUSTOMERIO_MCP_HEALTH_PORT", self.port))
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMERIO_")} | {
            "CUSTOMERIO_SITE_ID": SITE_ID,
            "CUSTOMERIO_API_KEY": API_KEY,
            "CUSTOMERIO_TRACK_URL": fake.url,
            "CUSTOMERIO_PIPELINES_URL": fake.url + "/v1",
            "CUSTOMERIO_MCP_TRANSPORT": transport,
            "CUSTOMERIO_MCP_PORT": str(self.port),
            "CUSTOMERIO_MCP_AUTH_TOKEN": TOKEN,
            "CUSTOMERIO_LOG_LEVEL": "WARNING",
            "CUSTOMERIO_TIMEOUT": "30",
            **env,
        }
        self.log = open(ROOT / "benchmarks" / f".soak-{self.port}.log", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [shutil.which("customerio-mcp") or "customerio-mcp"],
            env=environment,
            stderr=self.log,
            text=True,
        )
        wait_healthy(self.url, self.proc)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> str:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.seek(0)
        text = self.log.read()
        self.log.close()
        Path(self.log.name).unlink()
        return text


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))


def machine() -> str:
    memory = ""
    try:
        total = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        memory = f", {int(total.split()[1]) / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration):
        pass
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores{memory}, Python {platform.python_version()}"


def mcp_post(port: int, body: bytes) -> bytes:
    """A Streamable HTTP POST as raw bytes, asking the server to close the connection after answering."""
    head = (
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n"
        f"MCP-Protocol-Version: 2025-06-18\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def tool_call_body(request_id: int) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": CALL}).encode()


_PROBE = """
import json, socket, sys, time
port = int(sys.argv[1])
request = f"GET /healthz HTTP/1.1\\r\\nHost: 127.0.0.1:{port}\\r\\nConnection: close\\r\\n\\r\\n".encode()
latencies = []
sys.stdin.readline()
while True:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    if answer.startswith(b"HTTP/1.1 200"):
        latencies.append(time.perf_counter() - started)
    print(json.dumps(latencies[-1:]), flush=True)
    time.sleep(0.1)
"""


class HealthProbe:
    """``GET /healthz`` every 100 ms from a process of its own, so that the load's client cannot delay it."""

    def __init__(self, port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _PROBE, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def start(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def stop(self) -> list[float]:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        return [value for line in out.splitlines() for value in json.loads(line)]
