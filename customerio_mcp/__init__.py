"""customerio-mcp: an MCP server that sends data to Customer.io's Track and Data Pipelines APIs.

The package is small on purpose; each module has one job:

- ``settings``: configuration from flags, the environment and ``.env``;
- ``errors``: the exception hierarchy; ``error_mapping``: how Customer.io's error answers read to a model;
- ``client``: the async HTTP client (auth, region, pacing, retries);
- ``tool_table``: the declarative table of the 24 tools; ``tool_definitions``: their MCP form;
- ``tool_selection``: which tools are served, and the no-destructive mode;
- ``request_schemas`` / ``request_checks``: body schemas, validators and Customer.io's limits;
- ``tool_runner``: the one code path every tool call takes;
- ``server``: the MCP wiring (lowlevel ``Server``, lifespan) and stdio;
- ``http_app``: the SSE and Streamable HTTP transports behind a bearer token;
- ``operator_commands``: ``customerio-mcp check`` and ``customerio-mcp tools``;
- ``cli``: the ``customerio-mcp`` command.
"""

__version__ = "0.1.0"
