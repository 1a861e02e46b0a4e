"""Pacing shared across replicas through a real Redis: three server processes, one budget.

One client spreads its calls over three stateless Streamable HTTP servers (round robin, as a load
balancer would) that share ``CUSTOMERIO_REDIS_URL``. The fake Customer.io timestamps every arrival:
in no one-second window may more than the configured rate arrive (a small allowance for the
network), which three per-process budgets would exceed threefold. Stopping Redis mid-run must
lose no call: pacing falls back to each process with one WARNING.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import coredis
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from customerio_mcp.customerio.pacing import Pacing
from customerio_mcp.customerio.shared_pacing import REDIS_TIMEOUT_SECONDS, ping
from tests.fake_customerio import FakeCustomerIO, Recorded
from tests.processes import TOKEN, Running, command, free_port, http_server, server_env
from tests.redis_server import RedisProcess, redis_server, silent_redis
from tests.test_http_transports import RoundRobin

RATE = 100
ALLOWANCE = 1.25
"""Arrivals per second may exceed the rate by this factor: the network reorders a little."""
CONCURRENT = 30
REDIS_WARNING = "cannot be reached"


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisProcess]:
    with redis_server(tmp_path) as running:
        yield running


def most_in_one_second(arrivals: list[Recorded]) -> int:
    """The largest number of arrivals in any window [t, t + 1 s) that starts at an arrival."""
    times = sorted(entry.at for entry in arrivals)
    most, end = 0, 0
    for start, at in enumerate(times):
        while end < len(times) and times[end] < at + 1.0:
            end += 1
        most = max(most, end - start)
    return most


async def call_many(servers: list[Running], count: int, on_progress: Any = None) -> list[Any]:
    """``count`` delete_customer calls from one client, ``CONCURRENT`` at a time, spread round robin."""
    ports = [int(server.url.rsplit(":", 1)[1]) for server in servers]
    balancer = RoundRobin(ports)
    results: list[Any] = []
    numbers = iter(range(count))
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60, transport=balancer) as session,
        Client(streamable_http_client(servers[0].url + "/mcp", http_client=session)) as client,
    ):

        async def worker() -> None:
            for number in numbers:
                results.append(await client.call_tool("delete_customer", {"customer_identifier": f"p{number}"}))
                if on_progress is not None:
                    await on_progress(len(results))

        async with anyio.create_task_group() as tg:
            for _ in range(CONCURRENT):
                tg.start_soon(worker)
    assert set(balancer.sent) == set(ports)  # every replica served
    return results


def replicas(stack: ExitStack, fake: FakeCustomerIO, redis_url: str, count: int = 3) -> list[Running]:
    return [
        stack.enter_context(
            http_server(
                fake,
                "streamable-http",
                CUSTOMERIO_RATE_LIMIT=str(RATE),
                CUSTOMERIO_REDIS_URL=redis_url,
                CUSTOMERIO_LOG_LEVEL="INFO",
            )
        )
        for _ in range(count)
    ]


async def test_three_replicas_share_one_budget(fake: FakeCustomerIO, redis: RedisProcess) -> None:
    keys: list[str] = []

    async def look_at_redis(done: int) -> None:
        if done == 300:  # mid-run, while the budget's key lives (it expires a second after the last call)
            keys.extend(key.decode() for key in await coredis.Redis(port=redis.port).keys("*"))

    with ExitStack() as stack:
        servers = replicas(stack, fake, redis.url)
        results = await call_many(servers, 600, on_progress=look_at_redis)
        logs = [server.stop()[1] for server in servers]
    assert [r.is_error for r in results] == [False] * 600
    arrived = [entry for entry in fake.requests if entry.answered == 200]
    assert sorted(e.raw_path for e in arrived) == sorted(f"/api/v1/customers/p{n}" for n in range(600))  # none lost
    most = most_in_one_second(arrived)
    print(f"most in one second: {most}")
    assert most <= RATE * ALLOWANCE, f"{most} requests arrived within one second"
    span = max(e.at for e in arrived) - min(e.at for e in arrived)
    # 600 at 100/s: the first second's 100 at once, then 100 a second: about 5 s. Three separate
    # budgets would have taken under 2 s.
    print(f"span: {span:.2f} s")
    assert span >= 4.0, span
    for log in logs:
        assert "pacing is shared across replicas through Redis at redis://127.0.0.1" in log
        assert REDIS_WARNING not in log
    # The budget's Redis key names the workspace by a hash only.
    assert keys
    assert all(key.startswith("customerio-mcp") for key in keys)
    assert not any(secret in key for key in keys for secret in (fake.api_key, fake.pipelines_key, fake.site_id))


async def test_stopping_redis_mid_run_loses_no_call(fake: FakeCustomerIO, redis: RedisProcess) -> None:
    stopped = anyio.Event()

    async def stop_redis_after_some(done: int) -> None:
        if done >= 150 and not stopped.is_set():
            stopped.set()
            await anyio.to_thread.run_sync(redis.stop)

    with ExitStack() as stack:
        servers = replicas(stack, fake, redis.url)
        results = await call_many(servers, 450, on_progress=stop_redis_after_some)
        logs = [server.stop()[1] for server in servers]
    assert stopped.is_set()
    assert [r.is_error for r in results] == [False] * 450
    assert sorted(e.raw_path for e in fake.requests) == sorted(f"/api/v1/customers/p{n}" for n in range(450))
    for log in logs:
        assert log.count(REDIS_WARNING) == 1, log[-3000:]  # one WARNING per outage, per process
        assert "falls back" in log or "paces on its own budget" in log


async def test_unreachable_redis_paces_in_the_process_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    pacing = Pacing(50, f"redis://127.0.0.1:{free_port()}/0")
    pacer = pacing.pacer("track", "workspace-hash")
    assert pacer is not None
    with caplog.at_level(logging.WARNING, logger="customerio_mcp"):
        started = anyio.current_time()
        for _ in range(20):
            await pacer.acquire()
        elapsed = anyio.current_time() - started
    pacing.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert REDIS_WARNING in warnings[0].getMessage()
    assert elapsed < 5  # never stuck on Redis: the local bucket paced the 20


async def test_a_redis_that_never_answers_holds_a_call_no_longer_than_the_redis_timeout(fake: FakeCustomerIO) -> None:
    """A Redis that accepts connections and never answers (hung, or a black hole in front of it): every
    Redis operation has a bound of our own, so the first call waits at most about REDIS_TIMEOUT_SECONDS
    and then paces in the process. The client library's own timeouts bound each command but retry the
    handshake: before this bound the first call waited 2.6 s, longer than this 2 s deadline."""
    with (
        silent_redis() as url,
        http_server(
            fake,
            "streamable-http",
            CUSTOMERIO_RATE_LIMIT=str(RATE),
            CUSTOMERIO_REDIS_URL=url,
            CUSTOMERIO_RETRY_DEADLINE="2",
            CUSTOMERIO_LOG_LEVEL="INFO",
        ) as server,
    ):
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as session,
            Client(streamable_http_client(server.url + "/mcp", http_client=session)) as client,
        ):
            results = [await client.call_tool("delete_customer", {"customer_identifier": f"p{n}"}) for n in range(3)]
        _, log = server.stop()
    assert [r.is_error for r in results] == [False] * 3, [r.content for r in results]
    assert sorted(e.raw_path for e in fake.requests) == [f"/api/v1/customers/p{n}" for n in range(3)]
    assert log.count(REDIS_WARNING) == 1, log[-3000:]


async def test_ping_of_a_redis_that_never_answers_gives_up_after_the_redis_timeout() -> None:
    with silent_redis() as url, anyio.fail_after(REDIS_TIMEOUT_SECONDS * 4):  # before the bound: 2.6 s
        assert await ping(url) == "TimeoutError"


def test_pacing_off_hands_out_no_pacer() -> None:
    assert Pacing(0, "redis://127.0.0.1:1/0").pacer("track", "x") is None


@pytest.mark.parametrize("reachable", [True, False])
def test_check_reports_request_credentials_and_whether_redis_answers(redis: RedisProcess, reachable: bool) -> None:
    url = redis.url if reachable else f"redis://:pass-word-9@127.0.0.1:{free_port()}/0"
    env = server_env(
        None,
        CUSTOMERIO_CREDENTIALS_FROM="request",
        CUSTOMERIO_MCP_TRANSPORT="streamable-http",
        CUSTOMERIO_REDIS_URL=url,
    )
    done = subprocess.run([command(), "check"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr  # neither needs anything more to serve
    assert done.stdout.count("credentials: from each request's X-Customerio-* headers") == 2
    if reachable:
        assert f"Redis at redis://127.0.0.1:{redis.port}/0: answers" in done.stdout
    else:
        assert "UNREACHABLE" in done.stdout
        assert "warning: Redis at redis://<redacted>@127.0.0.1" in done.stdout  # no password
    assert "pass-word-9" not in done.stdout + done.stderr
