"""The serving layer: MCP wiring (lowlevel ``Server``), stdio, and the SSE / Streamable HTTP apps."""
