"""Benchmark customerio-mcp through a load balancer: 1 and 3 replicas, pacing off and on.

    python benchmarks/bench_replicas.py [--clients 16] [--seconds 8] [--rate 100]

Starts, as separate processes: the fake Customer.io, Debian's ``redis-server`` (for shared
pacing), 1 or 3 ``customerio-mcp --transport streamable-http`` replicas (stateless, bearer token)
and HAProxy (``apt-get install haproxy redis-server``) balancing round robin in front of them.
Then that many SDK clients call ``track_anonymous_event`` in a loop through HAProxy, all for one
workspace, and the script reports calls per second and the p50/p99 latency of a call.

Scenarios: pacing off (``CUSTOMERIO_RATE_LIMIT=0``: what the servers can do); pacing on and shared
through Redis (one budget of ``--rate`` per second however many replicas run); and, for contrast,
pacing on per process without Redis (each replica spends its own budget).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_stdio import FakeProcess  # noqa: E402
from tests.processes import free_port, wait_healthy  # noqa: E402
from tests.redis_server import redis_server  # noqa: E402

TOKEN = "bench-token"
BODY = {"name": "bench_event", "anonymous_id": "anon-1", "data": {"plan": "pro", "seats": 3}}
HAPROXY_CONFIG = """\
global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend mcp
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /healthz
{servers}
"""


@dataclass
class Scenario:
    replicas: int
    pacing: str
    """off, redis or process."""

    @property
    def label(self) -> str:
        pacing = {"off": "off", "redis": "on, shared (Redis)", "process": "on, per process"}[self.pacing]
        return f"| {self.replicas} | {pacing} |"


@dataclass
class Result:
    calls_per_second: float
    p50_ms: float
    p99_ms: float


def need(binary: str) -> str:
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin")
    if not found:
        sys.exit(f"{binary} is not installed: apt-get install haproxy redis-server")
    return found


@contextmanager
def replicas(count: int, fake_url: str, env_extra: dict[str, str]) -> Iterator[list[int]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMERIO_")} | {
        "CUSTOMERIO_SITE_ID": "site-123",
        "CUSTOMERIO_API_KEY": "track-key",
        "CUSTOMERIO_TRACK_URL": fake_url,
        "CUSTOMERIO_PIPELINES_URL": fake_url + "/v1",
        "CUSTOMERIO_MCP_TRANSPORT": "streamable-http",
        "CUSTOMERIO_MCP_AUTH_TOKEN": TOKEN,
        "CUSTOMERIO_LOG_LEVEL": "WARNING",
        **env_extra,
    }
    procs: list[subprocess.Popen[str]] = []
    ports = [free_port() for _ in range(count)]
    try:
        for port in ports:
            procs.append(
                subprocess.Popen(
                    [shutil.which("customerio-mcp") or "customerio-mcp"],
                    env=base | {"CUSTOMERIO_MCP_PORT": str(port)},
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
            )
        for port, proc in zip(ports, procs, strict=True):
            wait_healthy(f"http://127.0.0.1:{port}", proc)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


@contextmanager
def haproxy(backends: list[int], folder: Path) -> Iterator[str]:
    port = free_port()
    servers = "\n".join(f"    server r{n} 127.0.0.1:{backend} check" for n, backend in enumerate(backends))
    config = folder / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(port=port, servers=servers), encoding="utf-8")
    proc = subprocess.Popen([need("haproxy"), "-f", str(config), "-db"], stderr=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)  # /healthz through the balancer
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def client_loop(url: str, until: float, latencies: list[float]) -> None:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        await client.list_tools()
        while time.perf_counter() < until:
            started = time.perf_counter()
            result = await client.call_tool("track_anonymous_event", {"request_body": BODY})
            assert not result.is_error, result.content
            latencies.append(time.perf_counter() - started)


async def measure(url: str, clients: int, seconds: float) -> Result:
    latencies: list[float] = []
    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(client_loop, url, started + seconds, latencies)
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return Result(len(latencies) / elapsed, cuts[49] * 1000, cuts[98] * 1000)


def run(scenario: Scenario, args: argparse.Namespace, fake_url: str, folder: Path) -> Result:
    with ExitStack() as stack:
        env = {"CUSTOMERIO_RATE_LIMIT": "0" if scenario.pacing == "off" else str(args.rate)}
        if scenario.pacing == "redis":
            env["CUSTOMERIO_REDIS_URL"] = stack.enter_context(redis_server(folder)).url
        ports = stack.enter_context(replicas(scenario.replicas, fake_url, env))
        url = stack.enter_context(haproxy(ports, folder))
        return anyio.run(measure, url, args.clients, args.seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=int, default=100, help="CUSTOMERIO_RATE_LIMIT when pacing is on")
    args = parser.parse_args()
    need("haproxy")
    need("redis-server")
    scenarios = [
        Scenario(1, "off"),
        Scenario(3, "off"),
        Scenario(1, "redis"),
        Scenario(3, "redis"),
        Scenario(3, "process"),
    ]
    fake = FakeProcess("site-123", "track-key")
    rows = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            for scenario in scenarios:
                result = run(scenario, args, fake.url, Path(folder))
                rows.append(
                    f"{scenario.label} {result.calls_per_second:,.0f}/s | {result.p50_ms:.1f} ms | "
                    f"{result.p99_ms:.1f} ms |"
                )
                print(rows[-1], file=sys.stderr, flush=True)
    finally:
        fake.close()
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"Replicas behind HAProxy ({machine}; Streamable HTTP, stateless, bearer token; {args.clients} concurrent "
        f"clients, {args.seconds:.0f} s each; one workspace; pacing at {args.rate}/s when on)\n"
    )
    print("| replicas | pacing | calls per second | p50 | p99 |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
