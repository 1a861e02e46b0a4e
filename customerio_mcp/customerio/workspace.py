"""Whose Customer.io workspace a call writes to: its keys, its region, and a stable name for both.

A ``Workspace`` comes from the server's environment (``CUSTOMERIO_CREDENTIALS_FROM=environment``,
one per process) or from the headers of one HTTP request (``request``, one per client). The
client reads credentials and region only from it, so that two workspaces served by one process
never see each other's keys. Per-workspace state elsewhere (region answers, pacing budgets) is
keyed by ``fingerprint``: a hash, never the key itself, so that no cache, log line or Redis key
holds a secret.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from pydantic import SecretStr

from customerio_mcp.customerio.api import Api
from customerio_mcp.settings import Settings
from customerio_mcp.text_safety import clip

RegionChoice = Literal["auto", "us", "eu"]
FINGERPRINT_CONTEXT = b"customerio-mcp workspace v1"
"""Separates these hashes from any other use of the same keys."""


@dataclass(frozen=True)
class CredentialNames:
    """What a person sets to supply each credential, as said in errors."""

    site_id: str
    api_key: str
    pipelines_api_key: str
    app_api_key: str
    region: str
    where: str
    """Where to set them, completing 'set X ...'."""
    then: str
    """What to do after setting them, completing 'set X ... (source)'."""
    assign: str
    """How a value is written after a name: ``CUSTOMERIO_REGION=eu``, ``X-Customerio-Region: eu``."""

    def region_is(self, value: str) -> str:
        return f"{self.region}{self.assign}{value}"


ENVIRONMENT_NAMES = CredentialNames(
    site_id="CUSTOMERIO_SITE_ID",
    api_key="CUSTOMERIO_API_KEY",
    pipelines_api_key="CUSTOMERIO_PIPELINES_API_KEY",
    app_api_key="CUSTOMERIO_APP_API_KEY",
    region="CUSTOMERIO_REGION",
    where="in the server's environment",
    then=" and restart the server",
    assign="=",
)
HEADER_NAMES = CredentialNames(
    site_id="X-Customerio-Site-Id",
    api_key="X-Customerio-Api-Key",
    pipelines_api_key="X-Customerio-Pipelines-Api-Key",
    app_api_key="X-Customerio-App-Api-Key",
    region="X-Customerio-Region",
    where="as headers of this client's HTTP requests",
    then="",
    assign=": ",
)


def names_for(credentials_from: str) -> CredentialNames:
    return HEADER_NAMES if credentials_from == "request" else ENVIRONMENT_NAMES


def _digest(*parts: str | None) -> str:
    hasher = hashlib.sha256(FINGERPRINT_CONTEXT)
    for part in parts:
        encoded = (part or "").encode()
        hasher.update(len(encoded).to_bytes(4, "big") + encoded)  # unambiguous: no two tuples hash alike
    return hasher.hexdigest()[:32]


@dataclass(frozen=True)
class Workspace:
    """One workspace's credentials and region. Its repr shows no key."""

    site_id: str | None = None
    api_key: SecretStr | None = field(default=None, repr=False)
    pipelines_api_key: SecretStr | None = field(default=None, repr=False)
    region: RegionChoice = "auto"
    names: CredentialNames = ENVIRONMENT_NAMES
    app_api_key: SecretStr | None = field(default=None, repr=False)
    """The App API bearer key of the verify toolset's reads."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Workspace:
        """The workspace of ``CUSTOMERIO_CREDENTIALS_FROM=environment``: the process's own keys."""
        return cls(
            settings.site_id,
            settings.api_key,
            settings.pipelines_api_key,
            settings.region,
            app_api_key=settings.app_api_key,
        )

    def missing_track_credentials(self) -> list[str]:
        """The names still to set for the Track API, in the order a person would set them."""
        return [
            name
            for name, value in ((self.names.site_id, self.site_id), (self.names.api_key, self.api_key))
            if not value
        ]

    def described_for(self, api: Api) -> str:
        """Which workspace a call to ``api`` writes to, in words a person recognises: never a key.

        A Track call names the site ID. A Pipelines or App API key is the only thing that names its
        workspace, so such a call names where that key is set.
        """
        if api == "track":
            return f"the Customer.io workspace with site ID {clip(self.site_id, 60)}" if self.site_id else "Customer.io"
        key = self.names.pipelines_api_key if api == "pipelines" else self.names.app_api_key
        return f"the Customer.io workspace of the {'Data Pipelines' if api == 'pipelines' else 'App API'} key in {key}"

    @cached_property
    def fingerprint(self) -> str:
        """A stable hash of everything that tells this workspace apart: the key of its cached client."""
        return _digest(
            self.site_id,
            _secret(self.api_key),
            _secret(self.pipelines_api_key),
            self.region,
            _secret(self.app_api_key),
        )

    def budget_key(self, api: Api) -> str:
        """A stable hash of the credentials ``api`` is called with: the key of that API's pacing budget.

        Two clients with the same keys share one budget, whatever else they send (a region header).
        """
        if api == "track":
            return _digest("track", self.site_id, _secret(self.api_key))
        if api == "app":
            return _digest("app", _secret(self.app_api_key))
        return _digest("pipelines", _secret(self.pipelines_api_key))

    def applied_to(self, settings: Settings) -> Settings:
        """The operator's settings with this workspace's keys and region in place of the environment's.

        What the client hands to code that reads settings (error mapping), so that its words are
        about this workspace and never the process's own keys.
        """
        if self == Workspace.from_settings(settings):
            return settings
        return settings.model_copy(
            update={
                "site_id": self.site_id,
                "api_key": self.api_key,
                "pipelines_api_key": self.pipelines_api_key,
                "app_api_key": self.app_api_key,
                "region": self.region,
            }
        )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
