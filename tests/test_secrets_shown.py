"""No secret is printed: a URL setting never shows its user name or password, and no configured key is echoed.

Before, ``CUSTOMERIO_TRACK_URL=http://user:PASSWORD@host`` was refused at start by a line that
printed the password, and a key pasted as a URL (``ftp://<key>``) was printed back whole. The real
command runs for ``serve`` and ``check``; the dry-run preview goes through the SDK's client.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import connect, settings_for
from tests.fake_customerio import FakeCustomerIO
from tests.processes import command, server_env

API_KEY = "track-key-5ecret-0a1b2c3d"
PIPELINES_KEY = "cdp-key-5ecret-9f8e7d6c"


def _run(subcommand: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = server_env(
        None,
        CUSTOMERIO_SITE_ID="site-1",
        CUSTOMERIO_API_KEY=API_KEY,
        CUSTOMERIO_PIPELINES_API_KEY=PIPELINES_KEY,
        CUSTOMERIO_DRY_RUN="true",
        CUSTOMERIO_LOG_LEVEL="INFO",
        **env,
    )
    return subprocess.run(
        [command(), subcommand], env=environment, input="", capture_output=True, text=True, timeout=60, check=False
    )


# variable, value, the secret it holds
REFUSED = [
    ("CUSTOMERIO_TRACK_URL", "http://user:PASSWORD-4711@host", "PASSWORD-4711"),
    ("CUSTOMERIO_TRACK_URL", "http://user:pa/ss-4711@host", "ss-4711"),  # a "/" in the password
    ("CUSTOMERIO_PIPELINES_URL", "ftp://sk_live_secret_4711@x", "sk_live_secret_4711"),
    ("CUSTOMERIO_TRACK_URL", f"ftp://{API_KEY}", API_KEY),  # a key pasted into the wrong variable
    ("CUSTOMERIO_TRACK_URL", PIPELINES_KEY, PIPELINES_KEY),
    ("CUSTOMERIO_MCP_OAUTH_ISSUER", "https://admin:hunter2-4711@idp.example/", "hunter2-4711"),
    ("CUSTOMERIO_MCP_PUBLIC_URL", "https://u:pw-4711-pw@mcp.example/mcp", "pw-4711-pw"),
]


@pytest.mark.parametrize("subcommand", ["serve", "check"])
@pytest.mark.parametrize(("variable", "value", "secret"), REFUSED, ids=[value for _, value, _ in REFUSED])
def test_a_refused_url_setting_is_shown_without_its_secret(
    subcommand: str, variable: str, value: str, secret: str
) -> None:
    done = _run(subcommand, **{variable: value})
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"invalid {variable}=" in done.stderr, done.stderr
    assert secret not in done.stdout + done.stderr, done.stderr


def test_a_url_holding_a_key_is_shown_redacted_in_check_and_at_start() -> None:
    """A valid base URL that happens to hold a configured key: `check`'s table, its warnings, the start line."""
    url = f"https://proxy.example/{API_KEY}"
    checked = _run("check", CUSTOMERIO_TRACK_URL=url)
    served = _run("serve", CUSTOMERIO_TRACK_URL=url)  # stdio, stdin closed at once
    assert "CUSTOMERIO_TRACK_URL" in checked.stdout
    assert "https://proxy.example/[redacted]" in checked.stdout
    assert "is not a Customer.io host" in served.stderr, served.stderr
    assert "https://proxy.example/[redacted]" in served.stderr, served.stderr
    for output in (checked.stdout, checked.stderr, served.stdout, served.stderr):
        assert API_KEY not in output


async def test_the_dry_run_preview_shows_no_key_in_its_url(fake: FakeCustomerIO) -> None:
    settings = settings_for(fake, track_url=f"{fake.url}/{fake.api_key}", dry_run=True)
    async with connect(settings) as client:
        result = await client.call_tool("delete_customer", {"customer_identifier": "7"})
    assert fake.api_key not in str(result.structured_content) + result.content[0].text
    assert "[redacted]" in result.structured_content["request"]["url"]
