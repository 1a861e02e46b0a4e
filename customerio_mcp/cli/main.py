"""The ``customerio-mcp`` command: parse flags, configure stderr logging, run a transport.

Flags win over the environment, which wins over ``.env``, which wins over the defaults: flags are
handed to ``Settings`` as keyword arguments, the highest-priority source in pydantic-settings.
Heavy imports (the SDK, uvicorn) happen after parsing, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING, Any

from customerio_mcp import __version__

if TYPE_CHECKING:
    from customerio_mcp.cli.setting_sources import SettingSources
    from customerio_mcp.settings import Settings


FLAG_FOR_SETTING = {
    "mcp_transport": "transport",
    "mcp_host": "host",
    "mcp_port": "port",
    "toolsets": "toolsets",
    "tools": "tools",
    "disable_destructive": "no_destructive",
    "dry_run": "dry_run",
    "confirm_destructive": "confirm_destructive",
}
"""Settings that a flag can set, and the argparse destination of that flag."""

COMMANDS_HELP = """\
commands:
  customerio-mcp [serve]        run the MCP server (the default)
  customerio-mcp check          show the configuration and verify the credentials (exit 1 on a problem)
  customerio-mcp tools          list every tool, its endpoint and annotations, and whether it is enabled
  customerio-mcp token          print a new random token (for CUSTOMERIO_MCP_AUTH_TOKEN, CUSTOMERIO_MCP_STATE_KEYS)
  customerio-mcp audit          print the audit trail: every call that may have reached Customer.io
                                [--since 1h|7d|2026-12-01] [--tool NAME] [--workspace SITE_ID] [--limit N] [--json]
"""


def environment_help() -> str:
    """Every setting's variable, meaning, default and flag, read from ``Settings`` itself."""
    from customerio_mcp.cli.operator_commands import shown_value
    from customerio_mcp.settings import Settings

    lines = [
        "environment (also read from an env file: --env-file PATH, else CUSTOMERIO_ENV_FILE, else .env in the "
        "working directory; flags win over the environment, which wins over the file):",
        f"  {'CUSTOMERIO_ENV_FILE':<39} The env file to read instead of ./.env  [--env-file]",
    ]
    for name, field in Settings.model_fields.items():
        default = field.default
        text = f"  CUSTOMERIO_{name.upper():<28} {field.description}"
        if default is not None:
            text += f" (default {shown_value(default)})"
        if name in FLAG_FOR_SETTING:
            text += f"  [--{FLAG_FOR_SETTING[name].replace('_', '-')}]"
        lines.append(text)
    return "\n".join(lines) + "\n\n" + COMMANDS_HELP


class _ArgumentParser(argparse.ArgumentParser):
    """Writes the environment part of ``--help`` only when help is shown: it imports every setting."""

    def format_help(self) -> str:
        self.epilog = environment_help()
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="customerio-mcp",
        description="MCP server for Customer.io's Track and Data Pipelines APIs (24 tools).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "command", nargs="?", choices=["serve", "check", "tools", "audit", "token"], default="serve", help="what to do"
    )
    parser.add_argument(
        "--transport",
        choices=["stdio", "sse", "streamable-http"],
        help="stdio for desktop clients; sse (GET /sse, POST /messages/) or streamable-http (/mcp) over HTTP",
    )
    parser.add_argument("--host", help="address to bind the HTTP transports to (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port for the HTTP transports (default 8000)")
    parser.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="serve on a non-loopback address without CUSTOMERIO_MCP_AUTH_TOKEN (anyone who can reach the port "
        "can then write to your Customer.io workspace)",
    )
    parser.add_argument(
        "--allow-unknown-settings",
        action="store_true",
        help="start even when a CUSTOMERIO_* name the server does not know looks like a misspelt safety setting "
        "(dry run, no-destructive, confirmation, toolsets, tools); it is still ignored, with a warning",
    )
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        help="read settings from this file instead of .env in the working directory (also CUSTOMERIO_ENV_FILE)",
    )
    parser.add_argument(
        "--toolsets",
        help="comma-separated toolsets served: track, pipelines, verify (App API reads; needs CUSTOMERIO_APP_API_KEY)",
    )
    parser.add_argument("--tools", help="comma-separated allow-list of tool names (see: customerio-mcp tools)")
    parser.add_argument(
        "--no-destructive",
        action="store_true",
        default=None,
        help="hide tools that delete, suppress or merge, and refuse such operations inside bodies (v2 actions, "
        "Pipelines delete and suppress events, alias items)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=None,
        help="validate every call and answer with the request it would send; send nothing, need no keys",
    )
    parser.add_argument(
        "--confirm-destructive",
        choices=["auto", "required", "off"],
        help="ask a person (MCP elicitation) before a destructive call: auto (when the client can), required "
        "(refuse when it cannot), off",
    )
    from customerio_mcp.cli.audit_command import add_arguments

    add_arguments(parser)
    return parser


def flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line, under their ``Settings`` field names."""
    named = {field: getattr(args, dest) for field, dest in FLAG_FOR_SETTING.items()}
    return {key: value for key, value in named.items() if value is not None}


def configure_logging(level: str) -> None:
    """Log to stderr only: in stdio mode stdout carries JSON-RPC and nothing else."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Request lines from the HTTP stack add nothing to our own attempt log.
    for noisy in ("httpx2", "httpcore", "httpcore2", "hpack"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    from customerio_mcp.serving.log_hygiene import install

    install(handler)  # client text clipped, client mistakes without tracebacks, warnings rate-limited


def load_settings(overrides: dict[str, Any], sources: SettingSources) -> Settings | None:
    """The settings, or None after one line per problem naming what the person typed."""
    from pydantic import ValidationError

    from customerio_mcp.settings import Settings
    from customerio_mcp.tools.selection import unknown_tool_names

    try:
        settings = Settings(**overrides, _env_file=sources.env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            # A list setting names its one wrong item too: --toolsets track,crm ... got 'crm'.
            item = f", got {sources.shown(field, str(error['input']))!r}" if len(error["loc"]) > 1 else ""
            sys.stderr.write(f"customerio-mcp: invalid {sources.describe(field)}: {error['msg']}{item}\n")
        return None
    problem = unknown_tool_names(settings)
    if problem:
        sys.stderr.write(f"customerio-mcp: invalid {sources.describe('tools')}: {problem}\n")
        return None
    return settings


def refuse_to_serve(settings: Settings, allow_unauthenticated: bool, refusals: list[str]) -> bool:
    """Write every reason not to serve (``startup_refusals``) to stderr; True when there is one."""
    from customerio_mcp.serving.startup_rules import serves_publicly_without_authentication

    for refusal in refusals:
        sys.stderr.write(f"customerio-mcp: {refusal}\n")
    if not refusals and allow_unauthenticated and serves_publicly_without_authentication(settings):
        logging.getLogger("customerio_mcp").warning(
            "!!! serving on %s WITHOUT authentication (--allow-unauthenticated): anyone who can reach port %d can "
            "send data to your Customer.io workspace with your keys. Set CUSTOMERIO_MCP_AUTH_TOKEN instead. !!!",
            settings.mcp_host,
            settings.mcp_port,
        )
    return bool(refusals)


def serve_http(settings: Settings) -> None:
    import anyio
    import uvicorn

    from customerio_mcp.serving.connections import (
        ConnectionGuard,
        connection_cap,
        guarded_protocol,
        quiet_accept_errors,
    )
    from customerio_mcp.serving.drain import FLUSH_SECONDS
    from customerio_mcp.serving.health_listener import HealthListener
    from customerio_mcp.serving.http_app import build_http_app

    class DrainingServer(uvicorn.Server):
        """Tells the app when a stop is requested, so that it can let calls under way finish."""

        def __init__(self, config: uvicorn.Config, shutdown: anyio.Event) -> None:
            super().__init__(config)
            self._shutdown = shutdown
            self._loop = asyncio.get_running_loop()

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            self._loop.call_soon_threadsafe(self._shutdown.set)

    async def serve() -> None:
        shutdown = anyio.Event()
        quiet_accept_errors(asyncio.get_running_loop())
        guard = ConnectionGuard(connection_cap(settings.mcp_max_connections), settings.mcp_client_timeout)
        trusted = settings.mcp_trusted_proxies or []
        config = uvicorn.Config(
            build_http_app(settings, shutdown=shutdown),
            host=settings.mcp_host,
            port=settings.mcp_port,
            log_config=None,
            timeout_graceful_shutdown=int(settings.mcp_drain_seconds + FLUSH_SECONDS) + 3,
            server_header=False,
            # Remote limits: slow, idle and surplus connections are cut (serving/connections.py);
            # our access log replaces uvicorn's, which prints query strings.
            http=guarded_protocol(guard),
            access_log=False,
            proxy_headers=bool(trusted),
            forwarded_allow_ips=trusted,
            timeout_keep_alive=5,
            # A burst beyond the accept queue has its SYNs dropped (a 1 s retransmit for everyone,
            # health checks included): let the queue hold as many connections as may be open.
            backlog=max(2048, guard.max_connections),
        )
        if guard.max_connections < settings.mcp_max_connections:
            logging.getLogger("customerio_mcp").warning(
                "serving at most %d connections, below CUSTOMERIO_MCP_MAX_CONNECTIONS=%d: the file-descriptor "
                "limit allows no more (raise it with ulimit -n or docker run --ulimit nofile=...)",
                guard.max_connections,
                settings.mcp_max_connections,
            )
        health = None
        if settings.mcp_health_port is not None:
            try:
                health = HealthListener(settings.mcp_host, settings.mcp_health_port).start()
            except OSError as exc:
                logging.getLogger("customerio_mcp").error(
                    "cannot answer health checks on %s:%d (CUSTOMERIO_MCP_HEALTH_PORT): %s",
                    settings.mcp_host,
                    settings.mcp_health_port,
                    exc.strerror or exc,
                )
                raise SystemExit(1) from None
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(guard.sweep_forever)
                if health is not None:
                    tasks.start_soon(health.heartbeat.beat_forever)
                await DrainingServer(config, shutdown).serve()
                tasks.cancel_scope.cancel()
        finally:
            if health is not None:
                health.close()

    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal with the previous
    # handler in place; with this one in place the process then ends with status 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    anyio.run(serve)


def print_token() -> int:
    """``customerio-mcp token``: a secret nobody can guess, on stdout alone, so that ``$(...)`` captures it."""
    import secrets

    sys.stdout.write(secrets.token_urlsafe(32) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from customerio_mcp.cli.audit_command import misplaced_options

    misplaced = misplaced_options(args)
    if misplaced is not None:
        parser.error(misplaced)
    if args.command == "token":  # needs no settings: a broken .env must not stop it
        return print_token()
    flags = flag_overrides(args)
    from customerio_mcp.cli.setting_sources import SettingSources

    sources = SettingSources.for_command_line(args.env_file, flags, FLAG_FOR_SETTING)
    if isinstance(sources, str):
        sys.stderr.write(f"customerio-mcp: {sources}\n")
        return 2
    settings = load_settings(flags, sources)
    if settings is None:
        return 2
    configure_logging(settings.log_level)
    from customerio_mcp.cli.unknown_settings import unknown_settings, verdicts

    unknown = unknown_settings(sources)
    refused_names, unknown_names = verdicts(unknown, args.allow_unknown_settings)
    if args.command in ("tools", "audit"):  # they serve nothing: a warning is enough
        for name in unknown:
            logging.getLogger("customerio_mcp").warning("%s", name.described())
    if args.command == "tools":
        from customerio_mcp.cli.operator_commands import print_tools, quiet_when_piped_to_head

        return quiet_when_piped_to_head(lambda: print_tools(settings))
    if args.command == "audit":
        import anyio

        from customerio_mcp.cli.audit_command import run_audit
        from customerio_mcp.cli.operator_commands import quiet_when_piped_to_head

        return quiet_when_piped_to_head(lambda: anyio.run(run_audit, settings, args))
    # check applies every rule serve applies, so that its exit 0 means this command line serves.
    from customerio_mcp.serving.startup_rules import startup_refusals

    refusals = startup_refusals(settings, args.allow_unauthenticated) + refused_names
    if args.command == "check":
        import anyio

        from customerio_mcp.cli.operator_commands import quiet_when_piped_to_head, run_check

        # Every unknown name is a problem there, whatever it resembles: it is ignored.
        return quiet_when_piped_to_head(lambda: anyio.run(run_check, settings, sources, refusals + unknown_names))
    if refuse_to_serve(settings, args.allow_unauthenticated, refusals):
        return 2
    from customerio_mcp.cli.startup_report import announce

    announce(settings, sources, unknown_names)
    with contextlib.suppress(KeyboardInterrupt):
        if settings.mcp_transport == "stdio":
            import anyio

            from customerio_mcp.serving.stdio import run_stdio

            anyio.run(run_stdio, settings)
        else:
            serve_http(settings)
    return 0
