"""Tool selection, no-destructive mode, dry run, pacing, and the check and tools commands."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from customerio_mcp.customerio.client import Endpoints
from customerio_mcp.settings import Settings
from customerio_mcp.tools.selection import DESTRUCTIVE_ONLY
from customerio_mcp.tools.table import TOOLS
from tests.conftest import connect, settings_for
from tests.fake_customerio import FakeCustomerIO
from tests.processes import INITIALIZE, INITIALIZED, TOKEN, command, http_server, server_env
from tests.test_http_transports import mcp_client

ALL = {tool.name for tool in TOOLS if tool.toolset != "verify"}
"""The 24 writing tools: every one served by default, and all there is without an App API key."""
PIPELINES = {tool.name for tool in TOOLS if tool.api == "pipelines"}
VERIFY = {tool.name for tool in TOOLS if tool.toolset == "verify"}
APP_KEY = "app-key-secret-0a1b2c"


async def listed(settings: Settings) -> set[str]:
    async with connect(settings) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


# -- choosing what the model sees ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, ALL),
        ({"CUSTOMERIO_TOOLSETS": "pipelines"}, PIPELINES),
        ({"CUSTOMERIO_TOOLSETS": "track"}, ALL - PIPELINES),
        ({"CUSTOMERIO_TOOLS": "delete_customer,track_user_event"}, {"delete_customer", "track_user_event"}),
        ({"CUSTOMERIO_TOOLS": "delete_customer,track_user_event", "CUSTOMERIO_TOOLSETS": "track"}, {"delete_customer"}),
        ({"CUSTOMERIO_DISABLE_DESTRUCTIVE": "true"}, ALL - DESTRUCTIVE_ONLY),
        (
            {"CUSTOMERIO_DISABLE_DESTRUCTIVE": "1", "CUSTOMERIO_TOOLS": "delete_customer,manage_entity"},
            {"manage_entity"},
        ),
        # The verify toolset joins the default toolsets with an App API key, and is never served without one,
        ({"CUSTOMERIO_APP_API_KEY": APP_KEY}, ALL | VERIFY),
        ({"CUSTOMERIO_APP_API_KEY": APP_KEY, "CUSTOMERIO_TOOLSETS": "verify"}, VERIFY),
        ({"CUSTOMERIO_APP_API_KEY": APP_KEY, "CUSTOMERIO_TOOLSETS": "track,pipelines"}, ALL),
        ({"CUSTOMERIO_TOOLSETS": "verify,track"}, ALL - PIPELINES),
        ({"CUSTOMERIO_TOOLS": "get_person_attributes,delete_customer"}, {"delete_customer"}),
        # except in a dry run that names it, which previews its requests without a key.
        ({"CUSTOMERIO_TOOLSETS": "verify", "CUSTOMERIO_DRY_RUN": "true"}, VERIFY),
        ({"CUSTOMERIO_DRY_RUN": "true"}, ALL),
    ],
)
async def test_environment_chooses_the_tools(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], expected: set[str]
) -> None:
    monkeypatch.setenv("CUSTOMERIO_PIPELINES_API_KEY", "k")  # without one the Pipelines tools are not served
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert await listed(Settings()) == expected


async def test_a_tool_that_is_not_enabled_cannot_be_called(fake: FakeCustomerIO) -> None:
    async with connect(settings_for(fake, toolsets=["pipelines"])) as client:
        hidden = await client.call_tool("send_customer_event", {"customer_identifier": "1", "request_body": {}})
    async with connect(settings_for(fake, disable_destructive=True)) as client:
        destructive = await client.call_tool("delete_customer", {"customer_identifier": "1"})
    assert hidden.is_error
    assert "not enabled on this server: the track toolset is not enabled (CUSTOMERIO_TOOLSETS" in hidden.content[0].text
    assert destructive.is_error
    assert "CUSTOMERIO_DISABLE_DESTRUCTIVE" in destructive.content[0].text
    assert fake.requests == []


@pytest.mark.parametrize(
    ("args", "variables", "words"),
    [
        (["--tools", "delete_customer,nope"], {}, "unknown tool(s) nope; valid tools: get_track_api_region"),
        ([], {"CUSTOMERIO_TOOLS": "nope"}, "unknown tool(s) nope; valid tools:"),
        (
            ["--toolsets", "track,crm"],
            {},
            "invalid --toolsets track,crm: Input should be 'track', 'pipelines' or 'verify'",
        ),
        ([], {"CUSTOMERIO_TOOLSETS": "crm"}, "'track', 'pipelines' or 'verify'"),
    ],
)
def test_unknown_names_stop_the_server_at_start(args: list[str], variables: dict[str, str], words: str) -> None:
    done = subprocess.run(
        [command(), *args], env=server_env(None, **variables), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert words in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("transport", ["sse", "streamable-http"])
@pytest.mark.parametrize(
    ("args", "variables", "expected"),
    [
        (["--toolsets", "pipelines", "--no-destructive"], {}, PIPELINES - {"alias_user_identity"}),
        (
            [],
            {"CUSTOMERIO_TOOLS": "manage_entity,delete_customer", "CUSTOMERIO_DISABLE_DESTRUCTIVE": "true"},
            {"manage_entity"},
        ),
        (["--tools", "get_track_api_region"], {"CUSTOMERIO_TOOLSETS": "track"}, {"get_track_api_region"}),
    ],
)
async def test_selection_over_the_network_transports(
    fake: FakeCustomerIO, transport: str, args: list[str], variables: dict[str, str], expected: set[str]
) -> None:
    with http_server(fake, transport, args=args, **variables) as server:
        async with mcp_client(transport, server.url, TOKEN) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            refused = await client.call_tool("delete_customer", {"customer_identifier": "1"})
    assert names == expected
    assert refused.is_error
    assert fake.requests == []


# -- dry run ---------------------------------------------------------------------------------------


@pytest.fixture
def untouchable() -> Any:
    """A fake that fails the test if anything contacts it."""
    with FakeCustomerIO() as fake:
        yield fake
        assert fake.requests == [], "dry run contacted Customer.io"


async def test_dry_run_shows_the_request_and_sends_nothing(untouchable: FakeCustomerIO) -> None:
    settings = Settings(dry_run=True, region="auto")  # no credentials, no explicit URL, no lookup
    urls = {
        "us": Endpoints(untouchable.url, untouchable.pipelines_url, untouchable.app_url),
        "eu": Endpoints("http://eu", "http://eu/v1", "http://eu/app"),
    }
    async with connect(settings, region_urls=urls) as client:
        event = await client.call_tool(
            "send_customer_event", {"customer_identifier": "a/b", "request_body": {"name": "signed_up"}}
        )
        batch = await client.call_tool(
            "send_batch_requests",
            {"enable_strict_mode": False, "request_body": {"batch": [{"type": "track", "userId": "1", "event": "e"}]}},
        )
        segment = await client.call_tool(
            "add_people_to_segment",
            {"segment_identifier": 3, "identifier_type": "email", "request_body": {"ids": ["x@example.com"]}},
        )
        invalid = await client.call_tool("send_customer_event", {"customer_identifier": "1", "request_body": {}})
    shown = event.structured_content
    assert not event.is_error
    assert shown["dry_run"] is True
    assert event.content[0].text.startswith("DRY RUN: nothing was sent to Customer.io.")
    request = shown["request"]
    assert request["method"] == "POST"
    assert request["url"] == untouchable.url + "/api/v1/customers/a%2Fb/events"
    assert request["headers"]["Authorization"] == "Basic [redacted]"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["body"]["name"] == "signed_up"
    assert len(request["body"]["id"]) == 26
    assert request["region"].startswith("us (CUSTOMERIO_REGION=auto")
    pipelines = batch.structured_content["request"]
    assert pipelines["url"] == untouchable.pipelines_url + "/batch"
    assert pipelines["headers"]["X-Strict-Mode"] == "0"
    assert len(pipelines["body"]["batch"][0]["messageId"]) == 26
    assert segment.structured_content["request"]["url"].endswith("/api/v1/segments/3/add_customers?id_type=email")
    assert invalid.is_error  # validated exactly as for real


async def test_dry_run_with_credentials_never_shows_them(untouchable: FakeCustomerIO) -> None:
    settings = settings_for(untouchable, dry_run=True, region="eu", track_url=None, pipelines_url=None)
    async with connect(settings) as client:
        result = await client.call_tool("delete_customer", {"customer_identifier": "1"})
        region = await client.call_tool("get_track_api_region", {})
    text = result.model_dump_json() + region.model_dump_json()
    assert untouchable.api_key not in text
    assert untouchable.expected_track_auth().split()[1] not in text
    assert result.structured_content["request"]["url"] == "https://track-eu.customer.io/api/v1/customers/1"
    assert result.structured_content["request"]["region"] == "eu"
    assert region.structured_content["request"]["url"] == "https://track.customer.io/api/v1/accounts/region"


def test_dry_run_flag_and_environment_over_stdio(untouchable: FakeCustomerIO) -> None:
    messages = [
        INITIALIZE,
        INITIALIZED,
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "delete_customer", "arguments": {"customer_identifier": "7"}},
        },
    ]
    stdin = "".join(json.dumps(m) + "\n" for m in messages)
    env_variants = [([], {"CUSTOMERIO_DRY_RUN": "true"}), (["--dry-run"], {})]
    for args, variables in env_variants:
        env = server_env(None, CUSTOMERIO_TRACK_URL=untouchable.url, **variables)
        proc = subprocess.Popen(
            [command(), *args],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(stdin)
        proc.stdin.flush()
        answers = [json.loads(proc.stdout.readline()) for _ in range(2)]
        proc.stdin.close()
        proc.wait(timeout=30)
        result = answers[1]["result"]
        assert result["isError"] is False
        assert result["structuredContent"]["dry_run"] is True
        assert result["structuredContent"]["request"]["url"] == untouchable.url + "/api/v1/customers/7"


# -- pacing ----------------------------------------------------------------------------------------


async def paced_burst(fake: FakeCustomerIO, rate: float, calls: int = 300) -> tuple[float, list[Any]]:
    results: list[Any] = []
    # Every call at once: pacing alone, not the concurrency limit (test_limits.py), decides here.
    settings = settings_for(fake, rate_limit=rate, mcp_max_concurrent_calls=calls)
    async with connect(settings) as client:
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            for number in range(calls):
                tg.start_soon(
                    lambda n=number: _append(
                        results, client.call_tool("delete_customer", {"customer_identifier": str(n)})
                    )
                )
        return time.monotonic() - started, results


async def _append(results: list[Any], call: Any) -> None:
    results.append(await call)


async def test_pacing_300_calls_at_100_per_second(fake: FakeCustomerIO) -> None:
    # 429 above 270 requests in any 2 s: 100/s is 200; the rest absorbs the burst and the bunching of
    # arrivals when the fake's threads wait for a CPU on this 2-core machine
    fake.rate_limit = (270, 2.0)
    elapsed, results = await paced_burst(fake, rate=100)
    assert not any(result.is_error for result in results)
    assert [r.answered for r in fake.requests].count(429) == 0
    assert len(fake.requests) == 300
    # At most 100/s: 300 calls cannot finish in under 2.5 s. The upper bound only catches a pacer that stalls;
    # it is wide because this machine is shared (measured pacing speed belongs in benchmarks/, not here).
    assert 2.5 <= elapsed <= 10, elapsed


async def test_without_pacing_the_same_burst_meets_429s(fake: FakeCustomerIO) -> None:
    """The control for the test above: the fake really does rate limit at that window."""
    fake.rate_limit = (270, 2.0)
    _, results = await paced_burst(fake, rate=0)
    assert [r.answered for r in fake.requests].count(429) > 0
    assert len(results) == 300


# -- check and tools -------------------------------------------------------------------------------


def run_cli(*args: str, cwd: Path | None = None, **variables: str) -> subprocess.CompletedProcess[str]:
    env = server_env(None, **variables)
    return subprocess.run([command(), *args], env=env, capture_output=True, text=True, timeout=60, cwd=cwd, check=False)


def credentials(fake: FakeCustomerIO) -> dict[str, str]:
    return {
        "CUSTOMERIO_SITE_ID": fake.site_id,
        "CUSTOMERIO_API_KEY": fake.api_key,
        "CUSTOMERIO_PIPELINES_API_KEY": fake.pipelines_key,
        "CUSTOMERIO_TRACK_URL": fake.url,
    }


def test_check_with_good_credentials(fake: FakeCustomerIO, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CUSTOMERIO_TIMEOUT=12\n")
    done = run_cli("check", "--no-destructive", cwd=tmp_path, **credentials(fake))
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "credentials: valid" in out
    assert "region: us" in out
    assert "environment id: 4242" in out
    assert "url: https://track.customer.io" in out
    assert "API key: present" in out
    assert "OK: everything the enabled tools need is in place." in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("CUSTOMERIO_")}
    assert rows["CUSTOMERIO_API_KEY"][1:] == ["set", "environment"]
    assert rows["CUSTOMERIO_TIMEOUT"][1:] == ["12.0", ".env"]
    assert rows["CUSTOMERIO_DISABLE_DESTRUCTIVE"][1:] == ["true", "flag"]
    assert rows["CUSTOMERIO_MCP_AUTH_TOKEN"][1:] == ["not", "set", "default"]
    assert f"Tools served ({24 - len(DESTRUCTIVE_ONLY)} of 24)" in out
    for secret in (fake.api_key, fake.pipelines_key):
        assert secret not in out + done.stderr


def test_check_with_bad_credentials(fake: FakeCustomerIO) -> None:
    done = run_cli("check", **(credentials(fake) | {"CUSTOMERIO_API_KEY": "wrong-key"}))
    assert done.returncode == 1
    assert "credentials: REFUSED" in done.stdout
    problems = [line for line in done.stdout.splitlines() if line.startswith("problem:")]
    assert len(problems) == 1
    assert "CUSTOMERIO_SITE_ID and CUSTOMERIO_API_KEY" in problems[0]
    assert "wrong-key" not in done.stdout + done.stderr


def test_check_with_missing_credentials() -> None:
    done = run_cli("check")
    assert done.returncode == 1
    problems = [line for line in done.stdout.splitlines() if line.startswith("problem:")]
    assert problems == [
        "problem: set CUSTOMERIO_SITE_ID and CUSTOMERIO_API_KEY (Customer.io > Settings > API Credentials > Track "
        "API keys)",
    ]
    assert "  not served: CUSTOMERIO_PIPELINES_API_KEY is not set" in done.stdout


def test_check_pipelines_only_needs_only_the_pipelines_key() -> None:
    done = run_cli("check", "--toolsets", "pipelines", CUSTOMERIO_PIPELINES_API_KEY="k")
    assert done.returncode == 0, done.stdout


def test_check_in_the_eu_region(fake: FakeCustomerIO) -> None:
    fake.region = "eu"
    done = run_cli("check", **credentials(fake))
    assert done.returncode == 0
    assert "region: eu" in done.stdout
    assert "url: https://track-eu.customer.io" in done.stdout
    wrong = run_cli("check", **(credentials(fake) | {"CUSTOMERIO_REGION": "us"}))
    assert wrong.returncode == 1
    assert "CUSTOMERIO_REGION is us but the account is in eu" in wrong.stdout


def test_tools_command_lists_every_tool() -> None:
    done = run_cli("tools", "--no-destructive", CUSTOMERIO_TOOLSETS="track")
    assert done.returncode == 0
    lines = {line.split()[0]: line for line in done.stdout.splitlines()[2:]}
    assert set(lines) == ALL | VERIFY
    assert "POST /api/v1/customers/{identifier}/events" in lines["send_customer_event"]
    assert lines["send_customer_event"].rstrip().endswith("yes")
    assert "no: destructive tools are disabled" in lines["delete_customer"]
    assert "destructive, idempotent" in lines["delete_customer"]
    assert "no: the pipelines toolset is not enabled" in lines["track_user_event"]
    assert "read-only" in lines["get_track_api_region"]
    assert "GET /v1/customers/{customer_id}/attributes" in lines["get_person_attributes"]
    assert "no: the verify toolset is not enabled" in lines["get_person_attributes"]


async def test_rate_limit_comes_from_the_environment(fake: FakeCustomerIO, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOMERIO_RATE_LIMIT", "10")
    settings = Settings(site_id=fake.site_id, api_key=fake.api_key, track_url=fake.url)
    assert settings.rate_limit == 10
    async with connect(settings) as client:
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            for number in range(15):
                tg.start_soon(client.call_tool, "delete_customer", {"customer_identifier": str(number)})
        elapsed = time.monotonic() - started
    assert len(fake.requests) == 15
    assert 1.2 <= elapsed <= 3.0, elapsed


@pytest.mark.parametrize("transport", ["sse", "streamable-http"])
async def test_dry_run_over_the_network_transports(untouchable: FakeCustomerIO, transport: str) -> None:
    with http_server(None, transport, args=["--dry-run"], CUSTOMERIO_TRACK_URL=untouchable.url) as server:
        async with mcp_client(transport, server.url, TOKEN) as client:
            result = await client.call_tool("delete_customer", {"customer_identifier": "a/b"})
    assert not result.is_error, result.content[0].text
    assert result.structured_content["dry_run"] is True
    assert result.structured_content["request"]["url"] == untouchable.url + "/api/v1/customers/a%2Fb"
