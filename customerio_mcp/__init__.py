"""customerio-mcp: an MCP server that sends data to Customer.io's Track and Data Pipelines APIs.

The package is small on purpose; each module has one job:

- ``settings``: configuration from flags, the environment and ``.env``;
- ``errors``: the exception hierarchy and how each error reads to a model;
- ``client``: the async HTTP client (auth, region, retries);
- ``tool_table``: the declarative table of the 24 tools;
- ``request_schemas`` / ``request_checks``: body schemas, validators and Customer.io's limits;
- ``tool_runner``: the one code path every tool call takes;
- ``server``: the MCP wiring (lowlevel ``Server``, lifespan);
- ``cli``: the ``customerio-mcp`` command.
"""

__version__ = "0.1.0"
