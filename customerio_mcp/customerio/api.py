"""What a request to Customer.io is: the three APIs, their base URLs per region, a prepared request, an answer.

Track and Data Pipelines take the writes; the App API (``api.customer.io``) answers the reads of the
opt-in ``verify`` toolset.

Plain data with no behaviour, so that the client, the error mapping and the tools layer can all
speak of requests without importing one another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Api = Literal["track", "pipelines", "app"]
APIS: tuple[Api, ...] = ("track", "pipelines", "app")
Region = Literal["us", "eu"]


@dataclass(frozen=True)
class Endpoints:
    track: str
    pipelines: str
    app: str

    def for_api(self, api: Api) -> str:
        return getattr(self, api)


REGION_URLS: Mapping[Region, Endpoints] = {
    "us": Endpoints("https://track.customer.io", "https://cdp.customer.io/v1", "https://api.customer.io"),
    "eu": Endpoints("https://track-eu.customer.io", "https://cdp-eu.customer.io/v1", "https://api-eu.customer.io"),
}
REGION_LOOKUP_PATH = "/api/v1/accounts/region"


@dataclass(frozen=True)
class ApiRequest:
    api: Api
    method: str
    path: str
    """Already percent-encoded, relative to the API's base URL."""
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    replay_safe: bool = False
    content: bytes | None = None
    """The body's exact bytes, when the caller encoded them already (every attempt sends these)."""


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any
    attempts: int
    region: str
    url: str
