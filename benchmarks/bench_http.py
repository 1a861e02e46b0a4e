"""Benchmark customerio-mcp over Streamable HTTP: calls per second with 8 concurrent clients.

    python benchmarks/bench_http.py [--clients 8] [--seconds 10]

Starts the fake Customer.io and ``customerio-mcp --transport streamable-http`` (stateless, with a
bearer token) as separate processes, then runs that many SDK clients, each calling
``track_anonymous_event`` in a loop for the given time.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_stdio import FakeProcess  # noqa: E402
from tests.processes import free_port, wait_healthy  # noqa: E402

TOKEN = "bench-token"
BODY = {"name": "bench_event", "anonymous_id": "anon-1", "data": {"plan": "pro", "seats": 3}}


async def client_loop(url: str, until: float, counts: list[int]) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        await client.list_tools()
        done = 0
        while time.perf_counter() < until:
            result = await client.call_tool("track_anonymous_event", {"request_body": BODY})
            assert not result.is_error, result.content
            done += 1
        counts.append(done)


async def run(url: str, clients: int, seconds: float) -> float:
    counts: list[int] = []
    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(client_loop, url, started + seconds, counts)
    return sum(counts) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    fake = FakeProcess("site-123", "track-key")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMERIO_")} | {
        "CUSTOMERIO_SITE_ID": "site-123",
        "CUSTOMERIO_API_KEY": "track-key",
        "CUSTOMERIO_TRACK_URL": fake.url,
        "CUSTOMERIO_MCP_TRANSPORT": "streamable-http",
        "CUSTOMERIO_MCP_PORT": str(port),
        "CUSTOMERIO_MCP_AUTH_TOKEN": TOKEN,
        "CUSTOMERIO_LOG_LEVEL": "WARNING",
        # Pacing caps calls at 100/s per API by design; off here, to measure the server itself.
        "CUSTOMERIO_RATE_LIMIT": "0",
    }
    server = subprocess.Popen(
        [shutil.which("customerio-mcp") or "customerio-mcp"], env=env, stderr=subprocess.DEVNULL, text=True
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server)
        rate = anyio.run(run, f"http://127.0.0.1:{port}/mcp", args.clients, args.seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)
        fake.close()
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"Streamable HTTP benchmark ({machine}; stateless, bearer token)\n")
    print("| measure | customerio-mcp |")
    print("|---|---|")
    print(f"| calls per second, {args.clients} concurrent clients, {args.seconds:.0f} s | {rate:,.0f}/s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
