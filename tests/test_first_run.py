"""The way in: what the server says when it starts, where settings come from, and what dry run admits."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from customerio_mcp.cli.setting_sources import SettingSources
from customerio_mcp.cli.startup_report import base_url_warnings
from customerio_mcp.settings import Settings
from customerio_mcp.tools.table import TOOLS
from tests.conftest import connect, settings_for
from tests.documents import ROOT, readme_run_command
from tests.fake_customerio import FakeCustomerIO
from tests.processes import INITIALIZE, INITIALIZED, TOKEN, command, http_server, server_env

TOOLS_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


def stdio_session(
    args: list[str],
    cwd: Path,
    *,
    program: str | None = None,
    then: tuple[dict[str, Any], ...] = (),
    timeout: float = 60,
    **variables: str,
) -> tuple[list[dict[str, Any]], str]:
    """Start the server over stdio (the installed command, or ``program``), initialize, list tools, send
    ``then``, close stdin; the answers and stderr."""
    stdin = "".join(json.dumps(m) + "\n" for m in (INITIALIZE, INITIALIZED, TOOLS_LIST, *then))
    done = subprocess.run(
        [program or command(), *args],
        input=stdin,
        env=server_env(None, CUSTOMERIO_LOG_LEVEL="INFO", **variables),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def info_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " INFO customerio_mcp: customerio-mcp " in line]


# -- the server says who it is -----------------------------------------------------------------------


def test_stdio_start_says_what_is_served_in_one_line(tmp_path: Path) -> None:
    answers, stderr = stdio_session(
        ["--dry-run", "--toolsets", "pipelines"], tmp_path, CUSTOMERIO_SITE_ID="site-42", CUSTOMERIO_API_KEY="k-99"
    )
    assert len(answers[1]["result"]["tools"]) == 7
    (line,) = info_lines(stderr)
    assert "customerio-mcp 0.1.0 serving stdio: 7 of 24 tools;" in line
    assert "dry run ON (nothing is sent to Customer.io)" in line
    assert "credentials set: CUSTOMERIO_SITE_ID, CUSTOMERIO_API_KEY; not set: CUSTOMERIO_PIPELINES_API_KEY;" in line
    assert "region auto (asks Customer.io once)" in line
    assert f"env file {tmp_path.resolve() / '.env'} (not found)" in line
    assert "site-42" not in stderr
    assert "k-99" not in stderr
    assert "WARNING" not in stderr


def test_http_start_names_the_url_and_the_token_by_name_only(fake: FakeCustomerIO) -> None:
    with http_server(fake, "streamable-http", CUSTOMERIO_REGION="eu", CUSTOMERIO_LOG_LEVEL="INFO") as server:
        port = server.url.rsplit(":", 1)[1]
        _, stderr = server.stop()
    (line,) = info_lines(stderr)
    assert f"serving streamable-http on http://127.0.0.1:{port}/mcp: 24 of 24 tools; dry run off;" in line
    assert "CUSTOMERIO_MCP_AUTH_TOKEN" in line.split("not set:")[0]
    assert "region eu; explicit CUSTOMERIO_TRACK_URL and CUSTOMERIO_PIPELINES_URL" in line
    for secret in (TOKEN, fake.api_key, fake.pipelines_key):
        assert secret not in stderr


# -- the README's first command --------------------------------------------------------------------------


def test_the_readme_command_serves_a_dry_run_from_a_checkout(tmp_path: Path) -> None:
    """The README's run command, word for word, in the checkout: uv builds the package and it answers a client.

    A cache of its own, so uv resolves and builds from scratch as on a new machine (from PyPI).
    """
    uvx, *args = shlex.split(readme_run_command())
    assert uvx == "uvx"
    found = shutil.which("uvx", path=str(Path(sys.executable).parent)) or shutil.which("uvx")
    assert found, "uv is a test dependency: pip install -e '.[test]'"
    cache = str(tmp_path / "uv-cache")
    call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call"}
    call["params"] = {"name": "delete_customer", "arguments": {"customer_identifier": "7"}}
    answered, stderr = stdio_session(args, ROOT, program=found, then=(call,), timeout=600, UV_CACHE_DIR=cache)
    answers = {answer["id"]: answer["result"] for answer in answered}
    assert answers[1]["serverInfo"]["name"] == "customerio-mcp"
    assert len(answers[2]["tools"]) == len(TOOLS)
    assert "DELETE https://track.customer.io/api/v1/customers/7" in answers[3]["content"][0]["text"]
    (line,) = info_lines(stderr)
    assert "dry run ON (nothing is sent to Customer.io)" in line

    # The same build documents the settings a remote deployment needs.
    env = server_env(None, UV_CACHE_DIR=cache)
    helped = subprocess.run(
        [found, *args, "--help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert helped.returncode == 0, helped.stderr
    assert "CUSTOMERIO_MCP_AUTH_TOKEN" in helped.stdout


# -- where settings come from -------------------------------------------------------------------------


def served_tools(done: subprocess.CompletedProcess[str]) -> set[str]:
    return {line.split()[0] for line in done.stdout.splitlines()[2:] if line.rstrip().endswith("yes")}


def run_cli(args: list[str], cwd: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [command(), *args],
        env=server_env(None, **variables),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_env_file_comes_from_the_flag_the_variable_or_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CUSTOMERIO_TOOLSETS=track\n")
    elsewhere = tmp_path / "conf" / "cio.env"
    elsewhere.parent.mkdir()
    elsewhere.write_text("CUSTOMERIO_TOOLSETS=pipelines\nCUSTOMERIO_TOOLS=track_user_event,delete_customer\n")
    pipelines_only = {"track_user_event"}
    track_only = {tool.name for tool in TOOLS if tool.api == "track"}

    assert served_tools(run_cli(["tools"], tmp_path)) == track_only
    assert served_tools(run_cli(["tools", "--env-file", "conf/cio.env"], tmp_path)) == pipelines_only
    assert served_tools(run_cli(["tools"], tmp_path, CUSTOMERIO_ENV_FILE=str(elsewhere))) == pipelines_only
    # The environment still wins over the file, and a flag over both.
    assert served_tools(run_cli(["tools", "--env-file", str(elsewhere)], tmp_path, CUSTOMERIO_TOOLS="")) == (
        pipelines_only
    )
    flag_wins = run_cli(["tools", "--env-file", str(elsewhere), "--toolsets", "track"], tmp_path)
    assert served_tools(flag_wins) == {"delete_customer"}

    check = run_cli(["check", "--env-file", str(elsewhere)], tmp_path)
    assert check.stdout.startswith(f"Env file: {elsewhere} (read)")
    rows = {line.split()[0]: line.split() for line in check.stdout.splitlines() if line.startswith("CUSTOMERIO_")}
    assert rows["CUSTOMERIO_TOOLSETS"][1:] == ["pipelines", str(elsewhere)]


@pytest.mark.parametrize(
    ("args", "variables", "said"),
    [
        (["--env-file", "missing.env"], {}, "--env-file missing.env: no such file (relative to the working directory"),
        ([], {"CUSTOMERIO_ENV_FILE": "/nowhere/cio.env"}, "CUSTOMERIO_ENV_FILE=/nowhere/cio.env: no such file\n"),
    ],
)
def test_a_named_env_file_that_is_missing_stops_the_server(
    tmp_path: Path, args: list[str], variables: dict[str, str], said: str
) -> None:
    done = run_cli(args, tmp_path, **variables)
    assert done.returncode == 2
    assert done.stderr.startswith(f"customerio-mcp: {said}")
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("args", "variables", "env_file", "said"),
    [
        (["--toolsets", "trak"], {}, "", "invalid --toolsets trak: Input should be 'track' or 'pipelines', got 'trak'"),
        ([], {"CUSTOMERIO_TOOLSETS": "track,crm"}, "", "invalid CUSTOMERIO_TOOLSETS=track,crm (from the environment)"),
        ([], {}, "CUSTOMERIO_TIMEOUT=soon\n", "invalid CUSTOMERIO_TIMEOUT=soon (from .env): Input should be a valid"),
        (["--port", "0"], {}, "", "invalid --port 0: Input should be greater than or equal to 1"),
        (["--tools", "nope"], {}, "", "invalid --tools nope: unknown tool(s) nope; valid tools:"),
        ([], {}, "CUSTOMERIO_TOOLS=nope\n", "invalid CUSTOMERIO_TOOLS=nope (from .env): unknown tool(s) nope"),
    ],
)
def test_errors_name_what_the_person_typed(
    tmp_path: Path, args: list[str], variables: dict[str, str], env_file: str, said: str
) -> None:
    if env_file:
        (tmp_path / ".env").write_text(env_file)
    done = run_cli(args, tmp_path, **variables)
    assert done.returncode == 2
    assert said in done.stderr
    assert "_0" not in done.stderr
    assert "Traceback" not in done.stderr


def test_piped_into_a_reader_that_stops_early_ends_quietly(tmp_path: Path) -> None:
    for args in (["tools"], ["check"]):
        proc = subprocess.Popen(
            [command(), *args],
            env=server_env(None),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        proc.stdout.close()  # like `| head` that has read all it wants before anything was written
        _, stderr = proc.communicate(timeout=60)
        assert "BrokenPipe" not in stderr
        assert "Traceback" not in stderr
        assert proc.returncode == 0


# -- base URLs that are not Customer.io ----------------------------------------------------------------


def test_a_foreign_base_url_from_env_file_is_named_at_start_and_in_check(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CUSTOMERIO_TRACK_URL=http://collector.example:8080\n")
    _, stderr = stdio_session([], tmp_path, CUSTOMERIO_PIPELINES_URL="https://cdp-eu.customer.io/v1")
    warnings = [line for line in stderr.splitlines() if " WARNING " in line]
    assert len(warnings) == 1
    assert (
        "CUSTOMERIO_TRACK_URL=http://collector.example:8080 (from .env) is not a Customer.io host: every Track API "
        "call, with its key, goes to collector.example:8080." in warnings[0]
    )
    check = run_cli(["check", "--toolsets", "pipelines"], tmp_path, CUSTOMERIO_PIPELINES_API_KEY="k")
    assert "warning: CUSTOMERIO_TRACK_URL=http://collector.example:8080 (from .env) is not a Customer.io host" in (
        check.stdout
    )


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("https://track.customer.io", None),
        ("https://track-eu.customer.io", None),
        ("https://customer.io", None),
        ("http://track.customer.io", "uses http://, so the Track API key would cross the network unencrypted"),
        ("https://track.customer.io.attacker.example", "goes to track.customer.io.attacker.example"),
        ("https://notcustomer.io", "goes to notcustomer.io"),
        # user@host URLs are refused at start (tests/test_delivery.py), so they never reach this warning.
        ("http://127.0.0.1:9000", "goes to 127.0.0.1:9000"),
    ],
)
def test_which_base_urls_are_warned_about(url: str, warned: str | None) -> None:
    settings = Settings(track_url=url)
    sources = SettingSources(Path(".env"), {}, {}, {"CUSTOMERIO_TRACK_URL": url}, {})
    warnings = base_url_warnings(settings, sources)
    if warned is None:
        assert warnings == []
    else:
        (warning,) = warnings
        assert warning.startswith(f"CUSTOMERIO_TRACK_URL={url} (from the environment) ")
        assert warned in warning


# -- dry run ---------------------------------------------------------------------------------------


async def test_dry_run_says_which_credentials_a_real_call_would_need() -> None:
    async with connect(Settings(dry_run=True)) as client:
        delete = await client.call_tool("delete_customer", {"customer_identifier": "7"})
        identify = await client.call_tool("identify_person_and_assign_traits", {"request_body": {"userId": "7"}})
    lines = delete.content[0].text.splitlines()
    assert lines[1:] == [
        "DELETE https://track.customer.io/api/v1/customers/7",
        "A real call would still need CUSTOMERIO_SITE_ID and CUSTOMERIO_API_KEY in the server's environment.",
    ]
    assert "null" not in delete.content[0].text
    assert delete.structured_content["missing_credentials"] == ["CUSTOMERIO_SITE_ID", "CUSTOMERIO_API_KEY"]
    identify_lines = identify.content[0].text.splitlines()
    assert json.loads(identify_lines[2])["userId"] == "7"
    assert identify_lines[3] == (
        "A real call would still need CUSTOMERIO_PIPELINES_API_KEY in the server's environment."
    )
    assert identify.structured_content["missing_credentials"] == ["CUSTOMERIO_PIPELINES_API_KEY"]


async def test_dry_run_with_every_credential_needs_nothing_more(fake: FakeCustomerIO) -> None:
    async with connect(settings_for(fake, dry_run=True)) as client:
        result = await client.call_tool("delete_customer", {"customer_identifier": "7"})
    assert result.structured_content["missing_credentials"] == []
    assert len(result.content[0].text.splitlines()) == 2
    assert fake.requests == []


# -- messages --------------------------------------------------------------------------------------

DOUBLE_PERIOD = re.compile(r"(?<!\.)\.\.(?!\.)")
"""Two periods in a row that are not part of an ellipsis."""


async def test_no_message_ends_a_sentence_twice(fake: FakeCustomerIO) -> None:
    fake.next_response["/api/v1/events"] = (400, {"meta": {"error": "name is required."}})
    fake.next_response["/api/v1/metrics"] = (404, "Not found.")
    calls: list[tuple[str, dict[str, Any]]] = [("track_anonymous_event", {"request_body": {"name": "x"}})]
    calls.append(("report_custom_metrics", {"request_body": {"delivery_id": "d", "metric": "opened"}}))
    for tool in TOOLS:
        calls += [(tool.name, {}), (tool.name, {"request_body": "{"}), (tool.name, {"mode": "x", "unknown": 1})]
    texts = []
    for settings in (settings_for(fake), Settings(), Settings(dry_run=True)):
        async with connect(settings) as client:
            for name, arguments in calls:
                texts.append((await client.call_tool(name, arguments)).content[0].text)
    assert any("name is required" in text for text in texts)
    assert any("Not found" in text for text in texts)
    assert [text for text in texts if DOUBLE_PERIOD.search(text)] == []
