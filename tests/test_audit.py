"""The audit trail: one record per call that may have reached Customer.io, written without ever failing a call.

Real servers write it (a stdio subprocess driven by the SDK's client, two HTTP replicas sharing a
real Redis stream, in-process servers), real failures break it (``/dev/full``, a Redis that is
not there yet), and ``customerio-mcp audit`` reads it back.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.context import ClientRequestContext

from customerio_mcp.cli.main import main
from customerio_mcp.serving.mcp_server import create_server
from tests.conftest import FAST_RETRY, connect, settings_for
from tests.fake_customerio import FakeCustomerIO
from tests.processes import INITIALIZE, INITIALIZED, command, free_port, http_server, server_env
from tests.redis_server import RedisProcess, redis_server
from tests.test_http_transports import mcp_client

AUDIT_LOGGER = "customerio_mcp.serving.audit"
EVENT = {"customer_identifier": "7", "request_body": {"name": "signed_up"}}


def read_audit(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def audit_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([command(), "audit", *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def audit_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == AUDIT_LOGGER and r.levelno == logging.WARNING]


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == AUDIT_LOGGER]


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait (10 s at most) until ``condition`` holds: the audit is written behind the calls, by a task of its own."""
    with anyio.fail_after(10):
        while not condition():  # noqa: ASYNC110 (what is awaited is a log line, which has no event to wait on)
            await anyio.sleep(0.05)


