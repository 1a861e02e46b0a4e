"""The documentation a new user follows: every link lands, the README is short, and its commands are the real ones.

The README holds what a person needs in five minutes; the rest is in ``docs/``. The tool tables of the docs are
checked here against the tool table; the other tables are checked where their code is tested: the settings in
``test_configuration.py``, the validation rules in ``test_schemas.py``, the registry name in
``test_distribution.py``.
"""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from customerio_mcp.cli.operator_commands import print_tools
from customerio_mcp.settings import Settings
from customerio_mcp.tools.definitions import input_schema
from customerio_mcp.tools.table import TOOLS
from tests.documents import (
    DOCS,
    DOCUMENTS,
    FIRST_SCREEN,
    README,
    ROOT,
    anchors,
    anchors_of,
    code_lines,
    inline_code,
    link_targets,
    readme_run_command,
    readme_test_command,
    section,
    table_rows,
    tokens_of,
)


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_documents_are_all_there() -> None:
    assert {path.name for path in DOCS.glob("*.md")} >= {
        "configuration.md",
        "deploying.md",
        "tools.md",
        "destructive-calls.md",
        "distribution.md",
        "development.md",
        "performance.md",
    }
    for path in DOCUMENTS:
        assert path.is_file(), name(path)


@pytest.mark.parametrize("document", DOCUMENTS, ids=name)
def test_every_relative_link_and_anchor_resolves(document: Path) -> None:
    broken = []
    for target in link_targets(document):
        parts = urlsplit(target)
        if parts.scheme or parts.netloc:
            continue  # the web: not checked offline
        landing = (document.parent / unquote(parts.path)).resolve() if parts.path else document
        if not landing.is_relative_to(ROOT) or not landing.exists():
            broken.append(f"{target}: no such file in the repository")
        elif parts.fragment and (landing.suffix != ".md" or parts.fragment not in anchors(landing)):
            broken.append(f"{target}: no heading with that anchor in {name(landing)}")
    assert broken == [], f"{name(document)} links nowhere: {broken}"


def test_every_document_is_reachable_from_the_readme() -> None:
    linked = {(README.parent / urlsplit(target).path).resolve() for target in link_targets(README)}
    assert set(DOCS.glob("*.md")) <= linked


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("OAuth 2.1 (claude.ai and other connectors)", "oauth-21-claudeai-and-other-connectors"),
        ("Claude Desktop bundle (`.mcpb`)", "claude-desktop-bundle-mcpb"),
        ("Stopping: no call left without an answer", "stopping-no-call-left-without-an-answer"),
        ("Checking a setup: the start line, `check` and `tools`", "checking-a-setup-the-start-line-check-and-tools"),
        ("Over the network: Streamable HTTP and SSE", "over-the-network-streamable-http-and-sse"),
        ("snake_case and kebab-case", "snake_case-and-kebab-case"),
    ],
)
def test_anchors_follow_githubs_rules(heading: str, anchor: str) -> None:
    assert anchors_of(tokens_of(f"## {heading}\n")) == [anchor]


def test_a_repeated_heading_gets_a_numbered_anchor_as_on_github() -> None:
    assert anchors_of(tokens_of("# Limits\n\n## Limits\n\n### Limits\n")) == ["limits", "limits-1", "limits-2"]


def test_the_readme_fits_in_five_minutes() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 300


def test_the_readme_shows_both_commands_on_its_first_screen() -> None:
    first_screen = "\n".join(README.read_text(encoding="utf-8").splitlines()[:FIRST_SCREEN])
    assert readme_run_command() in first_screen
    assert readme_test_command() in first_screen


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    (assignment,) = re.findall(r"^readme_test_command=(.+)$", ci, flags=re.MULTILINE)
    (ci_command,) = shlex.split(assignment)  # one shell word: the single-quoted command
    assert ci_command == readme_test_command()
    assert 'eval "$readme_test_command"' in ci


def test_the_readme_test_command_needs_only_python3() -> None:
    """A fresh Debian or macOS machine has ``python3`` and no ``python``, and refuses ``pip install`` outside a venv."""
    command = readme_test_command()
    words = shlex.split(command)
    assert words[:3] == ["python3", "-m", "venv"]
    venv = words[3]
    steps = [shlex.split(step) for step in command.split("&&")]
    assert all(step[0] == f"{venv}/bin/python" for step in steps[1:]), steps
    assert command in (DOCS / "development.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("document", DOCUMENTS, ids=name)
def test_no_command_calls_a_python_a_fresh_machine_lacks(document: Path) -> None:
    """``python`` is only on the PATH inside a virtual environment; a command that works anywhere says ``python3``."""
    commands = code_lines(document) + inline_code(document)
    assert [command for command in commands if re.search(r"(^|[\s($;&|])python\s", command)] == []


# -- what the documents say about the tools is the tool table -----------------------------------------------


def test_the_tools_table_is_the_tool_table_and_what_the_tools_command_prints() -> None:
    rows = table_rows(section(DOCS / "tools.md", "the-24-tools"))
    printed = io.StringIO()
    print_tools(Settings(), printed)
    listed = [re.split(r"\s{2,}", line) for line in printed.getvalue().splitlines()[2:]]
    assert [row["tool"] for row in rows] == [tool.name for tool in TOOLS] == [line[0] for line in listed]
    for row, tool, (_, api, endpoint, hints, _) in zip(rows, TOOLS, listed, strict=True):
        assert row["API"].lower() == tool.api == api
        assert row["endpoint"] == f"{tool.method} {tool.path}" == endpoint
        assert set(row["parameters"].split(", ")) - {"—"} == set(input_schema(tool).get("properties", {}))
        assert row["annotations"].replace("—", "-") == hints, tool.name


def test_the_destructive_calls_table_is_the_tool_table() -> None:
    rows = table_rows((DOCS / "destructive-calls.md").read_text(encoding="utf-8"))
    assert [row["tool"] for row in rows] == [tool.name for tool in TOOLS]
    for row, tool in zip(rows, TOOLS, strict=True):
        assert row["destructive"] == tool.destructive.replace("_", " "), tool.name
        assert row["what makes a call destructive"].startswith("every call") == (tool.destructive == "always")
        repeating = row["repeating after a failure that may have been applied"]
        assert repeating.startswith("check") == (not tool.replay_safe), tool.name
        assert ("check" in repeating) == bool(tool.check_before_repeat), tool.name
