# customerio-mcp over SSE on port 8000. Needs CUSTOMERIO_MCP_AUTH_TOKEN (it binds to 0.0.0.0).
#   docker build -t customerio-mcp .
#   docker run --read-only -p 8000:8000 -e CUSTOMERIO_SITE_ID=… -e CUSTOMERIO_API_KEY=… \
#     -e CUSTOMERIO_MCP_AUTH_TOKEN=… customerio-mcp
# Streamable HTTP (/mcp) is the recommended remote transport; SSE is deprecated by the 2026-07-28 MCP
# specification and stays the default here only for existing setups. For a new deployment add
#   -e CUSTOMERIO_MCP_TRANSPORT=streamable-http
# Limits (CUSTOMERIO_MCP_MAX_CONCURRENT_CALLS, _MAX_SESSIONS, _MAX_CONNECTIONS, _CLIENT_TIMEOUT, ...) apply to
# both; see docs/deploying.md. More than ~4000 connections need --ulimit nofile=N:N.
# The base image is pinned by version and digest. Dependencies come from uv.lock, exported for pip:
#   uv lock && uv export --frozen --no-dev --no-emit-project --no-hashes --no-header --format requirements-txt \
#     > requirements.lock
FROM python:3.12.12-slim-bookworm@sha256:593bd06efe90efa80dc4eee3948be7c0fde4134606dd40d8dd8dbcade98e669c

LABEL io.modelcontextprotocol.server.name="io.github.customerio-mcp/customerio-mcp" \
      org.opencontainers.image.title="customerio-mcp" \
      org.opencontainers.image.description="MCP server that lets an AI assistant send data to Customer.io" \
      org.opencontainers.image.source="https://github.com/customerio-mcp/customerio-mcp" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT"

# No bytecode written at run time: the image runs with a read-only root filesystem.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-deps -r requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY customerio_mcp ./customerio_mcp
RUN pip install --no-deps .

# The audit trail's directory, a volume: writable even with --read-only, kept across restarts when named
# (-v customerio-mcp-audit:/var/lib/customerio-mcp). Replicas share one trail with CUSTOMERIO_AUDIT=redis instead.
RUN useradd --create-home --uid 10001 mcp && install -d -o mcp -g mcp -m 0700 /var/lib/customerio-mcp
VOLUME ["/var/lib/customerio-mcp"]
USER mcp

# Defaults only: override any of them with -e at docker run (CUSTOMERIO_MCP_TRANSPORT=streamable-http is
# recommended for new deployments).
ENV CUSTOMERIO_MCP_TRANSPORT=sse \
    CUSTOMERIO_MCP_HOST=0.0.0.0 \
    CUSTOMERIO_MCP_PORT=8000 \
    CUSTOMERIO_MCP_HEALTH_PORT=8001 \
    CUSTOMERIO_AUDIT=file:/var/lib/customerio-mcp/audit.jsonl

# 8001 answers only GET /healthz, from a thread a burst of requests on 8000 cannot delay.
EXPOSE 8000 8001
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('CUSTOMERIO_MCP_HEALTH_PORT') or os.environ.get('CUSTOMERIO_MCP_PORT', '8000')), timeout=4)"]

CMD ["customerio-mcp"]
