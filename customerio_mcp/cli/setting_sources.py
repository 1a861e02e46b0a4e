"""Where each setting came from, and how to name it back to the person who set it.

Settings come from flags, the environment, an env file, or the defaults. An error or a warning is
only useful if it names what the person actually typed: ``--toolsets trak`` for a flag, or
``CUSTOMERIO_TOOLSETS=trak (from .env)`` for a variable, never pydantic's ``toolsets.0``.

The env file is ``--env-file PATH``, else ``CUSTOMERIO_ENV_FILE``, else ``.env`` in the working
directory. A desktop client chooses that working directory (often ``/`` or its own folder), which
is why the server names the file it read when it starts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from customerio_mcp.settings import URL_SETTINGS, Settings
from customerio_mcp.text_safety import redact, secret_texts, shown_url

ENV_FILE_VARIABLE = "CUSTOMERIO_ENV_FILE"
DEFAULT_ENV_FILE = Path(".env")
MAX_SHOWN = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def variable_name(field: str) -> str:
    return f"CUSTOMERIO_{field.upper()}"


def is_secret(field: str) -> bool:
    """Whether a setting holds a secret (its value is never shown, not even in an error)."""
    info = Settings.model_fields.get(field)
    return info is not None and "SecretStr" in str(info.annotation)


def shown_text(text: str) -> str:
    """``text`` made safe to print: control characters neutralised, cut to about 100 characters."""
    text = _CONTROL.sub("?", text)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…"


def chosen_env_file(flag: str | None, environ: Mapping[str, str] = os.environ) -> tuple[Path, str | None]:
    """The env file to read, and how the person chose it (None: the default ``.env``)."""
    if flag:
        return Path(flag), f"--env-file {shown_text(flag)}"
    if environ.get(ENV_FILE_VARIABLE):
        value = environ[ENV_FILE_VARIABLE]
        return Path(value), f"{ENV_FILE_VARIABLE}={shown_text(value)}"
    return DEFAULT_ENV_FILE, None


@dataclass(frozen=True)
class SettingSources:
    env_file: Path
    flags: Mapping[str, Any]
    """Settings given on the command line, by field name, as argparse parsed them."""
    flag_names: Mapping[str, str]
    """Field name -> argparse destination of its flag."""
    environ: Mapping[str, str]
    env_file_values: Mapping[str, str]

    @classmethod
    def read(
        cls,
        env_file: Path,
        flags: Mapping[str, Any],
        flag_names: Mapping[str, str],
        environ: Mapping[str, str] = os.environ,
    ) -> SettingSources:
        from dotenv import dotenv_values

        values = {k: v for k, v in dotenv_values(env_file).items() if v} if env_file.is_file() else {}
        return cls(env_file, dict(flags), dict(flag_names), dict(environ), values)  # type: ignore[arg-type]

    @classmethod
    def for_command_line(
        cls, env_file_flag: str | None, flags: Mapping[str, Any], flag_names: Mapping[str, str]
    ) -> SettingSources | str:
        """The sources of this command line, or why not: an env file that was named but is missing."""
        env_file, chosen_by = chosen_env_file(env_file_flag)
        if chosen_by is not None and not env_file.is_file():
            where = "" if env_file.is_absolute() else f" (relative to the working directory, {Path.cwd()})"
            return f"{chosen_by}: no such file{where}"
        return cls.read(env_file, flags, flag_names)

    @property
    def env_file_label(self) -> str:
        return str(self.env_file) if self.env_file != DEFAULT_ENV_FILE else ".env"

    def origin(self, field: str) -> str:
        """``flag``, ``environment``, the env file's name, or ``default``: the same order Settings reads them."""
        variable = variable_name(field)
        if field in self.flags:
            return "flag"
        if self.environ.get(variable):
            return "environment"
        if self.env_file_values.get(variable):
            return self.env_file_label
        return "default"

    def describe(self, field: str) -> str:
        """What the person typed for ``field``: ``--toolsets trak`` or ``CUSTOMERIO_TOOLSETS=trak (from .env)``."""
        origin = self.origin(field)
        variable = variable_name(field)
        if origin == "flag":
            flag = "--" + self.flag_names.get(field, field).replace("_", "-")
            value = self.flags[field]
            return flag if isinstance(value, bool) else f"{flag} {self.shown(field, str(value))}"
        if origin == "default":
            return variable
        raw = self.environ.get(variable) if origin == "environment" else self.env_file_values.get(variable)
        value = "[set]" if is_secret(field) else self.shown(field, str(raw))
        where = "the environment" if origin == "environment" else origin
        return f"{variable}={value} (from {where})"

    def shown(self, field: str, text: str) -> str:
        """A value given for ``field`` as it may be printed, even when the settings could not be read.

        Every secret the sources hold is redacted (a key pasted into the wrong variable, ``ftp://<key>``),
        a URL setting shows no user name or password (``shown_url``), and the text is cut short.
        """
        text = redact(text, self.secrets())
        return shown_text(shown_url(text) if field in URL_SETTINGS else text)

    def secrets(self) -> tuple[str, ...]:
        """The values given for secret settings, from the environment and the env file (``[s1, s2]`` lists too)."""
        given = [
            source.get(variable_name(field))
            for field in Settings.model_fields
            if is_secret(field)
            for source in (self.environ, self.env_file_values)
        ]
        return secret_texts(part.strip() for value in given if value for part in (value, *value.split(",")))
