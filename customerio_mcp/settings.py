"""Configuration, read once at start.

Precedence, highest first: command-line flags (passed in as keyword arguments), the process
environment, a ``.env`` file in the working directory, then the defaults below. Empty values
count as unset, because an ``mcp.json`` with a placeholder such as ``"CUSTOMERIO_API_KEY": ""``
must behave like one without the entry.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Region = Literal["us", "eu"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CUSTOMERIO_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        validate_default=True,
    )

    site_id: str | None = Field(default=None, description="Track API site ID (Basic-auth user).")
    api_key: SecretStr | None = Field(default=None, description="Track API key.")
    pipelines_api_key: SecretStr | None = Field(
        default=None, description="Data Pipelines API key; falls back to CUSTOMERIO_API_KEY when unset."
    )
    region: Literal["auto", "us", "eu"] = Field(default="auto", description="Account region; auto asks Customer.io.")
    track_url: str | None = Field(default=None, description="Explicit Track API base URL (proxies, tests).")
    pipelines_url: str | None = Field(default=None, description="Explicit Pipelines API base URL, ending in /v1.")
    timeout: float = Field(default=10.0, gt=0, le=300, description="Seconds allowed for one HTTP attempt.")
    max_retries: int = Field(default=3, ge=0, le=10, description="Retries after the first attempt.")
    retry_deadline: float = Field(default=60.0, gt=0, le=900, description="Seconds allowed for all attempts together.")
    pipelines_strict: bool = Field(default=True, description="Send X-Strict-Mode: 1 unless a call says otherwise.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="Log level (logs go to stderr)."
    )

    @field_validator("log_level", "region", mode="before")
    @classmethod
    def _normalise_case(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return value.upper() if value.lower() in {"debug", "info", "warning", "error", "critical"} else value.lower()

    @field_validator("track_url", "pipelines_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("site_id")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @property
    def effective_pipelines_key(self) -> SecretStr | None:
        """The Pipelines key, or the Track key as the seed integration falls back to."""
        return self.pipelines_api_key or self.api_key

    @property
    def pipelines_key_is_fallback(self) -> bool:
        return self.pipelines_api_key is None and self.api_key is not None