class Person:
    """Answers each confirmation question with the next of ``answers``."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)

    async def __call__(self, context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        action = self.answers.pop(0)
        return types.ElicitResult(action=action, content={"confirm": True} if action == "accept" else None)


# -- what is recorded ---------------------------------------------------------------------------------------


async def test_a_stdio_server_records_each_call_that_may_have_reached_customerio(
    fake: FakeCustomerIO, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    env = server_env(fake, XDG_STATE_HOME=str(state), CUSTOMERIO_MAX_RETRIES="0")
    async with Client(
        StdioServerParameters(command=command(), env=env), elicitation_callback=Person("accept", "decline")
    ) as client:
        ok = await client.call_tool("send_customer_event", EVENT)
        fake.fail(status=500)
        failed = await client.call_tool("send_customer_event", {**EVENT, "customer_identifier": "8"})
        invalid = await client.call_tool("send_customer_event", {**EVENT, "customer_identifier": ""})
        region = await client.call_tool("get_track_api_region", {})
        deleted = await client.call_tool("delete_customer", {"customer_identifier": "9"})
        declined = await client.call_tool("delete_customer", {"customer_identifier": "10"})
    assert [ok.is_error, failed.is_error, invalid.is_error, region.is_error, deleted.is_error, declined.is_error] == [
        False,
        True,
        True,
        False,
        False,
        True,
    ]
    path = state / "customerio-mcp" / "audit.jsonl"  # the default: the user's state directory
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    sent = fake.requests_by_path()
    common = {"workspace": fake.site_id, "principal": "stdio", "api": "track"}
    assert [{k: v for k, v in r.items() if k != "time"} for r in read_audit(path)] == [
        {
            **common,
            "tool": "send_customer_event",
            "method": "POST",
            "path": "/api/v1/customers/7/events",
            "sent_ids": {"id": sent["/api/v1/customers/7/events"].body["id"]},
            "outcome": "applied",
            "status": 200,
            "error": None,
            "confirmation": "not destructive",
        },
        {
            **common,
            "tool": "send_customer_event",
            "method": "POST",
            "path": "/api/v1/customers/8/events",
            "sent_ids": {"id": sent["/api/v1/customers/8/events"].body["id"]},
            "outcome": "may have applied",
            "status": 500,
            "error": "server_error",
            "confirmation": "not destructive",
        },
        {
            **common,
            "tool": "delete_customer",
            "method": "DELETE",
            "path": "/api/v1/customers/9",
            "sent_ids": {},
            "outcome": "applied",
            "status": 200,
            "error": None,
            "confirmation": "accepted",
        },
    ]
    text = path.read_text(encoding="utf-8")
    assert fake.api_key not in text
    assert fake.pipelines_key not in text
    listed = audit_command(env, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line) for line in listed.stdout.splitlines()] == read_audit(path)
    only_deletes = audit_command(env, "--json", "--tool", "delete_customer")
    assert [json.loads(line)["path"] for line in only_deletes.stdout.splitlines()] == ["/api/v1/customers/9"]


@pytest.mark.parametrize("era", ["legacy", "2026-07-28"])
async def test_how_a_destructive_call_was_confirmed_is_recorded(fake: FakeCustomerIO, tmp_path: Path, era: str) -> None:
    path = tmp_path / "audit.jsonl"
    settings = settings_for(fake, audit=f"file:{path}")
    delete = ("delete_customer", {"customer_identifier": "1"})
    async with Client(
        create_server(settings, retry=FAST_RETRY), mode=era, elicitation_callback=Person("accept")
    ) as asked:
        assert not (await asked.call_tool(*delete)).is_error
    async with Client(create_server(settings, retry=FAST_RETRY), mode=era) as cannot_ask:  # no elicitation
        assert not (await cannot_ask.call_tool(*delete)).is_error
    async with Client(create_server(settings_for(fake, audit=f"file:{path}", confirm_destructive="off"))) as off:
        assert not (await off.call_tool(*delete)).is_error
    assert [record["confirmation"] for record in read_audit(path)] == ["accepted", "not asked", "off"]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"status": 400, "body": {"meta": {"error": "bad"}}}, ("not applied", 400, "bad_request")),
        (
            {"status": 207, "body": {"errors": [{"batch_index": 0, "reason": "x"}]}},
            ("partly applied", 207, "partial_failure"),
        ),
        ({"drop": True, "times": 4}, ("may have applied", None, "lost")),  # every attempt: FAST_RETRY makes 4
        (None, ("not applied", None, "refused")),  # nothing listens where it is sent
    ],
)
async def test_the_outcome_says_whether_customerio_applied_it(
    fake: FakeCustomerIO, tmp_path: Path, fault: dict[str, Any] | None, expected: tuple[Any, ...]
) -> None:
    path = tmp_path / "audit.jsonl"
    settings = settings_for(fake, audit=f"file:{path}")
    if fault is None:
        settings = settings_for(fake, audit=f"file:{path}", track_url=f"http://127.0.0.1:{free_port()}")
    else:
        fake.fail(**fault)
    batch = {"batch": [{"type": "person", "action": "identify", "identifiers": {"id": "1"}}]}
    async with connect(settings) as client:
        result = await client.call_tool("batch_process_requests", {"request_body": batch})
    assert result.is_error
    [record] = read_audit(path)
    assert (record["outcome"], record["status"], record["error"]) == expected


async def test_bodies_are_recorded_only_when_asked_and_never_a_key(fake: FakeCustomerIO, tmp_path: Path) -> None:
    person = {"email": "ada@example.com", "pasted_by_mistake": fake.api_key}
    call = ("update_or_add_person", {"person_identifier": "ada", "request_body": person})
    without, with_bodies = tmp_path / "ids-only.jsonl", tmp_path / "bodies.jsonl"
    async with connect(settings_for(fake, audit=f"file:{without}")) as client:
        assert not (await client.call_tool(*call)).is_error
    async with connect(settings_for(fake, audit=f"file:{with_bodies}", audit_bodies=True)) as client:
        assert not (await client.call_tool(*call)).is_error
    [plain] = read_audit(without)
    assert "body" not in plain
    assert "ada@example.com" not in without.read_text(encoding="utf-8")
    [full] = read_audit(with_bodies)
    assert full["body"] == {"email": "ada@example.com", "pasted_by_mistake": "[redacted]"}
    for text in (without.read_text(encoding="utf-8"), with_bodies.read_text(encoding="utf-8")):
        assert fake.api_key not in text
        assert "authorization" not in text.lower()
        assert "Basic " not in text


def test_a_call_stopped_at_shutdown_is_recorded_as_may_have_applied(fake: FakeCustomerIO, tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    fake.fail(delay=6.0, status=200)
    env = server_env(fake, CUSTOMERIO_MCP_DRAIN_SECONDS="0.5", CUSTOMERIO_AUDIT=f"file:{path}")
    proc = subprocess.Popen([command()], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdin is not None
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "send_customer_event", "arguments": EVENT},
    }
    proc.stdin.write("".join(json.dumps(m) + "\n" for m in (INITIALIZE, INITIALIZED, call)).encode())
    proc.stdin.flush()
    fake.first_request.wait(30)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    [record] = read_audit(path)
    assert (record["outcome"], record["status"], record["error"]) == ("may have applied", None, "interrupted")
    assert record["sent_ids"] == {"id": fake.only_request().body["id"]}


# -- never a failed call ----------------------------------------------------------------------------------


async def test_a_full_disk_loses_records_not_calls_with_one_warning(
    fake: FakeCustomerIO, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    async with connect(settings_for(fake, audit="file:/dev/full")) as client:  # every write: ENOSPC
        for number in range(5):
            result = await client.call_tool("send_customer_event", {**EVENT, "customer_identifier": str(number)})
            assert not result.is_error, result.content[0].text
            await anyio.sleep(0.05)  # separate batches: each of them fails
    assert len(fake.requests) == 5
    [warning] = audit_warnings(caplog)
    assert "file /dev/full cannot be written (No space left on device)" in warning
    assert "calls go on" in warning
    assert audit_lines(caplog)[-1] == "audit: 5 record(s) of this run could not be written to file /dev/full"


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisProcess]:
    with redis_server(tmp_path) as running:
        yield running


async def test_redis_away_loses_records_not_calls_and_says_when_it_is_back(
    fake: FakeCustomerIO, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    port = free_port()
    settings = settings_for(fake, audit="redis", redis_url=f"redis://127.0.0.1:{port}/0")
    async with connect(settings) as client:
        assert not (await client.call_tool("send_customer_event", {**EVENT, "customer_identifier": "lost"})).is_error
        await eventually(lambda: bool(audit_warnings(caplog)))  # its record could not be written: no Redis yet
        with redis_server(tmp_path, port):
            assert not (
                await client.call_tool("send_customer_event", {**EVENT, "customer_identifier": "kept"})
            ).is_error
            await eventually(lambda: any("writing to" in line for line in audit_lines(caplog)))
            listed = audit_command(
                server_env(None, CUSTOMERIO_AUDIT="redis", CUSTOMERIO_REDIS_URL=settings.redis_url.get_secret_value()),
                "--json",
            )
    [warning] = audit_warnings(caplog)
    where = f"Redis stream customerio-mcp:audit at redis://127.0.0.1:{port}/0"
    assert f"{where} cannot be written (ConnectionError)" in warning
    [back] = [line for line in audit_lines(caplog) if "writing to" in line]
    assert back.endswith("again; 1 record(s) were lost meanwhile (1 this run)")
    assert [json.loads(line)["path"] for line in listed.stdout.splitlines()] == ["/api/v1/customers/kept/events"]


async def test_two_replicas_write_one_redis_stream_that_audit_reads(fake: FakeCustomerIO, redis: RedisProcess) -> None:
    shared = {"CUSTOMERIO_AUDIT": "redis", "CUSTOMERIO_REDIS_URL": redis.url}
    with (
        http_server(fake, "streamable-http", **shared) as first,
        http_server(fake, "streamable-http", CUSTOMERIO_MCP_AUTH_TOKEN="", **shared) as second,
    ):
        for server, person in ((first, "on-first"), (second, "on-second")):
            async with mcp_client("streamable-http", server.url) as client:
                assert not (
                    await client.call_tool("send_customer_event", {**EVENT, "customer_identifier": person})
                ).is_error
    env = server_env(None, **shared)
    listed = audit_command(env, "--json")
    assert listed.returncode == 0, listed.stderr
    records = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted((r["path"], r["principal"]) for r in records) == [
        ("/api/v1/customers/on-first/events", "static token"),
        ("/api/v1/customers/on-second/events", "unauthenticated"),
    ]
    table = audit_command(env, "--workspace", fake.site_id)
    assert table.stdout.count("send_customer_event") == 2
    assert audit_command(env, "--workspace", "another-site").stdout == ""


# -- the audit command --------------------------------------------------------------------------------------


def _record(when: str, tool: str = "send_customer_event", workspace: str = "site-1", **extra: Any) -> dict[str, Any]:
    return {
        "time": when,
        "workspace": workspace,
        "principal": "stdio",
        "tool": tool,
        "api": "track",
        "method": "POST",
        "path": "/api/v1/customers/7/events",
        "sent_ids": {"id": "01J0000000000000000000000A"},
        "outcome": "applied",
        "status": 200,
        "error": None,
        "confirmation": "not destructive",
        **extra,
    }


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """``main`` configures the root logger for a process; put back pytest's after each test that ran it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def trail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    now = time.time()

    def stamp(seconds_ago: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now - seconds_ago))

    path = tmp_path / "audit.jsonl"
    lines = [
        json.dumps(_record("2020-01-01T00:00:00.000Z", workspace="site-old")),
        '{"time": "2026-0',  # a write torn by a full disk
        "",
        json.dumps(_record(stamp(120), tool="delete_customer", method="DELETE", confirmation="accepted")),
        json.dumps(_record(stamp(60), principal="evil\x1b[2J\nforged line", path="/api/v1/customers/\u202eevil")),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("CUSTOMERIO_AUDIT", f"file:{path}")
    return path


def run_audit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["audit", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_audit_filters_and_prints_json_lines(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_audit(capsys, "--json")
    assert code == 0
    assert f"1 line(s) of file {trail} are not audit records; skipped" in err
    assert len(out.splitlines()) == 3
    assert all(line.isascii() for line in out.splitlines())
    assert [json.loads(line)["workspace"] for line in run_audit(capsys, "--json", "--since", "1h")[1].splitlines()] == [
        "site-1",
        "site-1",
    ]
    assert len(run_audit(capsys, "--json", "--since", "2021-06-01")[1].splitlines()) == 2
    assert len(run_audit(capsys, "--json", "--since", "2019-12-31T23:00:00+00:00")[1].splitlines()) == 3
    assert [
        json.loads(line)["tool"] for line in run_audit(capsys, "--json", "--tool", "delete_customer")[1].splitlines()
    ] == ["delete_customer"]
    assert [
        json.loads(line)["workspace"] for line in run_audit(capsys, "--json", "--workspace", "site-old")[1].splitlines()
    ] == ["site-old"]
    [last] = run_audit(capsys, "--json", "--limit", "1")[1].splitlines()
    assert json.loads(last)["principal"] == "evil\x1b[2J\nforged line"


def test_audit_table_neutralises_what_clients_chose(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_audit(capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "time",
        "(UTC)",
        "workspace",
        "principal",
        "tool",
        "request",
        "outcome",
        "confirmation",
        "sent",
        "ids",
    ]
    assert len(lines) == 2 + 3  # headings, rule, three records: no forged line
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert "evil\\x1b[2J\\nforged line" in lines[-1]
    assert "\\u202eevil" in lines[-1]
    assert "DELETE /api/v1/customers/7/events" in lines[3]
    assert "accepted" in lines[3]
    assert "2020-01-01 00:00:00" in lines[2]
    assert "applied 200" in lines[2]


def test_audit_options_belong_to_the_audit_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--tool", "delete_customer"])
    assert stopped.value.code == 2
    assert "--tool is an option of `customerio-mcp audit`, not of serve (to serve only some tools: --tools)" in (
        capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        main(["audit", "--since", "yesterday"])
    assert "neither a duration (30m, 1h, 7d, 2w) nor a date or time" in capsys.readouterr().err


def test_audit_says_when_there_is_nothing_to_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CUSTOMERIO_AUDIT", "off")
    assert run_audit(capsys)[0] == 1
    monkeypatch.setenv("CUSTOMERIO_AUDIT", f"file:{tmp_path}/none-yet.jsonl")
    code, out, err = run_audit(capsys)
    assert (code, out) == (0, "")
    assert "no audit records match" in err
    monkeypatch.setenv("CUSTOMERIO_AUDIT", "redis")
    monkeypatch.setenv("CUSTOMERIO_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    code, _, err = run_audit(capsys)
    assert code == 1
    assert "cannot read the audit trail (Redis stream customerio-mcp:audit at redis://127.0.0.1:" in err


# -- settings and check -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("/var/log/cio.jsonl", "for a file, write file:/var/log/cio.jsonl"),
        ("file:relative.jsonl", "file: must be followed by an absolute path"),
        ("syslog", "must be file, file:/absolute/path.jsonl, redis or off"),
        ("redis", "redis needs CUSTOMERIO_REDIS_URL"),
    ],
)
def test_an_audit_setting_that_cannot_work_stops_the_start(value: str, said: str) -> None:
    done = subprocess.run(
        [command(), "check"],
        env=server_env(None, CUSTOMERIO_AUDIT=value),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert f"customerio-mcp: invalid CUSTOMERIO_AUDIT={value}" in done.stderr
    assert said in done.stderr


@pytest.mark.parametrize(
    ("variables", "said", "warned"),
    [
        ({}, "  file {state}/customerio-mcp/audit.jsonl: writable", False),
        ({"CUSTOMERIO_AUDIT_BODIES": "true"}, "audit.jsonl (with request bodies): writable", False),
        ({"CUSTOMERIO_AUDIT": "off"}, "  off: no call is recorded", False),
        (
            {"CUSTOMERIO_AUDIT": "file:{state}/missing/audit.jsonl"},
            "NOT WRITABLE (its directory {state}/missing does not exist)",
            True,
        ),
        (
            {"CUSTOMERIO_AUDIT": "redis", "CUSTOMERIO_REDIS_URL": "redis://127.0.0.1:{port}/0"},
            "  Redis stream customerio-mcp:audit at redis://127.0.0.1:{port}/0: NOT WRITABLE (",
            True,
        ),
    ],
)
def test_check_says_where_the_audit_goes_and_whether_it_can_be_written(
    fake: FakeCustomerIO, tmp_path: Path, variables: dict[str, str], said: str, warned: bool
) -> None:
    names = {"state": str(tmp_path), "port": str(free_port())}
    env = server_env(
        None,
        XDG_STATE_HOME=str(tmp_path),
        CUSTOMERIO_TOOLSETS="pipelines",
        CUSTOMERIO_PIPELINES_API_KEY=fake.pipelines_key,
        **{name: value.format(**names) for name, value in variables.items()},
    )
    done = subprocess.run([command(), "check"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr  # an audit that cannot be written fails no call
    assert "Audit trail (CUSTOMERIO_AUDIT)" in done.stdout
    assert said.format(**names) in done.stdout
    assert ("warning: the audit trail cannot be written" in done.stdout) is warned
    assert not os.path.exists(tmp_path / "customerio-mcp")  # check writes nothing
