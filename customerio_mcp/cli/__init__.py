"""The command line: ``customerio-mcp [serve|check|tools]``.

``main`` parses flags and starts a transport; ``operator_commands`` holds ``check`` and ``tools``.
"""

from customerio_mcp.cli.main import main

__all__ = ["main"]
