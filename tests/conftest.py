"""Shared fixtures: a clean environment, a running fake Customer.io, and an MCP client factory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp import Client

from customerio_mcp.customerio.delivery import RetryPolicy
from customerio_mcp.serving.mcp_server import create_server
from customerio_mcp.settings import Settings
from tests.fake_customerio import FakeCustomerIO

FAST_RETRY = RetryPolicy(max_retries=3, deadline=10.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)


@pytest.fixture(autouse=True, scope="session")
def audit_state_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Servers started by the tests (in process or not) keep their audit trail out of the developer's home."""
    previous = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))
    yield
    if previous is None:
        del os.environ["XDG_STATE_HOME"]
    else:
        os.environ["XDG_STATE_HOME"] = previous


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """A developer's own CUSTOMERIO_* variables or .env file must never change a result."""
    for name in list(os.environ):
        if name.startswith("CUSTOMERIO_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def fake() -> Iterator[FakeCustomerIO]:
    with FakeCustomerIO() as server:
        yield server


def settings_for(fake: FakeCustomerIO, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "site_id": fake.site_id,
        "api_key": fake.api_key,
        "pipelines_api_key": fake.pipelines_key,
        "track_url": fake.url,
        "pipelines_url": fake.pipelines_url,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def connect(settings: Settings, **server_options: Any) -> AsyncIterator[Client]:
    """An SDK client connected in-process to a freshly built server (its lifespan included)."""
    server_options.setdefault("retry", FAST_RETRY)
    async with Client(create_server(settings, **server_options)) as client:
        yield client


async def call(fake: FakeCustomerIO, tool: str, arguments: dict[str, Any], **settings: Any) -> Any:
    async with connect(settings_for(fake, **settings)) as client:
        return await client.call_tool(tool, arguments)
