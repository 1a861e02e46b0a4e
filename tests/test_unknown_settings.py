"""A ``CUSTOMERIO_*`` name the server does not know is named, never ignored in silence."""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path

import pytest

from customerio_mcp.cli.unknown_settings import KNOWN_VARIABLES, SAFETY_VARIABLES, closest_known
from customerio_mcp.settings import Settings
from tests.processes import INITIALIZE, command, server_env
from tests.test_distribution import BUILD_MCPB, SERVER

ROOT = Path(__file__).resolve().parent.parent


def start(cwd: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """Start the server over stdio, send initialize, close stdin."""
    return subprocess.run(
        [command(), *args], input=json.dumps(INITIALIZE) + "\n", env=server_env(None, CUSTOMERIO_LOG_LEVEL="INFO",
        **variables), cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def warnings(stderr: str) -> list[str]:
    return [line.split(" WARNING customerio_mcp: ", 1)[1] for line in stderr.splitlines() if " WARNING " in line]


def check(cwd: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [command(), "check", "--toolsets", "pipelines", *args], env=server_env(None, CUSTOMERIO_PIPELINES_API_KEY="k",
        **variables), cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


DRYRUN_REFUSAL = (
    "customerio-mcp: CUSTOMERIO_DRYRUN (from .env) is not a setting, so it is ignored; did you mean "
    "CUSTOMERIO_DRY_RUN? A misspelt safety setting would leave the server less restricted than meant, so it does not "
    "start: fix the name, or pass --allow-unknown-settings to start anyway.\n"
)


def test_a_misspelt_dry_run_in_env_file_stops_the_server(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CUSTOMERIO_DRYRUN=true\n")
    done = start(tmp_path)
    assert done.returncode == 2
    assert done.stderr == DRYRUN_REFUSAL
    assert done.stdout == ""


def test_the_flag_starts_it_anyway_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CUSTOMERIO_DRYRUN=true\n")
    done = start(tmp_path, "--allow-unknown-settings")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[0])["result"]["serverInfo"]["name"] == "customerio-mcp"
    assert warnings(done.stderr) == [
        "CUSTOMERIO_DRYRUN (from .env) is not a setting, so it is ignored; did you mean CUSTOMERIO_DRY_RUN?"
    ]
    assert "dry run off" in done.stderr  # ignored, and said so


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("CUSTOMERIO_DRYRUN", "CUSTOMERIO_DRY_RUN"),
        ("CUSTOMERIO_DISABLE_DESTRUCTIVES", "CUSTOMERIO_DISABLE_DESTRUCTIVE"),
        ("CUSTOMERIO_CONFIRM_DESTRUCTION", "CUSTOMERIO_CONFIRM_DESTRUCTIVE"),
        ("CUSTOMERIO_TOOLSET", "CUSTOMERIO_TOOLSETS"),
        ("CUSTOMERIO_TOOL", "CUSTOMERIO_TOOLS"),
    ],
)
def test_every_safety_setting_misspelt_in_the_environment_stops_it(tmp_path: Path, name: str, meant: str) -> None:
    done = start(tmp_path, **{name: "track"})
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"customerio-mcp: {name} (from the environment) is not a setting, so it is ignored; did you mean {meant}? "
    )
    assert done.stderr.count("\n") == 1


def test_other_unknown_names_warn_once_each_and_serve(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CUSTOMERIO_PIPELINE_API_KEY=cdp-key\nCUSTOMERIO_SITE_ID=s\n")
    done = start(tmp_path, CUSTOMERIO_SITEID="s", customerio_whatever="x", CUSTOMERIO_EMPTY="")
    assert done.returncode == 0, done.stderr
    assert warnings(done.stderr) == [
        "CUSTOMERIO_SITEID (from the environment) is not a setting, so it is ignored; did you mean CUSTOMERIO_SITE_ID?",
        "customerio_whatever (from the environment) is not a setting, so it is ignored; customerio-mcp --help lists "
        "every setting",
        "CUSTOMERIO_PIPELINE_API_KEY (from .env) is not a setting, so it is ignored; did you mean "
        "CUSTOMERIO_PIPELINES_API_KEY?",
    ]
    assert "cdp-key" not in done.stderr


def test_names_are_known_whatever_their_case_as_pydantic_reads_them(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("customerio_dry_run=true\n")
    done = start(tmp_path, Customerio_Tools="track_user_event")
    assert done.returncode == 0, done.stderr
    assert warnings(done.stderr) == []
    assert "dry run ON" in done.stderr


def test_check_lists_every_unknown_name_as_a_problem(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CUSTOMERIO_DRYRUN=true\n")
    done = check(tmp_path, CUSTOMERIO_SITEID="s")
    assert done.returncode == 1
    problems = [line for line in done.stdout.splitlines() if line.startswith("problem: ")]
    assert problems == [
        "problem: " + DRYRUN_REFUSAL.removeprefix("customerio-mcp: ").rstrip("\n"),
        "problem: CUSTOMERIO_SITEID (from the environment) is not a setting, so it is ignored; did you mean "
        "CUSTOMERIO_SITE_ID?",
    ]
    allowed = check(tmp_path, "--allow-unknown-settings")
    assert allowed.returncode == 1  # still ignored, so still a problem
    assert [line for line in allowed.stdout.splitlines() if line.startswith("problem: ")] == [
        "problem: CUSTOMERIO_DRYRUN (from .env) is not a setting, so it is ignored; did you mean CUSTOMERIO_DRY_RUN?"
    ]


def test_tools_command_warns(tmp_path: Path) -> None:
    done = subprocess.run(
        [command(), "tools"], env=server_env(None, CUSTOMERIO_TOOLSET="track"), cwd=tmp_path, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0
    assert warnings(done.stderr) == [
        "CUSTOMERIO_TOOLSET (from the environment) is not a setting, so it is ignored; did you mean "
        "CUSTOMERIO_TOOLSETS?"
    ]


def test_known_names_are_the_settings_and_what_the_code_reads_itself() -> None:
    fields = {f"CUSTOMERIO_{name.upper()}" for name in Settings.model_fields}
    assert fields <= KNOWN_VARIABLES
    assert fields >= SAFETY_VARIABLES
    mentioned: set[str] = set()
    for path in (ROOT / "customerio_mcp").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        documentation = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}  # docstrings
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in documentation:
                mentioned |= set(re.findall(r"\bCUSTOMERIO_[A-Z][A-Z_]*[A-Z]\b", node.value))
    assert mentioned - KNOWN_VARIABLES == set()


def test_what_the_project_ships_sets_only_known_names() -> None:
    bundle = BUILD_MCPB.manifest()["server"]["mcp_config"]["env"]
    assert set(bundle) <= KNOWN_VARIABLES
    registry = {variable["name"] for package in SERVER["packages"] for variable in package["environmentVariables"]}
    assert registry <= KNOWN_VARIABLES
    shipped = [ROOT / "Dockerfile", ROOT / ".env.example", *sorted((ROOT / "deploy").rglob("*.y*ml"))]
    named = {name for path in shipped for name in re.findall(r"\bCUSTOMERIO_[A-Z][A-Z_]*[A-Z]\b", path.read_text())}
    assert named - KNOWN_VARIABLES == set()


def test_closest_name_ignores_the_shared_prefix() -> None:
    assert closest_known("CUSTOMERIO_REGOIN") == "CUSTOMERIO_REGION"
    assert closest_known("CUSTOMERIO_XYZZY") is None


def test_help_names_the_flag() -> None:
    done = subprocess.run([command(), "--help"], capture_output=True, text=True, timeout=60, check=True)
    assert "--allow-unknown-settings" in done.stdout
