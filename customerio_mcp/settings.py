"""Configuration, read once at start.

Precedence, highest first: command-line flags (passed in as keyword arguments), the process
environment, an env file (``.env`` in the working directory unless ``--env-file`` or
``CUSTOMERIO_ENV_FILE`` names another; the CLI passes it as ``_env_file``), then the defaults below. Empty values
count as unset, because an ``mcp.json`` with a placeholder such as ``"CUSTOMERIO_API_KEY": ""``
must behave like one without the entry.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Transport = Literal["stdio", "sse", "streamable-http"]
Toolset = Literal["track", "pipelines", "verify"]
VERIFY_TOOLSET = "verify"
"""The App API reads: served when an App API key can be had, opt-in otherwise (see ``tools/selection.py``)."""
AUDIT_CHOICES = ("file", "redis", "off")


RANDOM_STRING_COMMAND = "customerio-mcp token"
"""How to make a secret (a token, a state key) that cannot be guessed: said wherever one is too short.

The server's own command, because it is installed wherever this text is read; ``python`` is not
(Debian and macOS have only ``python3``)."""
URL_SETTINGS = frozenset(
    {
        "track_url",
        "pipelines_url",
        "mcp_oauth_issuer",
        "mcp_public_url",
        "mcp_oauth_introspection_url",
        "redis_url",
        "app_url",
    }
)
"""Settings holding a URL: shown everywhere through ``text_safety.shown_url``, never with a user name or password."""
NO_USERINFO = (
    "must not contain a user name or password (user:password@host): it would be shown in logs, `check` and dry-run "
    "previews"
)


def _has_userinfo(url: str) -> bool:
    """Whether ``url`` holds an ``@`` before its query: a user name or password, however the password is spelled."""
    rest = url.split("://", 1)[-1]
    return "@" in rest.split("?", 1)[0].split("#", 1)[0]


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
        default=None, description="Data Pipelines API key; without it the Pipelines tools are not served."
    )
    region: Literal["auto", "us", "eu"] = Field(
        default="auto", description="Account region: auto (ask Customer.io once), us or eu."
    )
    track_url: str | None = Field(
        default=None, description="Explicit Track API base URL, e.g. http://127.0.0.1:8080 (proxies, tests)."
    )
    pipelines_url: str | None = Field(default=None, description="Explicit Pipelines API base URL, ending in /v1.")
    app_api_key: SecretStr | None = Field(
        default=None,
        description="App API key (a bearer token; a read-only service-account token works): serves the verify "
        "toolset, which reads people, segments, activities and objects back.",
    )
    app_url: str | None = Field(
        default=None, description="Explicit App API base URL, e.g. http://127.0.0.1:8080 (proxies, tests)."
    )
    timeout: float = Field(default=10.0, gt=0, le=300, description="Seconds allowed for one HTTP attempt.")
    max_retries: int = Field(default=3, ge=0, le=10, description="Retries after the first attempt.")
    retry_deadline: float = Field(default=60.0, gt=0, le=900, description="Seconds allowed for all attempts together.")
    max_connections: int = Field(
        default=100, ge=1, le=10_000, description="Connections to Customer.io this process keeps open at most."
    )
    pipelines_strict: bool = Field(default=True, description="Send X-Strict-Mode: 1 unless a call says otherwise.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="DEBUG, INFO, WARNING or ERROR; logs go to stderr only."
    )

    # -- serving over the network ----------------------------------------------------------------
    mcp_transport: Transport = Field(default="stdio", description="stdio, sse or streamable-http.")
    mcp_host: str = Field(default="127.0.0.1", description="Address the HTTP transports bind to.")
    mcp_port: int = Field(default=8000, ge=1, le=65535, description="Port the HTTP transports listen on.")
    mcp_health_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Also answer GET /healthz on this port, from a thread a busy event loop cannot delay.",
    )
    mcp_auth_token: SecretStr | None = Field(
        default=None, description="Bearer token every MCP HTTP request must carry."
    )
    mcp_allowed_hosts: Annotated[list[str] | None, NoDecode] = Field(
        default=None, description="Host headers accepted (DNS-rebinding protection), comma-separated."
    )
    mcp_allowed_origins: Annotated[list[str] | None, NoDecode] = Field(
        default=None, description="Origin headers accepted (DNS-rebinding protection), comma-separated."
    )
    mcp_stateless: bool = Field(default=True, description="Streamable HTTP without sessions (any replica answers).")
    mcp_drain_seconds: float = Field(
        default=25.0,
        ge=0,
        le=600,
        description="On stop, seconds for calls under way to finish (inside Kubernetes' 30 s grace period).",
    )

    # -- remote limits: bounded resources, slow and hostile clients ------------------------------
    mcp_max_concurrent_calls: int = Field(
        default=64, ge=1, le=100_000, description="Tool calls served at once; more wait briefly, then 'server busy'."
    )
    mcp_max_sessions: int = Field(
        default=256, ge=1, le=1_000_000, description="Open SSE and stateful Streamable HTTP sessions; more get 503."
    )
    mcp_session_idle_seconds: float = Field(
        default=600.0, gt=0, le=86_400, description="A session with no message for this long is closed."
    )
    mcp_max_connections: int = Field(
        default=4096, ge=16, le=1_000_000, description="Open HTTP connections (kept below the file-descriptor limit)."
    )
    mcp_client_timeout: float = Field(
        default=10.0, gt=0, le=300, description="Seconds a client has to send request headers, and each 10 KiB of body."
    )
    mcp_trusted_proxies: Annotated[list[str] | None, NoDecode] = Field(
        default=None,
        description="Proxy addresses (IPs, CIDRs or *) whose X-Forwarded-For is believed, comma-separated.",
    )

    # -- what the model may do ----------------------------------------------------------------
    toolsets: Annotated[list[Toolset], NoDecode] = Field(
        default=["track", "pipelines"],
        description="Toolsets served, comma-separated: track, pipelines, verify (by default track and pipelines, "
        "and verify when CUSTOMERIO_APP_API_KEY is set).",
    )
    tools: Annotated[list[str] | None, NoDecode] = Field(
        default=None, description="Allow-list of tool names, comma-separated (default: all)."
    )
    disable_destructive: bool = Field(default=False, description="Hide and refuse deleting/suppressing/merging.")
    dry_run: bool = Field(default=False, description="Validate and show the request; send nothing.")
    confirm_destructive: Literal["auto", "required", "off"] = Field(
        default="auto",
        description="Ask a person (MCP elicitation) before a destructive call: auto (when the client can), "
        "required (refuse when it cannot), off.",
    )
    confirm_timeout: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="Seconds a person has to answer a confirmation; then the call counts as declined, nothing sent.",
    )
    mcp_state_keys: Annotated[list[SecretStr] | None, NoDecode] = Field(
        default=None,
        description="Secrets (32+ bytes each, comma-separated; the first seals) that seal confirmation state; "
        "every replica needs the same ones.",
    )
    rate_limit: float = Field(
        default=100.0, ge=0, description="Requests per second to each API (0: no pacing); bursts wait, not fail."
    )

    # -- OAuth ----------------------------------------------------------------------------------
    mcp_oauth_issuer: str | None = Field(
        default=None, description="OAuth authorization server (issuer URL) whose access tokens are accepted."
    )
    mcp_public_url: str | None = Field(
        default=None, description="This server's public MCP URL, e.g. https://mcp.example.com/mcp (the resource)."
    )
    mcp_oauth_audience: str | None = Field(
        default=None, description="Audience access tokens must carry (default: CUSTOMERIO_MCP_PUBLIC_URL)."
    )
    mcp_oauth_scopes: Annotated[list[str] | None, NoDecode] = Field(
        default=None, description="Scopes every access token must carry, comma- or space-separated."
    )
    mcp_oauth_destructive_scope: str = Field(
        default="customerio:destructive", description="Scope a token needs for destructive tools and operations."
    )
    mcp_oauth_introspection_url: str | None = Field(
        default=None, description="RFC 7662 introspection endpoint, to accept opaque (non-JWT) access tokens."
    )
    mcp_oauth_client_id: str | None = Field(
        default=None, description="Client ID this server authenticates with at the introspection endpoint."
    )
    mcp_oauth_client_secret: SecretStr | None = Field(
        default=None, description="Client secret this server authenticates with at the introspection endpoint."
    )

    @field_validator("mcp_oauth_issuer", "mcp_public_url", "mcp_oauth_introspection_url")
    @classmethod
    def _check_oauth_url(cls, value: str | None) -> str | None:
        """Kept as written (an issuer is compared character for character); only checked to be a URL."""
        if value is None:
            return None
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http:// on loopback)")
        if _has_userinfo(value):  # an issuer and the public URL are published to every client, too
            raise ValueError(NO_USERINFO)
        return value

    @field_validator("mcp_oauth_scopes", mode="before")
    @classmethod
    def _split_scopes(cls, value: object) -> object:
        """Comma- or space-separated, U+0020 only (RFC 6749 §3.3): another space is part of a scope name."""
        if not isinstance(value, str):
            return value
        return [scope for scope in value.strip().replace(",", " ").split(" ") if scope] or None

    @field_validator("mcp_oauth_audience", "mcp_oauth_client_id")
    @classmethod
    def _strip_oauth_text(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("mcp_oauth_destructive_scope")
    @classmethod
    def _one_scope(cls, value: str) -> str:
        if len(value.split()) != 1:
            raise ValueError("must be one scope name, without spaces")
        return value.strip()

    # -- many workspaces, many replicas ---------------------------------------------------------
    credentials_from: Literal["environment", "request"] = Field(
        default="environment",
        description="Where the Customer.io keys come from: environment (CUSTOMERIO_SITE_ID, ...) or request "
        "(X-Customerio-* headers of each HTTP request).",
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis URL (redis://, rediss:// or unix://): shares the CUSTOMERIO_RATE_LIMIT budget across "
        "replicas.",
    )

    # -- the audit trail ------------------------------------------------------------------------
    audit: str = Field(
        default="file",
        description="Where every call that may have reached Customer.io is recorded: file (audit.jsonl in the "
        "user's state directory), file:/absolute/path.jsonl, redis (a stream in CUSTOMERIO_REDIS_URL, shared by "
        "replicas) or off.",
    )
    audit_bodies: bool = Field(
        default=False, description="Also record each request's body in the audit trail (never keys or headers)."
    )

    @field_validator("log_level", "region", "confirm_destructive", mode="before")
    @classmethod
    def _normalise_case(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return value.upper() if value.lower() in {"debug", "info", "warning", "error", "critical"} else value.lower()

    @field_validator("track_url", "pipelines_url", "app_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        if _has_userinfo(value):  # also a password holding a "/", which once slipped past as a path
            raise ValueError(
                f"{NO_USERINFO}; set the credentials in CUSTOMERIO_SITE_ID / CUSTOMERIO_API_KEY / "
                "CUSTOMERIO_PIPELINES_API_KEY / CUSTOMERIO_APP_API_KEY"
            )
        return value.rstrip("/")

    @field_validator("mcp_state_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()] or None
        return value

    @field_validator("mcp_state_keys")
    @classmethod
    def _long_keys(cls, value: list[SecretStr] | None) -> list[SecretStr] | None:
        for number, key in enumerate(value or (), start=1):
            if len(key.get_secret_value().encode()) < 32:
                raise ValueError(f"key {number} is shorter than 32 bytes; generate each with: {RANDOM_STRING_COMMAND}")
        return value

    @field_validator(
        "mcp_allowed_hosts", "mcp_allowed_origins", "mcp_trusted_proxies", "toolsets", "tools", mode="before"
    )
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()] or None
        return value

    @field_validator("mcp_trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            if item != "*":
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValueError(f"{item!r} is not an IP address, a CIDR network or *") from None
        return value

    @field_validator("mcp_transport", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower().replace("_", "-") if isinstance(value, str) else value

    @field_validator("credentials_from", mode="before")
    @classmethod
    def _lower_choice(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("credentials_from")
    @classmethod
    def _request_needs_http(cls, value: str, info: ValidationInfo) -> str:
        if value == "request" and info.data.get("mcp_transport") == "stdio":
            raise ValueError(
                "request needs an HTTP transport (CUSTOMERIO_MCP_TRANSPORT=sse or streamable-http): over stdio "
                "no request carries the X-Customerio-* headers"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("audit")
    @classmethod
    def _check_audit(cls, value: str, info: ValidationInfo) -> str:
        """``file``, ``off``, ``redis`` (which needs CUSTOMERIO_REDIS_URL) or ``file:`` and an absolute path."""
        text = value.strip()
        if text.lower() in AUDIT_CHOICES:
            text = text.lower()
            if text == "redis" and info.data.get("redis_url") is None:
                raise ValueError("redis needs CUSTOMERIO_REDIS_URL, the Redis whose stream holds the records")
            return text
        if text[:5].lower() != "file:":
            hint = f"; for a file, write file:{text}" if Path(text).expanduser().is_absolute() else ""
            raise ValueError(f"must be file, file:/absolute/path.jsonl, redis or off{hint}")
        path = Path(text[5:].strip()).expanduser()
        if not path.is_absolute() or not path.name:
            raise ValueError("file: must be followed by an absolute path to a file, e.g. file:/var/log/cio-audit.jsonl")
        return f"file:{path}"

    @field_validator("site_id")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    def secret_values(self) -> list[str]:
        """The value of every secret setting (keys, tokens, state keys, the Redis URL), to redact from echoes."""
        values: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, SecretStr):
                    values.append(item.get_secret_value())
        return values

    def missing_track_credentials(self) -> list[str]:
        """The Track variables still to set, in the order a person would set them."""
        return [
            name
            for name, value in (("CUSTOMERIO_SITE_ID", self.site_id), ("CUSTOMERIO_API_KEY", self.api_key))
            if not value
        ]

    @property
    def toolsets_chosen(self) -> bool:
        """Whether the operator named the toolsets (flag, variable or env file) rather than taking the default."""
        return "toolsets" in self.model_fields_set
