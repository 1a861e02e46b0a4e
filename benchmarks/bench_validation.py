"""Benchmark the cost of checking request bodies: valid batches, hostile bodies, and who waits meanwhile.

    python benchmarks/bench_validation.py [--rounds 5]

Targets (the fidelity issue):

- a valid 5,000-operation v2 batch under 500 KB is checked in ≤ 50 ms;
- any hostile body up to the 1 MiB HTTP cap is refused in ≤ 50 ms, and any huge valid one accepted
  in ≤ 50 ms, whatever its shape (the safety issue: long arrays of scalars, 100,000 segment ids,
  50,000-60,000 members in one object, one bad value after 100,000 good ones);
- while one is being checked, a concurrent tool call and ``/healthz`` are delayed by ≤ 100 ms.

The first two are measured in process (``ToolRunner.build_request``: every local check, nothing sent),
medians of ``--rounds``, in CPU time (``time.process_time``: on a shared machine, wall time also
counts the neighbours). As in a serving process, the start-up heap is frozen (``gc.freeze``, what
``serving/mcp_server.freeze_startup_heap`` does) and only the body being checked is alive: each row
builds its own body first. Holding every body of the benchmark at once (millions of objects) made a
full garbage collection, which encoding a body sets off, walk them all: 60 ms of a 100 ms row.
The third runs the real server over Streamable HTTP against the fake Customer.io and sends the
largest bodies while a second client, in a process of its own, polls ``/healthz`` and makes small
calls, reporting the worst delay seen. The server is the installed ``customerio-mcp`` command: to
measure another checkout, put it first on ``PYTHONPATH``. Exit code 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402
from soak_common import API_KEY, SITE_ID, SlowFake  # noqa: E402

from customerio_mcp.customerio.client import CustomerIOClient  # noqa: E402
from customerio_mcp.customerio.http_client import SharedHttpClient  # noqa: E402
from customerio_mcp.errors import InputError  # noqa: E402
from customerio_mcp.settings import Settings  # noqa: E402
from customerio_mcp.tools.runner import ToolRunner  # noqa: E402
from customerio_mcp.tools.table import TOOLS_BY_NAME  # noqa: E402
from tests.processes import TOKEN, http_server  # noqa: E402

MiB = 1024 * 1024


def valid_batch(count: int = 5_000) -> dict[str, Any]:
    operations = []
    for i in range(count):
        if i % 2:
            operations.append({"type": "person", "action": "event", "identifiers": {"id": str(i)}, "name": "purchase"})
        else:
            operations.append(
                {"type": "person", "action": "identify", "identifiers": {"id": str(i)}, "attributes": {"p": 1}}
            )
    return {"batch": operations}


Body = tuple[str, dict[str, Any]]
"""A tool and its arguments."""


def one_object() -> dict[str, int]:
    return {f"k{i}": i for i in range(60_000)}  # 60,000 members, about 1 MB


def lists_object() -> dict[str, list[int]]:
    return {f"k{i}": [i] for i in range(50_000)}  # 50,000 members, about 1 MB; no device attribute holds a list


def numbers() -> list[int]:
    return list(range(100_000))  # about 600 KB


def _last_bad() -> dict[str, Any]:
    body = valid_batch(4_000)
    body["batch"][-1] = {"type": "person", "action": "event", "identifiers": {"id": "x"}}  # no name
    return body


def hostile_bodies() -> dict[str, Callable[[], Body]]:
    """Bodies up to about 1 MiB, each refused, each built when asked for: (tool, arguments)."""
    segment, person = {"segment_identifier": 7}, {"person_identifier": "p1"}
    page = {"type": "person", "action": "page", "name": "/", "identifiers": {"id": "1"}}
    return {
        "40,000 empty v2 operations (~120 KB)": lambda: (
            "batch_process_requests",
            {"request_body": {"batch": [{}] * 40_000}},
        ),
        "200,000 empty v2 operations (~600 KB)": lambda: (
            "batch_process_requests",
            {"request_body": {"batch": [{}] * 200_000}},
        ),
        "40,000 empty Pipelines calls": lambda: ("send_batch_requests", {"request_body": {"batch": [{}] * 40_000}}),
        "4,000 valid operations, the last one wrong": lambda: ("batch_process_requests", {"request_body": _last_bad()}),
        "1 MiB of event data": lambda: (
            "track_anonymous_event",
            {"request_body": {"name": "e", "data": {"blob": "x" * MiB}}},
        ),
        "1 MiB string body, nested 1,000 deep": lambda: (
            "track_anonymous_event",
            {"request_body": "[" * 1000 + "]" * 1000 + " " * (MiB - 2000)},
        ),
        "1 MiB string body, not JSON": lambda: ("track_anonymous_event", {"request_body": "{" + "a" * (MiB - 1)}),
        "130,000 integers in one list (~1 MiB)": lambda: (
            "track_anonymous_event",
            {"request_body": {"name": "e", "data": {"n": list(range(130_000))}}},
        ),
        "100,000 numbers as segment ids": lambda: (
            "add_people_to_segment",
            {**segment, "request_body": {"ids": numbers()}},
        ),
        "100,000 strings as segment ids": lambda: (
            "add_people_to_segment",
            {**segment, "request_body": {"ids": [str(i) for i in numbers()]}},
        ),
        "100,000 empty objects as segment ids": lambda: (
            "add_people_to_segment",
            {**segment, "request_body": {"ids": [{}] * 100_000}},
        ),
        "100,000 numbers in Pipelines properties": lambda: (
            "track_user_event",
            {"request_body": {"userId": "u", "event": "e", "properties": {"n": numbers()}}},
        ),
        "100,000 numbers in v1 event data": lambda: (
            "track_anonymous_event",
            {"request_body": {"name": "e", "data": {"n": numbers()}}},
        ),
        "100,000 numbers in a v2 batch's attributes": lambda: (
            "batch_process_requests",
            {"request_body": {"batch": [{**page, "action": "identify", "attributes": {"n": numbers()}}]}},
        ),
        "100,000 numbers as page keywords in a v2 batch (~300 KB)": lambda: (
            "batch_process_requests",
            {"request_body": {"batch": [{**page, "attributes": {"keywords": [1] * 100_000}}]}},
        ),
        "1 MiB string as an event name": lambda: (
            "track_user_event",
            {"request_body": {"userId": "u", "event": "x" * (MiB - 1000)}},
        ),
        "50,000 members in one object (device attributes)": lambda: (
            "add_device_to_customer_profile",
            {
                "unique_person_identifier": "p1",
                "request_body": {"device": {"id": "d", "platform": "ios", "attributes": lists_object()}},
            },
        ),
        "60,000 members in form data": lambda: (
            "submit_form_response",
            {"form_identifier": "f", "request_body": {"data": one_object()}},
        ),
        "100,000 numbers as a delivery id": lambda: (
            "report_custom_metrics",
            {"request_body": {"delivery_id": numbers()}},
        ),
        "100,000 numbers, the last one of 31 digits": lambda: (
            "update_or_add_person",
            {**person, "request_body": {"a": [*numbers(), 10**30]}},
        ),
        "50,000 small arrays, the last one nested 70 deep": lambda: (
            "update_or_add_person",
            {**person, "request_body": {"a": [[1]] * 50_000 + [_nested(70)]}},
        ),
    }


def valid_bodies() -> dict[str, Callable[[], Body]]:
    """Huge bodies up to about 1 MiB that are accepted, each built when asked for: (tool, arguments)."""
    person = {"person_identifier": "p1"}
    return {
        "100,000 small objects in one attribute": lambda: (
            "update_or_add_person",
            {**person, "request_body": {"a": [{"b": 1} for _ in range(100_000)]}},
        ),
        "80,000 arrays of arrays in one attribute": lambda: (
            "update_or_add_person",
            {**person, "request_body": {"a": [[[1]] for _ in range(80_000)]}},
        ),
        "40,000 strings of 21 digits": lambda: (
            "update_or_add_person",
            {**person, "request_body": {"a": ["123456789012345678901"] * 40_000}},
        ),
        "60,000 attributes": lambda: ("update_or_add_person", {**person, "request_body": one_object()}),
    }


def _nested(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def timed(work: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    samples, outcome = [], None
    for _ in range(rounds):
        started = time.process_time()
        try:
            outcome = work()
        except InputError as error:
            outcome = error
        samples.append(time.process_time() - started)
    return statistics.median(samples), outcome


def in_process(rounds: int) -> list[tuple[str, float, float, bool]]:
    settings = Settings(site_id="s", api_key="k", pipelines_api_key="p", track_url="http://127.0.0.1:9", rate_limit=0)
    runner = ToolRunner(CustomerIOClient(settings, SharedHttpClient.of(httpx2.AsyncClient())), settings)
    gc.collect()
    gc.freeze()  # as a serving process does once started: from here on, only each row's own body is alive
    rows = []
    batch = valid_batch()
    size = len(json.dumps(batch, separators=(",", ":")))
    assert size < 500 * 1024, size
    elapsed, outcome = timed(
        lambda: runner.build_request(TOOLS_BY_NAME["batch_process_requests"], {"request_body": batch}), rounds
    )
    assert not isinstance(outcome, InputError), outcome
    rows.append((f"valid 5,000-operation v2 batch ({size:,} B)", elapsed, 0.050, elapsed <= 0.050))
    batch.clear()
    for label, build in hostile_bodies().items():
        tool, arguments = build()
        elapsed, outcome = timed(
            lambda tool=tool, arguments=arguments: runner.build_request(TOOLS_BY_NAME[tool], arguments), rounds
        )
        assert isinstance(outcome, InputError), f"{label} was not refused"
        rows.append((f"refuse: {label}", elapsed, 0.050, elapsed <= 0.050))
    for label, build in valid_bodies().items():
        tool, arguments = build()
        elapsed, outcome = timed(
            lambda tool=tool, arguments=arguments: runner.build_request(TOOLS_BY_NAME[tool], arguments), rounds
        )
        assert not isinstance(outcome, InputError), f"{label} was refused: {outcome}"
        rows.append((f"accept: {label}", elapsed, 0.050, elapsed <= 0.050))
    return rows


def _observe(url: str, ready: Any, stop: Any, results: Any) -> None:
    """In a process of its own: poll ``/healthz`` and make small calls until ``stop``; put their times."""
    import anyio
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    health: list[float] = []
    small: list[float] = []

    def poll() -> None:
        with httpx2.Client(timeout=10) as http:
            while not stop.is_set():
                started = time.perf_counter()
                http.get(url + "/healthz")
                health.append(time.perf_counter() - started)
                time.sleep(0.01)

    async def calls() -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            Client(streamable_http_client(url + "/mcp", http_client=http)) as light,
        ):
            # Once before measuring: the SDK client checks each result against the tool's outputSchema and
            # imports jsonschema for it on its first call (tens of ms), which would count as the server's delay.
            await light.call_tool("get_track_api_region", {})
            ready.set()
            while not stop.is_set():
                started = time.perf_counter()
                await light.call_tool("get_track_api_region", {})
                small.append(time.perf_counter() - started)
                await anyio.sleep(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    anyio.run(calls)
    poller.join()
    results.put((health, small))


def under_load() -> tuple[float, float, int]:
    """Worst /healthz and small-call delay while the largest bodies are checked, over Streamable HTTP.

    The server, the fake Customer.io, the client that sends the bodies and the one that measures
    (health checks and small calls) each run in a process of their own. In one process, the
    measuring client waited through the sender's own work: serializing 200,000 operations takes it
    ~50 ms, and its full garbage collections (53-90 ms) stopped the thread that timed the calls.
    """
    import multiprocessing

    from anyio import create_task_group, run
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.exceptions import MCPError

    fake = SlowFake(0.0)
    env = {
        "CUSTOMERIO_SITE_ID": SITE_ID,
        "CUSTOMERIO_API_KEY": API_KEY,
        "CUSTOMERIO_TRACK_URL": fake.url,
        "CUSTOMERIO_PIPELINES_URL": fake.url + "/v1",
        "CUSTOMERIO_PIPELINES_API_KEY": "cdp-key-secret-xyz",  # the fake's own: Pipelines bodies are checked too
        "CUSTOMERIO_RATE_LIMIT": "0",
        "CUSTOMERIO_LOG_LEVEL": "WARNING",
    }
    try:
        with http_server(None, "streamable-http", **env) as server:
            spawn = multiprocessing.get_context("spawn")
            ready, stop, results = spawn.Event(), spawn.Event(), spawn.Queue()
            observer = spawn.Process(target=_observe, args=(server.url, ready, stop, results))
            observer.start()
            assert ready.wait(60), "the measuring client did not connect"

            async def hammer() -> int:
                refused = 0
                headers = {"Authorization": f"Bearer {TOKEN}"}
                async with (
                    httpx2.AsyncClient(headers=headers, timeout=60) as http,
                    Client(streamable_http_client(server.url + "/mcp", http_client=http)) as heavy,
                ):
                    for _ in range(3):
                        for build in hostile_bodies().values():
                            tool, arguments = build()
                            try:
                                result = await heavy.call_tool(tool, arguments)
                            except MCPError:  # over the 1 MiB HTTP cap: refused before it is parsed (413)
                                refused += 1
                            else:
                                refused += bool(result.is_error)
                        await heavy.call_tool("batch_process_requests", {"request_body": valid_batch(4_000)})
                        for build in valid_bodies().values():
                            await heavy.call_tool(*build())
                        # The case: four 100,000-identifier bodies refused at once (535 ms for others before).
                        segment = {"segment_identifier": 7, "request_body": {"ids": numbers()}}
                        async with create_task_group() as together:
                            for _ in range(4):
                                together.start_soon(heavy.call_tool, "add_people_to_segment", segment)
                return refused

            try:
                refused = run(hammer)
            finally:
                stop.set()
                health, small = results.get(timeout=60)
                observer.join(10)
    finally:
        fake.close()
    # Each measured against its own median: the first request of a new process is no baseline.
    return max(health) - statistics.median(health), max(small) - statistics.median(small), refused


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()
    rows = in_process(args.rounds)
    if not args.skip_http:
        health_delay, call_delay, refused = under_load()
        expected = 3 * len(hostile_bodies())
        rows.append((f"hostile bodies refused over HTTP ({refused} of {expected})", 0.0, 0.0, refused == expected))
        rows.append(
            ("worst /healthz delay while hostile bodies are checked", health_delay, 0.100, health_delay <= 0.100)
        )
        rows.append(("worst extra delay of a concurrent tool call", call_delay, 0.100, call_delay <= 0.100))
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"body-check benchmark ({machine}; in-process medians of {args.rounds} rounds)\n")
    print("| measure | time | target | met |")
    print("|---|---|---|---|")
    for label, elapsed, target, met in rows:
        print(f"| {label} | {elapsed * 1000:.1f} ms | ≤ {target * 1000:.0f} ms | {'yes' if met else 'NO'} |")
    return 0 if all(row[-1] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
