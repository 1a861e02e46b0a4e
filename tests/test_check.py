"""``customerio-mcp check`` tells the truth: its verdicts, serve's rules, and the Pipelines settings."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
from pathlib import Path

import httpx2
import pytest

from customerio_mcp.cli.connection_diagnosis import diagnose
from customerio_mcp.errors import TransportError
from customerio_mcp.settings import Settings
from tests.fake_customerio import FakeCustomerIO
from tests.processes import TOKEN, Running, command, free_port, server_env, wait_healthy


def run_check(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [command(), "check", *args],
        env=server_env(None, **variables),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def credentials(fake: FakeCustomerIO, **extra: str) -> dict[str, str]:
    return {
        "CUSTOMERIO_SITE_ID": fake.site_id,
        "CUSTOMERIO_API_KEY": fake.api_key,
        "CUSTOMERIO_PIPELINES_API_KEY": fake.pipelines_key,
        "CUSTOMERIO_TRACK_URL": fake.url,
        **extra,
    }


def problems(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.removeprefix("problem: ") for line in done.stdout.splitlines() if line.startswith("problem: ")]


def assert_no_retry_noise(done: subprocess.CompletedProcess[str]) -> None:
    assert "WARNING" not in done.stderr
    assert re.search(r"attempt \d", done.stderr + done.stdout) is None


# -- verdicts on Customer.io ------------------------------------------------------------------------


def test_refused_credentials(fake: FakeCustomerIO) -> None:
    done = run_check(**credentials(fake, CUSTOMERIO_API_KEY="wrong-key"))
    assert done.returncode == 1
    assert f"credentials: REFUSED ({fake.url})" in done.stdout
    (problem,) = problems(done)
    assert problem.startswith(f"refused: 127.0.0.1:{fake.url.rsplit(':', 1)[1]} answered 401 to the Track credentials")
    assert "wrong-key" not in done.stdout + done.stderr
    assert_no_retry_noise(done)


def test_unreachable_names_the_host_and_port() -> None:
    port = free_port()  # nothing listens there
    done = run_check("--toolsets", "track", CUSTOMERIO_SITE_ID="s", CUSTOMERIO_API_KEY="k",
                     CUSTOMERIO_TRACK_URL=f"http://127.0.0.1:{port}")  # fmt: skip
    assert done.returncode == 1
    assert "credentials: UNREACHABLE" in done.stdout
    assert problems(done) == [f"unreachable: 127.0.0.1:{port} refused the connection; check the URL's host and port"]
    assert_no_retry_noise(done)


def test_unreachable_over_tls_says_the_handshake_failed(fake: FakeCustomerIO) -> None:
    tls_url = fake.url.replace("http://", "https://")  # the fake speaks plain HTTP
    done = run_check("--toolsets", "track", **credentials(fake, CUSTOMERIO_TRACK_URL=tls_url))
    assert done.returncode == 1
    (problem,) = problems(done)
    assert problem.startswith(f"unreachable: the TLS handshake with {tls_url.removeprefix('https://')} failed (")
    assert_no_retry_noise(done)


def test_timeout_makes_one_attempt_and_says_how_long_it_waited(fake: FakeCustomerIO) -> None:
    fake.fail(times=5, delay=2.0)
    done = run_check("--toolsets", "track", **credentials(fake, CUSTOMERIO_TIMEOUT="0.5"))
    assert done.returncode == 1
    assert "credentials: TIMEOUT" in done.stdout
    (problem,) = problems(done)
    assert problem.startswith(f"timeout: {fake.url.removeprefix('http://')} did not answer within 0.5 s")
    assert len(fake.requests) <= 1  # no retries
    assert_no_retry_noise(done)


def test_wrong_region(fake: FakeCustomerIO) -> None:
    fake.region = "eu"
    done = run_check(**credentials(fake, CUSTOMERIO_REGION="us"))
    assert done.returncode == 1
    assert "region setting: WRONG REGION" in done.stdout
    assert problems(done) == [
        "wrong region: CUSTOMERIO_REGION is us but the account is in eu: set CUSTOMERIO_REGION=eu or auto"
    ]


def chained(*exceptions: BaseException) -> TransportError:
    """A TransportError raised from the last exception, raised from the one before, and so on."""
    cause: BaseException | None = None
    for exception in exceptions:
        exception.__cause__ = cause
        cause = exception
    error = TransportError("The server could not connect to Customer.io.")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("causes", "label", "words"),
    [
        ([socket.gaierror(-2, "Name or service not known"), httpx2.ConnectError("x")], "unreachable",
         "the name track.customer.io could not be resolved (DNS)"),
        ([ssl.SSLCertVerificationError(1, "certificate verify failed"), httpx2.ConnectError("x")], "unreachable",
         "the TLS handshake with track.customer.io failed"),
        ([ConnectionRefusedError(111, "refused"), httpx2.ConnectError("x")], "unreachable",
         "track.customer.io refused the connection"),
        ([httpx2.ReadTimeout("x")], "timeout", "track.customer.io did not answer within 10 s"),
        ([httpx2.RemoteProtocolError("x")], "unreachable", "could not talk to track.customer.io (RemoteProtocolError)"),
    ],
)  # fmt: skip
def test_network_failures_are_sorted_by_cause(causes: list[BaseException], label: str, words: str) -> None:
    verdict = diagnose(chained(*causes), "https://track.customer.io", Settings())
    assert verdict.label == label
    assert words in verdict.problem


# -- every rule serve applies ----------------------------------------------------------------------


def serves(args: list[str], variables: dict[str, str]) -> bool:
    """Whether ``customerio-mcp <args>`` starts serving (answers /healthz) with these variables."""
    port = free_port()
    env = server_env(None, CUSTOMERIO_MCP_PORT=str(port), **variables)
    proc = subprocess.Popen([command(), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    running = Running(proc, f"http://127.0.0.1:{port}")
    try:
        wait_healthy(running.url, proc)
    except AssertionError:
        return False
    finally:
        running.stop()
    return True


@pytest.mark.parametrize(
    ("args", "variables", "ok"),
    [
        (["--transport", "sse", "--host", "0.0.0.0"], {}, False),
        (["--transport", "streamable-http", "--host", "0.0.0.0"], {"CUSTOMERIO_MCP_AUTH_TOKEN": TOKEN}, True),
        (["--transport", "sse", "--host", "0.0.0.0", "--allow-unauthenticated"], {}, True),
        (["--transport", "streamable-http"], {}, True),
    ],
)
def test_check_passes_exactly_when_serve_starts(
    fake: FakeCustomerIO, args: list[str], variables: dict[str, str], ok: bool
) -> None:
    environment = credentials(fake, CUSTOMERIO_PIPELINES_URL=fake.pipelines_url, **variables)
    done = run_check(*args, **environment)
    assert (done.returncode == 0) is ok, done.stdout
    assert serves(args, environment) is ok
    if not ok:
        assert "refusing to serve sse on 0.0.0.0 without a token" in problems(done)[0]


# -- the Pipelines settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "flagged"),
    [
        ("https://cdp.customer.io", True),
        ("https://cdp-eu.customer.io/v1", False),
        ("https://cdp.customer.io/v1/", False),
    ],
)
def test_pipelines_url_without_v1(url: str, flagged: bool) -> None:
    done = run_check("--toolsets", "pipelines", CUSTOMERIO_PIPELINES_API_KEY="k", CUSTOMERIO_PIPELINES_URL=url)
    assert (done.returncode == 1) is flagged
    if flagged:
        assert problems(done) == [
            "CUSTOMERIO_PIPELINES_URL https://cdp.customer.io does not end in /v1: calls would go to "
            "https://cdp.customer.io/identify; use the base URL with /v1, e.g. https://cdp.customer.io/v1"
        ]


def test_check_reads_the_same_env_file_serve_reads(tmp_path: Path, fake: FakeCustomerIO) -> None:
    env_file = tmp_path / "workspace.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in credentials(fake).items()))
    done = run_check("--env-file", str(env_file))
    assert done.returncode == 0, done.stdout
    assert "credentials: valid" in done.stdout
