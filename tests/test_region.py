"""Region detection: one shared lookup, its answer used for both APIs, explicit URLs and regions."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

from customerio_mcp.customerio.client import Endpoints
from customerio_mcp.settings import Settings
from tests.conftest import connect
from tests.fake_customerio import FakeCustomerIO

EVENT = ("send_customer_event", {"customer_identifier": "42", "request_body": {"name": "e"}})
IDENTIFY = ("identify_person_and_assign_traits", {"request_body": {"userId": "42"}})


@pytest.fixture
def regions() -> Iterator[tuple[FakeCustomerIO, FakeCustomerIO]]:
    """Two fakes standing in for the US and EU hosts; the US one answers the region lookup."""
    with FakeCustomerIO() as us, FakeCustomerIO() as eu:
        yield us, eu


def region_settings(fake: FakeCustomerIO, **values: object) -> Settings:
    return Settings(site_id=fake.site_id, api_key=fake.api_key, pipelines_api_key=fake.pipelines_key, **values)


def urls(us: FakeCustomerIO, eu: FakeCustomerIO) -> dict[str, Endpoints]:
    return {
        "us": Endpoints(us.url, us.pipelines_url, us.app_url),
        "eu": Endpoints(eu.url, eu.pipelines_url, eu.app_url),
    }


def lookups(fake: FakeCustomerIO) -> int:
    return sum(r.raw_path == "/api/v1/accounts/region" for r in fake.requests)


@pytest.mark.parametrize("account_region", ["us", "eu"])
async def test_detected_region_serves_both_apis(regions: tuple[FakeCustomerIO, FakeCustomerIO], account_region: str):
    us, eu = regions
    us.region = account_region
    async with connect(region_settings(us), region_urls=urls(us, eu)) as client:
        track = await client.call_tool(*EVENT)
        pipelines = await client.call_tool(*IDENTIFY)
        again = await client.call_tool(*EVENT)
    target = us if account_region == "us" else eu
    assert [r.structured_content["region"] for r in (track, pipelines, again)] == [account_region] * 3
    assert lookups(us) == 1
    assert [r.raw_path for r in target.requests if r.raw_path != "/api/v1/accounts/region"] == [
        "/api/v1/customers/42/events",
        "/v1/identify",
        "/api/v1/customers/42/events",
    ]


async def test_concurrent_first_calls_share_one_lookup(regions: tuple[FakeCustomerIO, FakeCustomerIO]) -> None:
    us, eu = regions
    us.region = "eu"
    us.fail(1, delay=0.3, status=None, route="/api/v1/accounts/region")
    async with connect(region_settings(us), region_urls=urls(us, eu)) as client, anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(client.call_tool, *EVENT)
    assert lookups(us) == 1
    assert len(eu.requests) == 8


async def test_failed_lookup_is_not_cached(regions: tuple[FakeCustomerIO, FakeCustomerIO]) -> None:
    us, eu = regions
    us.fail(1, status=401, route="/api/v1/accounts/region", body={"meta": {"error": "Unauthorized request"}})
    async with connect(region_settings(us), region_urls=urls(us, eu)) as client:
        first = await client.call_tool(*EVENT)
        second = await client.call_tool(*EVENT)
    assert first.is_error
    assert "(401) for the region lookup at the Track API." in first.content[0].text
    assert first.content[0].text.endswith(
        "The Track API call POST /api/v1/customers/42/events was not sent; to skip the region lookup, set "
        "CUSTOMERIO_REGION=us or eu."
    )
    assert not second.is_error
    assert lookups(us) == 2


async def test_explicit_url_wins_without_a_lookup(regions: tuple[FakeCustomerIO, FakeCustomerIO]) -> None:
    us, eu = regions
    custom = region_settings(us, track_url=eu.url, pipelines_url=eu.pipelines_url, region="auto")
    async with connect(custom, region_urls=urls(us, eu)) as client:
        result = await client.call_tool(*EVENT)
    assert result.structured_content["region"] == "custom"
    assert us.requests == []
    assert [r.raw_path for r in eu.requests] == ["/api/v1/customers/42/events"]


@pytest.mark.parametrize("region", ["us", "eu"])
async def test_fixed_region_skips_the_lookup(regions: tuple[FakeCustomerIO, FakeCustomerIO], region: str) -> None:
    us, eu = regions
    async with connect(region_settings(us, region=region), region_urls=urls(us, eu)) as client:
        await client.call_tool(*EVENT)
        await client.call_tool(*IDENTIFY)
    target, other = (us, eu) if region == "us" else (eu, us)
    assert other.requests == []
    assert [r.raw_path for r in target.requests] == ["/api/v1/customers/42/events", "/v1/identify"]


async def test_pipelines_only_setup_uses_us_without_lookup(regions: tuple[FakeCustomerIO, FakeCustomerIO]) -> None:
    us, eu = regions
    settings = Settings(pipelines_api_key=us.pipelines_key)
    async with connect(settings, region_urls=urls(us, eu)) as client:
        result = await client.call_tool(*IDENTIFY)
    assert not result.is_error
    assert [r.raw_path for r in us.requests] == ["/v1/identify"]
