"""One rule for the Data Pipelines key, said the same way everywhere.

Without ``CUSTOMERIO_PIPELINES_API_KEY`` the seven Pipelines tools are not served (the Track key is
never sent in its place), except in dry run and with ``CUSTOMERIO_CREDENTIALS_FROM=request``.
``check``, ``tools``, the start line, the bundle and a call of a hidden tool all agree.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from customerio_mcp.customerio.client import CustomerIOClient
from customerio_mcp.customerio.http_client import open_http_client
from customerio_mcp.customerio.workspace import HEADER_NAMES, Workspace
from customerio_mcp.errors import ConfigurationError
from customerio_mcp.settings import Settings
from customerio_mcp.tools.runner import ToolRunner
from customerio_mcp.tools.selection import NO_PIPELINES_KEY
from customerio_mcp.tools.table import TOOLS
from tests.conftest import connect, settings_for
from tests.fake_customerio import FakeCustomerIO
from tests.processes import command, server_env
from tests.test_distribution import BUILD_MCPB

PIPELINES = {tool.name for tool in TOOLS if tool.api == "pipelines"}
TRACK = {tool.name for tool in TOOLS if tool.api == "track"}
WRITING = len(TRACK | PIPELINES)
"""What a start line or check counts against without an App API key: the 24 writing tools."""
IDENTIFY = ("identify_person_and_assign_traits", {"request_body": {"userId": "7"}})


def run_cli(*args: str, cwd: Path | None = None, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [command(), *args], env=server_env(None, **variables), capture_output=True, text=True, timeout=90, cwd=cwd,
        check=False,
    )  # fmt: skip


def track_credentials(fake: FakeCustomerIO, **extra: str) -> dict[str, str]:
    return {"CUSTOMERIO_SITE_ID": fake.site_id, "CUSTOMERIO_API_KEY": fake.api_key, "CUSTOMERIO_TRACK_URL": fake.url,
            **extra}  # fmt: skip


def problems(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.removeprefix("problem: ") for line in done.stdout.splitlines() if line.startswith("problem: ")]


# -- served or not ------------------------------------------------------------------------------------


async def test_without_a_key_the_pipelines_tools_are_not_served_and_a_call_says_why(fake: FakeCustomerIO) -> None:
    async with connect(settings_for(fake, pipelines_api_key=None)) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
        result = await client.call_tool(*IDENTIFY)
    assert listed == TRACK
    assert result.is_error
    assert result.structured_content["error"]["type"] == "unknown_tool"
    assert f"a tool not enabled on this server: {NO_PIPELINES_KEY}" in result.content[0].text
    assert fake.requests == []  # the Track key went nowhere


@pytest.mark.parametrize(
    ("settings", "served"),
    [
        (Settings(pipelines_api_key="k"), True),
        (Settings(), False),
        (Settings(api_key="track-key", site_id="s"), False),
        (Settings(dry_run=True), True),
        (Settings(mcp_transport="streamable-http", credentials_from="request"), True),
    ],
)
async def test_the_rule(settings: Settings, served: bool) -> None:
    async with connect(settings) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
    assert listed & PIPELINES == (PIPELINES if served else set())
    assert listed >= TRACK


async def test_a_request_without_the_pipelines_header_is_told_to_send_it() -> None:
    """In request mode the Track key in X-Customerio-Api-Key is never used for Pipelines either."""
    settings = Settings(mcp_transport="streamable-http", credentials_from="request")
    workspace = Workspace("site", Settings(api_key="track-key").api_key, names=HEADER_NAMES)
    async with open_http_client(settings) as http:
        client = CustomerIOClient(settings, http, workspace=workspace)
        runner = ToolRunner(client, settings)
        result = await runner.call(*IDENTIFY)
        with pytest.raises(ConfigurationError):
            client.authorization("pipelines")
    assert result.is_error
    assert "The Data Pipelines API key is not configured: set X-Customerio-Pipelines-Api-Key as headers" in (
        result.content[0].text
    )


def test_the_pipelines_budget_is_keyed_by_the_pipelines_key_alone() -> None:
    track_key = Settings(api_key="track-key").api_key
    pipelines_key = Settings(pipelines_api_key="track-key").pipelines_api_key
    assert Workspace("s", track_key).budget_key("pipelines") == Workspace().budget_key("pipelines")
    assert Workspace("s", track_key, pipelines_key).budget_key("pipelines") != Workspace().budget_key("pipelines")


# -- every place that says so -------------------------------------------------------------------------


def test_check_says_not_served_and_is_ok(fake: FakeCustomerIO) -> None:
    done = run_cli("check", **track_credentials(fake))
    assert done.returncode == 0, done.stdout
    assert "\nPipelines API\n  not served: CUSTOMERIO_PIPELINES_API_KEY is not set (Data Pipelines > " in done.stdout
    assert f"Tools served ({len(TRACK)} of {WRITING})" in done.stdout
    assert problems(done) == []
    assert [line for line in done.stdout.splitlines() if line.startswith("warning:") and "PIPELINES" in line] == []


@pytest.mark.parametrize(
    ("args", "variables", "asked"),
    [
        (["--toolsets", "pipelines"], {}, "--toolsets pipelines"),
        ([], {"CUSTOMERIO_TOOLSETS": "track,pipelines"}, "CUSTOMERIO_TOOLSETS=track,pipelines (from the environment)"),
        ([], {"CUSTOMERIO_TOOLS": "track_user_event"}, "CUSTOMERIO_TOOLS=track_user_event (from the environment)"),
    ],
)
def test_check_is_a_problem_when_pipelines_tools_were_asked_for(
    fake: FakeCustomerIO, args: list[str], variables: dict[str, str], asked: str
) -> None:
    done = run_cli("check", *args, **track_credentials(fake, **variables))
    assert done.returncode == 1
    assert problems(done) == [
        f"{asked} asks for Pipelines tools, but they are not served without a key: set CUSTOMERIO_PIPELINES_API_KEY "
        "(Data Pipelines > your HTTP API source > API key)"
    ]


def test_check_refuses_the_track_key_as_pipelines_key(fake: FakeCustomerIO) -> None:
    done = run_cli("check", **track_credentials(fake, CUSTOMERIO_PIPELINES_API_KEY=fake.api_key))
    assert done.returncode == 1
    assert problems(done) == [
        "CUSTOMERIO_PIPELINES_API_KEY is the Track API key (it equals CUSTOMERIO_API_KEY): Customer.io issues a "
        "separate key for Data Pipelines (Data Pipelines > your HTTP API source > API key)"
    ]
    assert fake.api_key not in done.stdout + done.stderr


def test_tools_command_and_start_line_say_the_same(tmp_path: Path) -> None:
    listing = run_cli("tools", cwd=tmp_path)
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()[2:]}
    for name in PIPELINES:
        assert rows[name].endswith(f"no: {NO_PIPELINES_KEY}")
    started = subprocess.run(
        [command()], input="", env=server_env(None, CUSTOMERIO_LOG_LEVEL="INFO"), cwd=tmp_path, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    assert f"serving stdio: {len(TRACK)} of {WRITING} tools; Pipelines tools need CUSTOMERIO_PIPELINES_API_KEY;" in (
        started.stderr
    )
    with_key = subprocess.run(
        [command()], input="", env=server_env(None, CUSTOMERIO_LOG_LEVEL="INFO", CUSTOMERIO_PIPELINES_API_KEY="k"),
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert f"serving stdio: {WRITING} of {WRITING} tools; dry run off;" in with_key.stderr


def test_the_bundle_says_what_an_empty_key_means() -> None:
    described = BUILD_MCPB.USER_CONFIG["pipelines_api_key"]["description"]
    assert "Without it the Data Pipelines tools are not served" in described
    assert "Leave empty to use only the Track API" not in described
