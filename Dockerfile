# customerio-mcp over SSE on port 8000. Needs CUSTOMERIO_MCP_AUTH_TOKEN (it binds to 0.0.0.0).
#   docker build -t customerio-mcp .
#   docker run -p 8000:8000 -e CUSTOMERIO_SITE_ID=… -e CUSTOMERIO_API_KEY=… -e CUSTOMERIO_MCP_AUTH_TOKEN=… customerio-mcp
# Streamable HTTP (/mcp) is the recommended remote transport; SSE is deprecated by the 2026-07-28 MCP
# specification and stays the default here only for existing setups. For a new deployment add
#   -e CUSTOMERIO_MCP_TRANSPORT=streamable-http
# Limits (CUSTOMERIO_MCP_MAX_CONCURRENT_CALLS, _MAX_SESSIONS, _MAX_CONNECTIONS, _CLIENT_TIMEOUT, ...) apply to
# both; see "Deploying remotely" in the README. More than ~4000 connections need --ulimit nofile=N:N.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY customerio_mcp ./customerio_mcp
RUN pip install .

RUN useradd --create-home --uid 10001 mcp
USER mcp

# Defaults only: override any of them with -e at docker run (CUSTOMERIO_MCP_TRANSPORT=streamable-http is
# recommended for new deployments).
ENV CUSTOMERIO_MCP_TRANSPORT=sse \
    CUSTOMERIO_MCP_HOST=0.0.0.0 \
    CUSTOMERIO_MCP_PORT=8000

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CUSTOMERIO_MCP_PORT', '8000'), timeout=4)"]

CMD ["customerio-mcp"]
