"""Soak: thousands of concurrent tool calls against a slow Customer.io, on loopback.

    python benchmarks/soak_calls.py [--calls 3000] [--delay 5] [--transport streamable-http|sse]

Targets (issue 9): the server's RSS grows < 200 MB, ``/healthz`` answers in < 200 ms throughout
(on ``CUSTOMERIO_MCP_HEALTH_PORT``, answered by a thread; ``/healthz`` on the main port waits behind
the burst in the event loop and is reported beside it), and nothing is lost: every call is either
served or refused ("server busy"), and Customer.io received exactly the served ones. Streamable
HTTP calls are raw POSTs (no client library in the way, 503 + Retry-After when refused); SSE calls
go through the SDK client over 30 sessions (``isError`` results when refused).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.soak_common import (
    TOKEN,
    HealthProbe,
    Server,
    SlowFake,
    machine,
    mcp_post,
    raise_fd_limit,
    tool_call_body,
)
from tests.processes import free_port


async def raw_call(port: int, request_id: int) -> str:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        writer.write(mcp_post(port, tool_call_body(request_id)))
        answer = await reader.read(-1)
        writer.close()
    except OSError as exc:
        return f"connection error {exc.errno}"
    status = answer[9:12].decode(errors="replace")
    if status == "200":
        return "served" if b'"isError":false' in answer else "error result"
    if status == "503" and b"retry-after:" in answer.lower() and b"server busy" in answer:
        return "refused: 503 server busy"
    return f"HTTP {status}"


async def sse_calls(url: str, calls: int, sessions: int) -> list[str]:
    from mcp import Client
    from mcp.client.sse import sse_client

    outcomes: list[str] = []

    async def session(count: int) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with Client(sse_client(url + "/sse", headers=headers, sse_read_timeout=120)) as client:
            await client.list_tools()

            async def one() -> None:
                try:
                    result = await client.call_tool(
                        "track_anonymous_event", {"request_body": {"name": "s", "anonymous_id": "a"}}
                    )
                except Exception as exc:
                    outcomes.append(f"exception {type(exc).__name__}")
                    return
                text = result.content[0].text if result.content else ""
                outcomes.append(
                    "refused: server busy result"
                    if "server busy" in text
                    else "served"
                    if not result.is_error
                    else "error result"
                )

            await asyncio.gather(*(one() for _ in range(count)))

    await asyncio.gather(*(session(calls // sessions) for _ in range(sessions)))
    return outcomes


async def sample_rss(server: Server, stop: asyncio.Event, samples: list[float]) -> None:
    while not stop.is_set():
        samples.append(server.rss_mb())
        await asyncio.sleep(0.1)


async def flood(
    server: Server, transport: str, calls: int
) -> tuple[Counter[str], dict[str, list[float]], list[float], float]:
    stop = asyncio.Event()
    rss: list[float] = []
    monitors = [asyncio.create_task(sample_rss(server, stop, rss))]
    probes = {"health port": HealthProbe(server.health_port), "main port": HealthProbe(server.port)}
    for probe in probes.values():
        probe.start()
    started = time.perf_counter()
    if transport == "sse":
        outcomes = await sse_calls(server.url, calls, sessions=30)
    else:
        outcomes = await asyncio.gather(*(raw_call(server.port, n) for n in range(calls)))
    elapsed = time.perf_counter() - started
    stop.set()
    await asyncio.gather(*monitors)
    health = {name: probe.stop() for name, probe in probes.items()}
    return Counter(outcomes), health, rss, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--delay", type=float, default=5.0, help="seconds Customer.io takes per request")
    parser.add_argument("--transport", choices=["streamable-http", "sse"], default="streamable-http")
    args = parser.parse_args()
    raise_fd_limit()
    fake = SlowFake(args.delay)
    server = Server(args.transport, fake, CUSTOMERIO_MCP_HEALTH_PORT=str(free_port()))
    try:
        asyncio.run(asyncio.sleep(1))
        before, cpu_before = server.rss_mb(), server.cpu_seconds()
        outcomes, health, rss, elapsed = asyncio.run(flood(server, args.transport, args.calls))
        cpu = server.cpu_seconds() - cpu_before
    finally:
        stderr = server.stop()
        received = fake.close()
    served = outcomes["served"]
    refused = sum(n for kind, n in outcomes.items() if kind.startswith("refused"))
    other = args.calls - served - refused
    growth = max(rss) - before
    worst = {name: max(times) * 1000 if times else float("inf") for name, times in health.items()}
    typical = {name: statistics.median(times) * 1000 if times else float("inf") for name, times in health.items()}
    rows = [
        (f"RSS growth (peak {max(rss):.0f} MB, before {before:.0f} MB)", f"{growth:.0f} MB", "< 200 MB", growth < 200),
        (
            f"/healthz on CUSTOMERIO_MCP_HEALTH_PORT: max (p50; {len(health['health port'])} probes)",
            f"{worst['health port']:.0f} ms ({typical['health port']:.1f} ms)",
            "< 200 ms",
            worst["health port"] < 200,
        ),
        (
            f"/healthz on the main port, queued behind the burst: max (p50; {len(health['main port'])} probes)",
            f"{worst['main port']:.0f} ms ({typical['main port']:.1f} ms)",
            "(reported)",
            True,
        ),
        ("served / refused before sending / other", f"{served} / {refused} / {other}", "other = 0", other == 0),
        ("requests Customer.io received", str(received), f"= served ({served})", received == served),
    ]
    print(f"Soak: {args.calls} concurrent tool calls, {args.transport}, Customer.io answering in {args.delay:g} s")
    print(f"({machine()}; server defaults: 64 concurrent calls, 2 s queue)\n")
    print("| measure | value | target | met |")
    print("|---|---|---|---|")
    for measure, value, target, ok in rows:
        print(f"| {measure} | {value} | {target} | {'yes' if ok else 'NO'} |")
    print(f"\nall calls answered in {elapsed:.1f} s (server CPU {cpu:.1f} s); outcomes: {dict(outcomes)}")
    print(f"server log: {len(stderr.splitlines())} lines, {stderr.count('Traceback')} tracebacks")
    return 0 if all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
