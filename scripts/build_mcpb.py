"""Build the MCP bundle (``.mcpb``) that Claude Desktop installs in one click.

    python3 scripts/build_mcpb.py                     # dist/customerio-mcp-<version>.mcpb, mcpb CLI via npx
    python3 scripts/build_mcpb.py --out x.mcpb --mcpb "node /path/to/@anthropic-ai/mcpb/dist/cli.js"
    python3 scripts/build_mcpb.py --stage DIR         # only lay the bundle's files out in DIR

The bundle's server type is ``uv``: it carries the package source, ``pyproject.toml`` and
``uv.lock``, and ``uv`` installs the locked dependencies for the user's own platform on first start.
A ``python`` bundle would have to carry compiled wheels (pydantic-core, rpds-py, cryptography) for
one platform and one Python version, so it would not install on a clean machine of another kind.

The manifest is written here, from ``pyproject.toml`` and the tool table, so that its version and
tool list never drift; the official ``@anthropic-ai/mcpb`` CLI validates and packs it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MCPB_CLI = "@anthropic-ai/mcpb@2.1.2"
"""The official CLI, pinned; CI and the release workflow use exactly this version."""
MANIFEST_VERSION = "0.4"
"""The first manifest version with the ``uv`` server type."""
REPOSITORY = "https://github.com/customerio-mcp/customerio-mcp"
PRIVACY_POLICY = "https://customer.io/legal/privacy-policy"
BUNDLED = ("pyproject.toml", "uv.lock", "README.md", "LICENSE", "customerio_mcp")
ENTRY_POINT = "customerio_mcp/__main__.py"

USER_CONFIG: dict[str, dict[str, Any]] = {
    "site_id": {
        "type": "string",
        "title": "Track API site ID",
        "description": "Customer.io > Settings > API Credentials > Track API keys. Leave empty to use only Data "
        "Pipelines.",
        "required": False,
        "default": "",
    },
    "track_api_key": {
        "type": "string",
        "title": "Track API key",
        "description": "The API key paired with the site ID (Track API keys).",
        "sensitive": True,
        "required": False,
        "default": "",
    },
    "pipelines_api_key": {
        "type": "string",
        "title": "Data Pipelines API key",
        "description": "Data Pipelines > your HTTP API source > API key. Without it the Data Pipelines tools are "
        "not served (unless Dry run is on).",
        "sensitive": True,
        "required": False,
        "default": "",
    },
    "region": {
        "type": "string",
        "title": "Region",
        "description": "auto (ask Customer.io once), us or eu.",
        "required": False,
        "default": "auto",
    },
    "no_destructive": {
        "type": "boolean",
        "title": "No destructive tools",
        "description": "Hide the tools that delete, suppress or merge, and refuse such operations in batches.",
        "required": False,
        "default": False,
    },
    "dry_run": {
        "type": "boolean",
        "title": "Dry run",
        "description": "Validate every call and show the request it would send; send nothing to Customer.io.",
        "required": False,
        "default": False,
    },
}
ENVIRONMENT = {
    "CUSTOMERIO_SITE_ID": "site_id",
    "CUSTOMERIO_API_KEY": "track_api_key",
    "CUSTOMERIO_PIPELINES_API_KEY": "pipelines_api_key",
    "CUSTOMERIO_REGION": "region",
    "CUSTOMERIO_DISABLE_DESTRUCTIVE": "no_destructive",
    "CUSTOMERIO_DRY_RUN": "dry_run",
}
"""The server's variable for each user_config entry."""


def project() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)["project"]


def first_sentence(text: str) -> str:
    sentence = text.split(". ", 1)[0].strip()
    return sentence if sentence.endswith(".") else sentence + "."


def manifest() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from customerio_mcp.tools.table import TOOLS

    meta = project()
    return {
        "manifest_version": MANIFEST_VERSION,
        "name": meta["name"],
        "display_name": "Customer.io",
        "version": meta["version"],
        "description": "Send people, events, devices and Data Pipelines calls to Customer.io (Track and Data "
        "Pipelines APIs).",
        "long_description": (
            "24 tools, one per endpoint of Customer.io's Track API and Data Pipelines API. Every body is validated "
            "against Customer.io's OpenAPI description before anything is sent, retries never duplicate data, and "
            "the region is detected once. Turn on dry run to see each request without sending it, or hide the "
            "destructive tools."
        ),
        "author": {"name": "The customerio-mcp contributors", "url": REPOSITORY},
        "repository": {"type": "git", "url": REPOSITORY},
        "homepage": REPOSITORY,
        "documentation": REPOSITORY + "#readme",
        "support": REPOSITORY + "/issues",
        "server": {
            "type": "uv",
            "entry_point": ENTRY_POINT,
            "mcp_config": {
                "command": "uv",
                "args": ["run", "--directory", "${__dirname}", "--frozen", "--no-dev", "customerio-mcp"],
                "env": {variable: "${user_config." + key + "}" for variable, key in ENVIRONMENT.items()},
            },
        },
        "tools": [{"name": tool.name, "description": first_sentence(tool.description)} for tool in TOOLS],
        "keywords": ["customer.io", "customerio", "cdp", "marketing", "analytics", "events"],
        "license": meta["license"],
        "privacy_policies": [PRIVACY_POLICY],
        "compatibility": {
            "platforms": ["darwin", "win32", "linux"],
            "runtimes": {"python": meta["requires-python"]},
        },
        "user_config": USER_CONFIG,
    }


def stage(directory: Path) -> Path:
    """Lay the bundle out in ``directory``: the package, its lock file and the manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in BUNDLED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, directory / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, directory / name)
    (directory / "manifest.json").write_text(json.dumps(manifest(), indent=2) + "\n", encoding="utf-8")
    return directory


def build(out: Path, mcpb: list[str]) -> Path:
    """Stage, validate and pack with the official CLI; the path of the ``.mcpb``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temporary:
        staged = stage(Path(temporary) / "customerio-mcp")
        subprocess.run([*mcpb, "validate", str(staged / "manifest.json")], check=True)
        subprocess.run([*mcpb, "pack", str(staged), str(out.resolve())], check=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    version = project()["version"]
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / f"customerio-mcp-{version}.mcpb")
    parser.add_argument("--mcpb", default=f"npx --yes {MCPB_CLI}", help="how to run the mcpb CLI")
    parser.add_argument("--stage", type=Path, help="only lay the bundle's files out in this directory")
    args = parser.parse_args(argv)
    if args.stage:
        print(stage(args.stage))
    else:
        print(build(args.out, shlex.split(args.mcpb)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
