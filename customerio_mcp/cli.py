"""The ``customerio-mcp`` command: parse flags, configure stderr logging, run a transport."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys

from customerio_mcp import __version__

ENVIRONMENT_HELP = """\
environment (also read from .env in the working directory):
  CUSTOMERIO_SITE_ID            Track API site ID
  CUSTOMERIO_API_KEY            Track API key
  CUSTOMERIO_PIPELINES_API_KEY  Data Pipelines API key (falls back to CUSTOMERIO_API_KEY)
  CUSTOMERIO_REGION             auto (default), us or eu
  CUSTOMERIO_TRACK_URL          explicit Track base URL, e.g. http://127.0.0.1:8080
  CUSTOMERIO_PIPELINES_URL      explicit Pipelines base URL, e.g. http://127.0.0.1:8080/v1
  CUSTOMERIO_TIMEOUT            seconds per HTTP attempt (default 10)
  CUSTOMERIO_MAX_RETRIES        retries after the first attempt (default 3)
  CUSTOMERIO_RETRY_DEADLINE     seconds for all attempts together (default 60)
  CUSTOMERIO_PIPELINES_STRICT   send X-Strict-Mode: 1 by default (default true)
  CUSTOMERIO_LOG_LEVEL          DEBUG, INFO (default), WARNING, ERROR; logs go to stderr
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="customerio-mcp",
        description="MCP server for Customer.io's Track and Data Pipelines APIs (24 tools).",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def configure_logging(level: str) -> None:
    """Log to stderr only: in stdio mode stdout carries JSON-RPC and nothing else."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Request lines from the HTTP stack add nothing to our own attempt log.
    for noisy in ("httpx2", "httpcore", "hpack"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)

    import anyio
    from pydantic import ValidationError

    from customerio_mcp.server import run_stdio
    from customerio_mcp.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = "CUSTOMERIO_" + "_".join(str(p) for p in error["loc"]).upper()
            sys.stderr.write(f"customerio-mcp: invalid {name}: {error['msg']}\n")
        return 2
    configure_logging(settings.log_level)
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(run_stdio, settings)
    return 0
