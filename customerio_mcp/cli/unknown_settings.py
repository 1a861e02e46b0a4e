"""``CUSTOMERIO_*`` names the server does not know: a typo that would otherwise be ignored in silence.

pydantic-settings ignores every variable that is no field, so ``CUSTOMERIO_DRYRUN=true`` (for
``CUSTOMERIO_DRY_RUN``) would run live without a word. Each unknown name in the environment or the
env file is named with the setting it most resembles: a WARNING at start, a problem in ``check``.
A name that most resembles a safety setting (dry run, no-destructive, confirmation, the tool
selection) stops ``serve`` unless ``--allow-unknown-settings``: the person meant to restrict what
the model may do, and it would not be restricted. A bundle's ``user_config`` reaches the server as
environment variables, so it is covered by the environment.

The known names are the ``Settings`` fields and the variables read outside them, never a second list.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from customerio_mcp.cli.setting_sources import ENV_FILE_VARIABLE, SettingSources, shown_text, variable_name
from customerio_mcp.settings import Settings

PREFIX = "CUSTOMERIO_"
ALLOW_FLAG = "--allow-unknown-settings"
KNOWN_VARIABLES = frozenset({*(variable_name(field) for field in Settings.model_fields), ENV_FILE_VARIABLE})
"""Every ``CUSTOMERIO_*`` variable the server reads: its settings, and the env file's own variable."""
SAFETY_VARIABLES = frozenset(
    variable_name(field) for field in ("dry_run", "disable_destructive", "confirm_destructive", "toolsets", "tools")
)
"""Settings that restrict what the model may do: a misspelt one stops the server rather than being ignored."""
SIMILAR_ENOUGH = 0.6
"""difflib's ratio, on the part after ``CUSTOMERIO_`` (the shared prefix would make every name look alike)."""


@dataclass(frozen=True)
class UnknownSetting:
    name: str
    origin: str
    """``the environment`` or the env file's name."""
    closest: str | None
    """The known variable it most resembles, if any resembles it."""

    @property
    def is_safety_typo(self) -> bool:
        return self.closest in SAFETY_VARIABLES

    def described(self) -> str:
        """``CUSTOMERIO_DRYRUN (from .env) is not a setting; did you mean CUSTOMERIO_DRY_RUN?``"""
        guess = f"did you mean {self.closest}?" if self.closest else "customerio-mcp --help lists every setting"
        return f"{shown_text(self.name)} (from {self.origin}) is not a setting, so it is ignored; {guess}"

    def refusal(self) -> str:
        """The line ``serve`` exits with when the name resembles a safety setting."""
        return (
            f"{self.described()} A misspelt safety setting would leave the server less restricted than meant, so "
            f"it does not start: fix the name, or pass {ALLOW_FLAG} to start anyway."
        )


def closest_known(name: str) -> str | None:
    """The known variable ``name`` most resembles, compared on the part after the prefix."""
    rest = name.upper().removeprefix(PREFIX)
    candidates = {known.removeprefix(PREFIX): known for known in KNOWN_VARIABLES}
    found = difflib.get_close_matches(rest, candidates, n=1, cutoff=SIMILAR_ENOUGH)
    return candidates[found[0]] if found else None


def unknown_settings(sources: SettingSources) -> list[UnknownSetting]:
    """Every ``CUSTOMERIO_*`` name with a value that no setting reads, the environment's first.

    Names are compared without regard to case, as pydantic-settings reads them.
    """
    found: dict[str, UnknownSetting] = {}
    where = (("the environment", sources.environ), (sources.env_file_label, sources.env_file_values))
    for origin, values in where:
        for name, value in values.items():
            upper = name.upper()
            if upper.startswith(PREFIX) and value and upper not in KNOWN_VARIABLES and upper not in found:
                found[upper] = UnknownSetting(name, origin, closest_known(name))
    return list(found.values())


def verdicts(unknown: list[UnknownSetting], allowed: bool) -> tuple[list[str], list[str]]:
    """The lines that stop ``serve`` (misspelt safety settings, unless ``allowed``) and those it only warns of."""
    refused = [name.refusal() for name in unknown if name.is_safety_typo and not allowed]
    warned = [name.described() for name in unknown if not name.is_safety_typo or allowed]
    return refused, warned
