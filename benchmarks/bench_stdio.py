"""Benchmark customerio-mcp over stdio against the minimal forwarding server, in one run.

    python benchmarks/bench_stdio.py [--calls 300] [--pipelined 500] [--starts 7]

Both servers run as subprocesses speaking raw JSON-RPC over pipes and forward to the same fake
Customer.io on loopback (``tests/fake_customerio.py``). Reported: cold start to the ``initialize``
answer (median of several starts), the ``tools/list`` answer size in compact JSON, sequential call
latency p50/p99, and throughput with many calls in flight at once (pipelined). Targets come from
the core issue and are checked at the end; the exit code is 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_customerio import FakeCustomerIO  # noqa: E402
from tests.processes import INITIALIZE, INITIALIZED, StdioPeer  # noqa: E402


def cold_start(argv: list[str], env: dict[str, str], starts: int) -> float:
    samples = []
    for _ in range(starts):
        started = time.perf_counter()
        peer = StdioPeer(argv, env)
        peer.send(INITIALIZE)
        answered, _ = peer.wait()[0]
        samples.append(answered - started)
        peer.close()
    return statistics.median(samples)


def call(request_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


def measure(argv: list[str], env: dict[str, str], tool: str, arguments: dict[str, Any], calls: int, pipelined: int):
    peer = StdioPeer(argv, env)
    peer.send(INITIALIZE)
    peer.wait()
    peer.send(INITIALIZED, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    peer.wait()
    list_size = peer.sizes[2]
    for i in range(20):  # warm-up: connection pool, validators, region
        peer.send(call(100 + i, tool, arguments))
        peer.wait()
    latencies = []
    for i in range(calls):
        started = time.perf_counter()
        peer.send(call(1000 + i, tool, arguments))
        answered, message = peer.wait()[0]
        assert not message["result"].get("isError"), message
        latencies.append(answered - started)
    started = time.perf_counter()
    peer.send(*(call(100_000 + i, tool, arguments) for i in range(pipelined)))
    answers = peer.wait(pipelined)
    elapsed = answers[-1][0] - started
    assert all(not m["result"].get("isError") for _, m in answers)
    peer.close()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return list_size, statistics.median(latencies), p99, pipelined / elapsed


def serve_fake() -> None:
    """Run the fake in its own process, so that it never shares a GIL with the measuring client."""
    with FakeCustomerIO() as fake:
        print(json.dumps({"url": fake.url}), flush=True)
        sys.stdin.read()


class FakeProcess:
    def __init__(self, site_id: str, api_key: str) -> None:
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); import tests.fake_customerio as f; "
            "from benchmarks.bench_stdio import serve_fake; f.FakeCustomerIO.__init__.__kwdefaults__.update("
            "site_id=sys.argv[2], api_key=sys.argv[3]); serve_fake()"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(ROOT), site_id, api_key],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = json.loads(self.proc.stdout.readline())["url"]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--pipelined", type=int, default=500)
    parser.add_argument("--starts", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=4, help="alternate the two servers this many times")
    args = parser.parse_args()

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOMERIO_")}
    body = {"name": "bench_event", "anonymous_id": "anon-1", "data": {"plan": "pro", "seats": 3}}
    ours_fake, minimal_fake = FakeProcess("site-123", "track-key"), FakeProcess("site", "key")
    try:
        ours_env = base_env | {
            "CUSTOMERIO_SITE_ID": "site-123",
            "CUSTOMERIO_API_KEY": "track-key",
            "CUSTOMERIO_TRACK_URL": ours_fake.url,
            "CUSTOMERIO_PIPELINES_URL": ours_fake.url + "/v1",
            "CUSTOMERIO_LOG_LEVEL": "WARNING",
            # Pacing caps calls at 100/s per API by design; off here, to measure the server itself.
            "CUSTOMERIO_RATE_LIMIT": "0",
        }
        minimal_env = base_env | {"BENCH_TARGET_URL": minimal_fake.url + "/api/v1/events"}
        ours_argv = os.environ.get("BENCH_OURS_ARGV", "").split() or [
            shutil.which("customerio-mcp") or "customerio-mcp"
        ]
        minimal_argv = [sys.executable, str(ROOT / "benchmarks" / "minimal_server.py")]
        ours_runs, minimal_runs, ours_starts, minimal_starts = [], [], [], []
        ours_call = ("track_anonymous_event", {"request_body": body})
        minimal_call = ("forward", {"body": body})
        for round_number in range(args.rounds):
            # Alternate which server goes first, so that neither always meets a warmer machine.
            order = [(ours_argv, ours_env, ours_starts, ours_runs, ours_call)]
            order.insert(round_number % 2, (minimal_argv, minimal_env, minimal_starts, minimal_runs, minimal_call))
            for argv, env, starts, _, _ in order:
                starts.append(cold_start(argv, env, args.starts))
            for argv, env, _, runs, (tool, arguments) in order:
                runs.append(measure(argv, env, tool, arguments, args.calls, args.pipelined))
    finally:
        ours_fake.close()
        minimal_fake.close()

    def median(runs: list[tuple[float, ...]], index: int) -> float:
        return statistics.median(run[index] for run in runs)

    ours_start, minimal_start = statistics.median(ours_starts), statistics.median(minimal_starts)
    ours = [median(ours_runs, i) for i in range(4)]
    minimal = [median(minimal_runs, i) for i in range(4)]
    rows = [
        ("cold start to initialize answer", f"{ours_start * 1000:.0f} ms", f"{minimal_start * 1000:.0f} ms",
         ours_start / minimal_start, "≤ 1.10×", ours_start <= 1.1 * minimal_start),
        ("tools/list answer (compact JSON)", f"{ours[0]:,.0f} B", f"{minimal[0]:,.0f} B", None, "≤ 16,384 B",
         ours[0] <= 16 * 1024),
        ("call latency p50", f"{ours[1] * 1000:.2f} ms", f"{minimal[1] * 1000:.2f} ms", ours[1] / minimal[1],
         "≤ 1.10×", ours[1] <= 1.1 * minimal[1]),
        ("call latency p99", f"{ours[2] * 1000:.2f} ms", f"{minimal[2] * 1000:.2f} ms", ours[2] / minimal[2], "", True),
        ("pipelined calls per second", f"{ours[3]:,.0f}/s", f"{minimal[3]:,.0f}/s", ours[3] / minimal[3],
         "≥ 0.95×", ours[3] >= 0.95 * minimal[3]),
    ]  # fmt: skip
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"stdio benchmark ({machine}; medians of {args.rounds} alternating rounds of {args.calls} sequential and "
        f"{args.pipelined} pipelined calls, {args.starts} starts each)\n"
    )
    print("| measure | customerio-mcp | minimal server | ratio | target | met |")
    print("|---|---|---|---|---|---|")
    for name, ours_value, minimal_value, ratio, target, met in rows:
        shown = f"{ratio:.2f}×" if ratio is not None else ""
        print(f"| {name} | {ours_value} | {minimal_value} | {shown} | {target} | {'yes' if met else 'NO'} |")
    return 0 if all(row[-1] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
