"""The tools layer: the declarative table of 24 tools, their MCP definitions, body schemas and checks,
which tools are served, and the one runner every call goes through.
"""
