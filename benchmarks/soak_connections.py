"""Soak: idle and dripping unauthenticated connections held open while an authenticated client works.

    python benchmarks/soak_connections.py [--connections 1000] [--seconds 30] [--transport ...]
                                          [--max-connections N]

Half the attacking connections send nothing; the other half send a request head one byte every
2 s, and never finish it. Whenever the server cuts one, the attacker opens another, so that the
full count stays open for the whole run. Meanwhile an authenticated client makes one tool call a
second on a fresh connection. Target (issue 9): every authenticated call answers in < 1 s. With
``--max-connections`` below ``--connections`` the server is also made to evict idle connections
to let the client in.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.soak_common import (
    TOKEN,
    Server,
    SlowFake,
    machine,
    mcp_post,
    raise_fd_limit,
    tool_call_body,
)

DRIP = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 4000


class Attacker:
    """Keeps ``count`` unauthenticated connections open: idle ones and dripping ones."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.cut_by_server = 0
        self.open = 0

    async def hold(self, drip: bool, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.5)
                continue
            self.open += 1
            try:
                position = 0
                while not stop.is_set():
                    if drip and position < len(DRIP):
                        writer.write(DRIP[position : position + 1])
                        position += 1
                    try:
                        if await asyncio.wait_for(reader.read(4096), timeout=2.0) == b"":
                            break
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                else:
                    continue
                self.cut_by_server += 1
            finally:
                self.open -= 1
                writer.close()

    async def run(self, stop: asyncio.Event) -> None:
        holders = []
        for number in range(self.count):
            holders.append(asyncio.create_task(self.hold(number % 2 == 1, stop)))
            if number % 100 == 99:
                await asyncio.sleep(0.05)
        await asyncio.gather(*holders)


async def authenticated_call(port: int, request_id: int, transport: str) -> tuple[float, bool]:
    """Streamable HTTP: a tool call on a fresh connection. SSE: a fresh session up to its endpoint event."""
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if transport == "sse":
            writer.write(
                f"GET /sse HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
            )
            answer = b""
            while b"event: endpoint" not in answer:
                chunk = await asyncio.wait_for(reader.read(4096), timeout=30)
                if not chunk:
                    break
                answer += chunk
            ok = answer.startswith(b"HTTP/1.1 200") and b"event: endpoint" in answer
        else:
            writer.write(mcp_post(port, tool_call_body(request_id)))
            answer = await asyncio.wait_for(reader.read(-1), timeout=30)
            ok = answer.startswith(b"HTTP/1.1 200") and b'"isError":false' in answer
        writer.close()
    except (OSError, TimeoutError):
        return time.perf_counter() - started, False
    return time.perf_counter() - started, ok


async def soak(
    port: int, connections: int, seconds: float, transport: str
) -> tuple[list[tuple[float, bool]], Attacker, int]:
    attacker = Attacker(port, connections)
    stop = asyncio.Event()
    attack = asyncio.create_task(attacker.run(stop))
    while attacker.open < connections:  # noqa: ASYNC110 - a count, not an event
        await asyncio.sleep(0.2)
    peak_open = attacker.open
    calls = []
    deadline = time.monotonic() + seconds
    number = 0
    while time.monotonic() < deadline:
        calls.append(await authenticated_call(port, number, transport))
        peak_open = max(peak_open, attacker.open)
        number += 1
        await asyncio.sleep(max(0.0, 1.0 - calls[-1][0]))
    stop.set()
    await attack
    return calls, attacker, peak_open


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--transport", choices=["streamable-http", "sse"], default="streamable-http")
    parser.add_argument("--max-connections", type=int, default=None, help="CUSTOMERIO_MCP_MAX_CONNECTIONS")
    args = parser.parse_args()
    raise_fd_limit()
    env = {} if args.max_connections is None else {"CUSTOMERIO_MCP_MAX_CONNECTIONS": str(args.max_connections)}
    fake = SlowFake(0.0)
    server = Server(args.transport, fake, **env)
    try:
        calls, attacker, peak_open = asyncio.run(soak(server.port, args.connections, args.seconds, args.transport))
    finally:
        stderr = server.stop()
        received = fake.close()
    latencies = [seconds for seconds, _ in calls]
    served = sum(ok for _, ok in calls)
    worst = max(latencies) * 1000
    cap = "default" if args.max_connections is None else str(args.max_connections)
    print(f"Soak: {args.connections} idle or dripping unauthenticated connections for {args.seconds:g} s")
    print(f"({machine()}; {args.transport}, CUSTOMERIO_MCP_MAX_CONNECTIONS {cap})\n")
    print("| measure | value | target | met |")
    print("|---|---|---|---|")
    ok_latency = worst < 1000 and served == len(calls)
    print(
        f"| authenticated calls served, max latency (p50) | {served}/{len(calls)}, {worst:.0f} ms "
        f"({statistics.median(latencies) * 1000:.0f} ms) | all, < 1 s | {'yes' if ok_latency else 'NO'} |"
    )
    print(f"| attacking connections open at once (peak) | {peak_open} | {args.connections} | |")
    print(f"| attacking connections cut by the server | {attacker.cut_by_server} | > 0 | |")
    expected = served if args.transport == "streamable-http" else 0
    print(f"| requests Customer.io received | {received} | {expected} | {'yes' if received == expected else 'NO'} |")
    print(f"\nserver log: {len(stderr.splitlines())} lines, {stderr.count('Traceback')} tracebacks")
    return 0 if ok_latency and received == expected else 1


if __name__ == "__main__":
    sys.exit(main())
