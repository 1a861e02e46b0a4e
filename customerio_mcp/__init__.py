"""customerio-mcp: an MCP server that sends data to Customer.io's Track and Data Pipelines APIs.

Subpackages follow the layers, each with one job; a layer imports only the ones below it:

- ``settings``: configuration from flags, the environment and ``.env``; ``errors``: the exception hierarchy;
- ``customerio``: the Customer.io client (request types, auth, region, pacing, retries, error mapping);
- ``tools``: the declarative tool table, MCP definitions, body schemas and checks, selection, the runner;
- ``serving``: the MCP wiring (lowlevel ``Server``), stdio, and the SSE / Streamable HTTP apps;
- ``cli``: the ``customerio-mcp`` command, ``check`` and ``tools``.
"""

__version__ = "0.1.0"
