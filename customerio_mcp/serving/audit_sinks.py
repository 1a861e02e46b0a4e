"""Where audit records go and come back from: a JSON Lines file, or a Redis stream shared by replicas.

``CUSTOMERIO_AUDIT=file`` (the default) appends to ``audit.jsonl`` in the user's state directory,
``$XDG_STATE_HOME/customerio-mcp/`` or else ``~/.local/state/customerio-mcp/``, the same rule on
every system (it is the XDG rule; macOS and Windows have no other that needs a dependency); the
directory is made (0700) when missing. ``file:/absolute/path`` appends to that file, whose
directory must exist: a missing one is more likely a volume not mounted than a wish to write
into the container. The file is made 0600 (records name people), and opened for each batch with
``O_APPEND``, so several servers can share it (each batch is one ``write``) and a rotated file is
simply made again. ``redis`` appends to the stream ``customerio-mcp:audit`` in
``CUSTOMERIO_REDIS_URL``, trimmed to about ``AUDIT_STREAM_MAXLEN`` records (``XADD MAXLEN ~``).

Both read back in the order written (``customerio-mcp audit``). Writing raises on any failure; the
trail (``audit.py``) decides what a failure means, which is never a failed call.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import anyio
import anyio.to_thread

from customerio_mcp.settings import Settings
from customerio_mcp.text_safety import shown_url

STATE_DIRECTORY = "customerio-mcp"
AUDIT_FILE_NAME = "audit.jsonl"
AUDIT_STREAM_KEY = "customerio-mcp:audit"
AUDIT_STREAM_MAXLEN = 100_000
"""Records the stream keeps, about (Redis trims whole nodes): a few hundred bytes each, some 50 MB in all."""
AUDIT_REDIS_TIMEOUT_SECONDS = 2.0
"""Longest one batch of records waits on Redis; then it is lost (counted) and the next batch tries again."""
READ_PAGE = 1_000


def default_audit_path() -> Path:
    """``audit.jsonl`` in the user's state directory (``$XDG_STATE_HOME``, else ``~/.local/state``)."""
    base = os.environ.get("XDG_STATE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "state"  # the spec ignores relative ones
    return root / STATE_DIRECTORY / AUDIT_FILE_NAME


class FileSink:
    """Appends records to a JSON Lines file."""

    def __init__(self, path: Path, *, make_directory: bool) -> None:
        self.path = path
        self._make_directory = make_directory
        self._torn = False
        """A write failed part-way: the next one starts on a line of its own."""

    @property
    def shown(self) -> str:
        return f"file {self.path}"

    async def append(self, lines: Callable[[], list[str]]) -> None:
        """Append the records ``lines`` makes: made and written in one trip to a worker thread."""
        await anyio.to_thread.run_sync(lambda: self._append("".join(lines()).encode()), abandon_on_cancel=True)

    def _append(self, data: bytes) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, 0o600)
        except FileNotFoundError:
            if not self._make_directory:
                raise
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, flags, 0o600)
        if self._torn:
            data = b"\n" + data  # the reader skips the half line before it, and the empty one
        try:
            self._torn = True
            view = memoryview(data)
            while view:  # a regular file takes it in one write, short of a full disk
                view = view[os.write(fd, view) :]
            self._torn = False
        finally:
            os.close(fd)

    async def problem(self) -> str | None:
        """Why records could not be written here, or None when they can (for ``check``; nothing is written)."""
        if self.path.exists():
            if self.path.is_dir():
                return "it is a directory"
            return None if os.access(self.path, os.W_OK) else "no permission to write to it"
        directory = self.path.parent
        if self._make_directory:
            while not directory.exists() and directory != directory.parent:
                directory = directory.parent
        elif not directory.is_dir():
            return f"its directory {directory} does not exist"
        if not os.access(directory, os.W_OK | os.X_OK):
            return f"no permission to create it in {directory}"
        return None

    def read(self) -> Iterator[str]:
        """Every line, oldest first; none when the file does not exist yet."""
        try:
            with self.path.open(encoding="utf-8", errors="replace", newline="\n") as lines:
                yield from lines
        except FileNotFoundError:
            return

    def close(self) -> None:
        """Nothing stays open between batches."""


class RedisSink:
    """Appends records to a Redis stream every replica shares, with the same connection approach as pacing.

    coredis is imported here, not with the module: it costs a tenth of a second of every start otherwise.
    """

    def __init__(self, url: str) -> None:
        import coredis

        self._url = url
        self._shown = shown_url(url)
        self._pool = coredis.ConnectionPool.from_url(
            url,
            connect_timeout=AUDIT_REDIS_TIMEOUT_SECONDS,
            stream_timeout=AUDIT_REDIS_TIMEOUT_SECONDS,
            decode_responses=True,
        )
        self._redis = coredis.Redis(connection_pool=self._pool, decode_responses=True)

    @property
    def shown(self) -> str:
        return f"Redis stream {AUDIT_STREAM_KEY} at {self._shown}"

    async def append(self, lines: Callable[[], list[str]]) -> None:
        """Append the records ``lines`` makes (on a worker thread), in one round trip."""
        from coredis.tokens import PureToken

        made = await anyio.to_thread.run_sync(lines, abandon_on_cancel=True)
        with anyio.fail_after(AUDIT_REDIS_TIMEOUT_SECONDS):
            async with await self._redis.pipeline(transaction=False) as pipe:
                for line in made:
                    pipe.xadd(
                        AUDIT_STREAM_KEY,
                        {"record": line.rstrip("\n")},
                        trim_strategy=PureToken.MAXLEN,
                        threshold=AUDIT_STREAM_MAXLEN,
                        trim_operator=PureToken.APPROXIMATELY,
                    )
                await pipe.execute()

    async def problem(self) -> str | None:
        """None when Redis answers PING, else the kind of failure."""
        from customerio_mcp.customerio.shared_pacing import ping

        return await ping(self._url)

    async def read(self, since_ms: int | None = None) -> AsyncIterator[str]:
        """Every record from ``since_ms`` (Redis's own clock: the id of each entry) on, oldest first."""
        start = str(since_ms) if since_ms is not None else "-"
        while True:
            with anyio.fail_after(AUDIT_REDIS_TIMEOUT_SECONDS):  # a Redis that never answers ends the read
                entries = await self._redis.xrange(AUDIT_STREAM_KEY, start, "+", count=READ_PAGE)
            for entry in entries:
                yield str(entry.field_values.get("record", ""))
            if len(entries) < READ_PAGE:
                return
            start = "(" + str(entries[-1].identifier)

    def close(self) -> None:
        self._pool.disconnect()


AuditSink = FileSink | RedisSink


def described_failure(error: BaseException) -> str:
    """What went wrong, in words with no secret in them: the system's for a file, the kind for Redis."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    if isinstance(error, TimeoutError):
        return f"no answer within {AUDIT_REDIS_TIMEOUT_SECONDS:g} s"
    return type(error).__name__


def audit_sink(settings: Settings) -> AuditSink | None:
    """The sink ``CUSTOMERIO_AUDIT`` names (None: off). Its syntax was checked by ``Settings``."""
    if settings.audit == "off":
        return None
    if settings.audit == "redis":
        assert settings.redis_url is not None, "Settings refuses CUSTOMERIO_AUDIT=redis without a Redis URL"
        return RedisSink(settings.redis_url.get_secret_value())
    if settings.audit == "file":
        return FileSink(default_audit_path(), make_directory=True)
    return FileSink(Path(settings.audit.removeprefix("file:")), make_directory=False)
