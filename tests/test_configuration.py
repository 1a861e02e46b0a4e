"""Configuration: precedence, missing credentials, and secrecy (the Pipelines key: tests/test_pipelines_key.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from customerio_mcp.cli.main import configure_logging
from customerio_mcp.settings import Settings
from tests.conftest import connect, settings_for
from tests.documents import section
from tests.fake_customerio import FakeCustomerIO


def test_environment_beats_dotenv_and_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CUSTOMERIO_SITE_ID=from-dotenv\nCUSTOMERIO_TIMEOUT=7\nCUSTOMERIO_REGION=EU\n")
    monkeypatch.setenv("CUSTOMERIO_SITE_ID", "from-env")
    settings = Settings()
    assert settings.site_id == "from-env"
    assert settings.timeout == 7
    assert settings.region == "eu"
    assert settings.max_retries == 3
    assert Settings(site_id="from-flag").site_id == "from-flag"


ROOT = Path(__file__).resolve().parent.parent


def test_env_example_and_the_docs_name_every_setting() -> None:
    """A new setting that .env.example or the table of docs/configuration.md forgets is a setting nobody finds."""
    env_example = (ROOT / ".env.example").read_text()
    table = section(ROOT / "docs" / "configuration.md", "every-setting")
    for name in Settings.model_fields:
        variable = f"CUSTOMERIO_{name.upper()}"
        assert f"{variable}=" in env_example, f"{variable} missing from .env.example"
        assert f"| `{variable}` |" in table, f"{variable} missing from the settings table of docs/configuration.md"


def test_empty_values_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOMERIO_API_KEY", "")
    monkeypatch.setenv("CUSTOMERIO_SITE_ID", "")
    monkeypatch.setenv("CUSTOMERIO_REGION", "")
    settings = Settings()
    assert settings.api_key is None
    assert settings.site_id is None
    assert settings.region == "auto"


def test_invalid_url_is_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        Settings(track_url="track.customer.io")


@pytest.mark.parametrize(
    ("tool", "arguments", "variables"),
    [
        ("delete_customer", {"customer_identifier": "1"}, "set CUSTOMERIO_SITE_ID and CUSTOMERIO_API_KEY"),
        ("get_track_api_region", {}, "set CUSTOMERIO_SITE_ID and CUSTOMERIO_API_KEY"),
    ],
)
async def test_missing_credentials_still_list_tools_and_name_the_variable(
    fake: FakeCustomerIO, monkeypatch: pytest.MonkeyPatch, tool: str, arguments: dict, variables: str
) -> None:
    for name in ("CUSTOMERIO_SITE_ID", "CUSTOMERIO_API_KEY", "CUSTOMERIO_PIPELINES_API_KEY"):
        monkeypatch.setenv(name, "")  # as an mcp.json placeholder leaves them
    settings = Settings(track_url=fake.url, pipelines_url=fake.pipelines_url)
    async with connect(settings) as client:
        assert len((await client.list_tools()).tools) == 17  # the Pipelines tools need their key
        result = await client.call_tool(tool, arguments)
    assert result.is_error
    assert variables in result.content[0].text
    assert result.structured_content["error"]["type"] == "configuration"
    assert fake.requests == []


async def test_only_site_id_missing_is_named(fake: FakeCustomerIO) -> None:
    settings = Settings(api_key="k", track_url=fake.url)
    async with connect(settings) as client:
        result = await client.call_tool("delete_customer", {"customer_identifier": "1"})
    assert "set CUSTOMERIO_SITE_ID in" in result.content[0].text


async def test_no_secret_in_logs_or_results_at_debug(
    fake: FakeCustomerIO, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("DEBUG")
    logging.getLogger().addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    fake.fail(1, status=503)
    secrets = [fake.api_key, fake.pipelines_key]
    encoded = [fake.expected_track_auth().split()[1], fake.expected_pipelines_auth().split()[1]]
    async with connect(settings_for(fake)) as client:
        results = [
            await client.call_tool("send_customer_event", {"customer_identifier": "1", "request_body": {"name": "e"}}),
            await client.call_tool("track_user_event", {"request_body": {"userId": "1", "event": "e"}}),
            await client.call_tool("delete_customer", {"customer_identifier": ""}),
        ]
        fake.fail(1, status=401, body={"meta": {"error": "Unauthorized request"}})
        results.append(await client.call_tool("delete_customer", {"customer_identifier": "1"}))
    captured = capsys.readouterr()
    everything = caplog.text + captured.err + captured.out + "".join(r.model_dump_json() for r in results)
    assert "attempt 1" in caplog.text  # DEBUG logging was on
    for secret in secrets + encoded:
        assert secret not in everything
    assert repr(settings_for(fake)).count("**********") == 2
    logging.getLogger().handlers.clear()


@pytest.mark.parametrize(
    ("given", "scopes"),
    [
        ("customerio:use", ["customerio:use"]),
        (" a, b  c ,", ["a", "b", "c"]),
        ("a\u00a0customerio:destructive", ["a\u00a0customerio:destructive"]),  # RFC 6749 §3.3: U+0020 only
        ("a\tb", ["a\tb"]),
    ],
)
def test_required_scopes_are_separated_by_commas_and_u0020_only(given: str, scopes: list[str]) -> None:
    assert Settings(mcp_oauth_scopes=given).mcp_oauth_scopes == scopes
